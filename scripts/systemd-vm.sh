#!/usr/bin/env bash
# A Debian 12 with systemd as PID 1 (../shared/tools/systemd-host: systemd-nspawn
# --boot of its root), plus Debian's nix-bin and Nix's build users, made once
# per machine into a cache keyed by this recipe and the tool:
#   scripts/systemd-vm.sh root                  make it if missing; print its directory
#   scripts/systemd-vm.sh run [FLAG…] -- CMD…   boot it (with the nspawn FLAGs, e.g.
#       --bind=DIR), run CMD inside as a transient unit of its PID 1, power off;
#       CMD's exit status. /nix is always bound (the host's store and database).
# This machine's PID 1 is not systemd; the tests of the systemd runner, of
# container@.service and of the module's unit run in here.
source "$(dirname "$0")/lib.sh"

tool=$(cd "$NCP_SRC/.." && pwd)/shared/tools/systemd-host
[ -x "$tool" ] || die "no $tool"
key=$(cat "$0" "$tool" | sha256sum | cut -c1-12)
VM=$NCP_CACHE_DIR/systemd-vm-$key
export ROOT=$VM/root NAME=ncp-vm-$key

make_root() {
  [ -f "$VM/.complete" ] && return
  [ "$(id -u)" = 0 ] || die "run as root"
  say "making a Debian 12 root with systemd and nix-bin in $VM (once per machine)"
  rm -rf "$VM" && mkdir -p "$VM"
  "$tool" build >&2
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn -q --register=no --keep-unit -D "$ROOT" --pipe \
    env DEBIAN_FRONTEND=noninteractive sh -ec '
      apt-get install -y -q --no-install-recommends nix-bin procps >/dev/null
      getent group nixbld >/dev/null || groupadd --system nixbld
      for i in $(seq 1 8); do
        getent passwd nixbld$i >/dev/null || useradd --system --gid nixbld --groups nixbld \
          --no-create-home --home-dir /var/empty --shell /usr/sbin/nologin nixbld$i
      done
      apt-get clean' >&2 || die "installing nix-bin into the systemd root failed"
  touch "$VM/.complete"
}

case "${1:-}" in
  root) make_root; echo "$VM" ;;
  run)
    shift
    flags=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do flags+=("$1"); shift; done
    [ "${1:-}" = -- ] || die "usage: scripts/systemd-vm.sh run [FLAG…] -- CMD…"
    shift
    make_root
    export BOOT_FLAGS="--private-network --bind=/nix ${flags[*]}"
    "$tool" all "$@"
    ;;
  *) die "usage: scripts/systemd-vm.sh root | run [FLAG…] -- CMD…" ;;
esac

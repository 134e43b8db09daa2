#!/usr/bin/env bash
# A Debian sid chroot with the toolchain today's Nix needs (GCC 14+, boost >=
# 1.90, curl >= 8.17, meson >= 1.4: none of them is in Debian 12), made once
# per machine into a cache keyed by this recipe.
#   scripts/sid.sh root                 make it if missing; print its directory
#   scripts/sid.sh run [-b DIR]… -- CMD  run CMD inside, as root, with /proc,
#       /dev and /sys, the host's Rust toolchain, the repository, the cache
#       directory, ../shared (read-only) and each DIR bound at the same path
# Every mount lives in a private mount namespace of the run and is gone with
# it; nothing of the chroot is mounted on the host afterwards.
# The facts behind the steps are in ../shared/NIX-VERSIONS.md.
source "$(dirname "$0")/lib.sh"

key=$(sha256sum "$0" | cut -c1-12)
SID=$NCP_CACHE_DIR/sid-$key

# What the chroot gets beyond `apt-get build-dep nix`: the plugin's build.
SID_PACKAGES=(pkg-config meson ninja-build g++ patchelf xz-utils nlohmann-json3-dev)

make_root() {
  [ -f "$SID/.complete" ] && return
  [ "$(id -u)" = 0 ] || die "run as root"
  local missing
  missing=$(apt_missing debootstrap)
  if [ -n "$missing" ]; then
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2
  fi
  say "making a Debian sid chroot in $SID (once per machine, about 5 minutes)"
  rm -rf "$SID.tmp"
  mkdir -p "$NCP_CACHE_DIR"
  debootstrap --variant=minbase sid "$SID.tmp" http://deb.debian.org/debian >&2 ||
    die "debootstrap of sid failed (see $SID.tmp/debootstrap/debootstrap.log)"
  cat > "$SID.tmp/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian sid main
deb-src http://deb.debian.org/debian sid main
EOF
  # The archive's sid Release file may be past its validity date.
  printf 'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n' \
    > "$SID.tmp/etc/apt/apt.conf.d/90nix-container-plugin"
  SID_DIR=$SID.tmp run_in -- sh -c '
    set -e
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get build-dep -y -q nix
    apt-get install -y -q "$@"
    apt-get clean' sid "${SID_PACKAGES[@]}" >&2 || die "setting up the sid chroot failed"
  touch "$SID.tmp/.complete"
  rm -rf "$SID" && mv "$SID.tmp" "$SID"
}

# run_in [-b DIR]… -- CMD…: CMD in the chroot $SID_DIR (default $SID).
run_in() {
  local root=${SID_DIR:-$SID} binds=()
  while [ $# -gt 0 ]; do
    case "$1" in
      -b) binds+=("$2"); shift 2 ;;
      --) shift; break ;;
      *) die "run: unknown option $1" ;;
    esac
  done
  local rustup=${RUSTUP_HOME:-$HOME/.rustup} cargo=${CARGO_HOME:-$HOME/.cargo}
  local shared envs=()
  shared=$(cd "$NCP_SRC/.." && pwd)/shared
  [ -z "${RUSTUP_TOOLCHAIN:-}" ] || envs+=("RUSTUP_TOOLCHAIN=$RUSTUP_TOOLCHAIN")
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  unshare --mount --propagation private --fork bash -c '
    set -e
    root=$1 ro=$2; shift 2
    mount -t proc proc "$root/proc"
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs tmpfs "$root/tmp"
    while [ "$1" != -- ]; do
      d=$1; shift
      [ -e "$d" ] || continue
      mkdir -p "$root$d"
      mount --rbind "$d" "$root$d"
      [ "$d" != "$ro" ] || mount -o remount,bind,ro "$root$d"
    done
    shift
    exec chroot "$root" "$@"
  ' sid-run "$root" "$shared" "$rustup" "$cargo" "$NCP_SRC" "$NCP_CACHE_DIR" "$shared" \
    ${binds[@]+"${binds[@]}"} -- \
    /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
      RUSTUP_HOME="$rustup" CARGO_HOME="$cargo" ${envs[@]+"${envs[@]}"} \
      NCP_CACHE_DIR="$NCP_CACHE_DIR" \
      PATH="$cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$@"
}

case "${1:-}" in
  root) make_root; echo "$SID" ;;
  run) shift; make_root; run_in "$@" ;;
  *) die "usage: scripts/sid.sh root | run [-b DIR]… -- CMD…" ;;
esac

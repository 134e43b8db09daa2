#!/usr/bin/env bash
# The second host of the --target-host tests (tests/target_host.rs): a
# Debian 12 root with its own /nix (Debian's nix-bin), sshd and
# systemd-nspawn, made once per machine into a cache keyed by this recipe.
# Each `up` runs a fresh copy of it (an overlay over the cache) in mount,
# network and PID namespaces and a cgroup of its own, with the project's
# CLI and plugin bound in, sshd (its PID 1) listening on the far end of a
# veth pair, and a key made for the run. Only the pair's addresses (10.231.N.1 here, 10.231.N.2 there) are
# used.
#   scripts/target-host.sh root                  make it if missing; print its directory
#   scripts/target-host.sh up DIR CLI PLUGIN     start one under DIR (empty or missing);
#                                                print "ADDRESS KEYFILE"
#   scripts/target-host.sh down DIR              stop it: every process in its
#                                                namespaces, its cgroups, its files
source "$(dirname "$0")/lib.sh"

# dbus and libdbi-perl: debootstrap does not pick providers of virtual packages.
PACKAGES=nix-bin,openssh-server,systemd-container,dbus,libdbi-perl,iproute2,util-linux,procps

make_root() {
  [ -f "$BASE/.complete" ] && return
  [ "$(id -u)" = 0 ] || die "run as root"
  ensure_debootstrap
  say "making the second host's Debian 12 root in $BASE (once per machine, about 2 minutes)"
  rm -rf "$BASE.tmp"
  mkdir -p "$BASE.tmp"
  local r=$BASE.tmp/root
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$r" \
    http://deb.debian.org/debian >"$BASE.tmp/debootstrap.log" 2>&1 ||
    die "debootstrap failed (see $BASE.tmp/debootstrap.log)"
  rm -rf "$r"/usr/share/{doc,man,info,locale} "$r"/var/cache/apt/* "$r"/var/lib/apt/lists/* \
    "$r"/etc/ssh/ssh_host_*
  mkdir -p "$r"/nix/store "$r"/nix/var/nix "$r"/etc/nix "$r"/usr/local/lib/nix/plugins "$r"/root/.ssh
  # Its own Nix: a store of its own, the plugin loaded, no builders needed
  # (what it runs is copied in, never built there).
  cat >"$r"/etc/nix/nix.conf <<'EOF'
plugin-files = /usr/local/lib/nix/plugins/nix-container-plugin.so
experimental-features = nix-command
substituters =
sandbox = false
build-users-group =
EOF
  touch "$BASE.tmp/.complete"
  rm -rf "$BASE" && mv "$BASE.tmp" "$BASE"
  find "$NCP_CACHE_DIR" -mindepth 1 -maxdepth 1 -name 'target-host-*' ! -path "$BASE" \
    -exec rm -rf {} + 2>/dev/null || true
  say "$(du -sh "$ROOT" | cut -f1) in $ROOT"
}

# Keyed by what makes the root (editing up or down does not remake it).
key=$( { echo "$PACKAGES"; declare -f make_root; } | sha256sum | cut -c1-12)
BASE=$NCP_CACHE_DIR/target-host-$key
ROOT=$BASE/root

# The first 10.231.N.0/30 (and ncptN) no interface here has, taken under a lock.
free_subnet() {
  local n
  for n in $(seq 1 250); do
    # A pair whose far end just went away may linger a moment without
    # its address: its name is taken until it is gone.
    ip -o addr show | grep -q " 10\.231\.$n\.1/" && continue
    ip link show "ncpt$n" >/dev/null 2>&1 || { echo "$n"; return; }
  done
  die "no free 10.231.N.0/30"
}

up() {
  local dir=$1 cli=$2 plugin=$3
  make_root
  [ -x "$cli" ] || die "$cli: no CLI"
  [ -f "$plugin" ] || die "$plugin: no plugin"
  mkdir -p "$dir"/{upper,work,root}
  dir=$(cd "$dir" && pwd)
  rm -f "$dir/id" "$dir/id.pub"
  ssh-keygen -q -t ed25519 -N '' -C ncp-target-test -f "$dir/id"
  exec 9>"$NCP_CACHE_DIR/target-host.lock"
  flock 9
  local n; n=$(free_subnet)
  # The namespace's first process says its pid, waits for its end of the
  # pair, then becomes sshd (in the overlay root), its PID 1: processes of
  # its own, as another host has.
  unshare --mount --net --pid --propagation private --fork bash -c '
    set -e
    dir=$1 lower=$2 cli=$3 plugin=$4 n=$5
    r=$dir/root
    mount -t overlay overlay -o "lowerdir=$lower,upperdir=$dir/upper,workdir=$dir/work" "$r"
    mount -t proc proc "$r/proc"
    mount --rbind /sys "$r/sys"
    mount --rbind /dev "$r/dev"
    mount -t tmpfs tmpfs "$r/run"
    mount -t tmpfs tmpfs "$r/tmp"
    mkdir -p "$r/run/sshd"
    touch "$r/usr/local/bin/nix-container"
    mount --bind "$cli" "$r/usr/local/bin/nix-container"
    # The plugin is a loader and the library it loads from beside itself.
    for f in "$plugin" "${plugin%.so}-impl.so"; do
      [ -f "$f" ] || continue
      touch "$r/usr/local/lib/nix/plugins/${f##*/}"
      mount --bind "$f" "$r/usr/local/lib/nix/plugins/${f##*/}"
    done
    chroot "$r" ssh-keygen -A >/dev/null
    install -m 600 "$dir/id.pub" "$r/root/.ssh/authorized_keys"
    # A cgroup of its own in the hierarchies systemd uses, as a host of
    # its own has: the containers it starts (cgroup.rs: nix-container.NAME
    # below the caller'"'"'s group) are then not those of another host here.
    for h in systemd unified; do
      m=/sys/fs/cgroup/$h
      if [ $h = unified ] && [ ! -f "$m/cgroup.procs" ]; then m=/sys/fs/cgroup; fi
      [ -f "$m/cgroup.procs" ] || continue
      case $h in systemd) own=$(sed -n "s/^[0-9]*:name=systemd://p" /proc/self/cgroup) ;;
                 *) own=$(sed -n "s/^0:://p" /proc/self/cgroup) ;; esac
      g=$m${own%/}/ncp-target-$n
      mkdir -p "$g" && echo 0 > "$g/cgroup.procs" && echo "$g" >> "$dir/cgroups"
    done
    # Its pid as this host sees it (the /proc mounted here is still ours).
    read -r hostpid _ < /proc/self/stat
    echo "$hostpid" > "$dir/pid"
    for _ in $(seq 100); do ip link show eth0 >/dev/null 2>&1 && break; sleep 0.1; done
    ip link set lo up
    ip addr add "10.231.$n.2/30" dev eth0
    ip link set eth0 up
    exec chroot "$r" /usr/sbin/sshd -D -e -o UseDNS=no 2>"$dir/sshd.log"
  ' target-host "$dir" "$ROOT" "$(readlink -f "$cli")" "$(readlink -f "$plugin")" "$n" \
    >"$dir/namespace.log" 2>&1 &
  local pid=
  for _ in $(seq 100); do
    pid=$(cat "$dir/pid" 2>/dev/null) && [ -n "$pid" ] && break
    kill -0 $! 2>/dev/null || die "the second host did not start: $(cat "$dir/namespace.log")"
    sleep 0.1
  done
  [ -n "$pid" ] || die "the second host did not start: $(cat "$dir/namespace.log")"
  ip link add "ncpt$n" type veth peer name eth0 netns "$pid"
  ip addr add "10.231.$n.1/30" dev "ncpt$n"
  ip link set "ncpt$n" up
  flock -u 9
  # sshd listens when its port answers.
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/10.231.$n.2/22") 2>/dev/null && { echo "10.231.$n.2 $dir/id"; return; }
    sleep 0.1
  done
  die "sshd on the second host did not answer: $(cat "$dir/sshd.log" "$dir/namespace.log" 2>/dev/null)"
}

down() {
  local dir=$1 pid ns p
  pid=$(cat "$dir/pid" 2>/dev/null) || true
  # Only a namespace that is not this host's own (its pid may be gone and
  # taken by another process).
  if [ -n "$pid" ] && ns=$(readlink "/proc/$pid/ns/net" 2>/dev/null) &&
    [ "$ns" != "$(readlink /proc/self/ns/net)" ] &&
    [ "$(readlink "/proc/$pid/ns/pid")" != "$(readlink /proc/self/ns/pid)" ]; then
    # Everything in its network namespace: sshd, sessions, containers.
    for p in /proc/[0-9]*; do
      [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$ns" ] && kill -9 "${p#/proc/}" 2>/dev/null || true
    done
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  # Its cgroups, deepest first (killed processes leave them empty).
  while read -r g; do
    for _ in $(seq 20); do
      find "$g" -depth -type d -exec rmdir {} + 2>/dev/null
      [ -d "$g" ] || break
      sleep 0.1
    done
  done < <(cat "$dir/cgroups" 2>/dev/null)
  rm -rf --one-file-system "$dir"
}

case "${1:-}" in
  root) make_root; echo "$ROOT" ;;
  up) [ $# = 4 ] || die "usage: scripts/target-host.sh up DIR CLI PLUGIN"; up "$2" "$3" "$4" ;;
  down) [ $# = 2 ] || die "usage: scripts/target-host.sh down DIR"; down "$2" ;;
  *) die "usage: scripts/target-host.sh root | up DIR CLI PLUGIN | down DIR" ;;
esac

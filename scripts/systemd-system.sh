#!/usr/bin/env bash
# The base of the test system whose PID 1 is a real systemd
# (tests/fixtures/systemd-system.nix): Debian 12's systemd, dbus, login,
# passwd and iproute2 from the package archive, as one directory that Nix
# adds to its store as one path. Made once per machine into a cache keyed
# by this recipe.
#   scripts/systemd-system.sh root   make it if missing; print its directory
#   scripts/systemd-system.sh add    add it to the store of the `nix-store`
#                                    on PATH (NIX_STORE_DIR…); print the path
# What a container does not need is left out to keep it small: /dev (nspawn
# makes its own), documentation, manuals, locales, apt's lists and caches.
# Nix refuses special files and drops setuid bits: su, login and passwd run
# as root inside (NixOS has setuid wrappers in /run/wrappers instead).
source "$(dirname "$0")/lib.sh"

PACKAGES=systemd,dbus,login,passwd,iproute2
key=$(sha256sum "$0" | cut -c1-12)
BASE=$NCP_CACHE_DIR/systemd-system-$key
ROOT=$BASE/debian-systemd

make_root() {
  [ -f "$BASE/.complete" ] && return
  [ "$(id -u)" = 0 ] || die "run as root"
  ensure_debootstrap
  say "making Debian 12's systemd for the test system in $BASE (once per machine, about 2 minutes)"
  rm -rf "$BASE.tmp"
  mkdir -p "$BASE.tmp"
  local r=$BASE.tmp/debian-systemd
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$r" \
    http://deb.debian.org/debian >"$BASE.tmp/debootstrap.log" 2>&1 ||
    die "debootstrap failed (see $BASE.tmp/debootstrap.log)"
  rm -rf "$r"/dev/* "$r"/proc/* "$r"/sys/* "$r"/run/* "$r"/tmp/* \
    "$r"/usr/share/{doc,man,info,locale,lintian,linda} \
    "$r"/var/cache/apt/* "$r"/var/lib/apt/lists/* "$r"/var/log/* "$r"/debootstrap \
    "$r"/etc/machine-id "$r"/var/lib/dbus/machine-id
  # Nix stores regular files, directories and symlinks only.
  find "$r" -xdev ! -type f ! -type d ! -type l -delete
  touch "$BASE.tmp/.complete"
  rm -rf "$BASE" && mv "$BASE.tmp" "$BASE"
  say "$(du -sh "$ROOT" | cut -f1) in $ROOT"
}

case "${1:-}" in
  root) make_root; echo "$ROOT" ;;
  add)
    make_root
    # Content-addressed: the same path in every store with the same store
    # directory, added again only when missing.
    nix-store --add "$ROOT"
    ;;
  *) die "usage: scripts/systemd-system.sh root | add" ;;
esac

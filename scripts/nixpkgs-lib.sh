#!/usr/bin/env bash
# Prints the directory of a real nixpkgs `lib` snapshot from ../shared/nixpkgs
# (checked against SHA256SUMS, unpacked once per machine into the cache):
#   scripts/nixpkgs-lib.sh new    26.11 development (needs Nix >= 2.18)
#   scripts/nixpkgs-lib.sh old    2025-07-24, the last that Nix 2.8 evaluates
#   scripts/nixpkgs-lib.sh for-nix VERSION   the newest one VERSION evaluates
# The directory holds lib/ (import DIR/lib). Tests evaluate the NixOS module
# and the library's routes with it: the real module system, not a stand-in.
source "$(dirname "$0")/lib.sh"

shared=$(cd "$NCP_SRC/.." && pwd)/shared/nixpkgs
case "${1:-}" in
  new) rev=de42d44212d207476489bce163375d8306a26d59 ;;
  old) rev=a53daa439fe995f017e2bf063fb514e567730ea5 ;;
  for-nix)
    v=${2:?for-nix needs a Nix version}
    if [ "$(printf '%s\n%s\n' 2.18 "$v" | sort -V | head -n1)" = 2.18 ]; then
      exec "$0" new
    else
      exec "$0" old
    fi ;;
  *) die "usage: scripts/nixpkgs-lib.sh new|old|for-nix VERSION" ;;
esac
dir=$NCP_CACHE_DIR/nixpkgs-lib-$rev
if [ ! -f "$dir/.complete" ]; then
  tarball=$shared/nixpkgs-lib-$rev.tar.xz
  (cd "$shared" && grep " nixpkgs-lib-$rev.tar.xz\$" SHA256SUMS | sha256sum -c --quiet -) >&2 ||
    die "$tarball is missing or does not match SHA256SUMS"
  rm -rf "$dir" && mkdir -p "$dir"
  tar -xf "$tarball" -C "$dir" --strip-components=1
  touch "$dir/.complete"
fi
echo "$dir"

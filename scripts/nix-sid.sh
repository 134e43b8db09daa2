#!/usr/bin/env bash
# Builds a current Nix release (default 2.35.2) with shared libraries from its
# upstream release source (../shared/nix-sources/nix-VERSION.tar.xz, checked
# against SHA256SUMS) in the Debian sid chroot of scripts/sid.sh, installs it
# into a cached prefix outside the repository and prints the prefix.
#   scripts/nix-sid.sh [VERSION]
# The prefix is keyed by this recipe and the chroot's, so it is built once per
# machine and again only when a recipe changes (about 30 minutes on 2 cores).
#
# The result runs on the Debian 12 host itself: its programs and libraries
# get sid's dynamic loader as interpreter and an RPATH into the chroot (sid's
# glibc, boost, curl…), so the tests drive it exactly as the machine's own
# Nix, next to the host's systemd-nspawn. Plugins for it are compiled in the
# chroot (scripts/setup.sh --nix-prefix PREFIX does that by itself).
source "$(dirname "$0")/lib.sh"

version=${1:-2.35.2}
sources=$(cd "$NCP_SRC/.." && pwd)/shared/nix-sources
tarball=$sources/nix-$version.tar.xz
[ -f "$tarball" ] || die "no $tarball (the Nix release sources are in ../shared/nix-sources)"
sid=$("$NCP_SRC/scripts/sid.sh" root)
key=$(cat "$0" "$NCP_SRC/scripts/sid.sh" | sha256sum | cut -c1-12)
prefix=$NCP_CACHE_DIR/nix-$version-$key
if [ -f "$prefix/.complete" ]; then echo "$prefix"; exit 0; fi
[ "$(id -u)" = 0 ] || die "run as root"
(cd "$sources" && grep " nix-$version.tar.xz\$" SHA256SUMS | sha256sum -c --quiet -) >&2 ||
  die "$tarball does not match SHA256SUMS"

say "building Nix $version in the sid chroot into $prefix (about 30 minutes on 2 cores; once per machine)"
work=$(mktemp -d /var/tmp/ncp-nix-$version-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
rm -rf "$prefix"
mkdir -p "$prefix"
# Options that hold for 2.28 to 2.35 are in ../shared/NIX-VERSIONS.md; -O1
# keeps the build time down (the plugin, not Nix, is what is under test).
cat > "$work/build.sh" <<'BUILD'
set -euo pipefail
work=$1 tarball=$2 prefix=$3 version=$4 sid=$5
cd "$work"
tar -xf "$tarball"
opts=(-Dbuildtype=plain -Dcpp_args=-O1 -Dunit-tests=false -Ddoc-gen=false
  -Dlibcmd:readline-flavor=readline -Dlibstore:s3-aws-auth=disabled)
# Options some releases have and others not (2.33: kaitai-struct-checks,
# up to 2.34: bindings, from 2.29: benchmarks, json-schema-checks).
for opt in functional-tests benchmarks json-schema-checks bindings kaitai-struct-checks; do
  if grep -q "'$opt'" "nix-$version/meson.options"; then opts+=("-D$opt=false"); fi
done
meson setup build "nix-$version" --prefix="$prefix" --libdir=lib "${opts[@]}"
ninja -C build -j"$(nproc)"
meson install -C build --quiet
# To run on the host: sid's loader, and sid's libraries found through an
# RPATH, which (unlike RUNPATH) also serves the libraries they load.
for f in "$prefix"/bin/* "$prefix"/lib/*.so*; do
  [ -f "$f" ] && [ ! -L "$f" ] || continue
  [ "$(head -c4 "$f" | tail -c3)" = ELF ] || continue
  patchelf --force-rpath --set-rpath "$prefix/lib:$sid/usr/lib/x86_64-linux-gnu" "$f"
  case "$f" in "$prefix"/bin/*)
    patchelf --set-interpreter "$sid/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$f" ;;
  esac
done
BUILD
"$NCP_SRC/scripts/sid.sh" run -b "$work" -b "$prefix" -- bash "$work/build.sh" \
  "$work" "$tarball" "$prefix" "$version" "$sid" >&2 || die "building Nix $version failed"
"$prefix/bin/nix" --version >&2 || die "the Nix $version just built does not run on this host"
touch "$prefix/.complete"
echo "$prefix"

#!/usr/bin/env bash
# Builds Lix (default 2.95.3) with shared libraries from its release source
# (../shared/nix-sources/lix-VERSION.tar.xz, checked against SHA256SUMS) in
# the Debian sid chroot of scripts/sid.sh, installs it into a cached prefix
# outside the repository and prints the prefix, as scripts/nix-sid.sh does for
# Nix (the result runs on the host the same way: sid's loader, an RPATH into
# the chroot).
#   scripts/lix-sid.sh [VERSION]
# Keyed by this recipe and the chroot's: built once per machine.
#
# Beyond Nix's build dependencies (the chroot has them) Lix needs capnproto,
# libcpuid, lowdown, toml11 >= 4 and pegtl (found through cmake), cbindgen and
# jq; they are installed into the chroot here. And troglobit's editline, which
# Debian does not package: scripts/lix-editline/ is the part of its API Lix's
# REPL uses, over GNU readline, built into the prefix. Its Rust parts
# (lix-doc) are built by meson from crates named in its Cargo.lock: they are
# fetched from crates.io with cargo (`cargo vendor`, the host's toolchain) and
# handed to meson as a package cache (MESON_PACKAGE_CACHE_DIR), as Lix's own
# package.nix does.
source "$(dirname "$0")/lib.sh"

version=${1:-2.95.3}
sources=$(cd "$NCP_SRC/.." && pwd)/shared/nix-sources
tarball=$sources/lix-$version.tar.xz
[ -f "$tarball" ] || die "no $tarball (the Lix release source is in ../shared/nix-sources)"
sid=$("$NCP_SRC/scripts/sid.sh" root)
key=$(cat "$0" "$NCP_SRC/scripts/sid.sh" "$NCP_SRC"/scripts/lix-editline/* | sha256sum | cut -c1-12)
prefix=$NCP_CACHE_DIR/lix-$version-$key
if [ -f "$prefix/.complete" ]; then echo "$prefix"; exit 0; fi
[ "$(id -u)" = 0 ] || die "run as root"
(cd "$sources" && grep " lix-$version.tar.xz\$" SHA256SUMS | sha256sum -c --quiet -) >&2 ||
  die "$tarball does not match SHA256SUMS"

say "building Lix $version in the sid chroot into $prefix (about 30 minutes on 2 cores; once per machine)"
work=$(mktemp -d /var/tmp/ncp-lix-$version-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
rm -rf "$prefix"
mkdir -p "$prefix"
tar -xf "$tarball" -C "$work"
# The crates of Lix's Cargo.lock, as a cargo registry cache would hold them
# (NAME-VERSION/ directories), fetched on the host.
(cd "$work/lix-$version" && cargo vendor --locked --versioned-dirs "$work/crates" >/dev/null) >&2 ||
  die "cargo vendor of Lix's crates failed"

# Its code generators import python-frontmatter and pycapnp, which Debian
# does not package: wheels from PyPI for the chroot's Python, unpacked.
ensure_packages python3-pip  # pip download (a fresh Debian 12 has no pip)
pyver=$(chroot "$sid" python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any \
  -d "$work/wheels" python-frontmatter==1.3.0 pycapnp==2.2.4 >&2 ||
  die "cannot download Lix's Python build dependencies from PyPI"
for w in "$work"/wheels/*.whl; do python3 -m zipfile -e "$w" "$work/py"; done

LIX_PACKAGES=(clang python3-yaml capnproto libcapnp-dev libcpuid-dev liblowdown-dev libtoml11-dev tao-pegtl-dev
  libreadline-dev libncurses-dev libseccomp-dev cbindgen jq cmake lsof)
cat > "$work/build.sh" <<'BUILD'
set -euo pipefail
work=$1 prefix=$2 version=$3 sid=$4 shim=$5; shift 5
export DEBIAN_FRONTEND=noninteractive
missing=()
for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
  apt-get clean
fi
cd "$work"
mkdir -p "$prefix/include" "$prefix/lib/pkgconfig"
cp "$shim/editline.h" "$prefix/include/"
gcc -O1 -fPIC -shared -Wl,-soname,libeditline.so.1 -I"$shim" -o "$prefix/lib/libeditline.so.1" \
  "$shim/editline.c" -lreadline
ln -sf libeditline.so.1 "$prefix/lib/libeditline.so"
cat > "$prefix/lib/pkgconfig/libeditline.pc" <<PC
Name: libeditline
Description: editline's API over GNU readline (nix-container-plugin's shim for Lix)
Version: 1.17.1
Cflags: -I$prefix/include
Libs: -L$prefix/lib -leditline -lreadline
PC
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
export MESON_PACKAGE_CACHE_DIR=$work/crates PYTHONPATH=$work/py
# Lix is built with clang (its flags are clang's, and GCC is known to crash
# on its coroutines).
export CC=clang CXX=clang++
# -O1 and no tests, docs or contributed plugins: the plugin, not Lix, is
# under test. The sandbox shell is irrelevant to evaluation and plugins.
meson setup build "lix-$version" --prefix="$prefix" --libdir=lib \
  -Dbuildtype=plain -Dcpp_args=-O1 -Denable-tests=false -Denable-docs=false \
  -Dinternal-api-docs=disabled -Denable-contrib-plugins=false -Ddtrace-probes=disabled \
  -Dsandbox-shell=/bin/sh --wrap-mode=nodownload
ninja -C build -j"$(nproc)"
meson install -C build --quiet
# Lix also runs helpers of its own from libexec/lix (the build hook, the
# namespace check).
for f in "$prefix"/bin/* "$prefix"/lib/*.so* "$prefix"/libexec/lix/*; do
  [ -f "$f" ] && [ ! -L "$f" ] || continue
  [ "$(head -c4 "$f" | tail -c3)" = ELF ] || continue
  patchelf --force-rpath --set-rpath "$prefix/lib:$sid/usr/lib/x86_64-linux-gnu" "$f"
  case "$f" in "$prefix"/bin/* | "$prefix"/libexec/*)
    patchelf --set-interpreter "$sid/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" "$f" ;;
  esac
done
BUILD
"$NCP_SRC/scripts/sid.sh" run -b "$work" -b "$prefix" -- bash "$work/build.sh" \
  "$work" "$prefix" "$version" "$sid" "$NCP_SRC/scripts/lix-editline" "${LIX_PACKAGES[@]}" >&2 || die "building Lix $version failed"
"$prefix/bin/nix" --version >&2 || die "the Lix $version just built does not run on this host"
touch "$prefix/.complete"
echo "$prefix"

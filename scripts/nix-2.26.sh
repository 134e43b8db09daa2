#!/usr/bin/env bash
# Builds Nix 2.26.3 with shared libraries from Debian 13's source package, on
# Debian 12, into a cached prefix outside the repository, and prints the
# prefix on stdout. The prefix is keyed by this script's contents, so it is
# built once per machine and again only when this recipe changes. The facts
# behind each step are in ../shared/NIX-VERSIONS.md (and in comments below).
source "$(dirname "$0")/lib.sh"

NIX_SRC_VERSION=2.26.3+dfsg-1
LIBGIT2_SRC_VERSION=1.9.0+ds-2+deb13u1
key=$(sha256sum "$0" | cut -c1-12)
prefix=$NCP_CACHE_DIR/nix-2.26.3-$key
if [ -f "$prefix/.complete" ]; then echo "$prefix"; exit 0; fi

[ "$(id -u)" = 0 ] || die "run as root"
deps=(build-essential pkgconf cmake bison flex python3-venv libboost-dev libboost-context-dev
  libboost-coroutine-dev libboost-container-dev nlohmann-json3-dev libtoml11-dev libsodium-dev
  libarchive-dev libbrotli-dev libcurl4-openssl-dev libsqlite3-dev libgc-dev libreadline-dev
  liblowdown-dev libbsd-dev libcpuid-dev libssl-dev libhttp-parser-dev libpcre2-dev zlib1g-dev
  dpkg-dev)
missing=$(apt_missing "${deps[@]}")
list=/etc/apt/sources.list.d/nix-container-plugin-trixie-src.sources
if [ ! -f "$list" ]; then
  cat > "$list" <<'SRC'
# Added by nix-container-plugin's scripts/nix-2.26.sh: Nix 2.26.3 and libgit2
# 1.9 are built from Debian 13's source packages.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  missing="$missing update"
fi
if [ -n "$missing" ]; then
  say "installing the build dependencies of Nix 2.26"
  apt-get update -q >&2
  missing=$(apt_missing "${deps[@]}")
  [ -z "$missing" ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2
fi

work=$(mktemp -d /var/tmp/ncp-nix-2.26-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
say "building Nix 2.26.3 into $prefix (about 25 minutes on 2 cores; done once per machine)"
apt-get source -q --download-only "nix=$NIX_SRC_VERSION" "libgit2=$LIBGIT2_SRC_VERSION" >&2
dpkg-source -x nix_*.dsc nix >&2
dpkg-source -x libgit2_*.dsc libgit2 >&2
rm -rf "$prefix.tmp"
mkdir -p "$prefix.tmp/lib/pkgconfig" "$prefix.tmp/include"
P=$prefix.tmp

# meson >= 1.4 and a ninja to match (Debian 12 has meson 1.0): from PyPI.
python3 -m venv venv >&2
venv/bin/pip install -q 'meson>=1.4,<1.8' ninja >&2
export PATH=$work/venv/bin:$PATH

# libgit2 >= 1.9 (Debian 12 has 1.5): shared, without tests, CLI or SSH.
cmake -S libgit2 -B libgit2-build -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$P" \
  -DCMAKE_INSTALL_LIBDIR=lib -DBUILD_SHARED_LIBS=ON -DBUILD_TESTS=OFF -DBUILD_CLI=OFF \
  -DUSE_SSH=OFF -DUSE_NTLMCLIENT=OFF -DUSE_HTTPS=OpenSSL -DREGEX_BACKEND=pcre2 -DUSE_HTTP_PARSER=http-parser >&2
cmake --build libgit2-build -j"$(nproc)" >&2
cmake --install libgit2-build >&2

# Debian 12's libgc 8.2.2 declares the <void> allocator specialisations with
# private typedefs, which boost's small_vector needs: a patched copy of the
# headers, and a bdw-gc.pc that points at it (plugins get it through nix-expr.pc).
cp -r /usr/include/gc "$P/include/gc"
cp /usr/include/gc*.h "$P/include/" 2>/dev/null || true
sed -i -E 's/^(class (gc_allocator|gc_allocator_ignore_off_page|traceable_allocator)<void> \{)$/\1\npublic:/' "$P/include/gc/gc_allocator.h"
grep -q '^public:' "$P/include/gc/gc_allocator.h" || die "could not patch gc_allocator.h"
sed -e "s|^includedir=.*|includedir=$prefix/include|" /usr/lib/x86_64-linux-gnu/pkgconfig/bdw-gc.pc > "$P/lib/pkgconfig/bdw-gc.pc"
sed -i "s|-I\${includedir}|-I$P/include|" "$P/lib/pkgconfig/bdw-gc.pc"

# boost 1.74's small_vector does not convert to std::span.
sed -i 's/state\.callFunction(vFun, vArgs, v, pos);/state.callFunction(vFun, std::span<Value *>(vArgs.data(), vArgs.size()), v, pos);/' nix/src/libexpr/eval.cc
grep -q 'std::span<Value \*>(vArgs.data()' nix/src/libexpr/eval.cc || die "could not patch eval.cc"

export PKG_CONFIG_PATH=$P/lib/pkgconfig
export LDFLAGS="-Wl,-rpath,$prefix/lib"
meson setup nix-build nix --prefix="$P" --libdir=lib -Ddefault_library=shared -Dbuildtype=release \
  -Dunit-tests=false -Dbindings=false -Ddoc-gen=false -Dlibcmd:readline-flavor=readline \
  -Dlibexpr:gc=enabled -Dlibstore:seccomp-sandboxing=disabled -Dlibstore:sandbox-shell=/bin/sh >&2
ninja -C nix-build >&2
meson install -C nix-build >&2

# The build used $prefix.tmp; the result lives at $prefix.
grep -rl "$P" "$P/lib/pkgconfig" | xargs sed -i "s|$P|$prefix|g"
rm -rf "$prefix" && mv "$P" "$prefix" && touch "$prefix/.complete"
echo "$prefix"

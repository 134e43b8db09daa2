#!/usr/bin/env bash
# Compiles the plugin (every C++ file, with the flags its meson build takes
# from pkg-config) against the headers of each Nix release that the test
# command does not build and run in full:
#   scripts/compile-matrix.sh [VERSION…]
#   (default: 2.26.3 and 2.28.7 2.29.4 2.30.5 2.31.5 2.32.8 2.33.6 2.34.8)
# No Nix build is needed: `meson setup` of a Nix source tree generates its
# config headers and "uninstalled" pkg-config files, which are enough to
# compile against. That is done once per version and cached (keyed by its
# recipe); the plugin's objects are compiled in the sid chroot of
# scripts/sid.sh (today's Nix needs GCC 14+ and boost >= 1.90) whenever the
# sources they are made from changed since that version last compiled.
# Sources: ../shared/nix-sources (upstream release tags, checked against
# SHA256SUMS); 2.26.3 from Debian 13's source package (a deb-src line for
# trixie is added to the host's apt sources if missing).
source "$(dirname "$0")/lib.sh"

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(2.26.3 2.28.7 2.29.4 2.30.5 2.31.5 2.32.8 2.33.6 2.34.8)
sources=$(cd "$NCP_SRC/.." && pwd)/shared/nix-sources
NIX_226_DEB=2.26.3+dfsg-1
"$NCP_SRC/scripts/sid.sh" root >/dev/null

# The Debian 13 source of Nix 2.26.3, unpacked (with Debian's patches).
debian_226_source() {
  local dest=$1 list=/etc/apt/sources.list.d/nix-container-plugin-trixie-src.sources
  if [ ! -f "$list" ]; then
    cat > "$list" <<'SRC'
# Added by nix-container-plugin's scripts: Nix 2.26.3 is compiled against
# from Debian 13's source package.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -q >&2
  fi
  local work
  work=$(mktemp -d /var/tmp/ncp-nix-src.XXXXXX)
  (cd "$work" && apt-get source -q --download-only "nix=$NIX_226_DEB" >&2 &&
    dpkg-source -x ./*.dsc src >&2) || die "cannot get Debian's source of nix=$NIX_226_DEB"
  mv "$work/src" "$dest" && rm -rf "$work"
}

# A configured source tree of Nix VERSION: SRC/ and BUILD/ (meson setup only).
configured() {
  local v=$1 dir=$NCP_CACHE_DIR/nix-configured-$v-$key
  if [ ! -f "$dir/.complete" ]; then
    say "configuring Nix $v's sources for the compile matrix (once per machine)"
    rm -rf "$dir" && mkdir -p "$dir"
    if [ "$v" = 2.26.3 ]; then
      debian_226_source "$dir/src"
    else
      local tarball=$sources/nix-$v.tar.xz
      (cd "$sources" && grep " nix-$v.tar.xz\$" SHA256SUMS | sha256sum -c --quiet -) >&2 ||
        die "$tarball is missing or does not match SHA256SUMS"
      mkdir "$dir/src" && tar -xf "$tarball" -C "$dir/src" --strip-components=1
    fi
    "$NCP_SRC/scripts/sid.sh" run -- bash -euc '
      src=$1/src build=$1/build
      opts=(-Dunit-tests=false -Ddoc-gen=false -Dlibcmd:readline-flavor=readline)
      for o in functional-tests benchmarks json-schema-checks bindings kaitai-struct-checks; do
        if grep -q "'"'"'$o'"'"'" "$src/meson.options" 2>/dev/null; then opts+=("-D$o=false"); fi
      done
      if grep -q "s3-aws-auth" "$src/src/libstore/meson.options" 2>/dev/null; then
        opts+=(-Dlibstore:s3-aws-auth=disabled)
      fi
      meson setup "$build" "$src" "${opts[@]}" > "$1/setup.log" 2>&1 || { tail -20 "$1/setup.log"; exit 1; }
    ' configure "$dir" >&2 || die "meson setup of Nix $v failed (see $dir/setup.log)"
    touch "$dir/.complete"
  fi
  echo "$dir"
}

# The configured trees are keyed by what makes them (the two functions
# above, the Debian version and the chroot), not by the rest of this script.
key=$( { declare -f debian_226_source configured; echo "$NIX_226_DEB"; cat "$NCP_SRC/scripts/sid.sh"; } |
  sha256sum | cut -c1-12)

# The Rust bridge is the same for every Nix: one cargo target directory,
# sid's, which the plugin for Nix 2.35 is built with too.
NCP_CARGO_TARGET_DIR=$(cargo_cache_dir bridge-sid)
export NCP_CARGO_TARGET_DIR

# What a compile reads from this checkout: the plugin's C++, its build,
# the Rust bridge whose header it includes, and this script. A version
# compiled green against the same inputs (and the same configured tree) is
# not compiled again: its marker is kept per machine.
inputs=$( { cd "$NCP_SRC" && find cpp include rust/bridge rust/core meson.build meson_options.txt \
  Cargo.lock scripts/compile-matrix.sh -type f ! -path '*/target/*' -print0 | sort -z |
  xargs -0 sha256sum; } | sha256sum | cut -c1-12)
passed_dir=$NCP_CACHE_DIR/matrix-passed
mkdir -p "$passed_dir"
find "$passed_dir" -type f -mtime +7 -delete 2>/dev/null || true

failed=()
for v in "${versions[@]}"; do
  dir=$(configured "$v")
  out=$NCP_SRC/build-matrix/$v
  passed=$passed_dir/$v-$key-$inputs
  if [ -f "$passed" ]; then
    say "Nix $v: compiled green before from the same sources ($inputs); not again"
    continue
  fi
  say "compiling the plugin against Nix $v's headers"
  if ! "$NCP_SRC/scripts/sid.sh" run -- env NCP_CARGO_TARGET_DIR="$NCP_CARGO_TARGET_DIR" bash -euc '
      src=$1 out=$2 pc=$3/build/meson-uninstalled
      export PKG_CONFIG_PATH=$pc
      if [ ! -f "$out/build.ninja" ] || [ "$(cat "$out/.ncp-pkg-config-path" 2>/dev/null)" != "$pc" ]; then
        rm -rf "$out"
        meson setup "$out" "$src" -Dbuildtype=plain -Dtests=false > /dev/null
        printf %s "$pc" > "$out/.ncp-pkg-config-path"
      fi
      # Every object of the plugin and its loader; nothing is linked (there
      # are no Nix libraries to link against).
      objects=$(ninja -C "$out" -t targets all | sed -n "s/^\(nix-container-plugin[^:]*\.o\): .*/\1/p")
      [ -n "$objects" ] || { echo "no objects to compile" >&2; exit 1; }
      ninja -C "$out" $objects
    ' matrix "$NCP_SRC" "$out" "$dir" >&2; then
    failed+=("$v")
  else
    touch "$passed"
  fi
done
[ ${#failed[@]} -eq 0 ] || die "the plugin does not compile against Nix ${failed[*]}"
say "the plugin compiles against Nix ${versions[*]}"

#!/usr/bin/env bash
# Installs what is missing and builds the plugin. Idempotent; safe to re-run.
#   scripts/setup.sh                      against a Nix with headers that
#        pkg-config already finds, else Debian's nix-bin plus headers of the
#        same version from Debian's source package; builds into build/.
#   scripts/setup.sh --nix-prefix PREFIX [--in-sid]  against the Nix installed
#        in PREFIX (PREFIX/lib/pkgconfig); builds into build-nix-VERSION/
#        (a Lix: build-lix-VERSION/, with clang, as Lix is built).
#        --in-sid compiles in the Debian sid chroot of scripts/sid.sh, as a
#        Nix from scripts/nix-sid.sh (GCC 14+, boost >= 1.90) or a Lix from
#        scripts/lix-sid.sh needs.
# Prints nothing on stdout but `export PKG_CONFIG_PATH=… NCP_PLUGIN=…` for
# callers to eval.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (apt-get, /nix and systemd-nspawn need it)"

install_packages() {
  local missing
  missing=$(apt_missing "${NCP_APT_PACKAGES[@]}")
  if [ -n "$missing" ]; then
    say "installing Debian packages: $(echo $missing)"
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2
  fi
  # Debian 12's own rustc (1.63) is older than the crates need; this machine
  # kind comes with a rustup toolchain, which is what we use.
  command -v cargo >/dev/null || die "cargo is not on PATH: install a Rust toolchain >= $NCP_MIN_RUST (rustup)"
  local have
  have=$(rustc --version | awk '{print $2}')
  [ "$(printf '%s\n%s\n' "$NCP_MIN_RUST" "$have" | sort -V | head -n1)" = "$NCP_MIN_RUST" ] ||
    die "rustc $have is older than $NCP_MIN_RUST"
}

# Nix running as root builds as the members of `build-users-group` (default
# nixbld), never as root. Debian's nix-bin does not create them (only its
# nix-setup-systemd package, which also installs and enables the daemon), so
# we create them as Nix's own installer does: group nixbld (GID 30000 when
# free) and 32 members nixbld1..32 (UIDs 30001.. when free), system accounts
# with no password, no home and no login shell. Building as root instead
# (`build-users-group =`) would give every builder root on this machine.
ensure_build_users() {
  local i uid missing=0
  getent group nixbld >/dev/null || missing=1
  for i in $(seq 1 32); do getent passwd "nixbld$i" >/dev/null || missing=1; done
  [ "$missing" = 1 ] || return 0
  say "creating Nix's build users (group nixbld, users nixbld1..32), as Nix's installer does"
  if ! getent group nixbld >/dev/null; then
    if getent group 30000 >/dev/null; then groupadd --system nixbld
    else groupadd --system --gid 30000 nixbld; fi
  fi
  for i in $(seq 1 32); do
    getent passwd "nixbld$i" >/dev/null && continue
    uid=()
    getent passwd $((30000 + i)) >/dev/null || uid=(--uid $((30000 + i)))
    useradd --system "${uid[@]}" --gid nixbld --groups nixbld --no-create-home \
      --home-dir /var/empty --shell /usr/sbin/nologin --comment "Nix build user $i" "nixbld$i"
  done
}

# Nix 2.8's headers, as its own `make install` lays them out (flat nix/*.hh,
# nix/flake/*.hh), plus config.h and .pc files that point at them and at
# Debian's shared libraries in /usr/lib/nix.
debian_nix_headers() {
  local version src_version prefix
  version=$(dpkg-query -W -f='${Version}' nix-bin)
  src_version=$(dpkg-query -W -f='${source:Version}' nix-bin)
  prefix=$NCP_CACHE_DIR/nix-headers-$src_version
  if [ -f "$prefix/.complete" ]; then
    echo "$prefix"; return
  fi
  say "fetching the headers of Nix $version from Debian's source package nix=$src_version"
  local list=/etc/apt/sources.list.d/nix-container-plugin-src.sources
  if ! apt-get source --print-uris -q "nix=$src_version" >/dev/null 2>&1; then
    cat > "$list" <<'SRC'
# Added by nix-container-plugin's scripts/setup.sh: Nix's headers come from
# Debian's own source package of the installed nix-bin.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -q >&2
  fi
  local work
  work=$(mktemp -d)
  (cd "$work" && apt-get source -q --download-only "nix=$src_version" >&2 && dpkg-source -x ./*.dsc src >&2)
  rm -rf "$prefix.tmp" && mkdir -p "$prefix.tmp/include/nix/flake" "$prefix.tmp/lib/pkgconfig"
  local d
  for d in libutil libstore libfetchers libexpr libmain libcmd; do
    cp "$work"/src/src/$d/*.hh "$prefix.tmp/include/nix/"
  done
  cp "$work"/src/src/libexpr/flake/*.hh "$prefix.tmp/include/nix/flake/"
  local upstream=${version%%-*}
  write_config_h "$prefix.tmp/include/nix" "$upstream"
  local pc
  for pc in nix-store nix-expr nix-main nix-cmd; do
    sed -e "s|^includedir=.*|includedir=$prefix/include|" /usr/lib/nix/pkgconfig/$pc.pc > "$prefix.tmp/lib/pkgconfig/$pc.pc"
  done
  rm -rf "$work" "$prefix" && mv "$prefix.tmp" "$prefix" && touch "$prefix/.complete"
  echo "$prefix"
}

# config.h: configure's output. Of its macros, the installed headers test only
# the ones below (checked: a header testing any other HAVE_/ENABLE_ macro stops
# the setup); HAVE_BOEHMGC changes the layout of the evaluator's types.
write_config_h() {
  local dir=$1 version=$2
  local used
  used=$(grep -hoE '^\s*#\s*if(n?def)?\s+!?\s*(HAVE|ENABLE|CAN)_[A-Z0-9_]+' "$dir"/*.hh "$dir"/flake/*.hh \
         | grep -oE '(HAVE|ENABLE|CAN)_[A-Z0-9_]+' | sort -u | tr '\n' ' ')
  local known=" HAVE_BOEHMGC HAVE_STRUCT_DIRENT_D_TYPE ENABLE_S3 "
  local m
  for m in $used; do
    [[ $known == *" $m "* ]] || die "Nix $version's headers test $m, which config.h does not define yet"
  done
  cat > "$dir/config.h" <<H
/* Written by nix-container-plugin's scripts/setup.sh for Debian's nix-bin $version. */
#define PACKAGE_VERSION "$version"
#define SYSTEM "$(uname -m)-linux"
#define HAVE_BOEHMGC 1
#define HAVE_STRUCT_DIRENT_D_TYPE 1
#define ENABLE_S3 0
H
}

nix_pkgconfig_path() {
  # A Nix whose pkg-config files lead to headers (a Nix shell, or a prefix
  # given in PKG_CONFIG_PATH) is used as it is.
  if pkg-config --exists nix-expr 2>/dev/null &&
     [ -f "$(pkg-config --variable=includedir nix-expr)/nix/eval.hh" ]; then
    echo "${PKG_CONFIG_PATH:-}"; return
  fi
  local prefix
  prefix=$(debian_nix_headers)
  echo "$prefix/lib/pkgconfig:/usr/lib/nix/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
}

# meson + ninja into $NCP_BUILD_DIR against the Nix whose .pc files are in
# PKG_CONFIG_PATH ($1). meson keeps the pkg-config results of its first
# configure: start afresh when the Nix it was configured for changed.
build_here() {
  export PKG_CONFIG_PATH=$1
  local out=$2 version
  if pkg-config --exists nix-expr; then
    version="Nix $(pkg-config --modversion nix-expr)"
  else
    # Lix: built with clang, as Lix itself (scripts/lix-sid.sh).
    version="Lix $(pkg-config --modversion lix-expr)"
    export CC=clang CXX=clang++
  fi
  local stamp=$out/.ncp-pkg-config-path
  if [ ! -f "$out/build.ninja" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$1" ]; then
    say "configuring the build in $out ($version)"
    rm -rf "$out"
    meson setup "$out" "$NCP_SRC" -Dbuildtype=release >&2
    printf '%s' "$1" > "$stamp"
  fi
  say "building the plugin for $version"
  ninja -C "$out" >&2
}

# The bridge's cargo build is kept between runs (rust/build-staticlib.sh):
# one for this host's compiler and one for sid's (its C++ parts differ).
build() {
  if [ -n "$in_sid" ]; then
    "$NCP_SRC/scripts/sid.sh" run -- env NCP_CARGO_TARGET_DIR="$(cargo_cache_dir "bridge-sid$lix")" \
      bash -c 'source "$1/scripts/lib.sh"; '"$(declare -f build_here)"'; build_here "$2" "$3"' \
      build "$NCP_SRC" "$1" "$NCP_BUILD_DIR"
  else
    NCP_CARGO_TARGET_DIR=${NCP_CARGO_TARGET_DIR:-$(cargo_cache_dir bridge-host)} build_here "$1" "$NCP_BUILD_DIR"
  fi
}

nix_prefix= in_sid= lix=
while [ $# -gt 0 ]; do
  case "$1" in
    --nix-prefix) nix_prefix=${2:?--nix-prefix needs a directory}; shift 2 ;;
    --in-sid) in_sid=1; shift ;;
    *) die "usage: scripts/setup.sh [--nix-prefix PREFIX [--in-sid]]" ;;
  esac
done

install_packages
ensure_build_users
if [ -n "$nix_prefix" ]; then
  pcpath=$nix_prefix/lib/pkgconfig
  pc=nix-expr
  [ -f "$pcpath/$pc.pc" ] || { pc=lix-expr; lix=-lix; }
  [ -f "$pcpath/$pc.pc" ] || die "no $pcpath/nix-expr.pc (nor lix-expr.pc)"
  # Read from the file: the host may lack what its Requires name (--in-sid).
  version=$(sed -n 's/^Version: *//p' "$pcpath/$pc.pc")
  [ -n "$version" ] || die "no Version in $pcpath/$pc.pc"
  NCP_BUILD_DIR=$NCP_SRC/build-${pc%-expr}-$version
  NCP_PLUGIN=$NCP_BUILD_DIR/nix-container-plugin.so
else
  pcpath=$(nix_pkgconfig_path)
fi
build "$pcpath"
say "plugin: $NCP_PLUGIN"
echo "export PKG_CONFIG_PATH='$pcpath' NCP_PLUGIN='$NCP_PLUGIN'"

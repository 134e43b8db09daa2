# Shared by the scripts: paths and small helpers. Source it, don't run it.
set -euo pipefail

NCP_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Caches live outside the repository and are keyed by what they hold.
NCP_CACHE_DIR=${NCP_CACHE_DIR:-/var/cache/nix-container-plugin}
# Scratch space of the tests and the demo: owned by root, writable by no one
# else (the plugin refuses roots others could have made, and Nix 2.35 a
# store below a world-writable directory).
NCP_WORK_DIR=${NCP_WORK_DIR:-/var/lib/nix-container-plugin}
NCP_BUILD_DIR=${NCP_BUILD_DIR:-$NCP_SRC/build}
NCP_PLUGIN=$NCP_BUILD_DIR/nix-container-plugin.so

NCP_MIN_RUST=1.85.0

# A cargo target directory kept between runs (CI clones afresh, and a cold
# build of the dependencies is minutes of a run): NAME, keyed by the lockfile
# (default Cargo.lock) and the toolchain, so a change of either starts a new
# one. Caches of NAME unused for a week are removed.
# Cargo takes the workspace's own crates for fresh by file times and bakes
# their paths in (env!("CARGO_MANIFEST_DIR")): built from another checkout,
# they could pass for this one's. So when the checkout differs from the last
# one that used the cache, their fingerprints are removed (they are rebuilt);
# the dependencies' builds stay.
cargo_cache_dir() {
  local name=$1 lock=${2:-$NCP_SRC/Cargo.lock} key dir crates crate
  key=$( { cat "$lock"; rustc -V; } | sha256sum | cut -c1-12)
  dir=$NCP_CACHE_DIR/cargo/$name-$key
  mkdir -p "$dir" && touch "$dir"
  if [ "$(cat "$dir/.ncp-checkout" 2>/dev/null)" != "$NCP_SRC" ]; then
    crates=$(cargo metadata --offline --no-deps --format-version 1 \
      --manifest-path "$(dirname "$lock")/Cargo.toml" | jq -r '.packages[].name')
    for crate in $crates; do
      find "$dir" -type d -path "*/.fingerprint/$crate-*" -prune -exec rm -rf {} +
    done
    printf '%s' "$NCP_SRC" > "$dir/.ncp-checkout"
  fi
  find "$NCP_CACHE_DIR/cargo" -mindepth 1 -maxdepth 1 -name "$name-*" ! -path "$dir" -mtime +7 \
    -exec rm -rf {} + 2>/dev/null || true
  echo "$dir"
}

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Debian packages the build and the tests need.
NCP_APT_PACKAGES=(
  nix-bin libgc-dev libboost-dev nlohmann-json3-dev pkg-config meson ninja-build
  g++ systemd-container busybox-static dpkg-dev xz-utils jq
  iproute2 util-linux  # ip and nsenter, which nix-container runs
  openssh-client       # --target-host (nix-container's ssh and Nix's copy)
  python3              # the --target-host test's connection cutter
)

apt_missing() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  printf '%s\n' "${missing[@]}"
}

# Debian packages, installed when missing.
ensure_packages() {
  if [ -n "$(apt_missing "$@")" ]; then
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2
  fi
}

# debootstrap, installed when missing (sid.sh has its own copy: its text keys
# the sid chroot, the Nix 2.35 build and the compile matrix, so it stays as it is).
ensure_debootstrap() { ensure_packages debootstrap; }

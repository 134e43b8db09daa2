#!/usr/bin/env bash
# Every test (what .ci/run runs):
#   scripts/test.sh          all of the below
#   scripts/test.sh 2.8      the whole suite against Nix 2.8.0 (Debian 12's nix-bin)
#   scripts/test.sh 2.35     the whole suite against Nix 2.35.2
#   scripts/test.sh lix      the whole suite against Lix 2.95.3
#   scripts/test.sh matrix   the plugin compiled against Nix 2.26.3 and 2.28-2.34
#   scripts/test.sh fuzz     every fuzz target for NCP_FUZZ_SECONDS (default 10)
# Sets up and builds first: scripts/setup.sh (Debian packages, Nix 2.8's
# headers, build users), scripts/nix-sid.sh (Nix 2.35.2 from its release
# source in a Debian sid chroot, once per machine, ~30 minutes),
# scripts/lix-sid.sh (Lix 2.95.3 likewise, ~10 minutes) and
# scripts/compile-matrix.sh. The Rust unit tests run once; the integration
# tests (real nix, nix-env, nix-store --gc, systemd-nspawn with temporary
# roots) run once per Nix. The 2.35 and Lix runs have their own store and
# state directories under a temporary directory, never the machine's /nix.
source "$(dirname "$0")/lib.sh"

which=${1:-all}
case "$which" in all|2.8|2.35|lix|matrix|fuzz) ;; *) die "usage: scripts/test.sh [all|2.8|2.35|lix|matrix|fuzz]" ;; esac
want() { [ "$which" = all ] || [ "$which" = "$1" ]; }
cd "$NCP_SRC"
SECONDS=0
timing=() failed=()
took() { timing+=("$1: ${SECONDS}s"); SECONDS=0; }
# Every step runs even when one before failed: one run tells everything.
# Tests that cannot run here say so in this file.
export NCP_SKIP_LOG
NCP_SKIP_LOG=$(mktemp)

# Build first: each run also checks that the other version's plugin declines
# to load into its Nix.
plugin_28= plugin_235= plugin_lix=
if want 2.8 || want 2.35 || want lix; then
  eval "$(scripts/setup.sh)"
  # Debian 12's systemd for the test system whose PID 1 is systemd (cached).
  scripts/systemd-system.sh root >/dev/null
  # The second host of the --target-host tests (cached likewise).
  scripts/target-host.sh root >/dev/null
  plugin_28=$NCP_PLUGIN pc_28=$PKG_CONFIG_PATH
  took "set-up and the plugin for Nix 2.8"
fi
if want 2.35; then
  prefix_235=$(scripts/nix-sid.sh 2.35.2)
  eval "$(scripts/setup.sh --nix-prefix "$prefix_235" --in-sid)"
  plugin_235=$NCP_PLUGIN pc_235=$PKG_CONFIG_PATH
  took "Nix 2.35.2 and its plugin"
fi
if want lix; then
  prefix_lix=$(scripts/lix-sid.sh 2.95.3)
  eval "$(scripts/setup.sh --nix-prefix "$prefix_lix" --in-sid)"
  plugin_lix=$NCP_PLUGIN pc_lix=$PKG_CONFIG_PATH
  took "Lix 2.95.3 and its plugin"
fi

# The workspace's cargo builds (unit tests, integration tests, the CLI and
# the packaging test's builds) are kept between runs.
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(cargo_cache_dir workspace)}
export CARGO_TARGET_DIR

if want 2.8 || want 2.35 || want lix; then
  # The runtime CLI the integration tests drive.
  cargo build --locked -p nix-container
  export NCP_CLI=$CARGO_TARGET_DIR/debug/nix-container
fi

# The other builds' plugins, each of which must decline to load into the
# Nix under test (NCP_OTHER_PLUGIN, ':'-separated).
others() { local IFS=:; local all="$*"; all=${all//::/:}; all=${all#:}; echo "${all%:}"; }

# A step runs in a subshell with -e in force (not ignored as it would be
# in `( … ) || …`); its failure is recorded and the next step runs.
step() {
  local name=$1 rc
  shift
  set +e
  ( set -e; "$@" )
  rc=$?
  set -e
  [ "$rc" = 0 ] || failed+=("$name")
  took "$name"
}

tests_28() {
  export NCP_PLUGIN=$plugin_28 NCP_OTHER_PLUGIN=$(others "$plugin_235" "$plugin_lix") PKG_CONFIG_PATH=$pc_28
  [ -n "$NCP_OTHER_PLUGIN" ] || unset NCP_OTHER_PLUGIN
  # The real nixpkgs lib: its newest snapshot needs Nix >= 2.18.
  NCP_NIXPKGS_LIB=$(scripts/nixpkgs-lib.sh for-nix 2.8.0); export NCP_NIXPKGS_LIB
  mkdir -p /nix/var/nix/daemon-socket
  # The systemd test system's base, in this store.
  NCP_SYSTEMD_BASE=$(scripts/systemd-system.sh add); export NCP_SYSTEMD_BASE
  say "Nix $(nix --version | awk '{print $3}'): unit and integration tests"
  cargo test --workspace --locked --no-fail-fast
}

# The whole integration suite against a Nix built in the sid chroot (LABEL,
# its PREFIX, its PLUGIN, the other builds' plugins, which must decline to
# load there, and the pkg-config path), with its own store and state below a
# temporary directory.
tests_own_store() {
  local label=$1 prefix=$2 version
  # A test that compiles a program against the plugin's C++ runtime does
  # it in the chroot the plugin was built in.
  export NCP_PLUGIN=$3 NCP_OTHER_PLUGIN=$4 NCP_SID=$NCP_SRC/scripts/sid.sh PKG_CONFIG_PATH=$5
  [ -n "$NCP_OTHER_PLUGIN" ] || unset NCP_OTHER_PLUGIN
  version=$("$prefix/bin/nix" --version | awk '{print $NF}')
  NCP_NIXPKGS_LIB=$(scripts/nixpkgs-lib.sh for-nix "$version"); export NCP_NIXPKGS_LIB
  # The systemd VM needs this Nix's prefix and sid's libraries too.
  export NCP_CACHE_DIR_BIND=$NCP_CACHE_DIR
  # Nix 2.35 refuses a store below a world-writable directory (even a
  # sticky one such as /var/tmp): below our root-owned work directory.
  mkdir -p -m 0755 "$NCP_WORK_DIR"
  tmp=$(mktemp -d "$NCP_WORK_DIR/$label-test.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  chmod 0755 "$tmp"  # the build users must reach the store below it
  export PATH=$prefix/bin:$PATH NIX_STORE_DIR=$tmp/store NIX_STATE_DIR=$tmp/var/nix \
    NIX_LOG_DIR=$tmp/var/log/nix NIX_CONF_DIR=$tmp/etc
  mkdir -p "$NIX_CONF_DIR" "$NIX_STATE_DIR/daemon-socket"
  # A store outside /nix/store: builds run without the sandbox.
  printf 'sandbox = false\n' > "$NIX_CONF_DIR/nix.conf"
  # The database made once, before tests start Nix processes in parallel
  # (creating it concurrently is "database is busy").
  nix-store --init
  NCP_SYSTEMD_BASE=$(scripts/systemd-system.sh add); export NCP_SYSTEMD_BASE
  say "$(nix --version | head -1) (store $NIX_STORE_DIR): integration tests"
  cargo test --locked -p ncp-integration-tests --no-fail-fast
}
tests_235() { tests_own_store nix-2.35 "$prefix_235" "$plugin_235" "$(others "$plugin_28" "$plugin_lix")" "$pc_235"; }
tests_lix() { tests_own_store lix "$prefix_lix" "$plugin_lix" "$(others "$plugin_28" "$plugin_235")" "$pc_lix"; }

CARGO_FUZZ_VERSION=0.13.2
fuzzing() {
  # cargo-fuzz and the instrumented builds are kept between runs too.
  local fuzz_root=$NCP_CACHE_DIR/cargo-fuzz-$CARGO_FUZZ_VERSION
  if ! command -v cargo-fuzz >/dev/null; then
    [ -x "$fuzz_root/bin/cargo-fuzz" ] ||
      cargo install --locked --root "$fuzz_root" cargo-fuzz --version "$CARGO_FUZZ_VERSION"
    export PATH=$fuzz_root/bin:$PATH
  fi
  CARGO_TARGET_DIR=$(cargo_cache_dir fuzz "$NCP_SRC/fuzz/Cargo.lock")
  export CARGO_TARGET_DIR
  say "fuzzing each target for ${NCP_FUZZ_SECONDS:-10}s"
  fuzz/run.sh "${NCP_FUZZ_SECONDS:-10}"
}

want 2.8 && step "tests on Nix 2.8" tests_28
want 2.35 && step "tests on Nix 2.35" tests_235
want lix && step "tests on Lix 2.95" tests_lix
want matrix && step "compile matrix" scripts/compile-matrix.sh
want fuzz && [ "${NCP_FUZZ_SECONDS:-10}" != 0 ] && step "fuzzing" fuzzing
say "time per step: $(IFS=,; echo "${timing[*]}")"
if [ -s "$NCP_SKIP_LOG" ]; then
  say "not run here:"
  sed 's/^/    /' "$NCP_SKIP_LOG" >&2
fi
rm -f "$NCP_SKIP_LOG"
[ ${#failed[@]} = 0 ] || die "failed: $(IFS=,; echo "${failed[*]}")"
say "done: every step passed"

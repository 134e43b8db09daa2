#!/usr/bin/env bash
# Every test, against every Nix version we test:
#   scripts/test.sh          Nix 2.8.0 (Debian's nix-bin) and Nix 2.26.3
#   scripts/test.sh 2.8      only Nix 2.8.0
#   scripts/test.sh 2.26     only Nix 2.26.3
# then every fuzz target for NCP_FUZZ_SECONDS (default 15) from the committed
# seeds (fuzz/run.sh; NCP_FUZZ_SECONDS=0 skips it).
# Sets up and builds first (scripts/setup.sh; for 2.26, scripts/nix-2.26.sh
# builds Nix once per machine into a cache). The Rust unit tests run once; the
# integration tests (real nix, nix-env, nix-store --gc, systemd-nspawn with
# temporary roots) run once per Nix. The 2.26 run has its own store and state
# directories under a temporary directory, never the machine's /nix.
source "$(dirname "$0")/lib.sh"

which=${1:-all}
case "$which" in all|2.8|2.26) ;; *) die "usage: scripts/test.sh [all|2.8|2.26]" ;; esac
cd "$NCP_SRC"

# Build first: each run also checks that the other version's plugin declines
# to load into its Nix.
if [ "$which" != 2.26 ]; then
  eval "$(scripts/setup.sh)"
  plugin_28=$NCP_PLUGIN
fi
if [ "$which" != 2.8 ]; then
  prefix_226=$(scripts/nix-2.26.sh)
  eval "$(scripts/setup.sh --nix-prefix "$prefix_226")"
  plugin_226=$NCP_PLUGIN
fi

# The runtime CLI the integration tests drive.
cargo build --locked -p nix-container
export NCP_CLI=$NCP_SRC/target/debug/nix-container

if [ "$which" != 2.26 ]; then
  (
    export NCP_PLUGIN=$plugin_28 NCP_OTHER_PLUGIN=${plugin_226:-}
    [ -n "$NCP_OTHER_PLUGIN" ] || unset NCP_OTHER_PLUGIN
    mkdir -p /nix/var/nix/daemon-socket
    say "Nix $(nix --version | awk '{print $3}'): unit and integration tests"
    cargo test --workspace --locked
  )
fi

if [ "$which" != 2.8 ]; then
  (
    export NCP_PLUGIN=$plugin_226 NCP_OTHER_PLUGIN=${plugin_28:-}
    [ -n "$NCP_OTHER_PLUGIN" ] || unset NCP_OTHER_PLUGIN
    tmp=$(mktemp -d /var/tmp/ncp-nix-2.26-test.XXXXXX)
    trap 'rm -rf "$tmp"' EXIT
    chmod 0755 "$tmp"  # the build users must reach the store below it
    export PATH=$prefix_226/bin:$PATH NIX_STORE_DIR=$tmp/store NIX_STATE_DIR=$tmp/var/nix \
      NIX_LOG_DIR=$tmp/var/log/nix NIX_CONF_DIR=$tmp/etc
    mkdir -p "$NIX_CONF_DIR" "$NIX_STATE_DIR/daemon-socket"
    # Built without seccomp (Debian 12's libseccomp is too old for it).
    printf 'sandbox = false\nfilter-syscalls = false\n' > "$NIX_CONF_DIR/nix.conf"
    say "Nix $(nix --version | awk '{print $3}') (store $NIX_STORE_DIR): integration tests"
    cargo test --locked -p ncp-integration-tests
  )
fi

if [ "${NCP_FUZZ_SECONDS:-15}" != 0 ]; then
  say "fuzzing each target for ${NCP_FUZZ_SECONDS:-15}s"
  fuzz/run.sh "${NCP_FUZZ_SECONDS:-15}"
fi

#!/usr/bin/env bash
# Every test: sets up and builds (scripts/setup.sh), then the Rust unit tests
# and the integration tests, which drive the real nix, nix-env, nix-store and
# systemd-nspawn against the built plugin with temporary roots.
source "$(dirname "$0")/lib.sh"

eval "$("$NCP_SRC/scripts/setup.sh")"
export NCP_PLUGIN
mkdir -p /nix/var/nix/daemon-socket
say "cargo test (unit and integration tests)"
cd "$NCP_SRC"
cargo test --workspace --locked

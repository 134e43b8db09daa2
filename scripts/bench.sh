#!/usr/bin/env bash
# The side-by-side benchmark (scripts/bench.py): builtins.containerProfile
# against the peer's per-container nix-env --set + root preparation, for
# N = 1 10 100 1000 containers (or the N given); then N containers from one
# configuration against nixos-container create's one evaluation and build
# per container (NCP_BENCH_MANY). Prints numbers; asserts nothing.
source "$(dirname "$0")/lib.sh"
eval "$("$NCP_SRC/scripts/setup.sh")"
export NCP_PLUGIN
NCP_NIXPKGS_LIB=$("$NCP_SRC/scripts/nixpkgs-lib.sh" for-nix "$(nix --version | awk '{print $3}')")
export NCP_NIXPKGS_LIB
exec python3 "$NCP_SRC/scripts/bench.py" "$@"

#!/usr/bin/env bash
# The side-by-side benchmark (scripts/bench.py): builtins.containerProfile
# against the peer's per-container nix-env --set + root preparation, for
# N = 1 10 100 1000 containers (or the N given). Prints numbers; asserts nothing.
source "$(dirname "$0")/lib.sh"
eval "$("$NCP_SRC/scripts/setup.sh")"
export NCP_PLUGIN
exec python3 "$NCP_SRC/scripts/bench.py" "$@"

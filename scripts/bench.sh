#!/usr/bin/env bash
# The side-by-side benchmarks. Print numbers; assert nothing.
#   scripts/bench.sh [N…]     all of them:
#     - scripts/bench.py: builtins.containerProfile against the peer's
#       per-container nix-env --set + root preparation, for N = 1 10 100 1000
#       containers (or the N given); then N containers from one configuration
#       against nixos-container create's one evaluation and build per
#       container (NCP_BENCH_MANY);
#     - scripts/bench_runtime.py: start until ready, reload, stop and restart
#       of a container whose PID 1 is systemd, nix-container against bare
#       systemd-nspawn with the same argv, and under a real systemd
#       (scripts/systemd-vm.sh) against NixOS's real container@ scripts
#       (NCP_BENCH_RUNS; NCP_BENCH_VM=0 leaves the systemd part out).
#   scripts/bench.sh runtime  the runtime part only
source "$(dirname "$0")/lib.sh"
eval "$("$NCP_SRC/scripts/setup.sh")"
export NCP_PLUGIN
NCP_NIXPKGS_LIB=$("$NCP_SRC/scripts/nixpkgs-lib.sh" for-nix "$(nix --version | awk '{print $3}')")
export NCP_NIXPKGS_LIB
runtime() {
  # NixOS's container-init needs a bash in the store (its runtimeShell).
  if [ -n "$(apt_missing bash-static)" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends bash-static >&2
  fi
  cargo build --locked --release -q -p nix-container --manifest-path "$NCP_SRC/Cargo.toml"
  NCP_CLI=$NCP_SRC/target/release/nix-container
  NCP_SYSTEMD_BASE=$("$NCP_SRC/scripts/systemd-system.sh" add)
  export NCP_CLI NCP_SYSTEMD_BASE NCP_WORK_DIR
  python3 "$NCP_SRC/scripts/bench_runtime.py"
}
if [ "${1:-}" = runtime ]; then
  runtime
else
  python3 "$NCP_SRC/scripts/bench.py" "$@"
  runtime
fi

#!/usr/bin/env bash
# Benchmark row for --target-host: the time to roll a new system out to 2
# running containers (PID 1 systemd) on a second host (scripts/target-host.sh),
#   ours:     nix-container --target-host H update one two --system-path S
#   scripted: nix copy --to ssh-ng://H S; ssh H nix-container update one/two --system-path S
# interleaved, NCP_BENCH_RUNS rounds (default 5), each with a new system
# built beforehand (the build is not timed). Prints numbers; asserts nothing.
#   NCP_CLI (default: the workspace's release build), NCP_PLUGIN (setup.sh's)
source "$(dirname "$0")/lib.sh"
eval "$("$NCP_SRC/scripts/setup.sh")"
runs=${NCP_BENCH_RUNS:-5}
if [ -z "${NCP_CLI:-}" ]; then
  cargo build --locked --release -q -p nix-container --manifest-path "$NCP_SRC/Cargo.toml"
  NCP_CLI=$NCP_SRC/target/release/nix-container
fi
base=$("$NCP_SRC/scripts/systemd-system.sh" add)
work=$(mktemp -d /var/tmp/ncp-bench-target.XXXXXX)
trap '"$NCP_SRC/scripts/target-host.sh" down "$work/host"; rm -rf "$work"' EXIT
read -r addr key < <("$NCP_SRC/scripts/target-host.sh" up "$work/host" "$NCP_CLI" "$NCP_PLUGIN")
H=root@$addr
export NIX_SSHOPTS="-i $key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes"
export NIX_CONFIG=$'experimental-features = nix-command\nsubstituters =\nsandbox = false\n'
system() {
  nix-build --no-out-link -E "import $NCP_SRC/tests/fixtures/systemd-system.nix { base = \"$base\"; label = \"$1\"; units = { \"svc.service\" = \"[Service]\\nExecStart=/bin/sh -c 'echo $1 > /run/svc; exec sleep infinity'\\n\"; }; }" 2>/dev/null
}
s0=$(system bench0)
for c in one two; do
  "$NCP_CLI" --target-host "$H" create "$c" --system-path "$s0" >/dev/null 2>&1
  "$NCP_CLI" --target-host "$H" start "$c" >/dev/null
done
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
ours=() scripted=()
for i in $(seq 1 "$runs"); do
  a=$(system "bench-a$i") b=$(system "bench-b$i")
  t=$(date +%s%N)
  "$NCP_CLI" --target-host "$H" update one two --system-path "$a" >/dev/null 2>&1
  ours+=("$(ms "$t")")
  t=$(date +%s%N)
  nix copy --no-check-sigs --to "ssh-ng://$H" "$b" 2>/dev/null
  # shellcheck disable=SC2086
  for c in one two; do ssh $NIX_SSHOPTS "$H" nix-container update "$c" --system-path "$b" >/dev/null 2>&1; done
  scripted+=("$(ms "$t")")
done
echo "rollout of a new system to 2 running containers on a second host (ms, $runs rounds, interleaved):"
echo "  nix-container --target-host: ${ours[*]}"
echo "  nix copy + ssh + update:     ${scripted[*]}"

#!/usr/bin/env bash
# The main job: set up, build, evaluate examples/demo.nix with the plugin
# (builtins.containerProfile), boot the container with systemd-nspawn using
# the argv the plugin rendered, show that it came up, and stop it.
#
# The plugin's roots default to the NixOS layout (/var/lib/nixos-containers,
# /etc/nixos-containers, /nix/var/nix/{profiles,gcroots}/per-container). This
# demo rebases that layout under one clearly named directory instead of
# writing into the host's own: $NCP_DEMO_ROOT, default
# /var/tmp/nix-container-plugin-demo. Run it again to see "nothing changed".
source "$(dirname "$0")/lib.sh"

eval "$("$NCP_SRC/scripts/setup.sh")"
R=${NCP_DEMO_ROOT:-/var/tmp/nix-container-plugin-demo}
mkdir -p "$R"
opts=(
  --option container-state-dir "$R/var/lib/nixos-containers"
  --option container-config-dir "$R/etc/nixos-containers"
  --option container-profiles-dir "$R/nix/var/nix/profiles/per-container"
  --option container-gcroots-dir "$R/nix/var/nix/gcroots/per-container"
)
export NIX_CONFIG=$'experimental-features = nix-command\nsubstituters ='

say "evaluating examples/demo.nix with the plugin (demo root: $R)"
nix --plugin-files "$NCP_PLUGIN" "${opts[@]}" eval --impure --json --expr "import $NCP_SRC/examples/demo.nix" > "$R/result.json"
jq -r '"container \(.name): generation \(.generation) of \(.profile) (changed: \(.changed))",
       "  system:  \(.system)", "  root:    \(.root)", "  conf:    \(.configFile)", "  unit:    \(.unit)"' "$R/result.json"
sed 's/^/    /' "$(jq -r .configFile "$R/result.json")"
say "nix-env -p PROFILE --list-generations"
nix-env -p "$(jq -r .profile "$R/result.json")" --list-generations

mapfile -t argv < <(jq -r '.nspawnArgs[]' "$R/result.json")
root=$(jq -r .root "$R/result.json")
system=$(jq -r .system "$R/result.json")
marks=$root/var/lib/ncp-test
rm -rf "$marks"
# NixOS binds the daemon socket directory into every container; a host
# without nix-daemon may not have it yet.
mkdir -p /nix/var/nix/daemon-socket
# --register=no: no machined to register with when systemd is not PID 1 (and
# this shell is not container@demo.service).
say "booting: SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 ${argv[0]} --register=no ${argv[*]:1}"
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 "${argv[0]}" --register=no "${argv[@]:1}" > "$R/nspawn.log" 2>&1 &
pid=$!
for _ in $(seq 300); do
  [ "$(cat "$marks/state" 2>/dev/null)" = running ] && break
  kill -0 $pid 2>/dev/null || { cat "$R/nspawn.log"; die "systemd-nspawn exited early"; }
  sleep 0.1
done
[ "$(cat "$marks/state" 2>/dev/null)" = running ] || { kill $pid; cat "$R/nspawn.log"; die "the container did not come up"; }
inner_pid=$(cat "$marks/pid"); store=$(cat "$marks/store"); inner_system=$(cat "$marks/system")
say "container demo is up:"
echo "  its init ran as PID $inner_pid inside"
echo "  /nix/store inside is: $store"
echo "  /nix/var/nix/profiles/system inside -> $inner_system"
[ "$inner_pid" = 1 ] && [ "$store" = ro ] && [ "$inner_system" = "$system" ] || die "the container is not as expected"
say "stopping it (SIGTERM to systemd-nspawn, SIGRTMIN+3 to the container's init)"
kill -TERM $pid
wait $pid && echo "  stopped cleanly: $(cat "$marks/state")"
say "demo done; everything it wrote is under $R"

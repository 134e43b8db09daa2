#!/usr/bin/env bash
# The main job: set up, build, evaluate examples/demo.nix with the plugin
# (builtins.containerProfile), then start the container with the runtime CLI
# (nix-container: systemd-nspawn with the argv the plugin rendered), show
# from inside that it came up, and stop it.
#
# The plugin's roots default to the NixOS layout (/var/lib/nixos-containers,
# /etc/nixos-containers, /nix/var/nix/{profiles,gcroots}/per-container). This
# demo rebases that layout under one clearly named directory instead of
# writing into the host's own: $NCP_DEMO_ROOT, default
# /var/lib/nix-container-plugin/demo (root-owned: the plugin refuses roots
# that others could have made). Run it again to see "nothing changed".
# Every fact it shows from inside the container is also checked.
source "$(dirname "$0")/lib.sh"

eval "$("$NCP_SRC/scripts/setup.sh")"
R=${NCP_DEMO_ROOT:-$NCP_WORK_DIR/demo}
mkdir -p -m 0755 "$R"
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

# The runtime side: nix-container, pointed at the same roots, runs
# systemd-nspawn itself here (no systemd as PID 1) with the argv the plugin
# rendered and the run directory under the demo root.
say "building the runtime CLI"
cargo build --locked --release -q -p nix-container --manifest-path "$NCP_SRC/Cargo.toml"
nc=("$NCP_SRC/target/release/nix-container"
  --container-state-dir "$R/var/lib/nixos-containers"
  --container-config-dir "$R/etc/nixos-containers"
  --container-profiles-dir "$R/nix/var/nix/profiles/per-container"
  --container-gcroots-dir "$R/nix/var/nix/gcroots/per-container"
  --container-run-dir "$R/run")
system=$(jq -r .system "$R/result.json")
marks=$(jq -r .root "$R/result.json")/var/lib/ncp-test
rm -rf "$marks"
"${nc[@]}" stop demo >/dev/null  # a leftover from an interrupted run
say "nix-container start demo"
"${nc[@]}" start demo
for _ in $(seq 300); do
  [ "$(cat "$marks/state" 2>/dev/null)" = running ] && break
  sleep 0.1
done
say "nix-container status demo"
"${nc[@]}" status demo
say "nix-container run demo -- … (inside the container)"
inside=$("${nc[@]}" run demo -- sh -c 'hostname; tr "\0" " " < /proc/1/cmdline; echo
  readlink /run/current-system; ls /srv/demo | head -3 | tr "\n" " "; echo')
mapfile -t fact <<< "$inside"
echo "  hostname: ${fact[0]}"
echo "  PID 1: ${fact[1]}"
echo "  /run/current-system -> ${fact[2]}"
echo "  /srv/demo (read-only bind mount): ${fact[3]}"
[ "${fact[0]}" = demo ] || die "the host name inside is '${fact[0]}', not demo"
[[ ${fact[1]} == *" /nix/var/nix/profiles/system/"* ]] || die "PID 1 inside is not the container's init: ${fact[1]}"
[ "${fact[2]}" = "$system" ] || die "/run/current-system inside is '${fact[2]}', not $system"
[[ ${fact[3]} == *changelog.Debian.gz* ]] || die "/srv/demo inside does not show /usr/share/doc/nix-bin"
inner_pid=$(cat "$marks/pid"); store=$(cat "$marks/store"); inner_system=$(cat "$marks/system")
say "what the container's init saw:"
echo "  its init ran as PID $inner_pid inside"
echo "  /nix/store inside is: $store"
echo "  /nix/var/nix/profiles/system inside -> $inner_system"
[ "$inner_pid" = 1 ] && [ "$store" = ro ] && [ "$inner_system" = "$system" ] || die "the container is not as expected"
say "nix-container stop demo (SIGRTMIN+3 to the container's init)"
"${nc[@]}" stop demo
echo "  its init recorded: $(cat "$marks/state")"
say "demo done; everything it wrote is under $R"

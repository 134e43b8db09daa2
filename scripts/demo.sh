#!/usr/bin/env bash
# The main job: set up, build, evaluate examples/demo.nix with the plugin
# (builtins.containerProfile), then start the container with the runtime CLI
# (nix-container: systemd-nspawn with the argv the plugin rendered). Its PID 1
# is a real systemd (Debian 12's, under a NixOS-shaped toplevel):
# `start` returns when systemd inside says it is ready. The demo shows
# `systemctl is-system-running` inside, reloads a second version without a
# reboot (PID 1 kept, its new service running), rolls back, and stops it.
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

base=$("$NCP_SRC/scripts/systemd-system.sh" add)
profile_of() { # VERSION: containerProfile of examples/demo.nix
  nix --plugin-files "$NCP_PLUGIN" "${opts[@]}" eval --impure --json \
    --expr "import $NCP_SRC/examples/demo.nix { base = \"$base\"; version = $1; }"
}
say "evaluating examples/demo.nix with the plugin (demo root: $R)"
profile_of 1 > "$R/result.json"
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
say "nix-container start demo (returns when systemd inside says READY=1)"
start=$(date +%s%N)
"${nc[@]}" start demo
echo "  start took $(( ($(date +%s%N) - start) / 1000000 )) ms"
say "nix-container status --long demo"
"${nc[@]}" status --long demo
say "nix-container run demo -- … (inside the container, right after start)"
inside=$("${nc[@]}" run demo -- sh -c 'systemctl is-system-running; hostname; cat /proc/1/comm
  readlink /run/current-system; cat /run/hello; ls /srv/demo | head -3 | tr "\n" " "; echo')
mapfile -t fact <<< "$inside"
echo "  systemctl is-system-running: ${fact[0]}"
echo "  hostname: ${fact[1]}"
echo "  PID 1: ${fact[2]}"
echo "  /run/current-system -> ${fact[3]}"
echo "  hello.service wrote: ${fact[4]}"
echo "  /srv/demo (read-only bind mount): ${fact[5]}"
[ "${fact[0]}" = running ] || die "systemd inside is '${fact[0]}', not running, after start returned"
[ "${fact[1]}" = demo ] || die "the host name inside is '${fact[1]}', not demo"
[ "${fact[2]}" = systemd ] || die "PID 1 inside is '${fact[2]}', not systemd"
[ "${fact[3]}" = "$system" ] || die "/run/current-system inside is '${fact[3]}', not $system"
[ "${fact[4]}" = "hello from the container" ] || die "hello.service did not run"
[[ ${fact[5]} == *changelog.Debian.gz* ]] || die "/srv/demo inside does not show /usr/share/doc/nix-bin"
store=$(cat "$marks/store"); inner_system=$(cat "$marks/system")
echo "  /nix/store inside is: $store"
echo "  /nix/var/nix/profiles/system inside -> $inner_system"
[ "$store" = ro ] && [ "$inner_system" = "$system" ] || die "the container is not as expected"

say "a second version (a new service), reloaded without a reboot"
leader() { "${nc[@]}" status --json demo | jq -r .leader; }
pid1=$(leader)
profile_of 2 > "$R/result2.json"
jq -r '"container \(.name): generation \(.generation) (changed: \(.changed))"' "$R/result2.json"
"${nc[@]}" reload demo
after=$("${nc[@]}" run demo -- systemctl is-active greeter.service)
echo "  PID 1 (host pid): $pid1 before, $(leader) after; greeter.service: $after"
[ "$(leader)" = "$pid1" ] || die "the reload rebooted the container"
[ "$after" = active ] || die "greeter.service is '$after' after the reload"
say "nix-container rollback demo (generation 1 again, reloaded), then delete-generations demo 2"
"${nc[@]}" rollback demo
[ "$("${nc[@]}" run demo -- systemctl is-active greeter.service)" = inactive ] || die "greeter.service still runs after the rollback"
"${nc[@]}" delete-generations demo 2
say "nix-container logs -n 3 demo (its journal)"
"${nc[@]}" logs -n 3 demo
say "nix-container stop demo (SIGRTMIN+3 to its systemd: a clean shutdown)"
"${nc[@]}" stop demo
echo "  its ncp-test.service recorded at shutdown: $(cat "$marks/state")"
[ "$(cat "$marks/state")" = halted ] || die "systemd inside did not shut down cleanly"
say "demo done; everything it wrote is under $R"

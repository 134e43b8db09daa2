#!/bin/bash
# The runtime benchmark's part under a real systemd as PID 1 (run inside
# scripts/systemd-vm.sh by scripts/bench_runtime.py). One container whose
# PID 1 is systemd, started until ready, reloaded, stopped and restarted:
#   ours-systemd  nix-container under its container@.service (install-unit)
#   bare-systemd  systemd-nspawn with the same argv as a Type=notify unit
#   nixos         NixOS's real container@ scripts (preStart, start: its
#                 systemd-nspawn command line and container-init) as a
#                 Type=notify unit, as NixOS's unit runs them (the stock
#                 profile directories a tmpfs of the unit, the profile
#                 linked first); its reload is
#                 what its ExecReload does (nixos-container run: nsenter,
#                 su -l root, bash --login, switch-to-configuration test)
# Prints "ROW WHO WHAT MILLISECONDS" lines.
set -uo pipefail
source "$1" # T CLI RUNS ARGV PROFILE NIXOS_PRE NIXOS_START NIXOS_PATH NIXOS_CONF NIXOS_ROOT NIXOS_SYS
fail() { echo "FAIL: $*"; exit 1; }
now() { date +%s%N; }
row() { echo "ROW $1 $2 $(( ($(now) - $3) / 1000 ))"; } # microseconds
mapfile -t argv < "$ARGV"
gen=1
flip() { # the other generation, for a reload that changes something
  gen=$(( 3 - gen ))
  nix-env -p "$PROFILE" --switch-generation "$gen" >/dev/null 2>&1 || fail "switch-generation"
}
leader_of_unit() {
  local main c
  main=$(systemctl show -p MainPID --value "$1")
  for c in $(cat "/proc/$main/task/$main/children"); do
    [ "$(readlink "/proc/$c/ns/pid")" != "$(readlink "/proc/$main/ns/pid")" ] && { echo "$c"; return; }
  done
}

bare_start() {
  systemd-run --quiet --collect --unit=bare-bench --service-type=notify -p NotifyAccess=all \
    -p KillMode=mixed -p Delegate=yes -p Slice=machine.slice \
    -E SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 -- "${argv[@]}" || fail "bare start"
}
nixos_start() {
  systemd-run --quiet --collect --unit=nixos-bench --service-type=notify -p NotifyAccess=all \
    -p KillMode=mixed -p Delegate=yes -p Slice=machine.slice \
    -p RestartForceExitStatus=133 -p SuccessExitStatus=133 \
    -p EnvironmentFile="$NIXOS_CONF" \
    -p "TemporaryFileSystem=/nix/var/nix/profiles /nix/var/nix/gcroots" \
    -E root="$NIXOS_ROOT" -E INSTANCE=nixbench -E PATH="$NIXOS_PATH" -- \
    /bin/sh -c 'mkdir -p /nix/var/nix/profiles/per-container/nixbench &&
      ln -sfn "$0" /nix/var/nix/profiles/per-container/nixbench/system &&
      "$1" && exec "$2"' "$NIXOS_SYS" "$NIXOS_PRE" "$NIXOS_START" ||
    fail "NixOS's start script: $(journalctl -u nixos-bench --no-pager | tail -20)"
}

nix-env -p "$PROFILE" --switch-generation 1 >/dev/null 2>&1 || fail "switch-generation 1"
"$CLI" install-unit --dir /run/systemd/system >/dev/null || fail "install-unit"
for _ in $(seq "$RUNS"); do
  # ours, under its container@.service
  t=$(now); "$CLI" start bench >/dev/null || fail "ours start"; row ours-systemd start "$t"
  [ "$("$CLI" run bench -- systemctl is-system-running)" = running ] || fail "ours: not running after start"
  flip; t=$(now); "$CLI" reload bench >/dev/null || fail "ours reload"; row ours-systemd reload "$t"
  t=$(now); "$CLI" restart bench >/dev/null || fail "ours restart"; row ours-systemd restart "$t"
  t=$(now); "$CLI" stop bench >/dev/null || fail "ours stop"; row ours-systemd stop "$t"

  # bare systemd-nspawn as a unit, the same argv and root
  t=$(now); bare_start; row bare-systemd start "$t"
  flip; L=$(leader_of_unit bare-bench)
  t=$(now); nsenter --target "$L" --all "$(readlink -f "$PROFILE")/bin/switch-to-configuration" test >/dev/null ||
    fail "bare reload"; row bare-systemd reload "$t"
  t=$(now); systemctl stop bare-bench; bare_start; row bare-systemd restart "$t"
  t=$(now); systemctl stop bare-bench; row bare-systemd stop "$t"

  # NixOS's real container@ scripts
  t=$(now); nixos_start; row nixos start "$t"
  [ "$(nsenter --target "$(leader_of_unit nixos-bench)" --all systemctl is-system-running)" = running ] ||
    fail "nixos: not running after start"
  # The same change as ours and bare reloaded (the profile's other system).
  flip; L=$(leader_of_unit nixos-bench)
  t=$(now); nsenter -t "$L" -m -u -i -n -p -- su root -l -c \
    "exec bash --login -c '$(readlink -f "$PROFILE")/bin/switch-to-configuration test'" >/dev/null ||
    fail "nixos reload"; row nixos reload "$t"
  t=$(now); systemctl stop nixos-bench; nixos_start; row nixos restart "$t"
  t=$(now); systemctl stop nixos-bench; row nixos stop "$t"
done
echo "ok: done"

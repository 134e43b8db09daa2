#!/bin/bash
# Runs inside the systemd VM (scripts/systemd-vm.sh), for tests/systemd.rs,
# with systemd 252 as PID 1: the CLI's systemd runner (a transient unit, then
# our container@.service), reload without reboot, machinectl list, the
# module's apply unit as a real unit (containers outlive its restarts), and
# NixOS's real start script and postStart run by systemd with the conf read
# by EnvironmentFile= (their nspawn and ip are recorders; tests/systemd.rs
# compares). Prints "ok: …" per step; the first failure prints "FAIL: …".
set -uo pipefail
source "$1" # T CLI NIX_BIN SYS_A SYS_B APPLY_UNIT NIXOS_START NIXOS_POST NIXOS_PATH CASES, NIX_* of the store
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }
cli() { "$CLI" --timeout 30 "$@"; }
leader() { "$CLI" status --json "$1" | sed -n 's/.*"leader": *\([0-9][0-9]*\).*/\1/p'; }
mark() { cat "$T/state/$1/var/lib/ncp-test/$2" 2>/dev/null; }
wait_mark() {
  for _ in $(seq 300); do [ "$(mark "$1" "$2")" = "$3" ] && return 0; sleep 0.1; done
  fail "$1: mark $2 is '$(mark "$1" "$2")', not '$3'"
}
active() { systemctl is-active --quiet "$1"; }
machine() { machinectl list --no-legend | grep -q "^$1 "; }

# A store other than /nix/store (the Nix 2.35 run): units need to know it.
if [ -n "${NIX_STORE_DIR:-}" ]; then
  for u in container@.service nix-container-.service; do
    mkdir -p "/run/systemd/system/$u.d"
    printf '[Service]\nEnvironment=NIX_STORE_DIR=%s NIX_STATE_DIR=%s\n' "$NIX_STORE_DIR" "$NIX_STATE_DIR" \
      > "/run/systemd/system/$u.d/store.conf"
  done
  systemctl daemon-reload
fi

# 1. No container@.service here: a transient unit of its own.
cli start tr >/dev/null || fail "start tr"
active nix-container-tr.service || fail "nix-container-tr.service is not active"
machine tr || fail "machinectl list lacks tr: $(machinectl list --no-legend)"
wait_mark tr state running
cli stop tr | grep -q "halted in" || fail "stop tr"
active nix-container-tr.service && fail "nix-container-tr.service still active"
wait_mark tr state halted
ok "transient unit: start, machinectl list, stop"

# 2. Our container@.service (Debian has none).
cli install-unit --dir /run/systemd/system >/dev/null || fail "install-unit"
cli start web >/dev/null || fail "start web: $(journalctl -u container@web.service --no-pager | tail -20)"
active container@web.service || fail "container@web.service is not active"
machine web || fail "machinectl list lacks web"
wait_mark web state running
[ "$(cli run web -- cat /var/lib/ncp-test/label)" = web-a ] || fail "run web"
L=$(leader web)
[ -n "$L" ] || fail "no leader"
# Reload without reboot: a new generation, then apply.
"$NIX_BIN/nix" --extra-experimental-features nix-command eval --impure --raw --expr \
  "(builtins.containerProfile { name = \"web\"; system = \"$SYS_B\"; }).system" >/dev/null || fail "containerProfile"
out=$(cli apply web 2>&1)
echo "$out" | grep -q "reload" || fail "apply did not reload: $out; $(cli status --json web)"
[ "$(mark web switched)" = "web-b test" ] || fail "switch-to-configuration did not run inside: '$(mark web switched)'"
[ "$(leader web)" = "$L" ] || fail "web rebooted"
systemctl reload container@web.service || fail "systemctl reload container@web.service"
[ "$(mark web switched | wc -l)" = 2 ] || fail "ExecReload did not switch"
[ "$(leader web)" = "$L" ] || fail "web rebooted on systemctl reload"
cli stop web | grep -q "halted in" || fail "stop web"
active container@web.service && fail "container@web.service still active"
machine web && fail "machinectl still lists web"
wait_mark web state halted
ok "container@.service: start, run, reload without reboot (apply and systemctl reload), machinectl list, stop"

# 2b. A container whose PID 1 is a real systemd, under container@.service:
#     Type=notify, so start returns at its READY=1.
cli start sd >/dev/null || fail "start sd: $(journalctl -u container@sd.service --no-pager | tail -20)"
[ "$(cli run sd -- systemctl is-system-running)" = running ] ||
  fail "sd: systemd inside is '$(cli run sd -- systemctl is-system-running)' right after start returned"
machine sd || fail "machinectl list lacks sd"
[ "$(cli status sd)" = up ] || fail "status sd: $(cli status sd)"
cli logs -n 200 sd | grep -q "Startup finished" || fail "logs sd shows no journal of its systemd"
t0=$(date +%s%N)
cli stop sd | grep -q "halted in" || fail "stop sd"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
wait_mark sd state halted
machine sd && fail "machinectl still lists sd"
ok "systemd container under container@.service: ready when start returns, machinectl list, its journal, clean stop in ${ms} ms"

# 3. The module's apply unit, as a real unit: its containers run in units
#    of their own and outlive its restarts.
cp "$APPLY_UNIT" /run/systemd/system/nix-container-apply.service
systemctl daemon-reload
systemctl start nix-container-apply.service || fail "apply unit: $(journalctl -u nix-container-apply --no-pager | tail -20)"
active container@moda.service || fail "container@moda.service is not active: $(journalctl -u nix-container-apply --no-pager | tail)"
wait_mark moda state running
LA=$(leader moda)
systemctl restart nix-container-apply.service || fail "restart of the apply unit"
active container@moda.service || fail "moda stopped with the apply unit"
[ "$(leader moda)" = "$LA" ] || fail "moda restarted with the apply unit"
journalctl -u nix-container-apply --no-pager | grep -q "moda: nothing (unchanged)" || fail "second apply did not find moda unchanged"
cli stop moda >/dev/null || fail "stop moda"
ok "apply unit: containers started in their own units survive its restart"

# 4. NixOS's start script and postStart, with the conf read by systemd's
#    EnvironmentFile=; /nix/var/nix/{profiles,gcroots} (the script makes
#    per-container directories there) are a tmpfs for each run.
mkdir -p "$T/rec"
for c in $CASES; do
  for part in start post; do
    script=$NIXOS_START; [ $part = post ] && script=$NIXOS_POST
    systemd-run --wait --pipe --quiet -p EnvironmentFile="$T/nixos/etc/$c.conf" \
      -E root="$T/nixos/state/$c" -E INSTANCE="$c" -E PATH="$NIXOS_PATH" -E NCP_RECORD="$T/rec/$c.$part" \
      /usr/bin/unshare -m /bin/sh -c '/bin/mount -t tmpfs tmpfs /nix/var/nix/profiles &&
        /bin/mount -t tmpfs tmpfs /nix/var/nix/gcroots &&
        /bin/mkdir -p "/nix/var/nix/profiles/per-container/$INSTANCE" &&
        /bin/ln -s "$1" "/nix/var/nix/profiles/per-container/$INSTANCE/system" && exec "$0"' \
      "$script" "$SYS_A" > "$T/rec/$c.$part.log" 2>&1 || fail "NixOS's $part script for $c: $(tail -5 "$T/rec/$c.$part.log")"

  done
done
ok "NixOS start scripts run for: $CASES"

#!/usr/bin/env python3
"""Runtime benchmark, side by side in one run, on one container whose PID 1
is a real systemd (tests/fixtures/systemd-system.nix): start until ready
(READY=1), reload (switch-to-configuration inside, PID 1 kept), stop
(systemd's shutdown) and restart, for

  ours    nix-container with its direct runner (this machine's PID 1 is not
          systemd): it prepares the root, starts its monitor and
          systemd-nspawn, and waits for READY=1;
  bare    systemd-nspawn itself with the same argv, given a notify socket
          and waited on for READY=1 (the floor: nothing prepared, nothing
          recorded); reload is nsenter into the init plus the same
          switch-to-configuration; stop is SIGTERM to systemd-nspawn (which
          sends SIGRTMIN+3 to the init), as systemd stops container@.

Each is run NCP_BENCH_RUNS times (default 5), alternately; the median and
the best are printed. Asserts nothing. Run through scripts/bench.sh (it sets
NCP_PLUGIN, the CLI and the systemd base) or `scripts/bench.sh runtime`.
"""
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN = os.environ["NCP_PLUGIN"]
CLI = os.environ["NCP_CLI"]
BASE = os.environ["NCP_SYSTEMD_BASE"]
RUNS = int(os.environ.get("NCP_BENCH_RUNS", "5"))
WORK = os.environ.get("NCP_WORK_DIR", "/var/lib/nix-container-plugin")
NIX_CONFIG = "experimental-features = nix-command\nsubstituters =\nsandbox = false\n"
ENV = dict(os.environ, NIX_CONFIG=NIX_CONFIG)
NAME = "bench"


def system_expr(version):
    units = ""
    if version == 2:
        units = '"extra.service" = "[Service]\\nExecStart=/bin/sleep infinity\\n";'
    return (f'(import {REPO}/tests/fixtures/systemd-system.nix '
            f'{{ base = "{BASE}"; label = "bench-{version}"; units = {{ {units} }}; }})')


class Roots:
    def __init__(self, top):
        self.top = top
        self.dirs = {k: os.path.join(top, k) for k in
                     ("state", "etc", "profiles", "gcroots", "run")}

    def options(self):
        names = {"state": "container-state-dir", "etc": "container-config-dir",
                 "profiles": "container-profiles-dir", "gcroots": "container-gcroots-dir"}
        out = []
        for k, n in names.items():
            out += ["--option", n, self.dirs[k]]
        return out

    def cli(self, *args, check=True):
        argv = [CLI, "--runner", "direct",
                "--container-state-dir", self.dirs["state"],
                "--container-config-dir", self.dirs["etc"],
                "--container-profiles-dir", self.dirs["profiles"],
                "--container-gcroots-dir", self.dirs["gcroots"],
                "--container-run-dir", self.dirs["run"], *args]
        r = subprocess.run(argv, env=ENV, capture_output=True, text=True)
        if check and r.returncode != 0:
            sys.exit(f"{' '.join(args)} failed:\n{r.stdout}{r.stderr}")
        return r.stdout


def timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def bare_start(argv, sock_path):
    """systemd-nspawn with `argv`, waited on for READY=1; returns the process."""
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock_path)
    env = dict(os.environ, NOTIFY_SOCKET=sock_path, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
    p = subprocess.Popen([argv[0], "--register=no", *argv[1:]], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    s.settimeout(60)
    while True:
        msg = s.recv(4096).decode(errors="replace")
        if "READY=1" in msg.split("\n"):
            break
    s.close()
    return p


def leader_of(nspawn_pid):
    with open(f"/proc/{nspawn_pid}/task/{nspawn_pid}/children") as f:
        for c in f.read().split():
            if os.readlink(f"/proc/{c}/ns/pid") != os.readlink(f"/proc/{nspawn_pid}/ns/pid"):
                return int(c)
    raise SystemExit("no init below systemd-nspawn")


def bare_stop(p):
    p.terminate()
    p.wait(timeout=60)


def row(name, xs):
    ms = [x * 1000 for x in xs]
    return f"{name:<22} {statistics.median(ms):9.1f} {min(ms):9.1f}"


def main():
    os.makedirs(WORK, mode=0o755, exist_ok=True)
    top = tempfile.mkdtemp(prefix="bench-runtime.", dir=WORK)
    os.chmod(top, 0o755)
    roots = Roots(top)
    try:
        out = subprocess.run(
            ["nix-build", "--no-out-link", "-E", f"[ {system_expr(1)} {system_expr(2)} ]"],
            env=ENV, capture_output=True, text=True, check=True).stdout.split()
        sys1, sys2 = out
        for s in (sys2, sys1):  # generation 2 is system 1: reloads alternate
            r = subprocess.run(
                ["nix", "--plugin-files", PLUGIN, *roots.options(), "eval", "--impure", "--json",
                 "--expr", f'builtins.containerProfile {{ name = "{NAME}"; system = "{s}"; }}'],
                env=ENV, capture_output=True, text=True, check=True)
            result = json.loads(r.stdout)
        argv = result["nspawnArgs"]
        profile = result["profile"]
        sock = os.path.join(top, "bare-notify")
        t = {k: [] for k in ("ours start", "ours reload", "ours stop", "ours restart",
                             "bare start", "bare reload", "bare stop", "bare restart")}
        gen = 2
        for _ in range(RUNS):
            # ours
            t["ours start"].append(timed(lambda: roots.cli("start", NAME)))
            gen = 1 if gen == 2 else 2
            subprocess.run(["nix-env", "-p", profile, "--switch-generation", str(gen)],
                           env=ENV, capture_output=True, check=True)
            t["ours reload"].append(timed(lambda: roots.cli("reload", NAME)))
            t["ours restart"].append(timed(lambda: roots.cli("restart", NAME)))
            t["ours stop"].append(timed(lambda: roots.cli("stop", NAME)))
            # bare: the same argv, the root as ours left it
            holder = {}
            t["bare start"].append(timed(lambda: holder.update(p=bare_start(argv, sock))))
            p = holder["p"]
            gen = 1 if gen == 2 else 2
            subprocess.run(["nix-env", "-p", profile, "--switch-generation", str(gen)],
                           env=ENV, capture_output=True, check=True)
            system = os.path.realpath(profile)
            leader = leader_of(p.pid)
            t["bare reload"].append(timed(lambda: subprocess.run(
                ["nsenter", "--target", str(leader), "--all",
                 f"{system}/bin/switch-to-configuration", "test"],
                capture_output=True, check=True)))

            def bare_restart():
                bare_stop(holder["p"])
                holder["p"] = bare_start(argv, sock)
            t["bare restart"].append(timed(bare_restart))
            t["bare stop"].append(timed(lambda: bare_stop(holder["p"])))
        print(f"one container, PID 1 systemd (Debian 12's), direct runner; {RUNS} runs each, ms")
        print(f"{'':<22} {'median':>9} {'best':>9}")
        for k in ("start", "reload", "stop", "restart"):
            print(row(f"ours {k}", t[f"ours {k}"]))
            print(row(f"bare nspawn {k}", t[f"bare {k}"]))
            d = statistics.median(t[f"ours {k}"]) - statistics.median(t[f"bare {k}"])
            print(f"{'  ours - bare':<22} {d * 1000:9.1f}")
    finally:
        roots.cli("stop", NAME, check=False)
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()

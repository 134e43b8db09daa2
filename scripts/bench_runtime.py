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

and, under a real systemd as PID 1 (scripts/systemd-vm.sh, as the tests of
the systemd runner; NCP_BENCH_VM=0 leaves it out), scripts/bench_runtime_vm.sh:

  ours    nix-container under its container@.service (install-unit);
  bare    the same systemd-nspawn argv as a Type=notify unit;
  NixOS   NixOS's real container@ preStart and start script (from
          ../shared/nixpkgs, evaluated with the real module system; the
          host's systemd-nspawn; container-init run by a static bash) as a
          Type=notify unit; reload as its ExecReload does it.

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


def nix_build(expr):
    return subprocess.run(["nix-build", "--no-out-link", "-E", expr], env=ENV,
                          capture_output=True, text=True, check=True).stdout.split()


def nix_eval(expr):
    return json.loads(subprocess.run(["nix", "eval", "--impure", "--json", "--expr", expr],
                                     env=ENV, capture_output=True, text=True, check=True).stdout)


def vm_part(roots, top, sys1, profile, argv):
    """Runs scripts/bench_runtime_vm.sh under systemd; returns {(who, what): [s…]}."""
    shared = os.path.join(os.path.dirname(REPO), "shared", "nixpkgs")
    stock = next(os.path.join(shared, f) for f in sorted(os.listdir(shared))
                 if f.startswith("nixos-containers-"))
    lib = os.environ["NCP_NIXPKGS_LIB"]
    bash = ("(builtins.path { name = \"bash-static\"; path = /usr/bin; "
            "filter = p: t: baseNameOf p == \"bash-static\"; })")
    fx = f"{REPO}/tests/fixtures/nixos"
    s = (f'(import {fx}/stock-containers.nix {{ lib = import {lib}/lib; module = {stock}; '
         f'real = true; runtimeShell = "${{{bash}}}/bash-static"; }})')
    built = nix_build(f"let s = {s}; in [ s.preStart s.start ] ++ s.closure")
    nixos_path = nix_eval(f"{s}.PATH")
    r = subprocess.run(
        ["nix", "--plugin-files", PLUGIN, *roots.options(), "eval", "--impure", "--json",
         "--expr", f'builtins.containerProfile {{ name = "nixbench"; system = "{sys1}"; }}'],
        env=ENV, capture_output=True, text=True, check=True)
    nixbench = json.loads(r.stdout)
    cli = os.path.join(top, "nix-container")
    shutil.copy(CLI, cli)
    with open(os.path.join(top, "argv"), "w") as f:
        f.write("\n".join(argv) + "\n")
    d = roots.dirs
    with open(os.path.join(top, "nix.conf"), "w") as f:
        f.write(f"container-state-dir = {d['state']}\ncontainer-config-dir = {d['etc']}\n"
                f"container-profiles-dir = {d['profiles']}\ncontainer-gcroots-dir = {d['gcroots']}\n"
                f"container-run-dir = {d['run']}\nsubstituters =\nsandbox = false\n")
    params = os.path.join(top, "params")
    with open(params, "w") as f:
        f.write(f"T={top}\nCLI={cli}\nRUNS={RUNS}\nARGV={top}/argv\nPROFILE={profile}\n"
                f"NIXOS_PRE={built[0]}\nNIXOS_START={built[1]}\nNIXOS_PATH='{nixos_path}'\n"
                f"NIXOS_CONF={nixbench['configFile']}\nNIXOS_ROOT={nixbench['root']}\n"
                f"NIXOS_SYS={sys1}\n")
    out = subprocess.run(
        [f"{REPO}/scripts/systemd-vm.sh", "run", f"--bind={top}", f"--bind={REPO}",
         f"--bind={top}/nix.conf:/etc/nix/nix.conf", "--",
         "/bin/bash", f"{REPO}/scripts/bench_runtime_vm.sh", params],
        capture_output=True, text=True)
    if "ok: done" not in out.stdout:
        print(f"the systemd part failed:\n{out.stdout}\n{out.stderr[-3000:]}")
        return None
    t = {}
    for line in out.stdout.splitlines():
        w = line.split()
        if len(w) == 4 and w[0] == "ROW":
            t.setdefault((w[1], w[2]), []).append(int(w[3]) / 1e6)
    return t


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
        roots.cli("stop", NAME, check=False)
        vm = None
        if os.environ.get("NCP_BENCH_VM", "1") != "0":
            vm = vm_part(roots, top, sys1, profile, argv)
        med = lambda xs: statistics.median(xs) * 1000
        best = lambda xs: min(xs) * 1000
        print(f"one container, PID 1 systemd (Debian 12's); {RUNS} runs each; "
              "milliseconds, median (best)")
        head = f"{'':<8} | {'ours direct':>15} {'bare nspawn':>15} {'ours-bare':>9}"
        if vm:
            head += (f" | {'ours systemd':>15} {'bare unit':>15} {'ours-bare':>9}"
                     f" {'NixOS container@':>17}")
        print(head)
        for k in ("start", "reload", "stop", "restart"):
            o, b = t[f"ours {k}"], t[f"bare {k}"]
            line = (f"{k:<8} | {med(o):7.1f} ({best(o):5.1f}) {med(b):7.1f} ({best(b):5.1f})"
                    f" {med(o) - med(b):9.1f}")
            if vm:
                o, b, n = vm[("ours-systemd", k)], vm[("bare-systemd", k)], vm[("nixos", k)]
                line += (f" | {med(o):7.1f} ({best(o):5.1f}) {med(b):7.1f} ({best(b):5.1f})"
                         f" {med(o) - med(b):9.1f} {med(n):9.1f} ({best(n):5.1f})")
            print(line)
    finally:
        roots.cli("stop", NAME, check=False)
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Side-by-side benchmark: builtins.containerProfile against what
`nixos-container update` does per container (nix-env --set on the
per-container profile, then the root file system preparation of
container@.service in shell), for N containers whose system is in the store.

Then "one system, many containers" (NCP_BENCH_MANY, default "1 10 50"):
N containers from one NixOS configuration. The peer, as `nixos-container
create` does per container: an evaluation of the configuration (hostName =
the container's name) and its build, by nix-env --set on the container's
profile. Ours: N fromConfig calls in one evaluation (N systems, one per
host name, as the peer), and manyFromConfig (one evaluation of the module
system, one system, N profiles). The configuration goes through nixpkgs'
real module system (NCP_NIXPKGS_LIB) with the test fixtures as NixOS.

Prints, per N: wall time of each, the ratio peer/ours, our cost per container
for a new generation and for a no-op (evaluation baseline subtracted), the
marginal cost (slope between N values) and the peak RSS of the evaluation with
and without the plugin's calls. Run through scripts/bench.sh, which builds
the plugin first. Environment: NCP_PLUGIN (the plugin), NCP_BENCH_REPEAT
(runs of each of our measurements, best taken; default 3), NCP_BENCH_DIR
(where the temporary roots live; default /var/tmp, e.g. /dev/shm to take
the disk out of the numbers).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN = os.environ["NCP_PLUGIN"]
REPEAT = int(os.environ.get("NCP_BENCH_REPEAT", "3"))
NIX_CONFIG = "experimental-features = nix-command\nsubstituters =\nsandbox = false\n"
ENV = dict(os.environ, NIX_CONFIG=NIX_CONFIG)


def run(argv, **kw):
    """Runs argv; returns (seconds, peak RSS in KiB of the child)."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - t
    err = p.stderr.read().decode(errors="replace")
    if status != 0:
        sys.exit(f"failed: {' '.join(argv[:6])}…\n{err}")
    return elapsed, usage.ru_maxrss


def roots(d):
    return {k: os.path.join(d, v) for k, v in
            [("container-state-dir", "state"), ("container-config-dir", "etc"),
             ("container-profiles-dir", "profiles"), ("container-gcroots-dir", "gcroots")]}


def nix_eval(d, n, system, call):
    opts = []
    for k, v in roots(d).items():
        opts += ["--option", k, v]
    expr = (f'let sys = "{system}"; f = {call}; in builtins.foldl\' (a: r: a + r.generation) 0 '
            f'(map (i: f {{ name = "b${{toString i}}"; system = sys; }}) (builtins.genList (i: i) {n}))')
    return run(["nix", "--plugin-files", PLUGIN, *opts, "eval", "--impure", "--expr", expr])


PEER = r'''
set -eu
sys=$1; n=$2; d=$3
mkdir -p -m 0700 "$d/profiles"; mkdir -p -m 0755 "$d/gcroots" "$d/etc"; mkdir -p "$d/state"
for i in $(seq 0 $((n - 1))); do
  name=b$i
  # nixos-container update: the profile ...
  mkdir -p -m 0755 "$d/profiles/$name" "$d/gcroots/$name"
  nix-env -p "$d/profiles/$name/system" --set "$sys" 2>/dev/null
  # ... the conf file ...
  printf 'PRIVATE_NETWORK=0\nAUTO_START=0\n' > "$d/etc/$name.conf"
  # ... and container@.service's root preparation.
  root=$d/state/$name
  mkdir -p -m 0700 "$root"
  mkdir -p "$root/usr/bin" "$root/etc" "$root/var/lib"
  chmod 0755 "$root/etc" "$root/var/lib"
  mkdir -p "$root/var/lib/private" "$root/root"
  chmod 0700 "$root/var/lib/private" "$root/root"
  if ! [ -e "$root/etc/os-release" ] && ! [ -h "$root/etc/os-release" ]; then touch "$root/etc/os-release"; fi
  [ -e "$root/etc/machine-id" ] || touch "$root/etc/machine-id"
  cp --remove-destination /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
done
'''


FIXTURES = os.path.join(REPO, "tests/fixtures/nixos")


def eval_config():
    lib = os.environ["NCP_NIXPKGS_LIB"]
    return f'(import {FIXTURES}/eval-config.nix {{ lib = import {lib}/lib; }})'


def many(tmp, ns):
    """N containers from one configuration: the peer's N evaluations and
    builds against ours (N calls in one evaluation; one shared system)."""
    library = f'(import {REPO}/nix-plugin {{ evalConfig = {eval_config()}; }})'
    print()
    print("one system, many containers (a fresh label per run: every system is built anew)")
    print(f"{'N':>5} | {'peer':>9} {'per cont':>9} | {'fromConfig×N':>12} {'manyFromConfig':>14} | {'peer/many':>9} {'RSS many':>8}")
    for n in ns:
        label = f"m{n}x{time.time_ns()}"
        config = f'{{ ncpTest.label = "{label}"; }}'

        def peer():
            d = tempfile.mkdtemp(dir=tmp)
            script = ""
            for i in range(n):
                os.makedirs(f"{d}/profiles/b{i}", mode=0o755)
                expr = (f'({eval_config()} {{ modules = [ {{ boot.isContainer = true; networking.hostName = "b{i}"; '
                        f'networking.useDHCP = false; }} {config} ]; }}).config.system.build.toplevel')
                script += f"nix-env -p {d}/profiles/b{i}/system -E '_: {expr}' --set >/dev/null 2>&1 || exit 1\n"
            return run(["bash", "-c", script])

        def ours(call):
            d = tempfile.mkdtemp(dir=tmp)
            opts = []
            for k, v in roots(d).items():
                opts += ["--option", k, v]
            return run(["nix", "--plugin-files", PLUGIN, *opts, "eval", "--impure", "--json", "--expr",
                        f"let l = {library}; in {call}"])

        names = " ".join(f"b{i}" for i in range(n))
        p = peer()
        label = f"f{n}x{time.time_ns()}"
        config = f'{{ ncpTest.label = "{label}"; }}'
        each = ours(f'map (name: l.fromConfig {{ inherit name; config = {config}; }}) '
                    f'(builtins.filter builtins.isString (builtins.split " " "{names}"))')
        label = f"s{n}x{time.time_ns()}"
        config = f'{{ ncpTest.label = "{label}"; }}'
        shared = ours(f'l.manyFromConfig {{ config = {config}; containers = builtins.listToAttrs '
                      f'(map (name: {{ inherit name; value = {{ }}; }}) '
                      f'(builtins.filter builtins.isString (builtins.split " " "{names}"))); }}')
        print(f"{n:>5} | {p[0]:8.2f}s {p[0] / n * 1e3:7.0f}ms | {each[0]:11.2f}s {shared[0]:13.2f}s |"
              f" {p[0] / shared[0]:8.1f}× {shared[1] / 1024:6.1f}MB")


def main():
    ns = [int(a) for a in sys.argv[1:]] or [1, 10, 100, 1000]
    tmp = tempfile.mkdtemp(prefix="ncp-bench-", dir=os.environ.get("NCP_BENCH_DIR", "/var/tmp"))
    os.chmod(tmp, 0o755)
    try:
        out = subprocess.run(["nix-build", "--no-out-link", "-E",
                              f'import {REPO}/tests/fixtures/test-system.nix {{ label = "bench"; }}'],
                             env=ENV, check=True, capture_output=True, text=True)
        system = out.stdout.strip()
        print(f"nix: {subprocess.run(['nix', '--version'], capture_output=True, text=True).stdout.strip()}; "
              f"system {system}; roots under {tmp}; best of {REPEAT} for ours, one run of the peer")
        rows = []
        for n in ns:
            best = lambda f: min((f() for _ in range(REPEAT)), key=lambda r: r[0])
            # Baseline: the same evaluation with the plugin loaded, not called.
            base = best(lambda: nix_eval(os.path.join(tmp, "base"), n, system,
                                         "a: a // { generation = 1; }"))

            def fresh_new():
                d = tempfile.mkdtemp(dir=tmp)
                r = nix_eval(d, n, system, "builtins.containerProfile")
                fresh_new.last = d
                return r
            new = best(fresh_new)
            noop = best(lambda: nix_eval(fresh_new.last, n, system, "builtins.containerProfile"))
            peer_dir = tempfile.mkdtemp(dir=tmp)
            peer = run(["bash", "-c", PEER, "peer", system, str(n), peer_dir])
            peer_noop = run(["bash", "-c", PEER, "peer", system, str(n), peer_dir])
            rows.append((n, base, new, noop, peer, peer_noop))
            shutil.rmtree(peer_dir, ignore_errors=True)

        us = lambda s: s * 1e6
        print()
        print(f"{'N':>5} | {'ours new':>9} {'ours no-op':>10} {'eval only':>9} | {'peer new':>9} {'peer no-op':>10} |"
              f" {'peer/ours':>9} {'new/cont':>9} {'no-op/cont':>10} {'marginal':>9} | {'RSS eval':>8} {'RSS ours':>8} {'extra':>7}")
        prev = None
        for n, base, new, noop, peer, peer_noop in rows:
            per_new = us(new[0] - base[0]) / n
            per_noop = us(noop[0] - base[0]) / n
            marginal = f"{us((new[0] - prev[2][0]) / (n - prev[0])):7.0f}µs" if prev else f"{'-':>9}"
            extra = (new[1] - base[1]) / 1024
            print(f"{n:>5} | {new[0]:8.3f}s {noop[0]:9.3f}s {base[0]:8.3f}s | {peer[0]:8.2f}s {peer_noop[0]:9.2f}s |"
                  f" {peer[0] / new[0]:8.1f}× {per_new:7.0f}µs {per_noop:8.0f}µs {marginal} |"
                  f" {base[1] / 1024:6.1f}MB {new[1] / 1024:6.1f}MB {extra:5.1f}MB")
            prev = (n, base, new)
        print()
        print("new/cont, no-op/cont: (ours - eval only) / N;  marginal: slope of ours new between this N and the one before;")
        print("extra: peak RSS of ours new minus the same evaluation without the plugin's calls.")
        print("Targets at N=1000: peer/ours >= 100x, marginal <= 100µs, no-op <= 20µs, extra RSS <= 2 MB.")
        many(tmp, [int(x) for x in os.environ.get("NCP_BENCH_MANY", "1 10 50").split()])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


main()

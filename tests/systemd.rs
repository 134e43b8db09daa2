//! Under a real systemd as PID 1 (scripts/systemd-vm.sh boots one; this
//! machine's PID 1 is not systemd): the CLI's systemd runner with a
//! transient unit and with the container@.service it ships for hosts that
//! have none, reload without reboot, machinectl, the NixOS module's apply
//! unit as a real unit, and NixOS's real container@ start script and
//! postStart (from nixpkgs' nixos-containers.nix, evaluated with the real
//! module system) run by systemd on confs containerProfile wrote, read by
//! systemd's EnvironmentFile=, with systemd-nspawn and ip recorded: what a
//! stock NixOS host does with our confs, compared with nspawnArgs and with
//! the network set-up of our own runner. The differences that remain are
//! the documented ones (README, "Compatibility with stock NixOS").

use std::path::{Path, PathBuf};
use std::process::Command;

use ncp_integration_tests::*;

/// NixOS's nixos-containers.nix as nixpkgs has it (a copy in ../shared).
fn stock_module() -> PathBuf {
    let dir = repo().join("../shared/nixpkgs");
    std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("nixos-containers-")
        })
        .expect("nixos-containers-*.nix in ../shared/nixpkgs")
}

fn nix_eval_json(expr: &str) -> serde_json::Value {
    let out = Command::new("nix")
        .env("NIX_CONFIG", NIX_CONFIG)
        .args(["eval", "--impure", "--json", "--expr", expr])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{expr}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The directory whose bin/nix is the Nix under test.
fn nix_bin() -> String {
    let out = Command::new("sh")
        .args(["-c", "command -v nix"])
        .output()
        .unwrap();
    Path::new(String::from_utf8(out.stdout).unwrap().trim())
        .parent()
        .unwrap()
        .display()
        .to_string()
}

/// containerProfile calls (attribute text) for the NixOS comparison.
const CASES: &[(&str, &str)] = &[
    ("c01", ""),
    ("c02", "privateNetwork = true;"),
    ("c03", "privateNetwork = true; hostAddress = \"10.231.1.1\"; localAddress = \"10.231.1.2\";"),
    ("c04", "privateNetwork = true; hostAddress = \"10.231.2.1\"; localAddress = \"10.231.2.2/24\";"),
    ("c05", "privateNetwork = true; hostAddress6 = \"fc00::1\"; localAddress6 = \"fc00::2/64\";"),
    ("c06", "privateNetwork = true; hostAddress = \"10.231.3.1\"; localAddress = \"10.231.3.2\"; hostAddress6 = \"fc00::3:1\"; localAddress6 = \"fc00::3:2\";"),
    ("c07", "privateNetwork = true; hostBridge = \"br0\";"),
    ("c08", "privateNetwork = true; hostBridge = \"br0\"; localAddress = \"10.231.4.2/24\";"),
    ("c09", "privateNetwork = true; hostAddress = \"10.231.5.1\"; localAddress = \"10.231.5.2\"; forwardPorts = [ { hostPort = 8080; containerPort = 80; } { protocol = \"udp\"; hostPort = 53; } ];"),
    ("c10", "networkNamespace = \"/run/netns/x\";"),
    ("c11", "interfaces = [ \"eth1\" \"eth2\" ];"),
    ("c12", "macvlans = [ \"eth3\" ];"),
    ("c13", "bindMounts.\"/data\" = { hostPath = \"/srv/data\"; isReadOnly = false; };"),
    ("c14", "bindMounts.\"/ro\" = { }; bindMounts.\"/srv/x\".hostPath = \"/srv/y\";"),
    ("c15", "ephemeral = true;"),
    ("c16", "additionalCapabilities = [ \"CAP_NET_ADMIN\" \"CAP_SYS_TIME\" ];"),
    ("c17", "tmpfs = [ \"/var\" \"/tmp:size=10%\" ];"),
    ("c18", "extraFlags = [ \"--drop-capability=CAP_SYS_CHROOT\" \"--property=CPUQuota=50%\" ];"),
    ("c19", "privateUsers = \"identity\";"),
    ("c20", "privateUsers = \"pick\";"),
    ("c21", "privateUsers = 65536;"),
    ("c22", "autoStart = true;"),
    ("c23", "copyResolvConf = false;"),
    ("c24", "privateNetwork = true; hostAddress = \"10.231.6.1\"; localAddress = \"10.231.6.2\"; localMacAddress = \"02:00:00:00:06:02\";"),
    ("c25", "privateNetwork = true; privateUsers = \"pick\"; hostAddress = \"10.231.7.1\"; localAddress = \"10.231.7.2\";"),
    ("c26", "ephemeral = true; bindMounts.\"/data\".hostPath = \"/srv/data\"; tmpfs = [ \"/var\" ];"),
    ("c27", "privateNetwork = true; hostAddress = \"10.231.8.1\"; localAddress = \"10.231.8.2\"; interfaces = [ \"eth5\" ]; extraFlags = [ \"--bind=/a:/b\" ];"),
    ("c28", "privateNetwork = true; hostBridge = \"br1\"; forwardPorts = [ { hostPort = 2222; containerPort = 22; } ]; localMacAddress = \"02:00:00:00:28:02\";"),
];

/// The argv (and ip calls) a recorder wrote: (program, args) per call.
fn recorded(path: &Path) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut calls = Vec::new();
    let mut cur: Vec<String> = Vec::new();
    for l in text.lines() {
        if l == "--" {
            let prog = cur.remove(0);
            calls.push((prog, std::mem::take(&mut cur)));
        } else {
            cur.push(l.to_owned());
        }
    }
    calls
}

#[test]
fn the_systemd_runner_container_units_the_apply_unit_and_nixos_start_script() {
    if nsenter_lands_outside() {
        // systemd-host enters its booted system with `nsenter --all`. Started
        // from a chroot, nspawn's mount namespace keeps the root mount it was
        // copied with (outside the chroot) and only the processes' roots move
        // into the container; setns(CLONE_NEWNS) puts nsenter at that root
        // mount, so systemctl runs outside the VM. (Issue 12 item 5 is the
        // same effect; our CLI enters by the init's own root instead.)
        skipped(
            "systemd::the_systemd_runner_container_units_the_apply_unit_and_nixos_start_script",
            "chrooted: ../shared/tools/systemd-host's nsenter would land outside its VM",
        );
        return;
    }
    let env = Env::new();
    let t = env.dir.path();
    // A static sd-notify, so that the test system tells Type=notify units
    // it is ready, as a NixOS container's systemd does.
    let notify = env.path("notify");
    std::fs::create_dir(&notify).unwrap();
    let ok = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(notify.join("sd-notify"))
        .arg(repo().join("tests/fixtures/sd-notify.c"))
        .status()
        .unwrap();
    assert!(ok.success(), "cc -static (libc6-dev) failed");
    let sys = |label: &str| {
        format!(
            "(import {}/tests/fixtures/test-system.nix {{ label = \"{label}\"; notify = {}; }})",
            repo().display(),
            notify.display()
        )
    };
    let built = nix_build(&format!(
        "[ {} {} {} ]",
        sys("web-a"),
        sys("web-b"),
        sys("tr-a")
    ));
    // A copy in the test's directory, which the VM has: cargo's target
    // directory may be outside the repository (scripts/test.sh keeps one
    // between runs).
    let cli = env.path("nix-container");
    std::fs::copy(cli_bin(), &cli).expect("copy the CLI");

    // The roots (the VM's nix.conf names them; the CLI and our unit read it).
    let conf = format!(
        "plugin-files = {}\ncontainer-state-dir = {}\ncontainer-config-dir = {}\ncontainer-profiles-dir = {}\n\
         container-gcroots-dir = {}\ncontainer-run-dir = {}\nsubstituters =\nsandbox = false\n",
        plugin().display(),
        env.state_dir().display(),
        env.config_dir().display(),
        env.profiles_dir().display(),
        env.gcroots_dir().display(),
        env.run_dir().display(),
    );
    std::fs::write(env.path("nix.conf"), &conf).unwrap();
    // A container whose PID 1 is a real systemd: under container@.service
    // (Type=notify) start returns once it said READY=1.
    let sd_system = nix_build(&systemd_system_expr("vm", &[])).remove(0);
    for (name, system) in [("web", &built[0]), ("tr", &built[2]), ("sd", &sd_system)] {
        env.eval_json(&format!(
            "builtins.containerProfile {{ name = \"{name}\"; system = \"{system}\"; }}"
        ));
    }

    // The module's apply unit, rendered as NixOS renders a service.
    let fx = repo().join("tests/fixtures/nixos");
    let lib = nixpkgs_lib();
    let host = format!(
        "(import {fx}/host.nix {{ lib = import {lib}/lib; pkgs = import {fx}/stand-ins.nix {{ }}; modules = [ {{ \
           services.nix-container-plugin = {{ enable = true; plugin = \"{p}\"; cli = \"{c}\"; nix = \"{n}\"; \
             evalConfig = import {fx}/eval-config.nix {{ lib = import {lib}/lib; }}; \
             containers.moda = {{ autoStart = true; config = {{ ncpTest.label = \"a\"; ncpTest.notify = {notify}; }}; }}; }}; }} ]; }})",
        fx = fx.display(),
        lib = lib.display(),
        p = plugin().display(),
        c = cli.display(),
        n = Path::new(&nix_bin()).parent().unwrap().display(),
        notify = notify.display(),
    );
    let apply = nix_build(&format!(
        "let s = {host}.config.systemd.services.nix-container-apply; \
             lib = import {lib}/lib; \
             systems = [ ((import {repo}/nix-plugin {{ evalConfig = import {fx}/eval-config.nix {{ inherit lib; }}; }}).systemOfConfig \
                          {{ name = \"moda\"; config = {{ ncpTest.label = \"a\"; ncpTest.notify = {notify}; }}; }}) ]; in \
         [ ((import {fx}/stand-ins.nix {{ }}).writeText \"nix-container-apply-start\" (\"#! /bin/bash -e\\n\" + s.script)) ] ++ s.path ++ systems",
        fx = fx.display(),
        lib = lib.display(),
        repo = repo().display(),
        notify = notify.display(),
    ));
    let path = nix_eval_json(&format!(
        "{host}.config.systemd.services.nix-container-apply.environment.PATH"
    ));
    let mut env_lines = format!("Environment=\"PATH={}\"\n", path.as_str().unwrap());
    for k in ["NIX_STORE_DIR", "NIX_STATE_DIR", "NIX_LOG_DIR"] {
        if let Ok(v) = std::env::var(k) {
            env_lines.push_str(&format!("Environment=\"{k}={v}\"\n"));
        }
    }
    // NixOS runs `script` as `#! runtimeShell -e` (bash).
    let unit = env.path("nix-container-apply.service");
    std::fs::write(
        &unit,
        format!(
            "[Unit]\nDescription=Update containers managed by nix-container-plugin\nAfter=network.target\n\
             [Service]\nType=oneshot\nRemainAfterExit=true\n{env_lines}ExecStart=/bin/bash -e {}\n",
            apply[0]
        ),
    )
    .unwrap();

    // NixOS's real generic container@ unit.
    let stock = format!(
        "(import {fx}/stock-containers.nix {{ lib = import {lib}/lib; module = {m}; }})",
        fx = fx.display(),
        lib = lib.display(),
        m = stock_module().display()
    );
    let scripts = nix_build(&format!(
        "let s = {stock}; in [ s.start s.postStart ] ++ s.closure"
    ));
    let nixos_path = nix_eval_json(&format!("{stock}.PATH"));
    // Confs written by containerProfile, with the stock profile and GC-root
    // directories' names (a stock unit binds those, whatever the plugin's settings).
    let nixos = env.path("nixos");
    let opts: Vec<String> = [
        ("container-state-dir", nixos.join("state")),
        ("container-config-dir", nixos.join("etc")),
        ("container-profiles-dir", nixos.join("profiles")),
        ("container-gcroots-dir", nixos.join("gcroots")),
    ]
    .iter()
    .flat_map(|(k, p)| {
        [
            "--option".to_owned(),
            k.to_string(),
            p.display().to_string(),
        ]
    })
    .collect();
    let mut ours = std::collections::BTreeMap::new();
    for (name, args) in CASES {
        let out = Command::new("nix")
            .env("NIX_CONFIG", NIX_CONFIG)
            .arg("--plugin-files")
            .arg(plugin())
            .args(&opts)
            .args(["eval", "--impure", "--json", "--expr"])
            .arg(format!(
                "let r = builtins.containerProfile {{ name = \"{name}\"; system = \"{}\"; {args} }}; in {{ inherit (r) nspawnArgs conf; }}",
                built[0]
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ours.insert(
            *name,
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        );
    }

    let params = env.path("params");
    let mut p = format!(
        "T={t}\nCLI={cli}\nNIX_BIN={nb}\nSYS_A={a}\nSYS_B={b}\nAPPLY_UNIT={u}\nNIXOS_START={s}\nNIXOS_POST={ps}\nNIXOS_PATH='{np}'\nCASES='{cases}'\n",
        t = t.display(),
        cli = cli.display(),
        nb = nix_bin(),
        a = built[0],
        b = built[1],
        u = unit.display(),
        s = scripts[0],
        ps = scripts[1],
        np = nixos_path.as_str().unwrap(),
        cases = CASES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(" "),
    );
    for k in ["NIX_STORE_DIR", "NIX_STATE_DIR", "NIX_LOG_DIR"] {
        if let Ok(v) = std::env::var(k) {
            p.push_str(&format!("export {k}={v}\n"));
        }
    }
    std::fs::write(&params, p).unwrap();

    let mut binds = vec![
        format!("--bind={}", t.display()),
        format!("--bind={}", repo().display()),
        format!(
            "--bind={}:/etc/nix/nix.conf",
            env.path("nix.conf").display()
        ),
    ];
    // The Nix under test, when it is not the VM's own (the Nix 2.35 run):
    // its prefix, sid's libraries and its store.
    for k in ["NCP_CACHE_DIR_BIND", "NIX_STORE_DIR"] {
        if let Ok(v) = std::env::var(k) {
            let d = if k == "NIX_STORE_DIR" {
                Path::new(&v).parent().unwrap().display().to_string()
            } else {
                v
            };
            binds.push(format!("--bind={d}"));
        }
    }
    let out = Command::new(repo().join("scripts/systemd-vm.sh"))
        .arg("run")
        .args(&binds)
        .args(["--", "/bin/bash"])
        .arg(repo().join("tests/systemd/inside.sh"))
        .arg(&params)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("{stdout}");
    for step in [
        "ok: transient unit",
        "ok: container@.service",
        "ok: systemd container under container@.service",
        "ok: apply unit",
        "ok: NixOS start scripts run",
    ] {
        assert!(stdout.contains(step), "{step} missing:\n{text}");
    }
    assert!(out.status.success(), "{text}");

    // What NixOS's unit did with each conf, against what we render.
    let nixos_profiles = |n: &str| format!("/nix/var/nix/profiles/per-container/{n}");
    let nixos_gcroots = |n: &str| format!("/nix/var/nix/gcroots/per-container/{n}");
    let noop = env.path("stage-2");
    std::fs::write(&noop, "").unwrap();
    for (name, _) in CASES {
        let calls = recorded(&env.path(&format!("rec/{name}.start")));
        let (prog, mut theirs) = calls
            .into_iter()
            .find(|(p, _)| p == "systemd-nspawn")
            .unwrap_or_else(|| panic!("{name}: NixOS's script ran no systemd-nspawn"));
        assert_eq!(prog, "systemd-nspawn");
        let mut mine: Vec<String> = ours[name]["nspawnArgs"]
            .as_array()
            .unwrap()
            .iter()
            .skip(1)
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        // Documented differences: NixOS passes PATH and runs its init
        // wrapper (with the system's init as its argument); it binds the
        // stock profile and GC-root directories; the older NixOS in
        // ../shared knows no LOCAL_MAC_ADDRESS.
        let i = theirs.iter().position(|a| a == "--setenv").unwrap();
        let path_at = theirs.iter().position(|a| a.starts_with("PATH=")).unwrap();
        assert!(path_at > i);
        theirs.drain(path_at - 1..=path_at);
        let wrapper = theirs.remove(theirs.len() - 2);
        let setenv: Vec<String> = theirs
            .windows(2)
            .filter(|w| w[0] == "--setenv")
            .map(|w| w[1].clone())
            .collect();
        if !setenv.iter().any(|s| s.starts_with("LOCAL_MAC_ADDRESS=")) {
            if let Some(j) = mine
                .iter()
                .position(|a| a.starts_with("LOCAL_MAC_ADDRESS="))
            {
                let mac_only = [
                    "HOST_ADDRESS=",
                    "LOCAL_ADDRESS=",
                    "HOST_ADDRESS6=",
                    "LOCAL_ADDRESS6=",
                ]
                .iter()
                .all(|k| mine.iter().any(|a| a == k));
                mine.drain(j - 1..=j);
                // A MAC without addresses is what makes 26.05 add a veth.
                if mac_only {
                    mine.retain(|a| a != "--network-veth");
                }
            }
        }

        for a in mine.iter_mut() {
            for (ours_dir, stock) in [
                (env.path("nixos/profiles").join(name), nixos_profiles(name)),
                (env.path("nixos/gcroots").join(name), nixos_gcroots(name)),
                // A Nix with its own store and state directories (the 2.35
                // run): NixOS's script has /nix/store and /nix/var/nix.
                (nix_state_dir(), "/nix/var/nix".to_owned()),
                (store_dir().into(), "/nix/store".to_owned()),
            ] {
                *a = a.replace(&ours_dir.display().to_string(), &stock);
            }
        }

        assert_eq!(theirs, mine, "{name}: NixOS's argv (left) and ours (right)");

        // The network: NixOS's postStart (host side) and init wrapper
        // (inside, run here with the environment nspawn gives it).
        let plan = env.cli_json(&[
            "--container-state-dir",
            env.path("nixos/state").to_str().unwrap(),
            "--container-config-dir",
            env.path("nixos/etc").to_str().unwrap(),
            "--container-profiles-dir",
            env.path("nixos/profiles").to_str().unwrap(),
            "--container-gcroots-dir",
            env.path("nixos/gcroots").to_str().unwrap(),
            "network-plan",
            name,
        ]);
        let steps = |inside: bool| -> Vec<Vec<String>> {
            plan.as_array()
                .unwrap()
                .iter()
                .filter(|s| s["inside"] == inside)
                .map(|s| {
                    s["args"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| a.as_str().unwrap().to_owned())
                        .collect()
                })
                .collect()
        };
        let post: Vec<Vec<String>> = recorded(&env.path(&format!("rec/{name}.post")))
            .into_iter()
            .map(|(_, a)| a)
            .collect();
        assert_eq!(
            post,
            steps(false),
            "{name}: NixOS's postStart ip calls (left) and ours (right)"
        );
        let record = env.path(&format!("rec/{name}.inside"));
        let mut c = Command::new("/bin/bash");
        c.arg(&wrapper)
            .arg(&noop)
            .env_clear()
            .env("PATH", nixos_path.as_str().unwrap())
            .env("NCP_RECORD", &record);
        for s in &setenv {
            let (k, v) = s.split_once('=').unwrap();
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{name}: init wrapper: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let inside: Vec<Vec<String>> = recorded(&record).into_iter().map(|(_, a)| a).collect();
        let mut want = steps(true);
        if !setenv.iter().any(|s| s.starts_with("LOCAL_MAC_ADDRESS=")) {
            want.retain(|s| !s.contains(&"address".to_owned()));
            if inside.is_empty() {
                // MAC alone: the older NixOS sets up no veth at all.
                want.clear();
            }
        }
        assert_eq!(
            inside, want,
            "{name}: NixOS's init wrapper ip calls (left) and ours (right)"
        );
    }
}

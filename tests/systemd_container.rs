//! Every runtime command against containers whose PID 1 is a real systemd
//! (tests/fixtures/systemd-system.nix: Debian 12's systemd, login and PAM
//! under a NixOS-shaped toplevel), booted by systemd-nspawn through the
//! CLI's direct runner: start returns when systemd says READY=1, login goes
//! through its real login and PAM, reload is its switch-to-configuration
//! driving systemd, stop is systemd's own shutdown, logs are its journal.
//! tests/systemd.rs does the same under a real systemd as the host's PID 1
//! (the systemd runner, container@.service, machinectl).

use std::time::{Duration, Instant};

use ncp_integration_tests::*;

/// A unit that records which version of it runs, then stays up.
fn unit(name: &str, version: &str) -> String {
    format!(
        "[Unit]\nDescription=ncp test unit {name}\n[Service]\n\
         ExecStart=/bin/sh -c 'echo {version} > /run/{name}.version; exec sleep infinity'\n"
    )
}

/// containerProfile of the systemd system `label` with `units`.
fn prepare(env: &Env, name: &str, label: &str, units: &[(&str, &str)], extra: &str) {
    env.eval_json(&format!(
        "builtins.containerProfile {{ name = \"{name}\"; system = {}; {extra} }}",
        systemd_system_expr(label, units)
    ));
}

fn inside(env: &Env, name: &str, cmd: &[&str]) -> String {
    let mut args = vec!["run", name, "--"];
    args.extend(cmd);
    let out = env.cli(&args);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `systemctl is-system-running` inside, with the failed units when it is
/// not running (a flaky boot then says which unit failed).
fn system_state(env: &Env, name: &str) -> String {
    let state = inside(env, name, &["systemctl", "is-system-running"]);
    if state == "running" {
        return state;
    }
    let failed = inside(env, name, &["systemctl", "--failed", "--no-legend"]);
    let why = inside(
        env,
        name,
        &[
            "journalctl",
            "-b",
            "-p",
            "warning",
            "-n",
            "20",
            "--no-pager",
        ],
    );
    format!("{state}; failed units: {failed}; warnings:\n{why}")
}

fn is_active(env: &Env, name: &str, unit: &str) -> String {
    inside(env, name, &["systemctl", "is-active", unit])
}

#[test]
fn start_returns_ready_and_stop_is_systemds_shutdown() {
    let env = Env::new();
    let name = "sdstart";
    let _stop = StopOnDrop(&env, &[name]);
    prepare(&env, name, "start", &[], "");
    let t = Instant::now();
    let out = env.cli_ok(&["start", name]);
    let took = t.elapsed();
    // Right after start: systemd has finished booting (no "starting", no
    // missing /usr), as NixOS's Type=notify container@ promises.
    assert_eq!(
        system_state(&env, name),
        "running",
        "start said {out:?} after {took:?}; console:\n{}",
        env.cli_ok(&["logs", "--console", name])
    );
    assert_eq!(env.mark(name, "init"), "systemd");
    assert_eq!(env.mark(name, "state"), "running");
    assert_eq!(env.mark(name, "store"), "ro");
    assert_eq!(env.mark(name, "system"), resolve(&env.profile(name)));
    let s = env.cli_json(&["status", "--json", name]);
    assert_eq!(s["state"], "running", "{s}");
    assert_eq!(s["inside"], "running", "{s}");
    assert_eq!(s["readiness"], "notify", "{s}");
    assert_eq!(env.cli_ok(&["status", name]).trim(), "up");
    let long = env.cli_ok(&["status", "--long", name]);
    assert!(long.contains("running (systemd inside: running)"), "{long}");
    let listed = env.cli_json(&["list", "--json"]);
    assert_eq!(listed[0]["state"], "running", "{listed}");

    // logs: its journal, read inside; --console: what nspawn printed.
    let journal = env.cli_ok(&["logs", "-n", "200", name]);
    assert!(journal.contains("Startup finished"), "{journal}");
    let console = env.cli_ok(&["logs", "--console", "-n", "400", name]);
    assert!(console.contains("Reached target"), "{console}");

    // stop: systemd's shutdown (the test unit's ExecStop ran), not a kill.
    let t = Instant::now();
    let out = env.cli_ok(&["stop", name]);
    assert!(out.contains("halted in"), "{out}");
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    assert_eq!(env.mark(name, "state"), "halted");
    assert_eq!(env.cli_ok(&["status", name]).trim(), "down");

    // terminate: at once.
    env.cli_ok(&["start", name]);
    let out = env.cli_ok(&["terminate", name]);
    assert!(out.contains("terminated (SIGKILL)"), "{out}");
    assert_eq!(env.cli_ok(&["status", name]).trim(), "down");
    assert_eq!(
        env.cli_json(&["status", "--json", name])["state"],
        "stopped"
    );
}

#[test]
fn login_and_root_login_go_through_its_login_and_pam() {
    let env = Env::new();
    let name = "sdlogin";
    let _stop = StopOnDrop(&env, &[name]);
    prepare(&env, name, "login", &[], "");
    env.cli_ok(&["start", name]);
    // A wrong password is refused by PAM (pam_unix, /etc/shadow), the
    // right one lets root in.
    let seen = on_terminal(
        &env,
        &["login", name],
        &[
            ("login: ", "ncp\n"),
            ("Password: ", "not-it\n"),
            ("Login incorrect", ""),
            ("login: ", "root\n"),
            ("Password: ", "ncp-root\n"),
            ("# ", "echo in-$((6*7))-$(id -un)-$(tty); exit\n"),
        ],
    );
    assert!(seen.contains("in-42-root-/dev/pts/"), "{seen}");
    let seen = on_terminal(
        &env,
        &["login", name],
        &[
            ("login: ", "ncp\n"),
            ("Password: ", "ncp\n"),
            ("$ ", "echo in-$((6*7))-$(id -un); exit\n"),
        ],
    );
    assert!(seen.contains("in-42-ncp"), "{seen}");
    let seen = on_terminal(
        &env,
        &["root-login", name],
        &[("# ", "echo rl-$((6*7))-$(id -un); exit\n")],
    );
    assert!(seen.contains("rl-42-root"), "{seen}");
}

#[test]
fn reload_keeps_pid_1_and_starts_restarts_and_stops_units_and_rollback_undoes_it() {
    let env = Env::new();
    let name = "sdreload";
    let _stop = StopOnDrop(&env, &[name]);
    let (keep, changed1, changed2, old, new) = (
        unit("keep", "1"),
        unit("changed", "1"),
        unit("changed", "2"),
        unit("old", "1"),
        unit("new", "1"),
    );
    let a: &[(&str, &str)] = &[
        ("keep.service", &keep),
        ("changed.service", &changed1),
        ("old.service", &old),
    ];
    let b: &[(&str, &str)] = &[
        ("keep.service", &keep),
        ("changed.service", &changed2),
        ("new.service", &new),
    ];
    prepare(&env, name, "a", a, "");
    env.cli_ok(&["start", name]);
    let leader = env.leader(name);
    let since = |u: &str| {
        inside(
            &env,
            name,
            &[
                "systemctl",
                "show",
                "-p",
                "ActiveEnterTimestampMonotonic",
                "--value",
                u,
            ],
        )
    };
    let keep_since = since("keep.service");
    assert_eq!(is_active(&env, name, "old.service"), "active");
    assert_eq!(inside(&env, name, &["cat", "/run/changed.version"]), "1");

    prepare(&env, name, "b", b, "");
    let out = env.cli_ok(&["reload", name]);
    assert!(out.contains("reloaded") && out.contains("kept"), "{out}");
    assert_eq!(env.leader(name), leader, "reload rebooted the container");
    assert_eq!(is_active(&env, name, "new.service"), "active");
    assert_eq!(is_active(&env, name, "old.service"), "inactive");
    assert_eq!(is_active(&env, name, "changed.service"), "active");
    assert_eq!(inside(&env, name, &["cat", "/run/changed.version"]), "2");
    assert_eq!(
        since("keep.service"),
        keep_since,
        "keep.service was restarted"
    );
    assert_eq!(env.mark(name, "switched"), "b test");
    assert_eq!(
        inside(&env, name, &["readlink", "/run/current-system"]),
        resolve(&env.profile(name))
    );
    assert_eq!(system_state(&env, name), "running");

    // rollback: generation 1 again, activated without a reboot.
    let out = env.cli_ok(&["rollback", name]);
    assert!(out.contains("reload"), "{out}");
    assert_eq!(env.leader(name), leader, "rollback rebooted the container");
    assert_eq!(
        nix_env_generations(&env.profile(name)),
        vec![(1, true), (2, false)]
    );
    assert_eq!(is_active(&env, name, "new.service"), "inactive");
    assert_eq!(is_active(&env, name, "old.service"), "active");
    assert_eq!(inside(&env, name, &["cat", "/run/changed.version"]), "1");
    assert_eq!(env.mark(name, "label"), "a");
}

#[test]
fn reset_gives_a_fresh_root_that_boots_again() {
    let env = Env::new();
    let name = "sdreset";
    let _stop = StopOnDrop(&env, &[name]);
    prepare(&env, name, "reset", &[], "");
    env.cli_ok(&["start", name]);
    inside(&env, name, &["sh", "-c", "echo left > /root/left-behind"]);
    let out = env.cli_ok(&["reset", name]);
    assert!(out.contains("reset"), "{out}");
    assert!(!env.state_dir().join(name).join("root/left-behind").exists());
    env.cli_ok(&["start", name]);
    assert_eq!(system_state(&env, name), "running");
    assert_eq!(inside(&env, name, &["ls", "/root"]), "");
}

#[test]
fn a_private_network_has_its_addresses_inside_before_its_services_run() {
    let env = Env::new();
    let name = "sdnet";
    let _stop = StopOnDrop(&env, &[name]);
    // A unit that records the addresses it saw when systemd started it.
    let addr =
        "[Unit]\nDescription=addresses at boot\n[Service]\nType=oneshot\nRemainAfterExit=yes\n\
                ExecStart=/bin/sh -c 'ip -4 -o addr show dev eth0 > /run/addr-at-boot'\n";
    prepare(
        &env,
        name,
        "net",
        &[("addr.service", addr)],
        "privateNetwork = true; hostAddress = \"10.231.61.1\"; localAddress = \"10.231.61.2\";",
    );
    env.cli_ok(&["start", name]);
    let seen = inside(
        &env,
        name,
        &["ip", "-4", "-o", "addr", "show", "dev", "eth0"],
    );
    assert!(seen.contains("10.231.61.2"), "{seen}");
    let at_boot = inside(&env, name, &["cat", "/run/addr-at-boot"]);
    assert!(at_boot.contains("10.231.61.2"), "{at_boot}");
    let host = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", &format!("ve-{name}")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&host.stdout).contains("10.231.61.1"),
        "{host:?}"
    );
}

#[test]
fn a_container_laid_out_by_nixos_container_create_starts_as_it_is() {
    // What `nixos-container create NAME --system-path PATH` leaves: its
    // conf of six lines, per-container/ 0700 with NAME 0755 and the
    // profile set by nix-env; no root, no GC-root directory.
    let env = Env::new();
    let name = "sdnc";
    let _stop = StopOnDrop(&env, &[name]);
    let system = nix_build(&systemd_system_expr("nc", &[])).remove(0);
    std::fs::create_dir_all(env.config_dir()).unwrap();
    std::fs::write(
        env.config_dir().join(format!("{name}.conf")),
        "PRIVATE_NETWORK=1\nHOST_ADDRESS=10.231.62.1\nLOCAL_ADDRESS=10.231.62.2\nHOST_BRIDGE=\nHOST_PORT=\nAUTO_START=0\n",
    )
    .unwrap();
    let mode = std::os::unix::fs::PermissionsExt::from_mode;
    std::fs::create_dir_all(env.profiles_dir().join(name)).unwrap();
    std::fs::set_permissions(env.profiles_dir(), mode(0o700)).unwrap();
    std::fs::set_permissions(env.profiles_dir().join(name), mode(0o755)).unwrap();
    succeeded(
        std::process::Command::new("nix-env")
            .env("NIX_CONFIG", NIX_CONFIG)
            .arg("-p")
            .arg(env.profile(name))
            .args(["--set", &system]),
    );
    assert!(!env.gcroots_dir().join(name).exists());
    assert!(!env.state_dir().join(name).exists());

    env.cli_ok(&["start", name]);
    assert_eq!(system_state(&env, name), "running");
    let gc = std::fs::metadata(env.gcroots_dir().join(name)).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&gc.permissions()) & 0o777,
        0o755
    );
    let seen = inside(
        &env,
        name,
        &["ip", "-4", "-o", "addr", "show", "dev", "eth0"],
    );
    assert!(seen.contains("10.231.62.2"), "{seen}");
    assert_eq!(env.cli_ok(&["show-ip", name]).trim(), "10.231.62.2");
}

#[test]
fn a_start_that_is_not_ready_in_time_says_so_and_leaves_nothing_running() {
    let env = Env::new();
    let name = "sdslow";
    let _stop = StopOnDrop(&env, &[name]);
    // Boot waits for this unit: systemd says READY=1 only after it.
    let slow =
        "[Unit]\nDescription=a slow boot\n[Service]\nType=oneshot\nExecStart=/bin/sleep 300\n";
    prepare(&env, name, "slow", &[("slow.service", slow)], "");
    let t = Instant::now();
    let e = env.cli_fails(1, &["--timeout", "4", "start", name]);
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(
        e.contains("did not start: not ready within 4s") && e.contains("console log"),
        "{e}"
    );
    // The console's tail is shown: systemd was still starting the unit.
    assert!(e.contains("slow"), "{e}");
    assert_eq!(env.cli_ok(&["status", name]).trim(), "down");
    let s = env.cli_json(&["status", "--json", name]);
    assert_eq!(s["state"], "stopped", "{s}");
    assert_eq!(s["nspawnPid"], serde_json::Value::Null, "{s}");
}

#[test]
fn a_failed_unit_makes_it_degraded_and_still_up() {
    let env = Env::new();
    let name = "sddegr";
    let _stop = StopOnDrop(&env, &[name]);
    let failing =
        "[Unit]\nDescription=fails at boot\n[Service]\nType=oneshot\nExecStart=/bin/false\n";
    prepare(&env, name, "degraded", &[("failing.service", failing)], "");
    env.cli_ok(&["start", name]);
    // systemctl is-system-running exits 1 here: its word still counts.
    let s = env.cli_json(&["status", "--json", name]);
    assert_eq!(s["state"], "degraded", "{s}");
    assert_eq!(s["inside"], "degraded", "{s}");
    assert_eq!(env.cli_ok(&["status", name]).trim(), "up");
    let long = env.cli_ok(&["status", "--long", name]);
    assert!(
        long.contains("degraded (systemd inside: degraded)"),
        "{long}"
    );
}

/// Two systemd containers started side by side by the direct runner each
/// get a cgroup of their own (cgroup.rs): sharing systemd-nspawn's one
/// `payload` group, their systemds removed each other's unit groups, and a
/// boot failed now and then with "Failed to attach to cgroup … No such file
/// or directory" (seen as a flaky `degraded`).
#[test]
fn containers_started_side_by_side_have_cgroups_of_their_own() {
    let env = Env::new();
    let names = ["sdcga", "sdcgb"];
    let _stop = StopOnDrop(&env, &names);
    for n in names {
        prepare(&env, n, n, &[], "");
    }
    let starts: Vec<_> = names
        .iter()
        .map(|n| {
            env.cli_cmd(&["start", n])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for s in starts {
        let out = s.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let group = |n: &str| {
        let s = env.cli_json(&["status", "--json", n]);
        let pid = s["leader"].as_i64().expect("leader pid");
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        // The hierarchy systemd manages: the named v1 one, else v2's.
        let line = text.lines().find(|l| l.contains(":name=systemd:"));
        line.or_else(|| text.lines().find(|l| l.starts_with("0::")))
            .unwrap_or_default()
            .to_owned()
    };
    let (a, b) = (group(names[0]), group(names[1]));
    assert_ne!(a, b, "both containers in one cgroup");
    for (n, g) in [(names[0], &a), (names[1], &b)] {
        assert!(
            g.contains(&format!("nix-container.{n}/"))
                || g.contains(&format!("container@{n}.service")),
            "{n}: {g}"
        );
        assert_eq!(system_state(&env, n), "running");
    }
}

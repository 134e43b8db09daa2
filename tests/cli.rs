//! The runtime CLI against real containers: systemd-nspawn boots the test
//! system from temporary roots, and the CLI starts, inspects, reloads,
//! restarts, rolls back, stops and destroys it.

use std::process::Command;
use std::time::{Duration, Instant};

use ncp_integration_tests::*;

fn leader(env: &Env, name: &str) -> i64 {
    let s = env.cli_json(&["status", "--json", name]);
    assert_eq!(s["state"], "running", "{s}");
    s["leader"].as_i64().expect("leader pid")
}

#[test]
fn start_status_run_and_stop() {
    let env = Env::new();
    let name = "clirun";
    let _stop = StopOnDrop(&env, &[name]);
    env.eval_json(&Env::profile_expr(name, "run-a", ""));
    assert_eq!(env.cli_ok(&["status", name]).trim(), "down");
    env.cli_fails(4, &["run", name, "--", "true"]);
    env.cli_fails(4, &["reload", name]);

    assert!(env.cli_ok(&["start", name]).contains("started"));
    env.wait_for_mark(name, "state", "running");
    let s = env.cli_json(&["status", "--json", name]);
    assert_eq!(s["state"], "running");
    // The busybox init never notifies: ready once it runs (README, Readiness).
    assert_eq!(s["readiness"], "init", "{s}");
    assert_eq!(s["generation"], 1);
    assert_eq!(s["systemDiffers"], false, "{s}");
    assert_eq!(env.mark(name, "pid"), "1");
    // Idempotent.
    assert!(env.cli_ok(&["start", name]).contains("already running"));

    // `run` executes inside: the container's host name, its own PID 1, its
    // marks; the command's exit code comes back.
    let out = env.cli_ok(&[
        "run",
        name,
        "--",
        "sh",
        "-c",
        "hostname; cat /var/lib/ncp-test/label; echo $$",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], [name, "run-a"], "{out}");
    assert_ne!(lines[2], "1");
    let out = env.cli(&["run", name, "--", "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    env.cli_fails(2, &["run", name]);

    let listed = env.cli_json(&["list", "--json"]);
    assert_eq!(listed[0]["name"], name);
    assert_eq!(listed[0]["state"], "running");

    // Halts cleanly (SIGRTMIN+3 reached the init) well within the timeout.
    let t = Instant::now();
    let out = env.cli_ok(&["stop", name]);
    assert!(out.contains("halted"), "{out}");
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert_eq!(env.mark(name, "state"), "halted");
    assert_eq!(env.cli_ok(&["status", name]).trim(), "down");
    assert!(env.cli_ok(&["stop", name]).contains("not running"));
    assert!(!env.run_dir().join(name).join("nspawn.pid").exists());
}

#[test]
fn apply_reloads_a_changed_system_without_a_reboot() {
    let env = Env::new();
    let name = "clireload";
    let _stop = StopOnDrop(&env, &[name]);
    env.eval_json(&Env::profile_expr(name, "reload-a", ""));
    env.cli_ok(&["start", name]);
    env.wait_for_mark(name, "state", "running");
    let init = leader(&env, name);
    assert!(env.cli_ok(&["apply", name]).contains("nothing (unchanged)"));

    let b = env.eval_json(&Env::profile_expr(name, "reload-b", ""));
    let s = env.cli_json(&["status", "--json", name]);
    assert_eq!(s["systemDiffers"], true);
    let plan = env.cli_json(&["apply", "--all", "--dry-run", "--json"]);
    assert_eq!(plan[0]["action"], "reload", "{plan}");
    assert_eq!(env.mark(name, "switched"), "", "dry run did nothing");

    let done = env.cli_json(&["apply", "--json", name]);
    assert_eq!(done[0]["action"], "reload", "{done}");
    // The new system's switch-to-configuration ran inside, in the same init.
    assert_eq!(env.mark(name, "switched"), "reload-b test");
    assert_eq!(leader(&env, name), init, "no reboot");
    assert_eq!(
        env.mark(name, "label"),
        "reload-a",
        "the init did not run again"
    );
    let s = env.cli_json(&["status", "--json", name]);
    assert_eq!(s["runningSystem"], b["system"]);
    assert_eq!(s["systemDiffers"], false);
    assert_eq!(
        env.cli_json(&["apply", "--json", name])[0]["action"],
        "nothing"
    );
}

#[test]
fn apply_restarts_when_the_conf_changes() {
    let env = Env::new();
    let name = "clirestart";
    let _stop = StopOnDrop(&env, &[name]);
    env.eval_json(&Env::profile_expr(name, "restart-a", ""));
    env.cli_ok(&["start", name]);
    env.wait_for_mark(name, "state", "running");
    let init = leader(&env, name);

    let data = env.path("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("f"), "payload\n").unwrap();
    let bind = format!(
        "bindMounts.\"/mnt/data\" = {{ hostPath = \"{}\"; }};",
        data.display()
    );
    let r = env.eval_json(&Env::profile_expr(name, "restart-a", &bind));
    assert_eq!(r["confChanged"], true);
    let s = env.cli_json(&["status", "--json", name]);
    assert_eq!(s["confChanged"][0], "EXTRA_NSPAWN_FLAGS", "{s}");

    let done = env.cli_json(&["apply", "--json", name]);
    assert_eq!(done[0]["action"], "restart", "{done}");
    env.wait_for_mark(name, "state", "running");
    assert_ne!(leader(&env, name), init, "a new init");
    assert_eq!(
        env.cli_ok(&["run", name, "--", "cat", "/mnt/data/f"]),
        "payload\n"
    );
    assert_eq!(
        env.cli_json(&["apply", "--json", name])[0]["action"],
        "nothing"
    );
}

#[test]
fn rollback_brings_back_the_previous_system_inside_and_in_nix_env() {
    let env = Env::new();
    let name = "cliroll";
    let _stop = StopOnDrop(&env, &[name]);
    let a = env.eval_json(&Env::profile_expr(name, "roll-a", ""));
    let b = env.eval_json(&Env::profile_expr(name, "roll-b", ""));
    env.cli_ok(&["start", name]);
    env.wait_for_mark(name, "state", "running");
    assert_eq!(env.mark(name, "system"), b["system"].as_str().unwrap());
    let init = leader(&env, name);

    let out = env.cli_ok(&["rollback", name]);
    assert!(out.contains("from generation 2 to 1"), "{out}");
    assert!(out.contains("reload"), "{out}");
    assert_eq!(env.mark(name, "switched"), "roll-a test");
    assert_eq!(leader(&env, name), init);
    let s = env.cli_json(&["status", "--json", name]);
    assert_eq!(s["runningSystem"], a["system"]);
    assert_eq!(
        nix_env_generations(&env.profile(name)),
        vec![(1, true), (2, false)]
    );
    let g = env.cli_json(&["generations", "--json", name]);
    assert_eq!(g[0]["current"], true);
    assert_eq!(g[1]["path"], b["system"]);

    env.cli_fails(1, &["rollback", name]);
    env.cli_ok(&["rollback", name, "--to", "2"]);
    assert_eq!(
        nix_env_generations(&env.profile(name)),
        vec![(1, false), (2, true)]
    );
    env.cli_fails(1, &["rollback", name, "--to", "9"]);
}

#[test]
fn generations_are_deleted_with_nix_env_semantics() {
    let env = Env::new();
    let name = "clidel";
    for l in ["del-a", "del-b", "del-c", "del-d", "del-e"] {
        env.eval_json(&Env::profile_expr(name, l, ""));
    }
    env.cli_ok(&["rollback", name, "--to", "4"]);
    // Nix and we agree on which generations exist and which is current.
    let ours: Vec<(u64, bool)> = env
        .cli_json(&["generations", "--json", name])
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["number"].as_u64().unwrap(),
                g["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(ours, nix_env_generations(&env.profile(name)));

    env.cli_fails(1, &["delete-generations", name, "4"]);
    let out = env.cli_ok(&["delete-generations", name, "+2", "--dry-run"]);
    assert!(out.contains("would remove generation 2"), "{out}");
    assert_eq!(nix_env_generations(&env.profile(name)).len(), 5);
    // +2: keep 5 (newer than current), 4 (current) and 3.
    env.cli_ok(&["delete-generations", name, "+2"]);
    assert_eq!(
        nix_env_generations(&env.profile(name)),
        vec![(3, false), (4, true), (5, false)]
    );
    env.cli_ok(&["delete-generations", name, "old"]);
    assert_eq!(nix_env_generations(&env.profile(name)), vec![(4, true)]);
    env.cli_fails(2, &["delete-generations", name, "+0"]);
    env.cli_fails(2, &["delete-generations", name, "x"]);
    assert!(!env.profile(name).with_file_name("system.lock").exists());
}

#[test]
fn destroy_removes_everything_under_the_roots_and_nothing_outside() {
    let env = Env::new();
    let name = "clidestroy";
    let _stop = StopOnDrop(&env, &[name]);
    let outside = env.path("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep"), "keep").unwrap();
    let bind = format!(
        "bindMounts.\"/mnt/out\" = {{ hostPath = \"{}\"; isReadOnly = false; }};",
        outside.display()
    );
    env.eval_json(&Env::profile_expr(name, "destroy-a", &bind));
    env.cli_ok(&["start", name]);
    env.wait_for_mark(name, "state", "running");
    // A link planted inside the root that points outside it.
    env.cli_ok(&["run", name, "--", "ln", "-s", "/mnt/out", "/planted"]);
    std::os::unix::fs::symlink(&outside, env.state_dir().join(name).join("planted-host")).unwrap();

    let out = env.cli_ok(&["destroy", name]);
    assert!(out.contains("destroyed"), "{out}");
    for p in [
        env.state_dir().join(name),
        env.config_dir().join(format!("{name}.conf")),
        env.profiles_dir().join(name),
        env.gcroots_dir().join(name),
        env.run_dir().join(name),
    ] {
        assert!(
            std::fs::symlink_metadata(&p).is_err(),
            "{} is left",
            p.display()
        );
    }
    assert_eq!(
        std::fs::read_to_string(outside.join("keep")).unwrap(),
        "keep"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    // As nixos-container: "gone" (and an error); destroying again is no error.
    let out = env.cli(&["status", name]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "gone");
    assert!(env
        .cli_ok(&["destroy", name])
        .contains("nothing to destroy"));
}

#[test]
fn bad_arguments_and_unknown_containers_have_their_exit_codes() {
    let env = Env::new();
    let e = env.cli_fails(3, &["start", "nosuch"]);
    assert!(e.contains("unknown container 'nosuch'"), "{e}");
    let e = env.cli_fails(2, &["status", "Bad_Name"]);
    assert!(e.contains("A container name is"), "{e}");
    env.cli_fails(2, &["frobnicate"]);
    env.cli_fails(2, &["apply"]);
    env.cli_fails(2, &["rollback", "x", "--to", "minus"]);
    let out = env.cli_json(&["list", "--json"]);
    assert_eq!(out, serde_json::json!([]));
}

#[test]
fn a_private_network_gets_its_addresses_on_both_sides() {
    let env = Env::new();
    let name = "clinet";
    let _stop = StopOnDrop(&env, &[name]);
    env.eval_json(&Env::profile_expr(
        name,
        "net-a",
        "privateNetwork = true; hostAddress = \"10.231.77.1\"; localAddress = \"10.231.77.2\";",
    ));
    env.cli_ok(&["start", name]);
    env.wait_for_mark(name, "state", "running");
    // As NixOS's container init wrapper: nspawn's host0 renamed to eth0.
    let inside = env.cli_ok(&["run", name, "--", "ip", "-4", "addr", "show", "eth0"]);
    assert!(inside.contains("10.231.77.2"), "{inside}");
    let links = env.cli_ok(&["run", name, "--", "ip", "-o", "link"]);
    assert!(!links.contains("host0"), "{links}");
    let routes = env.cli_ok(&["run", name, "--", "ip", "route"]);
    assert!(
        routes.contains("default via 10.231.77.1 dev eth0"),
        "{routes}"
    );
    let host = Command::new("ip")
        .args(["-4", "addr", "show", &format!("ve-{name}")])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&host.stdout).contains("10.231.77.1"),
        "{host:?}"
    );
    // The two ends reach each other.
    env.cli_ok(&[
        "run",
        name,
        "--",
        "ping",
        "-c",
        "1",
        "-W",
        "5",
        "10.231.77.1",
    ]);
    env.cli_ok(&["stop", name]);
    let gone = Command::new("ip")
        .args(["link", "show", &format!("ve-{name}")])
        .output()
        .unwrap();
    assert!(
        !gone.status.success(),
        "ve-{name} is removed with the container"
    );
}

#[test]
fn status_and_start_agree_while_systemd_nspawn_has_no_init_yet() {
    // One state model: a systemd-nspawn this tool started (its record)
    // that has no init below it yet is "starting" for every command.
    // Before it, `status` said "down" while `start` said "already running".
    let env = Env::new();
    let name = "agree";
    env.eval_json(&Env::profile_expr(name, "agree", ""));
    // A root-owned process that looks like that nspawn: argv[0]
    // systemd-nspawn, -M NAME, no child in a PID namespace of its own.
    let mut fake = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "exec -a systemd-nspawn bash -c 'sleep 60; :' -M {name}"
        ))
        .spawn()
        .expect("start the stand-in");
    let pid = fake.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .starts_with(b"systemd-nspawn\0")
    {
        assert!(Instant::now() < deadline, "the stand-in never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let start_time: u64 = after_comm.split(' ').nth(19).unwrap().parse().unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let run = env.run_dir().join(name);
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("nspawn.json"),
        format!(
            "{{\"pid\":{pid},\"startTime\":{start_time},\"bootId\":\"{}\"}}",
            boot.trim()
        ),
    )
    .unwrap();

    assert_eq!(env.cli_ok(&["status", name]).trim(), "starting");
    let s = env.cli_json(&["status", "--json", name]);
    assert_eq!(s["state"], "starting", "{s}");
    assert_eq!(s["nspawnPid"], pid, "{s}");
    assert_eq!(s["leader"], serde_json::Value::Null, "{s}");
    let listed = env.cli_json(&["list", "--json"]);
    assert_eq!(listed[0]["state"], "starting", "{listed}");
    // run needs an init: it says the container is starting.
    let e = env.cli_fails(1, &["run", name, "--", "true"]);
    assert!(e.contains("is starting"), "{e}");

    // start joins that start: it waits for readiness, which never comes,
    // then says so and leaves nothing running.
    let out = env.cli(&["--timeout", "2", "start", name]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("starting (systemd-nspawn") && said.contains("waiting until it is ready"),
        "{said}"
    );
    assert!(
        said.contains("did not start: its init did not start within 2s"),
        "{said}"
    );
    let status = fake.wait().unwrap();
    assert!(
        !status.success(),
        "the stand-in was not stopped: {status:?}"
    );
    assert_eq!(env.cli_ok(&["status", name]).trim(), "down");
    assert!(!run.join("nspawn.json").exists());
}

#[test]
fn a_container_flooding_its_console_gets_8_mib_of_the_host_at_most() {
    let env = Env::new();
    let name = "flood";
    let _stop = StopOnDrop(&env, &[name]);
    env.booted(name, "flood", "");
    // Root inside writes 12 MB to its console as fast as it can, then one
    // last line.
    env.inside(
        name,
        "{ head -c 12000000 /dev/zero | tr '\\0' x; echo; echo the-last-line; } > /dev/console",
    );
    let run = env.run_dir().join(name);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let said = env.cli_ok(&["logs", "--console", "-n", "1", name]);
        if said.trim() == "the-last-line" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the last line never came: {said:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let size = |f: &str| std::fs::metadata(run.join(f)).map(|m| m.len()).unwrap_or(0);
    assert!(size("console.log") <= 4 << 20, "{}", size("console.log"));
    assert_eq!(size("console.log.1"), 4 << 20);
    let mut total = 0;
    for e in std::fs::read_dir(&run).unwrap() {
        total += e.unwrap().metadata().unwrap().len();
    }
    assert!(
        total <= (8 << 20) + 64 * 1024,
        "the run directory holds {total} bytes"
    );
}

/// The plugin's rollback and the CLI's take the same steps (core
/// container_profile.rs): before, the CLI's only switched the profile and
/// left a removed root removed, so the container could not start.
#[test]
fn the_plugins_rollback_and_the_clis_leave_the_same_container() {
    let env = Env::new();
    let (p, c) = ("rbplugin", "rbcli");
    for name in [p, c] {
        env.eval_json(&Env::profile_expr(name, "rbsame-a", ""));
        env.eval_json(&Env::profile_expr(name, "rbsame-b", ""));
        std::fs::remove_dir_all(env.state_dir().join(name)).unwrap();
    }
    let r = env.eval_json(&format!(
        "builtins.containerProfile {{ name = \"{p}\"; rollback = true; }}"
    ));
    assert_eq!(r["generation"], 1);
    let out = env.cli_ok(&["rollback", c]);
    assert!(out.contains("from generation 2 to 1"), "{out}");
    let mode = |n: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(env.state_dir().join(n))
            .map(|m| (m.is_dir(), m.permissions().mode() & 0o7777))
            .ok()
    };
    assert_eq!(mode(p), Some((true, 0o700)), "the plugin's rollback");
    assert_eq!(mode(c), mode(p), "the CLI's rollback left another root");
    for name in [p, c] {
        assert_eq!(
            nix_env_generations(&env.profile(name)),
            vec![(1, true), (2, false)]
        );
        assert!(env.config_dir().join(format!("{name}.conf")).is_file());
    }
}

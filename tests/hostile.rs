//! The container is hostile (issue 12): what root inside a container, or an
//! unprivileged local user, can plant, and that host root (the plugin
//! through the real `nix`, and the real CLI) neither follows, nor opens,
//! nor blocks on, nor trusts it. Attacks that need root inside a container
//! are made from inside a booted test container.

use std::os::fd::FromRawFd;
use std::process::Command;
use std::time::{Duration, Instant};

use ncp_integration_tests::*;

/// A file outside every root that an attack aims at.
fn victim(env: &Env) -> std::path::PathBuf {
    let v = env.path("victim");
    std::fs::write(&v, "keep").unwrap();
    v
}

#[test]
fn a_planted_profile_lock_is_never_followed_and_never_spun_on() {
    let env = Env::new();
    let name = "lock";
    let _stop = StopOnDrop(&env, &[name]);
    env.booted(name, "lock-a", "");
    let v = victim(&env);
    // Root inside owns the profile directory, bound at /nix/var/nix/profiles
    // (NIX_STATE_DIR/profiles for a Nix with its own state directory).
    let lock = format!("{}/profiles/system.lock", nix_state_dir().display());
    env.inside(name, &format!("ln -s {} {lock}", v.display()));

    let e = env.eval_err(&Env::profile_expr(name, "lock-b", ""));
    assert!(e.contains("system.lock") && e.contains("symlink"), "{e}");
    let e = env.cli_fails(1, &["rollback", name]);
    assert!(e.contains("symlink"), "{e}");
    let e = env.cli_fails(1, &["delete-generations", name, "old"]);
    assert!(e.contains("symlink"), "{e}");
    assert_eq!(
        std::fs::read_to_string(&v).unwrap(),
        "keep",
        "nothing written through the link"
    );

    // A non-empty lock file left in place: stale by Nix's rule. Nix itself
    // would retry on it forever; we replace it.
    env.inside(name, &format!("rm {lock}; echo junk > {lock}"));
    let t = Instant::now();
    let r = env.eval_json(&Env::profile_expr(name, "lock-b", ""));
    assert_eq!(r["generation"], 2);
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());

    // destroy removes a planted lock (the directory goes anyway).
    env.inside(name, &format!("ln -s {} {lock}", v.display()));
    env.cli_ok(&["destroy", name]);
    assert_eq!(std::fs::read_to_string(&v).unwrap(), "keep");
    assert!(!env.profiles_dir().join(name).exists());
}

#[test]
fn a_held_profile_lock_is_waited_for_a_bounded_time_and_interruptibly() {
    let env = Env::new();
    let name = "held";
    env.eval_json(&Env::profile_expr(name, "held-a", ""));
    let lock = env.profiles_dir().join(name).join("system.lock");
    // Another process holds the lock (as nix-env would).
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "120"])
        .spawn()
        .expect("flock");
    while !lock.exists() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let t = Instant::now();
    let e = env.eval_err_with(
        &["--impure", "--option", "container-lock-timeout", "2"],
        &Env::profile_expr(name, "held-b", ""),
    );
    assert!(
        e.contains("timed out after 2s") && e.contains("system.lock"),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    // ^C (SIGINT) and SIGTERM end the wait at once.
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let mut child = env
            .nix_eval_cmd(&["--impure"], &Env::profile_expr(name, "held-b", ""))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs(2));
        let t = Instant::now();
        unsafe { libc::kill(child.id() as i32, sig) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "signal {sig} did not end the wait"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(t.elapsed() < Duration::from_secs(10));
    }
    let _ = holder.kill();
    let _ = holder.wait();
    let e = env.cli_fails(1, &["--container-lock-timeout", "1", "rollback", name]);
    assert!(
        e.contains("no generation older") || e.contains("timed out"),
        "{e}"
    );
}

#[test]
fn fifos_and_huge_files_in_a_root_neither_block_nor_get_read() {
    let env = Env::new();
    let name = "fifo";
    let _stop = StopOnDrop(&env, &[name]);
    env.booted(name, "fifo-a", "");
    env.inside(name, "rm -f /etc/resolv.conf && mkfifo /etc/resolv.conf");
    env.cli_ok(&["stop", name]);
    // A new generation (containerProfile) and a start both copy resolv.conf.
    let out = output_within(
        env.nix_eval_cmd(
            &["--impure", "--json"],
            &Env::profile_expr(name, "fifo-b", ""),
        ),
        Duration::from_secs(60),
    )
    .expect("containerProfile blocked on a FIFO in the root");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rc = env.state_dir().join(name).join("etc/resolv.conf");
    assert!(std::fs::symlink_metadata(&rc)
        .unwrap()
        .file_type()
        .is_file());

    env.cli_ok(&["start", name]);
    env.wait_for_mark(name, "state", "running");
    env.inside(name, "rm -f /etc/resolv.conf && mkfifo /etc/resolv.conf");
    env.cli_ok(&["stop", name]);
    let out = output_within(env.cli_cmd(&["start", name]), Duration::from_secs(60))
        .expect("start blocked on a FIFO in the root");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.wait_for_mark(name, "state", "running");

    // A 100 GB (sparse) file is not read to its end.
    env.inside(
        name,
        "rm -f /etc/resolv.conf && truncate -s 100G /etc/resolv.conf",
    );
    env.cli_ok(&["stop", name]);
    let t = Instant::now();
    env.eval_json(&Env::profile_expr(name, "fifo-a", ""));
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert!(std::fs::metadata(&rc).unwrap().len() < 1 << 20);
}

#[test]
fn a_symlinked_profile_directory_is_refused_everywhere() {
    let env = Env::new();
    env.eval_json(&Env::profile_expr("pa", "pa-1", ""));
    env.eval_json(&Env::profile_expr("pa", "pa-2", ""));
    env.eval_json(&Env::profile_expr("pb", "pb-1", ""));
    let pb = env.profiles_dir().join("pb");
    std::fs::remove_dir_all(&pb).unwrap();
    std::os::unix::fs::symlink(env.profiles_dir().join("pa"), &pb).unwrap();
    let before = nix_env_generations(&env.profile("pa"));

    for args in [
        &["rollback", "pb"][..],
        &["delete-generations", "pb", "old"],
        &["destroy", "pb"],
        &["generations", "pb"],
    ] {
        let e = env.cli_fails(1, args);
        assert!(e.contains("symlink"), "{args:?}: {e}");
    }
    let e = env.eval_err("builtins.containerGenerations \"pb\"");
    assert!(e.contains("symlink"), "{e}");
    let e = env.eval_err(&Env::profile_expr("pb", "pb-2", ""));
    assert!(e.contains("symlink"), "{e}");
    assert_eq!(
        nix_env_generations(&env.profile("pa")),
        before,
        "pa's profile untouched"
    );
    assert!(env.state_dir().join("pa").exists());
}

/// A bind mount that is undone when the test ends.
struct BindMount(std::path::PathBuf);
impl BindMount {
    fn new(from: &std::path::Path, at: &std::path::Path) -> BindMount {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .arg("--bind")
            .arg(from)
            .arg(at)
            .status()
            .unwrap();
        assert!(ok.success());
        BindMount(at.to_owned())
    }
}
impl Drop for BindMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn destroy_never_empties_a_mount_below_any_of_its_directories() {
    let env = Env::new();
    let name = "dm";
    let outside = env.path("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("keep"), "keep").unwrap();
    // The state directory is configured through a symlink (the test's own
    // state directory is one: a plugin setting given twice on Nix's
    // command line is taken first by Nix 2.35, last by 2.8).
    let real = env.path("real-state");
    std::fs::create_dir(&real).unwrap();
    let link = env.state_dir();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    env.eval_json(&Env::profile_expr(name, "dm-a", ""));
    assert!(real.join(name).join("etc").is_dir());
    let cli = |args: &[&str]| env.cli(args);
    for at in [
        real.join(name).join("mnt/data"),
        env.profiles_dir().join(name).join("sub"),
        env.gcroots_dir().join(name).join("sub"),
        env.run_dir().join(name).join("sub"),
    ] {
        let m = BindMount::new(&outside, &at);
        let out = cli(&["destroy", name]);
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {e}", at.display());
        assert!(e.contains("mounted"), "{e}");
        assert_eq!(
            std::fs::read_to_string(outside.join("keep")).unwrap(),
            "keep"
        );
        assert!(
            real.join(name).join("etc").exists(),
            "nothing removed ({}): {e}",
            at.display()
        );
        drop(m);
    }
    let out = cli(&["destroy", name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!real.join(name).exists());
    assert_eq!(
        std::fs::read_to_string(outside.join("keep")).unwrap(),
        "keep"
    );
}

#[test]
fn a_stale_pid_file_never_makes_a_users_process_the_container() {
    let env = Env::new();
    let name = "ident";
    env.eval_json(&Env::profile_expr(name, "ident-a", ""));
    // An unprivileged user's process dressed as the container's nspawn
    // (argv[0] systemd-nspawn, -M NAME), with a child in a PID namespace of
    // its own (as a container init): what the old cmdline check took for
    // the container. It needs user namespaces (refused in a chroot).
    if let Some(why) = user_namespaces_refused() {
        skipped(
            "hostile::a_stale_pid_file_never_makes_a_users_process_the_container",
            &format!("an unprivileged user cannot make a PID namespace here ({why}): a chroot?"),
        );
        return;
    }
    let mut fake = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", "bash", "-c"])
        .arg(format!(
            "exec -a systemd-nspawn unshare --user --map-root-user --pid --fork --mount-proc sh -c 'sleep 300' -M {name}"
        ))
        .spawn()
        .expect("start the fake");
    let pid = fake.id();
    std::thread::sleep(Duration::from_millis(500));
    // Stale records naming it: the old pid file and a record of another start.
    let run = env.run_dir().join(name);
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("nspawn.pid"), pid.to_string()).unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    std::fs::write(
        run.join("nspawn.json"),
        format!(
            "{{\"pid\":{pid},\"startTime\":1,\"bootId\":\"{}\"}}",
            boot.trim()
        ),
    )
    .unwrap();
    std::fs::write(run.join("started.conf"), "").unwrap();

    // World-writable, so that a command run in the user's namespaces (as
    // nobody on the host) could leave the mark.
    let open_dir = env.path("open");
    std::fs::create_dir(&open_dir).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::from_mode;
    std::fs::set_permissions(&open_dir, mode(0o1777)).unwrap();
    std::fs::set_permissions(env.path(""), mode(0o755)).unwrap();
    let mark = open_dir.join("ran-in-the-users-namespaces");
    let out = env.cli(&["run", name, "--", "touch", mark.to_str().unwrap()]);
    assert!(
        !mark.exists(),
        "a command ran in the user's namespaces ({:?})",
        out.status
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "run did not refuse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.cli_fails(4, &["reload", name]);
    assert_eq!(env.cli_ok(&["status", name]).trim(), "down");
    env.cli_ok(&["stop", name]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !mark.exists(),
        "a command ran as root in the user's namespaces"
    );
    assert!(
        fake.try_wait().unwrap().is_none(),
        "stop signalled the user's process"
    );
    env.cli_ok(&["terminate", name]);
    assert!(
        fake.try_wait().unwrap().is_none(),
        "terminate signalled the user's process"
    );
    let _ = fake.kill();
    let _ = fake.wait();
}

#[test]
fn run_and_reload_from_a_chroot_land_in_the_container_or_refuse() {
    let env = Env::new();
    let name = "chroot";
    let _stop = StopOnDrop(&env, &[name]);
    let data = env.path("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("f"), "bound").unwrap();
    let r = env.eval_json(&Env::profile_expr(
        name,
        "chroot-a",
        &format!("bindMounts.\"/srv/x\".hostPath = \"{}\";", data.display()),
    ));
    let system = r["system"].as_str().unwrap();
    // The CLI itself runs chrooted into an rbind of /, in a mount namespace
    // of its own: systemd-nspawn then moves the container's root onto the
    // chroot's "/", not the namespace's root.
    let x = env.path("x");
    std::fs::create_dir(&x).unwrap();
    let cli: Vec<String> = {
        let c = env.cli_cmd(&[]);
        std::iter::once(c.get_program().to_string_lossy().into_owned())
            .chain(c.get_args().map(|a| a.to_string_lossy().into_owned()))
            .collect()
    };
    let cli = cli.join(" ");
    let host_mark = std::path::Path::new("/var/lib/ncp-test/switched");
    let _ = std::fs::remove_file(host_mark);
    // What a wrong `reload` would write on the host: undone (only if it is
    // this test's) whatever the outcome, so later tests are not misled.
    struct UndoOnHost(String);
    impl Drop for UndoOnHost {
        fn drop(&mut self) {
            let host = std::path::Path::new("/run/current-system");
            if std::fs::read_link(host).is_ok_and(|t| t.to_str() == Some(self.0.as_str())) {
                let _ = std::fs::remove_file(host);
                let _ = std::fs::remove_dir_all("/var/lib/ncp-test");
            }
        }
    }
    let _undo = UndoOnHost(system.to_owned());

    let script = format!(
        "set -e; mount --rbind / {x}; exec chroot {x} sh -c '{cli} start {name} >/dev/null; \
         {cli} run {name} -- sh -c \"hostname; tr \\\\\\\\0 \\\\  < /proc/1/cmdline; echo; readlink /run/current-system; cat /srv/x/f; echo\"; \
         {cli} reload {name} >/dev/null'",
        x = x.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], name, "{stdout}");
    assert!(
        lines[1].contains(&format!(" {}/profiles/system/", nix_state_dir().display())),
        "PID 1 is the container's init: {stdout}"
    );
    assert_eq!(lines[2], system, "{stdout}");
    assert_eq!(lines[3], "bound", "{stdout}");
    // reload ran switch-to-configuration inside the container, not on the host.
    assert_eq!(env.mark(name, "switched"), "chroot-a test");
    assert!(
        !host_mark.exists(),
        "switch-to-configuration ran against the host's file system"
    );
    env.cli_ok(&["stop", name]);
}

#[test]
fn nothing_run_inside_can_do_more_than_the_container_itself() {
    let env = Env::new();
    let name = "privs";
    let _stop = StopOnDrop(&env, &[name]);
    let a = env.booted(name, "privs-a", "");
    let leader = env.leader(name);
    let status = std::fs::read_to_string(format!("/proc/{leader}/status")).unwrap();
    let field = |s: &str, f: &str| {
        s.lines()
            .find(|l| l.starts_with(f))
            .map(|l| l.split_whitespace().nth(1).unwrap().to_owned())
            .unwrap_or_default()
    };
    let inside = env.inside(name, "cat /proc/self/status");
    assert_eq!(field(&inside, "NoNewPrivs:"), "1", "{inside}");
    assert_eq!(field(&inside, "CapBnd:"), field(&status, "CapBnd:"));
    let eff = u64::from_str_radix(&field(&inside, "CapEff:"), 16).unwrap();
    let bnd = u64::from_str_radix(&field(&status, "CapBnd:"), 16).unwrap();
    assert_eq!(eff & !bnd, 0);

    // A program planted in the container-writable /run/wrappers/bin is not
    // what `hostname` finds.
    let planted = "mkdir -p /run/wrappers/bin; printf '#!/bin/sh\\ntouch /planted-ran\\n' > /run/wrappers/bin/hostname; chmod +x /run/wrappers/bin/hostname";
    env.inside(name, planted);
    assert_eq!(env.cli_ok(&["run", name, "--", "hostname"]).trim(), name);
    assert!(!env.state_dir().join(name).join("planted-ran").exists());

    // The container lying about its running system changes no decision.
    let b = env.eval_json(&Env::profile_expr(name, "privs-b", ""));
    env.inside(
        name,
        &format!(
            "ln -sfn {} /run/current-system",
            b["system"].as_str().unwrap()
        ),
    );
    let done = env.cli_json(&["apply", "--json", name]);
    assert_eq!(done[0]["action"], "reload", "{done}");
    assert_eq!(env.mark(name, "switched"), "privs-b test");
    env.inside(
        name,
        &format!(
            "ln -sfn {} /run/current-system",
            a["system"].as_str().unwrap()
        ),
    );
    assert_eq!(
        env.cli_json(&["apply", "--json", name])[0]["action"],
        "nothing"
    );
}

#[test]
fn run_enters_the_user_namespace_of_a_private_users_container() {
    let env = Env::new();
    let name = "userns";
    if let Some(why) = user_namespaces_refused() {
        skipped(
            "hostile::run_enters_the_user_namespace_of_a_private_users_container",
            &format!("this process cannot create user namespaces ({why}): a chroot?"),
        );
        return;
    }
    let _stop = StopOnDrop(&env, &[name]);
    // "identity" needs no idmapped mounts (which a chroot may forbid) and
    // still gives the container a user namespace of its own.
    env.booted(name, "userns-a", "privateUsers = \"identity\";");
    let map = env.inside(name, "cat /proc/self/uid_map");
    let fields: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(
        fields,
        ["0", "0", "65536"],
        "the container's mapping, not the host's: {map}"
    );

    assert_eq!(env.inside(name, "id -u").trim(), "0");
    // The container's /proc/1 is the init: the PID namespace is entered too.
    let cmd = env.inside(name, "tr '\\0' ' ' < /proc/1/cmdline");
    let profile = format!(" {}/profiles/system/", nix_state_dir().display());
    assert!(cmd.contains(&profile), "{cmd}");
}

#[test]
fn roots_others_could_have_made_are_refused() {
    let env = Env::new();
    let open = env.path("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let state = open.join("state");
    let refused = |over: &[(&str, &std::path::Path)]| {
        let out = env
            .nix_eval_cmd_with(
                over,
                &["--impure"],
                &Env::profile_expr("roots", "roots-a", ""),
            )
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = refused(&[("container-state-dir", &state)]);
    assert!(e.contains("writable by its group or by others"), "{e}");
    let owned = env.path("owned");
    std::fs::create_dir(&owned).unwrap();
    std::os::unix::fs::chown(&owned, Some(1000), Some(1000)).unwrap();
    let e = refused(&[("container-config-dir", &owned)]);
    assert!(e.contains("owned by uid 1000"), "{e}");
    let mut c = env.cli_cmd(&["--container-config-dir", owned.to_str().unwrap(), "list"]);
    let out = c.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("owned by uid 1000"));
}

#[test]
fn generation_numbers_are_64_bit_and_days_are_bounded() {
    let env = Env::new();
    let name = "gen64";
    let r = env.eval_json(&Env::profile_expr(name, "gen64-a", ""));
    let dir = env.profiles_dir().join(name);
    // Planted from inside in real life; the same bytes either way.
    std::os::unix::fs::symlink(
        r["system"].as_str().unwrap(),
        dir.join("system-4294967296-link"),
    )
    .unwrap();
    let b = env.eval_json(&Env::profile_expr(name, "gen64-b", ""));
    assert_eq!(resolve(&env.profile(name)), b["system"].as_str().unwrap());
    let gens = env.cli_json(&["generations", "--json", name]);
    assert!(
        gens.as_array()
            .unwrap()
            .iter()
            .any(|g| g["number"] == 4294967296u64),
        "{gens}"
    );
    assert_eq!(
        env.eval_json(&format!(
            "builtins.length (builtins.containerGenerations \"{name}\")"
        )),
        3
    );
    // A generation numbered 2^64-1: no newer one can be numbered.
    std::os::unix::fs::symlink(
        r["system"].as_str().unwrap(),
        dir.join("system-18446744073709551615-link"),
    )
    .unwrap();
    let e = env.eval_err(&Env::profile_expr(name, "gen64-c", ""));
    assert!(e.contains("no newer one can be numbered"), "{e}");

    let before = env.cli_json(&["generations", "--json", name]);
    for days in [
        "99999999999999999999d",
        "2147483648d",
        "9223372036854775807d",
    ] {
        let e = env.cli_fails(2, &["delete-generations", name, days]);
        assert!(e.contains("invalid number of days"), "{e}");
    }
    assert_eq!(env.cli_json(&["generations", "--json", name]), before);
}

#[test]
fn a_closed_pipe_ends_the_cli_quietly() {
    let env = Env::new();
    for n in ["pipe1", "pipe2", "pipe3"] {
        env.eval_json(&Env::profile_expr(n, "pipe", ""));
    }
    // Its reader is gone before it writes (`… | head` once head has its
    // line): the CLI ends as a Unix tool does, by SIGPIPE, without a panic.
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    unsafe { libc::close(fds[0]) };
    let write_end = unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[1]) };
    let mut c = env.cli_cmd(&["list"]);
    c.stdout(write_end).stderr(std::process::Stdio::piped());
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGPIPE),
        "{:?} {stderr}",
        out.status
    );
}

#[test]
fn the_loader_reads_no_symbol_that_is_not_nixs_version_string() {
    // A program exporting a symbol of the name the loader looks for, but
    // not a std::string (4 bytes): loading the plugin must not read it as
    // one (the old loader did, and crashed or printed garbage).
    let env = Env::new();
    let src = env.path("fake-nix.cc");
    std::fs::write(
        &src,
        r#"
#include <dlfcn.h>
#include <cstdio>
extern "C" int fake __asm__("_ZN3nix10nixVersionB5cxx11E");
int fake = 0x41414141;
int main(int, char ** argv) {
    if (!dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL)) { std::puts(dlerror()); return 2; }
    std::puts("loaded");
    return 0;
}
"#,
    )
    .unwrap();
    // With the C++ runtime the plugin was built with: the host's, or (for a
    // Nix built in the sid chroot) the chroot's, where NCP_SID runs it.
    let exe = env.path("fake-nix");
    let script = format!(
        "g++ -rdynamic -o {} {} -ldl && exec {} {}",
        exe.display(),
        src.display(),
        exe.display(),
        plugin().display()
    );
    let out = match std::env::var_os("NCP_SID") {
        Some(sid) => Command::new(sid)
            .args(["run", "-b"])
            .arg(env.dir.path())
            .args(["--", "sh", "-c", &script])
            .output()
            .unwrap(),
        None => Command::new("sh").args(["-c", &script]).output().unwrap(),
    };

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("cannot find this Nix's version"),
        "{stderr}"
    );
}

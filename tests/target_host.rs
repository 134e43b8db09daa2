//! --target-host against second hosts on this machine
//! (scripts/target-host.sh): Debian 12 roots with their own /nix (a
//! separate store, so the copy really copies), nix-bin, the project's CLI
//! and plugin and sshd, each in a mount and network namespace of its own
//! reached over a veth pair with a key made for the run. Through the real
//! nix copy, ssh, sshd and systemd-nspawn: create, start (ready), update
//! with a reload, a copy cut half-way that leaves the target as it was,
//! rollback, stop and destroy; several hosts, one failing.
//!
//! Run where the store under test is /nix/store (Nix 2.8, the machine's
//! Nix): the second host's store is /nix/store too, and a system built in
//! the 2.35 or Lix run's own store directory could not be copied there.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ncp_integration_tests::*;

/// A second host, stopped and removed on drop.
struct Host {
    dir: PathBuf,
    addr: String,
    key: PathBuf,
}

impl Host {
    fn up(work: &Path, label: &str) -> Host {
        let dir = work.join(format!("host-{label}"));
        let out = Command::new(repo().join("scripts/target-host.sh"))
            .arg("up")
            .arg(&dir)
            .arg(cli_bin())
            .arg(plugin())
            .stderr(Stdio::inherit())
            .output()
            .expect("run scripts/target-host.sh");
        assert!(out.status.success(), "scripts/target-host.sh up failed");
        let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let (addr, key) = line.split_once(' ').expect("ADDRESS KEYFILE");
        Host {
            dir,
            addr: addr.to_owned(),
            key: PathBuf::from(key),
        }
    }

    fn dest(&self) -> String {
        format!("root@{}", self.addr)
    }

    /// A command run there through ssh directly (what the test checks
    /// with, apart from the tool under test).
    fn sh(&self, script: &str) -> String {
        let out = Command::new("ssh")
            .args(ssh_opts(&[self]).split_whitespace())
            .arg(self.dest())
            .arg(script)
            .stdin(Stdio::null())
            .output()
            .expect("run ssh");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/target-host.sh"))
            .arg("down")
            .arg(&self.dir)
            .status();
    }
}

fn ssh_opts(hosts: &[&Host]) -> String {
    let keys: String = hosts
        .iter()
        .map(|h| format!("-i {} ", h.key.display()))
        .collect();
    format!(
        "{keys}-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
         -o ConnectTimeout=5 -o BatchMode=yes"
    )
}

/// `nix-container ARGS` here with NIX_SSHOPTS for `hosts`.
fn cli(hosts: &[&Host], sshopts: Option<&str>, args: &[&str]) -> Output {
    Command::new(cli_bin())
        .env(
            "NIX_SSHOPTS",
            sshopts.map_or_else(|| ssh_opts(hosts), str::to_owned),
        )
        .env("NIX_CONFIG", NIX_CONFIG)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run nix-container")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(h: &Host, args: &[&str]) -> String {
    let dest = h.dest();
    let mut all = vec!["--target-host", &dest];
    all.extend(args);
    let o = cli(&[h], None, &all);
    assert!(o.status.success(), "nix-container {all:?}:\n{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn status_json(h: &Host, name: &str) -> serde_json::Value {
    serde_json::from_str(&ok(h, &["status", "--json", name])).expect("status --json")
}

fn unit(name: &str, version: &str) -> String {
    format!(
        "[Unit]\nDescription=ncp test unit {name}\n[Service]\n\
         ExecStart=/bin/sh -c 'echo {version} > /run/{name}.version; exec sleep infinity'\n"
    )
}

/// Systems whose PID 1 is systemd, built here (in one nix-build).
fn systems(list: &[(&str, &str)]) -> Vec<String> {
    let exprs: Vec<String> = list
        .iter()
        .map(|(label, version)| {
            let u = unit("svc", version);
            systemd_system_expr(label, &[("svc.service", &u)])
        })
        .collect();
    nix_build(&format!("[ {} ]", exprs.join(" ")))
}

/// A systemd system whose closure holds 32 MiB of random bytes (a copy of
/// it takes many packets).
fn big_system() -> String {
    let busybox = format!(
        "(import {}/tests/fixtures/busybox.nix {{ }}).busybox",
        repo().display()
    );
    let blob = nix_build(&format!(
        "derivation {{ name = \"ncp-blob\"; system = builtins.currentSystem; \
         builder = \"${{{busybox}}}/bin/sh\"; \
         args = [ \"-c\" \"${{{busybox}}}/bin/head -c 33554432 /dev/urandom > $out\" ]; }}"
    ))
    .remove(0);
    // A unit may refer to a built path (not to a derivation).
    nix_build(&format!(
        "import {}/tests/fixtures/systemd-system.nix {{ base = \"{}\"; label = \"big\"; \
         units = {{ \"big.service\" = \"[Service]\\nExecStart=/bin/sh -c 'test -s ${{builtins.storePath \"{blob}\"}}; exec sleep infinity'\\n\"; }}; }}",
        repo().display(),
        systemd_base()
    ))
    .remove(0)
}

/// A proxy (ssh's ProxyCommand) that relays to `addr`:22 until `limit`
/// bytes went out; then it cuts the connection, or (`stall`) stops
/// relaying and touches `stalled`: a copy that dies half-way, or one left
/// hanging half-way to be killed.
fn proxy(dir: &Path, addr: &str, limit: usize, stall: bool) -> (PathBuf, PathBuf) {
    let tag = if stall { "stall" } else { "cut" };
    let py = dir.join(format!("{tag}.py"));
    let stalled = dir.join(format!("{tag}.stalled"));
    let on_limit = if stall {
        format!(
            "open({:?}, 'w').close(); time.sleep(3600)",
            stalled.display().to_string()
        )
    } else {
        "os._exit(1)".to_owned()
    };
    std::fs::write(
        &py,
        format!(
            r#"import os, select, socket, sys, time
s = socket.create_connection(("{addr}", 22))
sent = 0
while True:
    r, _, _ = select.select([0, s], [], [])
    if 0 in r:
        b = os.read(0, 65536)
        if not b:
            os._exit(0)
        if sent + len(b) > {limit}:
            {on_limit}
        s.sendall(b); sent += len(b)
    if s in r:
        b = s.recv(65536)
        if not b:
            os._exit(0)
        os.write(1, b)
"#
        ),
    )
    .unwrap();
    let sh = dir.join(format!("{tag}.sh"));
    std::fs::write(&sh, format!("#!/bin/sh\nexec python3 {}\n", py.display())).unwrap();
    std::fs::set_permissions(&sh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (sh, stalled)
}

/// What a failed or killed copy must leave as it was there.
fn target_facts(h: &Host, name: &str) -> (String, String, serde_json::Value, serde_json::Value) {
    let st = status_json(h, name);
    (
        h.sh(&format!("cat /etc/nixos-containers/{name}.conf")),
        ok(h, &["generations", "--json", name]),
        st["state"].clone(),
        st["runningSystem"].clone(),
    )
}

/// Whether `test` can run here; `copies`: it copies to the second host.
fn only_here(test: &str, copies: bool) -> bool {
    if store_dir() != "/nix/store" {
        skipped(
            test,
            "the store under test is not /nix/store (the second host's is; run on Nix 2.8)",
        );
        return false;
    }
    // Nix 2.8 enters its saved mount namespace again before it runs ssh
    // for a copy (restoreMountNamespace, with no saved root as later Nix
    // keeps): in a chroot that ssh runs outside it, and finds neither
    // the key nor NIX_SSHOPTS' files.
    if copies && nsenter_lands_outside() {
        skipped(
            test,
            "chrooted: Nix 2.8 runs the ssh of its copy outside the chroot (its setns lands there)",
        );
        return false;
    }
    true
}

#[test]
fn a_container_on_another_host_from_create_to_destroy() {
    if !only_here(
        "target_host a_container_on_another_host_from_create_to_destroy",
        true,
    ) {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("ncp-target-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let h = Host::up(work.path(), "a");
    let [s1, s2] = <[String; 2]>::try_from(systems(&[("th1", "1"), ("th2", "2")])).unwrap();
    let big = big_system();
    assert_eq!(
        h.sh(&format!("nix-store --check-validity {s1} && echo there")),
        ""
    );

    // create: built here, copied, recorded there; nothing recorded here.
    let out = ok(&h, &["create", "web", "--system-path", &s1]);
    assert!(out.contains("web: created, generation 1"), "{out}");
    assert_eq!(
        h.sh(&format!("nix-store --check-validity {s1} && echo there")),
        "there"
    );
    assert!(!Path::new("/nix/var/nix/profiles/per-container/web").exists());

    // start: ready (systemd said READY=1) there.
    ok(&h, &["start", "web"]);
    let ran = ok(&h, &["run", "web", "--", "systemctl", "is-system-running"]);
    assert_eq!(ran.trim(), "running");
    let leader = status_json(&h, "web")["leader"].clone();

    // update: a new system, a reload (same PID 1, the unit's new version).
    let out = ok(&h, &["update", "web", "--system-path", &s2]);
    assert!(
        out.contains("generation 2") && out.contains("reload"),
        "{out}"
    );
    let st = status_json(&h, "web");
    assert_eq!(st["leader"], leader, "update rebooted it");
    assert_eq!(st["runningSystem"], s2.as_str());
    assert_eq!(
        ok(&h, &["run", "web", "--", "cat", "/run/svc.version"]).trim(),
        "2"
    );

    // A copy cut half-way: the profile, conf and running system stay, and
    // the system never lands there.
    let before = target_facts(&h, "web");
    let dest = h.dest();
    let (cut, _) = proxy(work.path(), &h.addr, 4 << 20, false);
    let opts = format!("{} -o ProxyCommand={}", ssh_opts(&[&h]), cut.display());
    let o = cli(
        &[&h],
        Some(&opts),
        &[
            "--target-host",
            &dest,
            "update",
            "web",
            "--system-path",
            &big,
        ],
    );
    assert!(!o.status.success(), "the cut copy succeeded:\n{}", text(&o));
    assert!(
        text(&o).contains("nothing was recorded there"),
        "{}",
        text(&o)
    );
    let valid = format!("nix-store --check-validity {big} 2>/dev/null && echo there");
    assert_eq!(h.sh(&valid), "");
    assert_eq!(target_facts(&h, "web"), before);
    assert_eq!(before.3, s2.as_str());

    // A copy killed half-way (nix-container, its nix copy and ssh, at once):
    // the same.
    let (stall, stalled) = proxy(work.path(), &h.addr, 4 << 20, true);
    let opts = format!("{} -o ProxyCommand={}", ssh_opts(&[&h]), stall.display());
    let mut child = Command::new(cli_bin())
        .env("NIX_SSHOPTS", &opts)
        .env("NIX_CONFIG", NIX_CONFIG)
        .args([
            "--target-host",
            &dest,
            "update",
            "web",
            "--system-path",
            &big,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !stalled.exists() {
        assert!(t.elapsed().as_secs() < 120, "the copy never got half-way");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    child.wait().unwrap();
    assert_eq!(h.sh(&valid), "");
    assert_eq!(target_facts(&h, "web"), before);

    // rollback, stop and destroy.
    let out = ok(&h, &["rollback", "web"]);
    assert!(out.contains("reload"), "{out}");
    assert_eq!(status_json(&h, "web")["runningSystem"], s1.as_str());
    assert_eq!(
        ok(&h, &["run", "web", "--", "cat", "/run/svc.version"]).trim(),
        "1"
    );
    ok(&h, &["stop", "web"]);
    assert_eq!(ok(&h, &["status", "web"]).trim(), "down");
    ok(&h, &["destroy", "web"]);
    let dest = h.dest();
    let o = cli(&[&h], None, &["--target-host", &dest, "status", "web"]);
    assert_eq!(
        (o.status.code(), String::from_utf8_lossy(&o.stdout).trim()),
        (Some(3), "gone")
    );
}

#[test]
fn several_hosts_each_get_the_system_and_one_failing_stops_none() {
    if !only_here(
        "target_host several_hosts_each_get_the_system_and_one_failing_stops_none",
        true,
    ) {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("ncp-target-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let (a, b) = (Host::up(work.path(), "a"), Host::up(work.path(), "b"));
    let [s1, s2] = <[String; 2]>::try_from(systems(&[("tm1", "1"), ("tm2", "2")])).unwrap();
    for h in [&a, &b] {
        for n in ["one", "two"] {
            ok(h, &["create", n, "--system-path", &s1]);
        }
        ok(h, &["start", "one"]);
    }
    // One system to two containers on each host, and a host that refuses
    // us (no key for that user): reported, not in the way.
    let refused = format!("nobody@{}", a.addr);
    let mut args = vec!["update", "one", "two", "--system-path", &s2];
    let (da, db) = (a.dest(), b.dest());
    for d in [&da, &refused, &db] {
        args.extend(["--target-host", d]);
    }
    let o = cli(&[&a, &b], None, &args);
    let said = text(&o);
    assert_eq!(o.status.code(), Some(1), "{said}");
    for d in [&da, &db] {
        // one runs: reloaded; two is stopped: recorded, nothing applied.
        assert!(said.contains(&format!("{d}: one: reload")), "{said}");
        assert!(said.contains(&format!("{d}: two: generation 2")), "{said}");
        assert!(said.contains(&format!("{d}: done")), "{said}");
    }
    assert!(said.contains(&format!("{refused}: failed")), "{said}");
    assert!(said.contains("1 of 3 target hosts failed"), "{said}");
    for h in [&a, &b] {
        assert_eq!(status_json(h, "one")["runningSystem"], s2.as_str());
        assert_eq!(status_json(h, "two")["system"], s2.as_str());
    }

    // apply on every host of a file: nothing left to do.
    let hosts = work.path().join("hosts");
    std::fs::write(&hosts, format!("# the fleet\n{da}\n{db}\n")).unwrap();
    let hosts = hosts.display().to_string();
    let o = cli(
        &[&a, &b],
        None,
        &["apply", "--all", "--target-hosts-file", &hosts],
    );
    let said = text(&o);
    assert!(o.status.success(), "{said}");
    for d in [&da, &db] {
        assert!(said.contains(&format!("{d}: one: nothing")), "{said}");
    }
}

#[test]
fn a_configuration_is_built_here_and_only_its_system_goes_there() {
    if !only_here(
        "target_host a_configuration_is_built_here_and_only_its_system_goes_there",
        true,
    ) {
        return;
    }
    let env = Env::new();
    let nixos = env.nixos_dir();
    let h = Host::up(env.dir.path(), "cfg");
    let dest = h.dest();
    let o = Command::new(cli_bin())
        .env("NIX_SSHOPTS", ssh_opts(&[&h]))
        .env("NIX_CONFIG", NIX_CONFIG)
        .env("NCP_PLUGIN", plugin())
        .args(["--target-host", &dest, "create", "cfgweb", "--nixos-path"])
        .arg(&nixos)
        .args(["--config", "ncpTest.label = \"remote\";"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let system = status_json(&h, "cfgweb")["system"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(system.ends_with("-remote"), "{system}");
    // The module was kept nowhere here.
    assert!(!Path::new("/etc/nixos-containers/cfgweb.nix").exists());
    // It boots there.
    ok(&h, &["start", "cfgweb"]);
    let mark = "cat /var/lib/nixos-containers/cfgweb/var/lib/ncp-test/label 2>/dev/null";
    let t = std::time::Instant::now();
    while h.sh(mark).is_empty() && t.elapsed().as_secs() < 20 {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(h.sh(mark), "cfgweb-remote");
    ok(&h, &["stop", "cfgweb"]);
}

#[test]
fn a_host_without_the_plugin_is_named_in_one_line_before_any_copy() {
    if !only_here(
        "target_host a_host_without_the_plugin_is_named_in_one_line_before_any_copy",
        false,
    ) {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("ncp-target-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let h = Host::up(work.path(), "bare");
    h.sh("rm /etc/nix/nix.conf && touch /etc/nix/nix.conf");
    let s = systems(&[("tbare", "1")]).remove(0);
    let dest = h.dest();
    let o = cli(
        &[&h],
        None,
        &["--target-host", &dest, "create", "c", "--system-path", &s],
    );
    let said = text(&o);
    assert_eq!(o.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "target host {dest}: its nix (nix (Nix) 2.8.0) does not load nix-container-plugin"
        )),
        "{said}"
    );
    assert_eq!(said.trim().lines().count(), 1, "{said}");
    assert_eq!(
        h.sh(&format!(
            "nix-store --check-validity {s} 2>/dev/null && echo there"
        )),
        ""
    );
    // No nix-container there: one line too.
    h.sh("umount /usr/local/bin/nix-container; rm /usr/local/bin/nix-container");
    let o = cli(&[&h], None, &["--target-host", &dest, "list"]);
    let said = text(&o);
    assert_eq!(o.status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!("target host {dest}: no nix-container on its PATH")),
        "{said}"
    );
}

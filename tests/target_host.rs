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

/// A proxy (ssh's ProxyCommand) that relays to `addr`:22 and cuts the
/// connection once `limit` bytes went out: a copy that dies half-way.
fn cutting_proxy(dir: &Path, addr: &str, limit: usize) -> PathBuf {
    let py = dir.join("cut.py");
    std::fs::write(
        &py,
        format!(
            r#"import os, select, socket, sys
s = socket.create_connection(("{addr}", 22))
sent = 0
while True:
    r, _, _ = select.select([0, s], [], [])
    if 0 in r:
        b = os.read(0, 65536)
        if not b or sent + len(b) > {limit}:
            os._exit(1)
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
    let sh = dir.join("cut.sh");
    std::fs::write(&sh, format!("#!/bin/sh\nexec python3 {}\n", py.display())).unwrap();
    std::fs::set_permissions(&sh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    sh
}

fn only_here(test: &str) -> bool {
    if store_dir() != "/nix/store" {
        skipped(
            test,
            "the store under test is not /nix/store (the second host's is; run on Nix 2.8)",
        );
        return false;
    }
    true
}

#[test]
fn a_container_on_another_host_from_create_to_destroy() {
    if !only_here("target_host a_container_on_another_host_from_create_to_destroy") {
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

    // A copy cut half-way: the profile, conf and running system stay.
    let conf = h.sh("cat /etc/nixos-containers/web.conf");
    let gens = ok(&h, &["generations", "--json", "web"]);
    let proxy = cutting_proxy(work.path(), &h.addr, 4 << 20);
    let opts = format!("{} -o ProxyCommand={}", ssh_opts(&[&h]), proxy.display());
    let dest = h.dest();
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
    assert_eq!(
        h.sh(&format!(
            "nix-store --check-validity {big} 2>/dev/null && echo there"
        )),
        ""
    );
    assert_eq!(ok(&h, &["generations", "--json", "web"]), gens);
    assert_eq!(h.sh("cat /etc/nixos-containers/web.conf"), conf);
    let st = status_json(&h, "web");
    assert_eq!(
        (st["state"].as_str(), st["runningSystem"].as_str()),
        (Some("running"), Some(s2.as_str()))
    );

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
    if !only_here("target_host several_hosts_each_get_the_system_and_one_failing_stops_none") {
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
    // A host that refuses us (no key for that user): reported, not in the way.
    let refused = format!("nobody@{}", a.addr);
    let mut args = vec!["update", "one", "--system-path", &s2];
    let (da, db) = (a.dest(), b.dest());
    for d in [&da, &refused, &db] {
        args.extend(["--target-host", d]);
    }
    let o = cli(&[&a, &b], None, &args);
    let said = text(&o);
    assert_eq!(o.status.code(), Some(1), "{said}");
    for d in [&da, &db] {
        assert!(said.contains(&format!("{d}: one: reload")), "{said}");
        assert!(said.contains(&format!("{d}: done")), "{said}");
    }
    assert!(said.contains(&format!("{refused}: failed")), "{said}");
    assert!(said.contains("1 of 3 target hosts failed"), "{said}");
    for h in [&a, &b] {
        assert_eq!(status_json(h, "one")["runningSystem"], s2.as_str());
    }

    // The second container gets the same system (nothing left to copy);
    // it is stopped: recorded, nothing applied.
    let hosts = work.path().join("hosts");
    std::fs::write(&hosts, format!("# the fleet\n{da}\n{db}\n")).unwrap();
    let hosts = hosts.display().to_string();
    let o = cli(
        &[&a, &b],
        None,
        &[
            "update",
            "two",
            "--system-path",
            &s2,
            "--target-hosts-file",
            &hosts,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    // apply on every host: nothing left to do.
    let o = cli(
        &[&a, &b],
        None,
        &["apply", "--all", "--target-hosts-file", &hosts],
    );
    let said = text(&o);
    assert!(o.status.success(), "{said}");
    for d in [&da, &db] {
        assert!(said.contains(&format!("{d}: one: nothing")), "{said}");
        assert_eq!(
            status_json(if d == &da { &a } else { &b }, "two")["system"],
            s2.as_str()
        );
    }
}

#[test]
fn a_host_without_the_plugin_is_named_in_one_line_before_any_copy() {
    if !only_here("target_host a_host_without_the_plugin_is_named_in_one_line_before_any_copy") {
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

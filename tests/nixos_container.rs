//! nix-container as a replacement for nixos-container: every command and
//! flag of nixos-container, against real containers. `create` and `update`
//! run the real `nix` with the built plugin (through the config route with
//! nixpkgs' real lib, a flake, or a store path); login sessions run on a
//! real terminal (util-linux `script`).

use std::path::PathBuf;
use std::process::{Command, Output};

use ncp_integration_tests::*;

/// `nix-container ARGS` as create/update need it: the plugin and the
/// tests' Nix settings.
fn nc(env: &Env, args: &[&str]) -> Command {
    let mut c = env.cli_cmd(args);
    c.env("NIX_CONFIG", NIX_CONFIG).env("NCP_PLUGIN", plugin());
    c
}

/// A Nix expression for a system whose init is busybox's sh running `lines`
/// (shell, inside a Nix string and printf's format: `${bb}` is busybox).
fn system_with_init(name: &str, lines: &[&str]) -> String {
    let body: String = lines.iter().map(|l| format!("\\\\n{l}")).collect();
    format!(
        "let bb = (import {}/tests/fixtures/busybox.nix {{ }}).busybox; in derivation {{ \
           name = \"nixos-system-{name}\"; system = builtins.currentSystem; builder = \"${{bb}}/bin/sh\"; \
           args = [ \"-c\" \"mkdir -p $out; printf '#!${{bb}}/bin/sh{body}\\\\n' > $out/init; chmod +x $out/init\" ]; }}",
        repo().display()
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn conf(env: &Env, name: &str) -> String {
    std::fs::read_to_string(env.config_dir().join(format!("{name}.conf"))).unwrap_or_default()
}

/// A passwd with root (no password, the system's shell) inside `name`.
fn give_root_a_login(env: &Env, name: &str) {
    env.inside(
        name,
        "mkdir -p /etc && echo 'root::0:0:root:/root:/run/current-system/sw/bin/sh' > /etc/passwd && mkdir -p /root",
    );
}

#[test]
fn create_start_log_in_update_and_destroy_as_with_nixos_container() {
    let env = Env::new();
    let name = "ncweb";
    let _stop = StopOnDrop(&env, &[name]);
    let nixos = env.nixos_dir();
    let out = succeeded(&mut nc(
        &env,
        &[
            "create",
            name,
            "--nixos-path",
            nixos.to_str().unwrap(),
            "--config",
            "ncpTest.label = \"c1\";",
            "--host-address",
            "10.231.90.1",
            "--local-address",
            "10.231.90.2",
            "--port",
            "tcp:8080:80,udp:53",
            "--auto-start",
        ],
    ));
    assert!(
        stderr(&out).contains("host IP is 10.231.90.1, container IP is 10.231.90.2"),
        "{}",
        stderr(&out)
    );
    assert!(
        stdout(&out).contains(&format!("{name}: created, generation 1")),
        "{}",
        stdout(&out)
    );
    let c = conf(&env, name);
    for line in [
        "PRIVATE_NETWORK=1",
        "HOST_ADDRESS=10.231.90.1",
        "LOCAL_ADDRESS=10.231.90.2",
        "HOST_PORT=tcp:8080:80,udp:53:53",
        "AUTO_START=1",
    ] {
        assert!(c.lines().any(|l| l == line), "{line} not in:\n{c}");
    }
    // The configuration is kept host-side, never in the container's root.
    let module = std::fs::read_to_string(env.config_dir().join(format!("{name}.nix"))).unwrap();
    assert!(module.contains("ncpTest.label = \"c1\";"), "{module}");
    assert!(!env.state_dir().join(name).join("etc/nixos").exists());

    assert_eq!(env.cli_ok(&["list"]).trim(), name);
    assert_eq!(env.cli_ok(&["status", name]).trim(), "down");
    assert_eq!(env.cli_ok(&["show-ip", name]).trim(), "10.231.90.2");
    assert_eq!(
        env.cli_json(&["show-ip", "--json", name])["address"],
        "10.231.90.2"
    );

    env.cli_ok(&["start", name]);
    env.wait_for_mark(name, "state", "running");
    assert_eq!(env.cli_ok(&["status", name]).trim(), "up");
    assert_eq!(env.mark(name, "label"), format!("{name}-c1"));
    assert_eq!(env.inside(name, "hostname").trim(), name);

    // show-host-key: the container's key; a link it plants to a host file
    // is not followed.
    env.inside(name, "mkdir -p /etc/ssh && echo 'ssh-ed25519 AAAAC3Nza test' > /etc/ssh/ssh_host_ed25519_key.pub");
    assert_eq!(
        env.cli_ok(&["show-host-key", name]).trim(),
        "ssh-ed25519 AAAAC3Nza test"
    );
    let secret = env.path("host-secret");
    std::fs::write(&secret, "HOST SECRET").unwrap();
    env.inside(
        name,
        &format!(
            "ln -sfn {} /etc/ssh/ssh_host_ed25519_key.pub",
            secret.display()
        ),
    );
    let o = env.cli(&["show-host-key", name]);
    assert!(!stdout(&o).contains("HOST SECRET"), "{o:?}");
    assert_ne!(o.status.code(), Some(0));

    // logs: what the container wrote to its console.
    env.inside(name, "echo console-mark-$((6*7)) > /dev/console");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !env
        .cli_ok(&["logs", name, "-n", "20"])
        .contains("console-mark-42")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            env.cli_ok(&["logs", name])
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    // root-login and login: sessions on a terminal opened inside.
    give_root_a_login(&env, name);
    let seen = on_terminal(
        &env,
        &["root-login", name],
        &[("# ", "echo in-$((6*7))-as-$(id -u); exit\n")],
    );
    assert!(seen.contains("in-42-as-0"), "{seen}");
    let seen = on_terminal(
        &env,
        &["login", name],
        &[
            ("login: ", "root\n"),
            ("# ", "echo login-$((6*7))-$(hostname); exit\n"),
        ],
    );
    assert!(seen.contains(&format!("login-42-{name}")), "{seen}");
    // Without a terminal they say what to use instead.
    let e = env.cli_fails(2, &["root-login", name]);
    assert!(e.contains("needs a terminal") && e.contains("run"), "{e}");

    // update with a new configuration: built, and the running container
    // reloads (nixos-container's `systemctl reload`).
    let out = succeeded(&mut nc(
        &env,
        &["update", name, "--config", "ncpTest.label = \"c2\";"],
    ));
    assert!(stdout(&out).contains("generation 2"), "{}", stdout(&out));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !env.mark(name, "switched").contains(&format!("{name}-c2")) {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            env.mark(name, "switched")
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // update with no arguments: what it was created from, as edited.
    let m = env.config_dir().join(format!("{name}.nix"));
    let text = std::fs::read_to_string(&m).unwrap().replace("c2", "c3");
    std::fs::write(&m, text).unwrap();
    succeeded(&mut nc(&env, &["update", name]));
    let g = env.cli_json(&["generations", "--json", name]);
    assert_eq!(g.as_array().unwrap().len(), 3, "{g}");
    assert!(
        g[2]["path"]
            .as_str()
            .unwrap()
            .ends_with(&format!("{name}-c3")),
        "{g}"
    );

    // restart: a new init; terminate: gone at once.
    let before = env.leader(name);
    env.cli_ok(&["restart", name]);
    env.wait_for_mark(name, "state", "running");
    assert_ne!(env.leader(name), before);
    env.cli_ok(&["terminate", name]);
    assert_eq!(env.cli_ok(&["status", name]).trim(), "down");

    // destroy: everything of it goes, its recipe too.
    env.cli_ok(&["destroy", name]);
    for f in [
        format!("{name}.conf"),
        format!("{name}.nix"),
        format!("{name}.source.json"),
    ] {
        assert!(!env.config_dir().join(&f).exists(), "{f} is left");
    }
    assert!(!env.state_dir().join(name).exists());
    // --signal, which nixos-container parses (and ignores), is taken too.
    let o = env.cli(&["--signal", "KILL", "status", name]);
    assert_eq!((o.status.code(), stdout(&o).trim()), (Some(3), "gone"));
}

#[test]
fn create_picks_free_names_and_addresses_and_shares_systems() {
    let env = Env::new();
    let system = build_system("ncshare");
    let create = |args: &[&str]| succeeded(&mut nc(&env, &[&["create"], args].concat()));
    create(&["ncdup", "--system-path", &system]);
    // Taken: an error that says what to do instead, and nothing changes.
    let o = nc(&env, &["create", "ncdup", "--system-path", &system])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already exists") && stderr(&o).contains("--ensure-unique-name"));
    // --ensure-unique-name: the name used is printed.
    let o = create(&["ncdup", "--ensure-unique-name", "--system-path", &system]);
    assert_eq!(stdout(&o).trim(), "ncdup-0");
    let o = create(&["ncdup", "--ensure-unique-name", "--system-path", &system]);
    assert_eq!(stdout(&o).trim(), "ncdup-1");
    // Addresses: the next free 10.233.N.1/.2, as nixos-container.
    assert!(conf(&env, "ncdup").contains("LOCAL_ADDRESS=10.233.1.2"));
    assert!(conf(&env, "ncdup-0").contains("HOST_ADDRESS=10.233.2.1"));
    assert!(conf(&env, "ncdup-1").contains("LOCAL_ADDRESS=10.233.3.2"));
    // --bridge: the host side joins it and has no address of its own.
    create(&["ncbr", "--bridge", "br-nc", "--system-path", &system]);
    let c = conf(&env, "ncbr");
    assert!(
        c.contains("HOST_BRIDGE=br-nc") && !c.contains("HOST_ADDRESS="),
        "{c}"
    );
    assert!(c.contains("LOCAL_ADDRESS=10.233.4.2"), "{c}");
    create(&[
        "ncbr2",
        "--bridge",
        "br-nc",
        "--local-address",
        "10.9.0.5/24",
        "--system-path",
        &system,
    ]);
    assert!(conf(&env, "ncbr2").contains("LOCAL_ADDRESS=10.9.0.5/24"));

    // --from: another container's current system, no evaluation.
    let o = create(&["ncfrom", "--from", "ncdup", "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["system"], system.as_str());
    assert_eq!(env.cli_ok(&["list"]).lines().count(), 6);
    // Bad input is refused before anything is built.
    let o = nc(
        &env,
        &[
            "create",
            "ncbad",
            "--port",
            "tcp:x",
            "--system-path",
            &system,
        ],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = nc(
        &env,
        &["create", "ncbad", "--option", "container-state-dir", "/x"],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--container-state-dir"),
        "{}",
        stderr(&o)
    );
    let o = nc(&env, &["create", "ncbad", "--host-address", "10.1.1.1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!env.config_dir().join("ncbad.conf").exists());
}

#[test]
fn create_evaluates_nixpkgs_from_the_nix_path_and_honours_nix_flags() {
    let env = Env::new();
    let nixos = env.nixos_dir();
    let nix_path = format!("nixpkgs={}", nixos.parent().unwrap().display());
    // A label nothing built yet, with max-jobs 0: Nix refuses to build, so
    // --option reached it.
    let label = format!("ncopt{}", std::process::id());
    let cfg = format!("ncpTest.label = \"{label}\";");
    let o = nc(
        &env,
        &[
            "create", "ncpath", "--config", &cfg, "--option", "max-jobs", "0",
        ],
    )
    .env("NIX_PATH", &nix_path)
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("max-jobs"), "{}", stderr(&o));
    // Nothing of it is left: the next create is not "already exists".
    assert!(!env.config_dir().join("ncpath.nix").exists());
    // --log-format reaches Nix too; <nixpkgs/nixos> from NIX_PATH.
    let o = succeeded(
        nc(
            &env,
            &[
                "create",
                "ncpath",
                "--config",
                &cfg,
                "--log-format",
                "internal-json",
            ],
        )
        .env("NIX_PATH", &nix_path),
    );
    assert!(stderr(&o).contains("@nix {"), "{}", stderr(&o));
    let system = resolve(&env.profile("ncpath"));
    assert!(system.ends_with(&format!("ncpath-{label}")), "{system}");
    // --config-file: imported from where it is.
    let f = env.path("extra.nix");
    std::fs::write(&f, "{ ncpTest.label = \"fromfile\"; }").unwrap();
    succeeded(
        nc(
            &env,
            &["update", "ncpath", "--config-file", f.to_str().unwrap()],
        )
        .env("NIX_PATH", &nix_path),
    );
    assert!(resolve(&env.profile("ncpath")).ends_with("ncpath-fromfile"));
}

/// A flake whose nixosConfigurations.container is a container built from
/// the fixtures (busybox from its own source: pure evaluation) and that
/// reads NCP_FLAKE_LABEL when impure.
fn write_flake(env: &Env) -> PathBuf {
    let lib = nixpkgs_lib().display().to_string();
    let d = env.path("flake");
    std::fs::create_dir_all(d.join("fixtures")).unwrap();
    for f in ["test-system.nix", "busybox.nix"] {
        std::fs::copy(
            repo().join("tests/fixtures").join(f),
            d.join("fixtures").join(f),
        )
        .unwrap();
    }
    let nixos = d.join("fixtures/nixos");
    std::fs::create_dir_all(&nixos).unwrap();
    for f in ["eval-config.nix", "container-options.nix"] {
        std::fs::copy(repo().join("tests/fixtures/nixos").join(f), nixos.join(f)).unwrap();
    }
    let bb = d.join("busybox");
    std::fs::create_dir_all(&bb).unwrap();
    std::fs::copy(host_busybox(), bb.join("busybox")).unwrap();
    std::fs::write(
        d.join("flake.nix"),
        r#"{
  inputs.nixpkgs-lib = { url = "path:LIB"; flake = false; };
  outputs = { self, nixpkgs-lib }:
    let
      evalConfig = import ./fixtures/nixos/eval-config.nix { lib = import "${nixpkgs-lib}/lib"; };
      label = let l = builtins.getEnv "NCP_FLAKE_LABEL"; in if l == "" then "pure" else l;
    in {
      nixosConfigurations.container = evalConfig {
        modules = [ { boot.isContainer = true; networking.hostName = "flaky"; ncpTest.label = label; ncpTest.busyboxDir = ./busybox; } ];
      };
      nixosConfigurations.host = evalConfig { modules = [ { ncpTest.busyboxDir = ./busybox; } ]; };
    };
}
"#
        .replace("LIB", &lib),
    )
    .unwrap();
    d
}

#[test]
fn create_from_a_flake_purely_unless_asked_with_the_flake_flags() {
    let env = Env::new();
    let flake = write_flake(&env);
    let f = flake.display().to_string();
    // --no-write-lock-file: the lock Nix makes is not written.
    succeeded(
        nc(
            &env,
            &["create", "ncflake", "--flake", &f, "--no-write-lock-file"],
        )
        .env("NCP_FLAKE_LABEL", "env"),
    );
    assert!(!flake.join("flake.lock").exists());
    // Pure by default: the environment is not seen.
    assert!(
        resolve(&env.profile("ncflake")).ends_with("flaky-pure"),
        "{}",
        resolve(&env.profile("ncflake"))
    );
    // --impure: it is; update re-reads the recorded flake (absolute).
    succeeded(
        nc(&env, &["update", "ncflake", "--impure", "--flake", &f]).env("NCP_FLAKE_LABEL", "env"),
    );
    assert!(resolve(&env.profile("ncflake")).ends_with("flaky-env"));
    assert!(
        flake.join("flake.lock").exists(),
        "the lock is written by default"
    );
    // --no-update-lock-file with a lock that needs updating fails.
    std::fs::remove_file(flake.join("flake.lock")).unwrap();
    let o = nc(&env, &["update", "ncflake", "--no-update-lock-file"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // --override-input reaches Nix: a lib that does not exist fails.
    let o = nc(
        &env,
        &[
            "update",
            "ncflake",
            "--override-input",
            "nixpkgs-lib",
            "path:/nonexistent-ncp",
        ],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nonexistent-ncp"), "{}", stderr(&o));
    // REF#ATTR; a configuration that is not a container is refused.
    let o = nc(&env, &["create", "nchost", "--flake", &format!("{f}#host")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("boot.isContainer"), "{}", stderr(&o));
    assert!(!env.config_dir().join("nchost.conf").exists());
    let o = nc(&env, &["create", "nchost", "--flake", &format!("{f}#a\"b")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn reset_wipes_the_state_and_keeps_conf_and_generations() {
    let env = Env::new();
    let name = "ncreset";
    let _stop = StopOnDrop(&env, &[name]);
    env.booted(name, "reset-a", "");
    env.inside(name, "echo old > /root/left-behind");
    env.cli_ok(&["reset", name]);
    assert_eq!(env.cli_ok(&["status", name]).trim(), "down");
    assert!(!env.state_dir().join(name).join("root/left-behind").exists());
    assert!(
        env.state_dir().join(name).join("etc").is_dir(),
        "the root is prepared again"
    );
    assert_eq!(
        env.cli_json(&["generations", "--json", name])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    env.cli_ok(&["start", name]);
    env.wait_for_mark(name, "state", "running");
}

#[test]
fn completions_man_page_and_colours() {
    let env = Env::new();
    let bash = env.cli_ok(&["completions", "bash"]);
    assert!(
        bash.contains("nix-container") && bash.contains("root-login"),
        "{bash}"
    );
    assert!(env
        .cli_ok(&["completions", "zsh"])
        .contains("#compdef nix-container"));
    let man = env.cli_ok(&["man"]);
    assert!(
        man.contains(".TH nix-container") && man.contains("show\\-host\\-key"),
        "{man}"
    );
    // No colour codes when the output is not a terminal…
    let e = env.cli_fails(3, &["start", "nosuch"]);
    assert!(!e.contains('\x1b'), "{e:?}");
    // …and on one, unless NO_COLOR.
    let seen = on_terminal(&env, &["start", "nosuch"], &[]);
    assert!(seen.contains("\x1b[31m"), "{seen:?}");
}

#[test]
fn start_shows_the_console_log_when_a_container_does_not_come_up() {
    let env = Env::new();
    let name = "ncfail";
    // A system whose init says something and fails.
    let failing = system_with_init("failing", &["echo init-says-$((6*7))", "exit 3"]);
    env.eval_json(&format!(
        "builtins.containerProfile {{ name = \"{name}\"; system = {failing}; }}"
    ));
    let e = env.cli_fails(1, &["start", name]);
    assert!(
        e.contains("did not start") && e.contains("init-says-42"),
        "{e}"
    );
    assert!(env.cli_ok(&["logs", name]).contains("init-says-42"));
    assert_eq!(env.cli_ok(&["status", name]).trim(), "down");
}

#[test]
fn stop_escalates_after_its_stated_grace_period_and_says_so() {
    let env = Env::new();
    let name = "ncstubborn";
    let _stop = StopOnDrop(&env, &[name]);
    // An init that ignores SIGRTMIN+3 and SIGTERM (nixpkgs #6212: 90 s hangs).
    let stubborn = system_with_init(
        "stubborn",
        &["trap \\\"\\\" 37 15", "while :; do ${bb}/bin/sleep 1; done"],
    );
    env.eval_json(&format!(
        "builtins.containerProfile {{ name = \"{name}\"; system = {stubborn}; }}"
    ));
    env.cli_ok(&["start", name]);
    let t = std::time::Instant::now();
    let out = env.cli_ok(&["--timeout", "2", "stop", name]);
    assert!(out.contains("SIGKILL after 2s"), "{out}");
    assert!(
        out.contains("killed after") && out.contains("did not halt within 2s"),
        "{out}"
    );
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(env.cli_ok(&["status", name]).trim(), "down");
}

#[test]
fn create_without_a_plugin_says_so_in_one_line() {
    // No --plugin, no NCP_PLUGIN, nothing in nix.conf's plugin-files and
    // none installed beside the CLI: one line, before Nix runs (which would
    // warn about each of the plugin's settings it does not know).
    let env = Env::new();
    let out = env
        .cli_cmd(&["create", "noplugin", "--config", "{ }"])
        .env("NIX_CONFIG", NIX_CONFIG)
        .env_remove("NCP_PLUGIN")
        .output()
        .unwrap();
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(
        e.contains("no nix-container-plugin to load") && e.contains("--plugin"),
        "{e}"
    );
    assert!(!e.contains("warning"), "{e}");
    assert!(!env.config_dir().join("noplugin.conf").exists());
    // --plugin names it.
    let out = env
        .cli_cmd(&[
            "create",
            "noplugin",
            "--plugin",
            "/nonexistent.so",
            "--config",
            "{ }",
        ])
        .env("NIX_CONFIG", NIX_CONFIG)
        .env_remove("NCP_PLUGIN")
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("--plugin /nonexistent.so: no such file"),
        "{}",
        stderr(&out)
    );
}

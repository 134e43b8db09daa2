//! The Nix library (nix-plugin/default.nix: config and flake routes) and the
//! NixOS module (nix-plugin/module.nix) under the real module system:
//! nixpkgs' own lib (a snapshot from ../shared/nixpkgs, NCP_NIXPKGS_LIB),
//! its evalModules, option types, defaults, mkIf, mkDefault and mkForce.
//! Only the NixOS options the module sets outside its own are declared
//! here (tests/fixtures/nixos/host-options.nix), and the few packages it
//! names stand in as links to the host's programs (stand-ins.nix). The
//! apply unit's script runs with exactly the PATH NixOS would give it.

use std::path::{Path, PathBuf};
use std::process::Command;

use ncp_integration_tests::*;

fn fixtures() -> PathBuf {
    repo().join("tests/fixtures/nixos")
}

fn eval_config() -> String {
    format!(
        "(import {}/eval-config.nix {{ lib = import {}/lib; }})",
        fixtures().display(),
        nixpkgs_lib().display()
    )
}

fn library() -> String {
    format!(
        "(import {}/nix-plugin {{ evalConfig = {}; }})",
        repo().display(),
        eval_config()
    )
}

#[test]
fn the_config_route_evaluates_with_the_real_module_system() {
    let env = Env::new();
    let name = "cfgroute";
    let _stop = StopOnDrop(&env, &[name]);
    let r = env.eval_json(&format!(
        "{}.fromConfig {{ name = \"{name}\"; config = {{ ncpTest.label = \"one\"; }}; autoStart = true; }}",
        library()
    ));
    assert_eq!(r["generation"], 1);
    let system = r["system"].as_str().unwrap();
    // networking.hostName defaulted (mkDefault) to the name, boot.isContainer was set.
    assert_eq!(
        std::fs::read_to_string(format!("{system}/nixos-version")).unwrap(),
        format!("ncp-test-{name}-one")
    );
    assert!(r["conf"].as_str().unwrap().contains("AUTO_START=1"));
    assert_eq!(resolve(&env.profile(name)), system);

    // mkForce over the library's mkDefault, as in NixOS.
    let r2 = env.eval_json(&format!(
        "{}.fromConfig {{ name = \"{name}\"; config = {{ lib, ... }}: {{ networking.hostName = lib.mkForce \"other\"; }}; }}",
        library()
    ));
    assert_eq!(r2["generation"], 2);
    assert!(r2["system"]
        .as_str()
        .unwrap()
        .ends_with("nixos-system-ncp-test-other-none"));
    // The real module system's checks: types and conflicting definitions.
    let e = env.eval_err(&format!(
        "{}.fromConfig {{ name = \"{name}\"; config = {{ boot.isContainer = \"yes\"; }}; }}",
        library()
    ));
    assert!(
        e.contains("boot.isContainer") && e.contains("not of type"),
        "{e}"
    );
    let e = env.eval_err(&format!(
        "{}.fromConfig {{ name = \"{name}\"; modules = [ {{ networking.hostName = \"a\"; }} {{ networking.hostName = \"b\"; }} ]; }}",
        library()
    ));
    assert!(
        e.contains("networking.hostName") && e.contains("conflicting definition"),
        "{e}"
    );

    // The pure description names the same system and writes nothing.
    let before = env.tree();
    let spec = env.eval_json(&format!(
        "{}.specOfConfig {{ name = \"{name}\"; config = {{ ncpTest.label = \"one\"; }}; }}",
        library()
    ));
    assert_eq!(spec["system"], system);
    assert_eq!(env.tree(), before);

    env.eval_json(&format!(
        "{}.fromConfig {{ name = \"{name}\"; config = {{ ncpTest.label = \"one\"; }}; autoStart = true; }}",
        library()
    ));
    let applied = env.cli_json(&["apply", "--all", "--json"]);
    assert_eq!(applied[0]["action"], "start", "{applied}");
    env.wait_for_mark(name, "label", &format!("{name}-one"));
}

#[test]
fn many_containers_share_one_evaluation_and_one_system() {
    let env = Env::new();
    let names = ["manya", "manyb", "manyc"];
    let _stop = StopOnDrop(&env, &names);
    let r = env.eval_json(&format!(
        "{}.manyFromConfig {{ config = {{ ncpTest.label = \"shared\"; }}; containers = {{ \
         manya = {{ }}; manyb = {{ autoStart = true; }}; manyc = {{ privateNetwork = true; \
         hostAddress = \"10.231.61.1\"; localAddress = \"10.231.61.2\"; }}; }}; }}",
        library()
    ));
    let systems: Vec<&str> = names
        .iter()
        .map(|n| r[n]["system"].as_str().unwrap())
        .collect();
    assert!(systems.iter().all(|s| *s == systems[0]), "{r}");
    // networking.hostName was left empty: one system for all of them.
    assert!(
        systems[0].ends_with("nixos-system-ncp-test--shared"),
        "{}",
        systems[0]
    );
    assert!(r["manyb"]["conf"]
        .as_str()
        .unwrap()
        .contains("AUTO_START=1"));
    assert!(r["manyc"]["conf"]
        .as_str()
        .unwrap()
        .contains("LOCAL_ADDRESS=10.231.61.2"));
    for n in names {
        assert_eq!(r[n]["generation"], 1);
        assert_eq!(resolve(&env.profile(n)), systems[0]);
        env.cli_ok(&["start", n]);
    }
    // Each one's host name is its own, given by systemd-nspawn.
    for n in names {
        env.wait_for_mark(n, "state", "running");
        assert_eq!(env.inside(n, "hostname").trim(), n);
    }
}

/// A flake with this repository's library, the fixtures and busybox in its
/// own source, and the nixpkgs lib as an input: what a flake host has.
fn write_flake(dir: &Path) {
    for f in [
        "nix-plugin/default.nix",
        "nix-plugin/flake-system.nix",
        "tests/fixtures/busybox.nix",
        "tests/fixtures/test-system.nix",
        "tests/fixtures/nixos/eval-config.nix",
        "tests/fixtures/nixos/container-options.nix",
    ] {
        let to = dir.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(repo().join(f), &to).unwrap();
    }
    let bb = dir.join("bb");
    std::fs::create_dir(&bb).unwrap();
    std::fs::copy(host_busybox(), bb.join("busybox")).unwrap();
    std::fs::write(
        dir.join("flake.nix"),
        format!(
            r#"{{
  inputs.nixpkgs-lib = {{ url = "path:{}"; flake = false; }};

  outputs = {{ self, nixpkgs-lib }}:
    let
      lib = import "${{nixpkgs-lib}}/lib";
      evalConfig = import ./tests/fixtures/nixos/eval-config.nix {{ inherit lib; }};
      containers = import ./nix-plugin {{ inherit evalConfig; }};
      bb = {{ ncpTest.busyboxDir = ./bb; }};
    in {{
      nixosConfigurations.web = evalConfig {{
        modules = [ bb {{ boot.isContainer = true; networking.hostName = "flakeweb"; }} ];
      }};
      nixosConfigurations.host = evalConfig {{ modules = [ bb {{ networking.hostName = "h"; }} ]; }};
      spec = containers.specOfConfig {{ name = "pure"; modules = [ bb ]; config = {{ ncpTest.label = "p"; }}; }};
      profile = containers.fromConfig {{ name = "pure"; modules = [ bb ]; }};

      inherit containers;
    }};
}}
"#,
            nixpkgs_lib().display()
        ),
    )
    .unwrap();
}

#[test]
fn the_routes_work_on_a_flake_host_in_pure_evaluation() {
    let env = Env::new();
    let flake = env.path("flake");
    write_flake(&flake);
    let flake_ref = format!("path:{}", flake.display());
    // Pure (no --impure): the config route's description; hostSystem must
    // not need builtins.currentSystem, which pure evaluation lacks.
    let mut c = Command::new("nix");
    c.env("NIX_CONFIG", NIX_CONFIG)
        .arg("--plugin-files")
        .arg(plugin())
        .args(env.options())
        .args(["eval", "--json", &format!("{flake_ref}#spec")]);
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        spec["system"]
            .as_str()
            .unwrap()
            .ends_with("nixos-system-ncp-test-pure-p"),
        "{spec}"
    );
    // containerProfile itself refuses pure evaluation.
    let mut c = Command::new("nix");
    c.env("NIX_CONFIG", NIX_CONFIG)
        .arg("--plugin-files")
        .arg(plugin())
        .args(env.options())
        .args(["eval", "--json", &format!("{flake_ref}#profile")]);
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("not available in pure evaluation mode"),
        "{stderr}"
    );
    assert!(!env.profiles_dir().join("pure").exists());

    // The flake route (impure: it writes), from the flake's own outputs.
    let get = format!("(builtins.getFlake \"{flake_ref}\")");
    let r = env.eval_json(&format!(
        "{get}.containers.fromFlake {{ name = \"flakeweb\"; attr = \"web\"; flake = {get}; }}"
    ));
    assert_eq!(r["generation"], 1);
    assert!(r["system"]
        .as_str()
        .unwrap()
        .ends_with("ncp-test-flakeweb-none"));
    let e = env.eval_err(&format!(
        "{get}.containers.fromFlake {{ name = \"flakehost\"; attr = \"host\"; flake = {get}; }}"
    ));
    assert!(e.contains("does not set boot.isContainer = true"), "{e}");
    let e = env.eval_err(&format!(
        "{get}.containers.fromFlake {{ name = \"nosuch\"; flake = {get}; }}"
    ));
    assert!(
        e.contains("no nixosConfigurations.nosuch (it has: host, web)"),
        "{e}"
    );
    assert!(!env.profiles_dir().join("flakehost").exists());
}

/// The directory whose bin/nix is the Nix under test.
fn nix_prefix() -> String {
    let out = Command::new("sh")
        .args(["-c", "command -v nix"])
        .output()
        .unwrap();
    let nix = String::from_utf8(out.stdout).unwrap();
    let bin = Path::new(nix.trim()).parent().unwrap().to_owned();
    bin.parent().unwrap().display().to_string()
}

/// The host configuration (tests/fixtures/nixos/host.nix) with `containers`
/// (a Nix attribute set) and the test's roots as the plugin's settings.
fn host(env: &Env, containers: &str, extra: &str) -> String {
    let mut settings = String::new();
    for (k, p) in [
        ("container-state-dir", env.state_dir()),
        ("container-config-dir", env.config_dir()),
        ("container-profiles-dir", env.profiles_dir()),
        ("container-gcroots-dir", env.gcroots_dir()),
        ("container-run-dir", env.run_dir()),
    ] {
        settings.push_str(&format!("\"{k}\" = \"{}\"; ", p.display()));
    }
    format!(
        "(import {fx}/host.nix {{ lib = import {lib}/lib; pkgs = import {fx}/stand-ins.nix {{ }}; modules = [ {{ \
           services.nix-container-plugin = {{ enable = true; plugin = \"{plugin}\"; cli = \"{cli}\"; nix = \"{nix}\"; \
             evalConfig = {ec}; settings = {{ {settings} }}; containers = {containers}; }}; }} {extra} ]; }})",
        fx = fixtures().display(),
        lib = nixpkgs_lib().display(),
        plugin = plugin().display(),
        cli = cli_bin().display(),
        nix = nix_prefix(),
        ec = eval_config(),
    )
}

/// nix.conf as NixOS renders nix.settings (lists space-separated).
fn nix_conf(settings: &serde_json::Value) -> String {
    let mut out = String::new();
    for (k, v) in settings.as_object().unwrap() {
        let v = match v {
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
                .join(" "),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(&format!("{k} = {v}\n"));
    }
    out
}

/// Builds the apply unit's script as NixOS's makeJobScript does and runs
/// it with exactly the environment systemd gives it there: its PATH, and
/// nix.conf rendered from nix.settings (plus where the store under test is).
fn run_apply_unit(env: &Env, host: &str) -> (bool, String) {
    let unit = env.eval_json(&format!(
        "let c = {host}.config; s = c.systemd.services.nix-container-apply; in \
         {{ inherit (s) path wantedBy after restartTriggers; PATH = s.environment.PATH; settings = c.nix.settings; \
            type = s.serviceConfig.Type; }}"
    ));

    assert_eq!(unit["type"], "oneshot");
    assert_eq!(unit["wantedBy"][0], "multi-user.target");
    let drv = Command::new("nix-build")
        .env("NIX_CONFIG", NIX_CONFIG)
        .args(["--no-out-link", "-E"])
        .arg(format!(
            "let c = {host}.config; s = c.systemd.services.nix-container-apply; in \
             [ ((import {fx}/stand-ins.nix {{ }}).writeText \"nix-container-apply-start\" (\"#! /bin/bash -e\\n\" + s.script)) ] \
             ++ s.path",
            fx = fixtures().display()
        ))
        .output()
        .unwrap();
    assert!(
        drv.status.success(),
        "{}",
        String::from_utf8_lossy(&drv.stderr)
    );
    let conf_dir = env.path("nix-conf");
    std::fs::create_dir_all(&conf_dir).unwrap();
    let mut conf = nix_conf(&unit["settings"]);
    conf.push_str("substituters =\nsandbox = false\n");
    std::fs::write(conf_dir.join("nix.conf"), conf).unwrap();
    // The script, then what the unit's PATH names (as its closure would).
    let built = String::from_utf8_lossy(&drv.stdout).into_owned();
    let mut cmd = Command::new("/bin/bash");
    cmd.arg("-e")
        .arg(built.lines().next().unwrap())
        .env_clear()
        .env("PATH", unit["PATH"].as_str().unwrap())
        .env("NIX_CONF_DIR", &conf_dir);
    // Where the Nix under test keeps its store (a NixOS host has the default).
    for k in ["NIX_STORE_DIR", "NIX_STATE_DIR", "NIX_LOG_DIR"] {
        if let Ok(v) = std::env::var(k) {
            cmd.env(k, v);
        }
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn the_nixos_module_under_the_real_module_system() {
    let env = Env::new();
    let one = "{ modweb = { config = { ncpTest.label = \"mod\"; }; autoStart = true; }; }";
    let h = host(&env, one, "");
    let cfg = env.eval_json(&format!(
        "let m = {h}; o = m.options.services.nix-container-plugin; in {{ \
           top = builtins.attrNames o; \
           per = builtins.attrNames (o.containers.type.getSubOptions [ ]); \
           plugins = m.config.nix.settings.plugin-files; \
           state = m.config.nix.settings.container-state-dir; \
           units = builtins.attrNames m.config.systemd.services; \
           path = map (p: p.name) m.config.systemd.services.nix-container-apply.path; }}"
    ));
    assert_eq!(
        cfg["top"],
        serde_json::json!([
            "cli",
            "containers",
            "enable",
            "evalConfig",
            "nix",
            "package",
            "plugin",
            "settings"
        ])
    );
    let per: Vec<&str> = cfg["per"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for o in ["autoStart", "config", "extraArgs", "system"] {
        assert!(per.contains(&o), "{per:?}");
    }
    assert_eq!(cfg["plugins"][0], plugin().display().to_string());
    assert_eq!(cfg["state"], env.state_dir().display().to_string());
    assert_eq!(cfg["units"], serde_json::json!(["nix-container-apply"]));
    // Its own path first, then NixOS's defaults.
    assert_eq!(
        cfg["path"],
        serde_json::json!([
            "host-iproute2",
            "host-coreutils",
            "host-findutils",
            "host-gnugrep",
            "host-gnused",
            "host-systemd"
        ])
    );
    // Disabled: nothing at all (mkIf).
    let off = env.eval_json(&format!(
        "builtins.attrNames (import {}/host.nix {{ lib = import {}/lib; pkgs = {{ }}; modules = [ ]; }}).config.systemd.services",
        fixtures().display(),
        nixpkgs_lib().display()
    ));
    assert_eq!(off, serde_json::json!([]));
    // The real option types check what a user writes.
    let e = env.eval_err(&format!(
        "({}).config.systemd.services.nix-container-apply.script",
        host(&env, "{ x = { autoStart = \"yes\"; }; }", "")
    ));
    assert!(e.contains("autoStart") && e.contains("not of type"), "{e}");
}

#[test]
fn the_apply_unit_runs_with_nixos_path_and_retires_removed_containers() {
    let env = Env::new();
    let names = ["moda", "modb"];
    let _stop = StopOnDrop(&env, &names);
    let two = "{ moda = { config = { ncpTest.label = \"a\"; }; autoStart = true; }; \
               modb = { config = { ncpTest.label = \"b\"; }; autoStart = true; }; }";
    // container-legacy-layout goes to nix.conf as a boolean, where the CLI reads it.
    let legacy = "{ services.nix-container-plugin.settings.container-legacy-layout = true; }";
    let (ok, text) = run_apply_unit(&env, &host(&env, two, legacy));
    assert!(ok, "{text}");
    assert!(
        text.contains("moda: generation 1") && text.contains("modb: generation 1"),
        "{text}"
    );
    assert!(
        text.contains("moda: start") && text.contains("modb: start"),
        "{text}"
    );
    env.wait_for_mark("moda", "label", "moda-a");
    env.wait_for_mark("modb", "label", "modb-b");
    let a = env.leader("moda");

    // modb leaves the configuration: stopped, conf removed, state kept.
    let one = "{ moda = { config = { ncpTest.label = \"a\"; }; autoStart = true; }; }";
    let (ok, text) = run_apply_unit(&env, &host(&env, one, legacy));
    assert!(ok, "{text}");
    assert!(
        text.contains("modb: retire (removed from the configuration: stopped"),
        "{text}"
    );
    assert_eq!(env.mark("modb", "state"), "halted");
    assert!(!env.config_dir().join("modb.conf").exists());
    assert!(env.state_dir().join("modb").exists() && env.profile("modb").exists());
    assert_eq!(env.leader("moda"), a, "moda was not touched");
    env.cli_fails(3, &["status", "modc"]);

    // A container something else started (here: systemd-nspawn run by the
    // test, as a stock unit would) is never restarted, even when its conf
    // changed; and with nothing declared about it, apply leaves it alone.
    let r = env.eval_json(&Env::profile_expr("other", "other-a", ""));
    let booted = boot(&env, &r);
    env.eval_json(&Env::profile_expr(
        "other",
        "other-a",
        "privateUsers = \"identity\";",
    ));
    let (ok, text) = run_apply_unit(&env, &host(&env, one, legacy));
    assert!(ok, "{text}");
    assert!(!text.contains("other"), "{text}");
    let plain = env.cli_json(&["apply", "--all", "--json"]);
    let other = plain
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "other")
        .unwrap();
    assert_eq!(other["action"], "nothing", "{plain}");
    assert!(
        other["reason"]
            .as_str()
            .unwrap()
            .contains("not started by nix-container"),
        "{plain}"
    );
    assert!(booted.stop().success());
}

/// The module documents every plugin setting from the core's table (its
/// copy nix-plugin/settings.json), with the table's defaults.
#[test]
fn the_modules_settings_documentation_comes_from_the_table() {
    let env = Env::new();
    let h = host(&env, "{ }", "");
    let doc = env.eval_json(&format!(
        "let d = {h}.options.services.nix-container-plugin.settings.description; in d.text or d"
    ));
    let doc = doc.as_str().unwrap();
    for row in ncp_core::settings::TABLE {
        let line = format!("- `{}` (", row.name);
        assert!(
            doc.contains(&line),
            "{} is not documented:\n{doc}",
            row.name
        );
        assert!(doc.contains(row.default_doc), "{doc}");
    }
}

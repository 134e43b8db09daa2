//! The Nix library (nix-plugin/default.nix: config and flake routes) and the
//! NixOS module (nix-plugin/module.nix), against fixtures with the
//! interfaces of nixpkgs' eval-config and of NixOS's module system.

use std::process::Command;

use ncp_integration_tests::*;

fn library() -> String {
    format!(
        "(import {0}/nix-plugin {{ evalConfig = import {0}/tests/fixtures/eval-config.nix; }})",
        repo().display()
    )
}

#[test]
fn the_config_route_builds_a_container_from_a_configuration() {
    let env = Env::new();
    let name = "cfgroute";
    let _stop = StopOnDrop(&env, &[name]);
    let r = env.eval_json(&format!(
        "{}.fromConfig {{ name = \"{name}\"; config = {{ ncpTest.label = \"one\"; }}; autoStart = true; }}",
        library()
    ));
    assert_eq!(r["generation"], 1);
    let system = r["system"].as_str().unwrap();
    // networking.hostName defaulted to the name, boot.isContainer was set.
    assert_eq!(
        std::fs::read_to_string(format!("{system}/nixos-version")).unwrap(),
        format!("ncp-test-{name}-one")
    );
    assert!(r["conf"].as_str().unwrap().contains("AUTO_START=1"));
    assert_eq!(resolve(&env.profile(name)), system);

    // A module function overriding the default host name.
    let r2 = env.eval_json(&format!(
        "{}.fromConfig {{ name = \"{name}\"; config = {{ lib, ... }}: {{ networking.hostName = lib.mkForce \"other\"; }}; }}",
        library()
    ));
    assert_eq!(r2["generation"], 2);
    assert!(r2["system"]
        .as_str()
        .unwrap()
        .ends_with("nixos-system-ncp-test-other-none"));

    // The pure description names the same system and writes nothing.
    let before = env.tree();
    let spec = env.eval_json(&format!(
        "{}.specOfConfig {{ name = \"{name}\"; config = {{ ncpTest.label = \"one\"; }}; }}",
        library()
    ));
    assert_eq!(spec["system"], system);
    assert_eq!(env.tree(), before);

    // The conf follows the last call (generation 2 had no autoStart); with
    // autoStart back, apply --all starts it and it boots.
    env.eval_json(&format!(
        "{}.fromConfig {{ name = \"{name}\"; config = {{ ncpTest.label = \"one\"; }}; autoStart = true; }}",
        library()
    ));
    let applied = env.cli_json(&["apply", "--all", "--json"]);
    assert_eq!(applied[0]["action"], "start", "{applied}");
    env.wait_for_mark(name, "label", &format!("{name}-one"));
}

#[test]
fn the_flake_route_takes_a_container_nixos_configuration() {
    let env = Env::new();
    let fixture = format!("import {}/tests/fixtures/eval-config.nix", repo().display());
    let flake = format!(
        "{{ nixosConfigurations = {{ web = {fixture} {{ modules = [ {{ boot.isContainer = true; networking.hostName = \"flakeweb\"; }} ]; }}; \
         host = {fixture} {{ modules = [ {{ networking.hostName = \"h\"; }} ]; }}; }}; }}"
    );
    let r = env.eval_json(&format!(
        "{}.fromFlake {{ name = \"flakeweb\"; attr = \"web\"; flake = {flake}; }}",
        library()
    ));
    assert_eq!(r["generation"], 1);
    assert!(r["system"]
        .as_str()
        .unwrap()
        .ends_with("ncp-test-flakeweb-none"));
    let e = env.eval_err(&format!(
        "{}.fromFlake {{ name = \"flakehost\"; attr = \"host\"; flake = {flake}; }}",
        library()
    ));
    assert!(e.contains("does not set boot.isContainer = true"), "{e}");
    let e = env.eval_err(&format!(
        "{}.fromFlake {{ name = \"nosuch\"; flake = {flake}; }}",
        library()
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
    let bin = std::path::Path::new(nix.trim())
        .parent()
        .unwrap()
        .to_owned();
    bin.parent().unwrap().display().to_string()
}

#[test]
fn the_nixos_module_declares_its_options_and_its_hook_applies_containers() {
    let env = Env::new();
    let name = "modweb";
    let _stop = StopOnDrop(&env, &[name]);
    let mut settings = String::new();
    for (k, p) in [
        ("container-state-dir", env.state_dir()),
        ("container-config-dir", env.config_dir()),
        ("container-profiles-dir", env.profiles_dir()),
        ("container-gcroots-dir", env.gcroots_dir()),
    ] {
        settings.push_str(&format!("\"{k}\" = \"{}\"; ", p.display()));
    }
    let module = format!(
        "(import {}/tests/fixtures/nixos-module-eval.nix {{ settings = {{ enable = true; \
           plugin = \"{}\"; cli = \"{}\"; nix = \"{}\"; \
           evalConfig = import {}/tests/fixtures/eval-config.nix; settings = {{ {settings} }}; \
           containers.{name} = {{ config = {{ ncpTest.label = \"mod\"; }}; system = null; autoStart = true; extraArgs = {{ }}; }}; }}; }})",
        repo().display(),
        plugin().display(),
        cli_bin().display(),
        nix_prefix(),
        repo().display(),
    );
    let opts = env.eval_json(&format!(
        "let m = {module}; o = m.options.services.nix-container-plugin; in {{ \
           top = builtins.attrNames o; \
           per = builtins.attrNames o.containers.type.attrsOf.submodule.options; \
           enabled = m.config.condition; \
           plugins = m.config.content.nix.settings.plugin-files; \
           units = builtins.attrNames m.config.content.systemd.services; }}"
    ));
    assert_eq!(
        opts["top"],
        serde_json::json!([
            "cli",
            "containers",
            "enable",
            "evalConfig",
            "nix",
            "plugin",
            "settings"
        ])
    );
    assert_eq!(
        opts["per"],
        serde_json::json!(["autoStart", "config", "extraArgs", "system"])
    );
    assert_eq!(opts["enabled"], true);
    assert_eq!(opts["plugins"][0], plugin().display().to_string());
    assert_eq!(opts["units"], serde_json::json!(["nix-container-apply"]));

    // The unit's script, built with what it refers to, run as systemd would.
    // The CLI's own run directory comes from its environment here.
    let script = env.path("apply.sh");
    let out = Command::new("nix-build")
        .env("NIX_CONFIG", NIX_CONFIG)
        .args(["--no-out-link", "-E"])
        .arg(format!(
            "let m = {module}; in derivation {{ name = \"apply.sh\"; system = builtins.currentSystem; \
               builder = \"/bin/sh\"; text = m.config.content.systemd.services.nix-container-apply.script; \
               args = [ \"-c\" \"printf '%s' \\\"$text\\\" > $out\" ]; }}"
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::copy(String::from_utf8(out.stdout).unwrap().trim(), &script).unwrap();
    let out = Command::new("bash")
        .args(["-e"])
        .arg(&script)
        .env("NIX_CONFIG", NIX_CONFIG)
        .env("NCP_CONTAINER_RUN_DIR", env.run_dir())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains(&format!("{name}: generation 1")), "{text}");
    assert!(text.contains(&format!("{name}: start")), "{text}");
    env.wait_for_mark(name, "label", &format!("{name}-mod"));
}

//! containerProfile / containerSpec / containerGenerations through the real
//! `nix` with the built plugin: generations, GC safety, the conf file and
//! root file system, and the documentation.

use std::process::Command;

use ncp_integration_tests::*;

#[test]
fn generations_follow_nix_semantics_and_survive_gc() {
    let env = Env::new();
    let first = env.eval_json(&Env::profile_expr("web", "gen-a", ""));
    assert_eq!(first["generation"], 1);
    assert_eq!(first["changed"], true);
    let sys_a = first["system"].as_str().unwrap().to_owned();
    assert_eq!(resolve(&env.profile("web")), sys_a);

    // The same call again changes nothing.
    let again = env.eval_json(&Env::profile_expr("web", "gen-a", ""));
    assert_eq!(again["generation"], 1);
    assert_eq!(again["changed"], false);
    assert_eq!(again["systemChanged"], false);
    assert_eq!(again["confChanged"], false);

    // A new system makes generation 2.
    let second = env.eval_json(&Env::profile_expr("web", "gen-b", ""));
    assert_eq!(second["generation"], 2);
    assert_eq!(second["systemChanged"], true);
    assert_eq!(second["confChanged"], false);
    let sys_b = second["system"].as_str().unwrap().to_owned();
    assert_ne!(sys_a, sys_b);

    // Nix's own tools read the profile: both listed, 2 current.
    assert_eq!(
        nix_env_generations(&env.profile("web")),
        vec![(1, false), (2, true)]
    );
    // Byte-compatible links: system -> system-2-link (relative), links absolute.
    assert_eq!(
        std::fs::read_link(env.profile("web")).unwrap().to_str(),
        Some("system-2-link")
    );
    let link1 = env.profiles_dir().join("web/system-1-link");
    assert_eq!(
        std::fs::read_link(&link1).unwrap().to_str(),
        Some(sys_a.as_str())
    );

    // The garbage collector keeps every generation.
    let gc = Command::new("nix-store")
        .env("NIX_CONFIG", NIX_CONFIG)
        .arg("--gc")
        .output()
        .unwrap();
    assert!(
        gc.status.success(),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    for s in [&sys_a, &sys_b] {
        assert!(
            std::path::Path::new(s).join("init").exists(),
            "{s} was collected"
        );
    }

    // containerGenerations reads the same.
    let gens = env.eval_json("builtins.containerGenerations \"web\"");
    let gens = gens.as_array().unwrap();
    assert_eq!(gens.len(), 2);
    assert_eq!(gens[0]["number"], 1);
    assert_eq!(gens[0]["path"], sys_a.as_str());
    assert_eq!(gens[0]["current"], false);
    assert_eq!(gens[1]["number"], 2);
    assert_eq!(gens[1]["current"], true);
    assert!(gens[1]["creationTime"].as_i64().unwrap() > 1_600_000_000);
    assert_eq!(
        env.eval_json("builtins.containerGenerations { name = \"web\"; }")
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        env.eval_json("builtins.containerGenerations \"none\""),
        serde_json::json!([])
    );
}

#[test]
fn rollback_and_switch_to_a_generation() {
    let env = Env::new();
    let bind = r#"bindMounts."/data" = { hostPath = "/srv"; };"#;
    let a = env.eval_json(&Env::profile_expr("rb", "rb-a", bind))["system"].clone();
    let b = env.eval_json(&Env::profile_expr("rb", "rb-b", bind));
    let back = env.eval_json("builtins.containerProfile { name = \"rb\"; rollback = true; }");
    assert_eq!(back["generation"], 1);
    assert_eq!(back["system"], a);
    assert_eq!(back["systemChanged"], true);
    // A switch keeps the container's conf, and describes the container by it.
    assert_eq!(back["confChanged"], false);
    assert_eq!(back["conf"], b["conf"]);
    assert_eq!(back["nspawnArgs"], b["nspawnArgs"]);
    assert!(back["conf"]
        .as_str()
        .unwrap()
        .contains("--bind-ro=/srv:/data"));
    assert_eq!(
        nix_env_generations(&env.profile("rb")),
        vec![(1, true), (2, false)]
    );

    let fwd = env.eval_json("builtins.containerProfile { name = \"rb\"; generation = 2; }");
    assert_eq!(fwd["generation"], 2);
    assert_eq!(fwd["system"], b["system"]);
    let e = env.eval_err("builtins.containerProfile { name = \"rb\"; generation = 7; }");
    assert!(e.contains("generation 7 does not exist"), "{e}");
    let e = env.eval_err(
        "builtins.containerProfile { name = \"rb\"; rollback = true; privateNetwork = true; }",
    );
    assert!(
        e.contains(
            "attribute 'privateNetwork': cannot be combined with 'generation' or 'rollback'"
        ),
        "{e}"
    );
    let e = env.eval_err("builtins.containerSpec { name = \"rb\"; rollback = true; }");
    assert!(
        e.contains("attribute 'system': missing: containerSpec describes"),
        "{e}"
    );

    // Setting the same system as the newest generation adds none.
    let same = env.eval_json(&Env::profile_expr("rb", "rb-b", bind));
    assert_eq!(same["generation"], 2);
    assert_eq!(same["changed"], false);
    assert_eq!(nix_env_generations(&env.profile("rb")).len(), 2);
}

#[test]
fn writes_the_nixos_layout_below_the_configured_roots() {
    let env = Env::new();
    let r = env.eval_json(&Env::profile_expr(
        "lay",
        "lay",
        r#"privateNetwork = true; hostAddress = "10.231.136.1"; localAddress = "10.231.136.2";
           bindMounts."/data" = { hostPath = "/srv/data"; isReadOnly = false; };
           forwardPorts = [ { hostPort = 8080; containerPort = 80; } ]; autoStart = true;"#,
    ));
    let root = env.state_dir().join("lay");
    assert_eq!(r["root"], root.display().to_string());
    assert_eq!(
        r["configFile"],
        env.config_dir().join("lay.conf").display().to_string()
    );
    assert_eq!(r["profile"], env.profile("lay").display().to_string());
    assert_eq!(
        r["gcrootsDir"],
        env.gcroots_dir().join("lay").display().to_string()
    );
    assert_eq!(r["unit"], "container@lay.service");

    let conf = std::fs::read_to_string(env.config_dir().join("lay.conf")).unwrap();
    assert_eq!(r["conf"], conf.as_str());
    for line in [
        "COPY_RESOLV_CONF=1\n",
        "PRIVATE_NETWORK=1\n",
        "HOST_PORT=tcp:8080:80\n",
        "HOST_ADDRESS=10.231.136.1\n",
        "LOCAL_ADDRESS=10.231.136.2\n",
        "PRIVATE_USERS=no\n",
        "INTERFACES=\"\"\n",
        "AUTO_START=1\n",
        "EXTRA_NSPAWN_FLAGS=\" --bind=/srv/data:/data\"\n",
    ] {
        assert!(conf.contains(line), "{line:?} missing from\n{conf}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |p: &std::path::Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&root.join("etc")), 0o755);
    assert_eq!(mode(&root.join("var/lib/private")), 0o700);
    assert_eq!(mode(&root.join("root")), 0o700);
    assert!(root.join("usr/bin").is_dir());
    assert!(root.join("etc/os-release").exists() && root.join("etc/machine-id").exists());
    assert!(
        root.join("etc/resolv.conf").exists() || !std::path::Path::new("/etc/resolv.conf").exists()
    );
    assert_eq!(mode(&env.profiles_dir()), 0o700);
    assert_eq!(mode(&env.profiles_dir().join("lay")), 0o755);
    assert_eq!(mode(&env.gcroots_dir().join("lay")), 0o755);

    let argv: Vec<&str> = r["nspawnArgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        &argv[..6],
        [
            "systemd-nspawn",
            "--keep-unit",
            "-M",
            "lay",
            "-D",
            root.to_str().unwrap()
        ]
    );
    let state = nix_state_dir().display().to_string();
    let profile_bind = format!(
        "--bind={}:{state}/profiles",
        env.profiles_dir().join("lay").display()
    );
    let store_bind = format!("--bind-ro={0}:{0}", store_dir());
    for a in [
        "--private-network",
        "--network-veth",
        "--port=tcp:8080:80",
        profile_bind.as_str(),
        store_bind.as_str(),
        "--bind=/srv/data:/data",
    ] {
        assert!(argv.contains(&a), "{a} missing from {argv:?}");
    }
    assert_eq!(
        argv.last(),
        Some(&format!("{state}/profiles/system/init").as_str())
    );

    // A conf change alone is reported as such.
    let r2 = env.eval_json(&Env::profile_expr("lay", "lay", "privateNetwork = true;"));
    assert_eq!(
        (
            r2["changed"].clone(),
            r2["systemChanged"].clone(),
            r2["confChanged"].clone()
        ),
        (true.into(), false.into(), true.into())
    );
}

#[test]
fn spec_equals_profile_and_is_pure() {
    let env = Env::new();
    let extra = r#"bindMounts."/ro" = {}; tmpfs = [ "/var/tmp" ]; extraFlags = [ "--drop-capability=CAP_SYS_CHROOT" ];"#;
    let profile = env.eval_json(&Env::profile_expr("same", "same", extra));
    let spec_expr = format!(
        "builtins.containerSpec {{ name = \"same\"; system = {}; {extra} }}",
        system_expr("same")
    );
    let spec = env.eval_json(&spec_expr);
    let spec = spec.as_object().unwrap();
    for (k, v) in spec {
        assert_eq!(&profile[k], v, "attribute {k} differs");
    }
    for k in ["generation", "changed", "systemChanged", "confChanged"] {
        assert!(!spec.contains_key(k) && profile.get(k).is_some(), "{k}");
    }
    assert_eq!(spec.len() + 4, profile.as_object().unwrap().len());

    // Pure mode: a derivation that is never built, nothing written.
    let fresh = Env::new();
    let pure = "(builtins.containerSpec { name = \"pure\"; system = derivation { name = \"s\"; system = \"x86_64-linux\"; builder = \"/bin/sh\"; }; }).nspawnArgs";
    let out = fresh.nix_eval(&["--json"], pure);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        fresh.tree().is_empty(),
        "containerSpec wrote {:?}",
        fresh.tree()
    );
}

#[test]
fn settings_come_from_nix_conf_too() {
    let env = Env::new();
    // No --plugin-files, no --option: plugin and roots come from NIX_CONFIG
    // (as from nix.conf), which Nix re-applies once the plugin has
    // registered its settings.
    let conf = format!(
        "{NIX_CONFIG}plugin-files = {}\ncontainer-state-dir = {}\ncontainer-config-dir = {}\ncontainer-profiles-dir = {}\ncontainer-gcroots-dir = {}\n",
        plugin().display(),
        env.state_dir().display(),
        env.config_dir().display(),
        env.profiles_dir().display(),
        env.gcroots_dir().display()
    );
    let out = Command::new("nix")
        .env("NIX_CONFIG", &conf)
        .args(["eval", "--impure", "--json", "--expr"])
        .arg(format!(
            "({}).generation",
            Env::profile_expr("conf", "conf", "")
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    assert!(env.profile("conf").exists());
    assert!(env.config_dir().join("conf.conf").exists());

    // nix-instantiate loads it the same way; its --eval is read-only, where
    // containerSpec works and containerProfile says what to use instead.
    let inst = |expr: String| {
        Command::new("nix-instantiate")
            .env("NIX_CONFIG", &conf)
            .args(["--eval", "--strict", "-E"])
            .arg(expr)
            .output()
            .unwrap()
    };
    let spec = inst(format!(
        "(builtins.containerSpec {{ name = \"conf\"; system = {}; }}).root",
        system_expr("conf")
    ));
    assert!(
        spec.status.success(),
        "{}",
        String::from_utf8_lossy(&spec.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&spec.stdout).trim(),
        format!("\"{}\"", env.state_dir().join("conf").display())
    );
    let ro = inst(Env::profile_expr("conf", "conf", ""));
    assert_eq!(ro.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&ro.stderr).contains("read-only evaluation"),
        "{}",
        String::from_utf8_lossy(&ro.stderr)
    );
}

#[test]
fn documentation_is_reachable_from_the_repl() {
    for (builtin, words) in [
        (
            "containerProfile",
            "current generation of the system profile",
        ),
        ("containerSpec", "without building or writing anything"),
        ("containerGenerations", "--list-generations"),
    ] {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo ':doc builtins.{builtin}' | nix --plugin-files {} repl",
                plugin().display()
            ))
            .env("NIX_CONFIG", NIX_CONFIG)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        // Newer Nix renders the Markdown and wraps its lines.
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains(words),
            ":doc builtins.{builtin} printed:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The settings Nix knows once the plugin is loaded are the core's table,
/// with its defaults (cpp/settings.cc registers them from it).
#[test]
fn the_plugin_registers_exactly_the_settings_of_the_table() {
    let shown = ["config show", "show-config"].iter().find_map(|sub| {
        let mut c = Command::new("nix");
        c.env("NIX_CONFIG", "experimental-features = nix-command")
            .arg("--plugin-files")
            .arg(plugin())
            .args(sub.split(' '))
            .arg("--json");
        let out = c.output().unwrap();
        out.status
            .success()
            .then(|| serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap())
    });
    let shown = shown.expect("neither `nix config show` nor `nix show-config` ran");
    let mut registered: Vec<(String, String)> = shown
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("container-"))
        .map(|(k, v)| {
            let d = &v["defaultValue"];
            (
                k.clone(),
                d.as_str().map_or_else(|| d.to_string(), str::to_owned),
            )
        })
        .collect();
    registered.sort();
    let mut table: Vec<(String, String)> = ncp_core::settings::TABLE
        .iter()
        .map(|r| (r.name.to_owned(), r.default.to_owned()))
        .collect();
    table.sort();
    assert_eq!(registered, table);
}

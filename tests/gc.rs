//! The plugin's values under Boehm GC pressure (issue 12 item 7): a
//! builtin that kept the only pointer to a new Value in memory the
//! collector does not scan (a std::vector) lost it to a collection at the
//! wrong moment. With a tiny initial heap (GC_INITIAL_HEAP_SIZE) every
//! builtin is called thousands of times in one evaluation and every
//! attribute of every result is read back.

use ncp_integration_tests::*;

fn eval_under_pressure(env: &Env, expr: &str) -> String {
    let out = env
        .nix_eval_cmd(&["--impure"], expr)
        .env("GC_INITIAL_HEAP_SIZE", "1000000")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{expr}\nexit {:?}:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn container_generations_survives_collections() {
    let env = Env::new();
    let r = env.eval_json(&Env::profile_expr("g", "gc-a", ""));
    let sys = r["system"].as_str().unwrap();
    let dir = env.profiles_dir().join("g");
    for n in 2..=400 {
        std::os::unix::fs::symlink(sys, dir.join(format!("system-{n}-link"))).unwrap();
    }
    let expr = "let all = builtins.concatLists (builtins.genList (_: builtins.containerGenerations \"g\") 60); \
                in builtins.length (builtins.filter (g: g.number > 0 && g.path != \"\" && g.link != \"\" \
                   && builtins.isBool g.current && g.creationTime > 0) all)";
    for _ in 0..5 {
        assert_eq!(eval_under_pressure(&env, expr), "24000");
    }
}

#[test]
fn every_builtin_survives_collections() {
    let env = Env::new();
    let r = env.eval_json(&Env::profile_expr("s", "gc-s", ""));
    let sys = r["system"].as_str().unwrap();
    // containerProfile (its no-op answer: no write, a full result),
    // containerSpec and the lazy nspawnArgs of both, each read back.
    let expr = format!(
        "let args = i: {{ name = \"s\"; system = \"{sys}\"; bindMounts.\"/m${{toString i}}\" = {{ }}; }}; \
             check = x: x.name == \"s\" && x.system == \"{sys}\" && builtins.length x.nspawnArgs > 20 \
               && builtins.isString x.conf && x.unit == \"container@s.service\" && x.nspawnEnv ? SYSTEMD_NSPAWN_UNIFIED_HIERARCHY; \
             profiles = builtins.genList (_: builtins.containerProfile {{ name = \"s\"; system = \"{sys}\"; }}) 1500; \
             specs = builtins.genList (i: builtins.containerSpec (args i)) 1500; \
         in builtins.length (builtins.filter check (profiles ++ specs))"
    );
    for _ in 0..3 {
        assert_eq!(eval_under_pressure(&env, &expr), "3000");
    }
}

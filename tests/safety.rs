//! What the plugin refuses, through the real `nix`: impure builtins in pure
//! and restricted mode, bad names, bad types, bad systems, values that could
//! inject conf keys or nspawn arguments, symlinks planted in a container root,
//! a Nix of another version. Every refusal is exit code 1 with an error that
//! names the attribute at the call's position, and writes nothing.
//! Concurrency, crashes and the malformed-call corpus: reliability.rs.

use std::process::Command;

use ncp_integration_tests::*;

const RULE_START: &str = "A container name is 1 to 11 characters from a-z, 0-9 and '-'";

/// Expects `expr` to fail with every one of `needles` in the error, at the
/// call's position, having written nothing.
fn refused(expr: &str, needles: &[&str]) {
    let env = Env::new();
    let err = env.eval_err(expr);
    for n in needles {
        assert!(err.contains(n), "error for {expr} lacks {n:?}:\n{err}");
    }
    assert!(
        err.contains("«string»:1:"),
        "no position in error for {expr}:\n{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
    assert!(env.tree().is_empty(), "{expr} wrote {:?}", env.tree());
}

#[test]
fn pure_and_restricted_modes_refuse_side_effects() {
    let env = Env::new();
    let e = env.eval_err_with(&[], &Env::profile_expr("p", "p", ""));
    assert!(
        e.contains("not available in pure evaluation mode") && e.contains("--impure"),
        "{e}"
    );
    let e = env.eval_err_with(&[], "builtins.containerGenerations \"p\"");
    assert!(e.contains("pure evaluation mode"), "{e}");
    let e = env.eval_err_with(
        &["--impure", "--option", "restrict-eval", "true"],
        &format!("builtins.containerProfile {{ name = \"p\"; system = \"{}/0123456789abcdfghijklmnpqrsvwxyz-s\"; }}", store_dir()),
    );
    assert!(
        e.contains("restricted evaluation mode") && e.contains("restrict-eval"),
        "{e}"
    );
    assert!(env.tree().is_empty(), "{:?}", env.tree());
}

#[test]
fn bad_names_are_refused_with_the_rule() {
    for (name, problem) in [
        ("", "it is empty"),
        ("abcdefghijkl", "it is 12 bytes long, more than 11"),
        ("..", "it contains the character '.'"),
        ("a/b", "it contains '/'"),
        ("-web", "it starts with '-'"),
        ("Web", "it contains the upper-case letter 'W'"),
        ("web_1", "it contains '_'"),
        ("café", "it contains non-ASCII characters"),
        ("a b", "it contains the character ' '"),
        ("1web", "it does not start with a letter"),
    ] {
        let expr = format!(
            "builtins.containerProfile {{ name = \"{name}\"; system = {}; }}",
            system_expr("names")
        );
        refused(
            &expr,
            &[
                &format!("invalid container name {name:?}"),
                problem,
                RULE_START,
            ],
        );
    }
}

#[test]
fn wrong_types_and_attributes_are_named() {
    let sys = system_expr("types");
    for (args, needles) in [
        (format!("name = 1; system = {sys};"), vec!["attribute 'name'", "invalid type"]),
        ("name = \"a\"; system = 1;".to_owned(), vec!["attribute 'system'", "invalid type"]),
        (format!("name = \"a\"; system = {sys}; privateNetwork = \"yes\";"), vec!["attribute 'privateNetwork'", "expected a boolean"]),
        (format!("name = \"a\"; system = {sys}; bindMounts = [ ];"), vec!["attribute 'bindMounts'", "invalid type: list"]),
        (format!("name = \"a\"; system = {sys}; privateNetwork = true; forwardPorts = [ {{ hostPort = \"80\"; }} ];"), vec!["attribute 'forwardPorts[0].hostPort'"]),
        (format!("name = \"a\"; system = {sys}; privateNetwok = true;"), vec!["unknown attribute `privateNetwok`"]),
        (format!("name = \"a\"; system = {sys}; bindMounts.\"/d\".hostPth = \"/x\";"), vec!["attribute 'bindMounts./d.hostPth'", "unknown attribute `hostPth`"]),
        (format!("system = {sys};"), vec!["missing attribute `name`"]),
        ("name = \"a\";".to_owned(), vec!["attribute 'system': missing"]),
        (format!("name = \"a\"; system = {sys}; generation = 2;"), vec!["attribute 'system'", "exclude each other"]),
        (format!("name = \"a\"; system = {sys}; extraFlags = x: x;"), vec!["cannot pass a function"]),
        (
            format!("name = \"a\"; system = {sys}; extraFlags = let f = n: if n == 0 then [ ] else [ (f (n - 1)) ]; in f 1000;"),
            vec!["nested more than 32 levels deep"],
        ),
        (format!("name = \"a\"; system = {sys}; hostAddress = \"10.0.0.1\";"), vec!["attribute 'hostAddress': only has an effect with privateNetwork = true"]),
    ] {
        refused(&format!("builtins.containerProfile {{ {args} }}"), &needles.iter().map(|s| &**s).collect::<Vec<_>>());
    }
    // Nix's own type error; its wording differs between versions.
    refused("builtins.containerProfile \"web\"", &["set", "string"]);
}

#[test]
fn systems_must_be_nixos_systems_in_the_store() {
    refused(
        "builtins.containerProfile { name = \"a\"; system = \"/tmp/x\"; }",
        &[
            "attribute 'system'",
            "is not a store path",
            &format!("not in {}", store_dir()),
        ],
    );
    refused(
        &format!("builtins.containerProfile {{ name = \"a\"; system = \"{}/0123456789abcdfghijklmnpqrsvwxyz-nowhere\"; }}", store_dir()),
        &["attribute 'system'", "is not in the Nix store"],
    );
    refused(
        &format!(
            "builtins.containerProfile {{ name = \"a\"; system = \"${{{}}}/init\"; }}",
            system_expr("sub")
        ),
        &["attribute 'system'", "names a file inside a store path"],
    );
    let no_init = "derivation { name = \"not-nixos\"; system = builtins.currentSystem; builder = \"/bin/busybox\"; args = [ \"mkdir\" (placeholder \"out\") ]; }";
    let env = Env::new();
    let e = env.eval_err(&format!(
        "builtins.containerProfile {{ name = \"a\"; system = {no_init}; }}"
    ));
    assert!(
        e.contains("does not look like a NixOS system: it has no 'init'"),
        "{e}"
    );
    assert!(env.tree().is_empty(), "{:?}", env.tree());
}

#[test]
fn values_cannot_inject_keys_or_arguments() {
    let sys = system_expr("inject");
    for (args, attr) in [
        (
            "privateNetwork = true; hostAddress = \"10.0.0.1\\nPRIVATE_NETWORK=0\";",
            "hostAddress",
        ),
        (
            "privateNetwork = true; hostBridge = \"br0 --privileged\";",
            "hostBridge",
        ),
        (
            "bindMounts.\"/d\".hostPath = \"/srv\\n--bind=/:/host\";",
            "bindMounts./d.hostPath",
        ),
        ("bindMounts.\"/d x\" = { };", "bindMounts./d x.mountPoint"),
        (
            "extraFlags = [ \"--bind=/etc:/e --capability=all\" ];",
            "extraFlags[0]",
        ),
        (
            "extraFlags = [ \"--setenv=A=\\\"b\\\"\" ];",
            "extraFlags[0]",
        ),
        ("extraFlags = [ \"--bind=/$HOME\" ];", "extraFlags[0]"),
        ("extraFlags = [ \"--bind=/*\" ];", "extraFlags[0]"),
        ("tmpfs = [ \"/var\\tx\" ];", "tmpfs[0]"),
        ("interfaces = [ \"eth0 eth1\" ];", "interfaces[0]"),
        ("privateUsers = \"pick\\nAUTO_START=1\";", "privateUsers"),
    ] {
        refused(
            &format!("builtins.containerProfile {{ name = \"a\"; system = {sys}; {args} }}"),
            &[&format!("attribute '{attr}'")],
        );
    }
}

#[test]
fn symlinks_planted_in_a_root_are_refused() {
    for planted in ["etc", "var/lib", "root", "usr"] {
        let env = Env::new();
        let outside = env.path("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let link = env.state_dir().join("evil").join(planted);
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let e = env.eval_err(&Env::profile_expr("evil", "evil", ""));
        assert!(
            e.contains("it is a symlink") && e.contains(&link.display().to_string()),
            "{e}"
        );
        assert_eq!(
            std::fs::read_dir(&outside).unwrap().count(),
            0,
            "{planted}: wrote outside the root"
        );
        assert!(
            !env.config_dir().join("evil.conf").exists(),
            "{planted}: conf written"
        );
        assert!(!env.profile("evil").exists(), "{planted}: profile written");
    }
    // A symlinked container root itself.
    let env = Env::new();
    std::fs::create_dir_all(env.state_dir()).unwrap();
    std::fs::create_dir_all(env.path("elsewhere")).unwrap();
    std::os::unix::fs::symlink(env.path("elsewhere"), env.state_dir().join("evil")).unwrap();
    let e = env.eval_err(&Env::profile_expr("evil", "evil", ""));
    assert!(e.contains("it is a symlink"), "{e}");
    assert_eq!(std::fs::read_dir(env.path("elsewhere")).unwrap().count(), 0);
}

/// Loads `file` into the Nix under test; returns (has builtins, stderr).
fn load(file: &std::path::Path) -> (bool, String) {
    let out = Command::new("nix")
        .env("NIX_CONFIG", NIX_CONFIG)
        .arg("--plugin-files")
        .arg(file)
        .args(["eval", "--expr", "builtins ? containerProfile"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (
        String::from_utf8_lossy(&out.stdout).trim() == "true",
        stderr,
    )
}

#[test]
fn the_plugin_of_another_real_nix_version_declines() {
    // scripts/test.sh (all versions) builds the plugin for each Nix and Lix
    // first and hands each run the others (NCP_OTHER_PLUGIN, ':'-separated):
    // a plugin built for Nix declines in Lix, and the other way round.
    let Some(others) = std::env::var_os("NCP_OTHER_PLUGIN") else {
        eprintln!("NCP_OTHER_PLUGIN not set: only one Nix version built");
        return;
    };
    for other in std::env::split_paths(&others) {
        let (loaded, stderr) = load(&other);
        assert!(!loaded, "{}", other.display());
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!("but this is {} 2.", nix_name()))
                && stderr.contains("its builtins are not available")
                && stderr.contains(&format!("rebuild it against this {}", nix_name())),
            "{stderr}"
        );
    }
}

#[test]
fn another_nix_version_gets_one_line_and_no_builtins() {
    let wrong = plugin().with_file_name("nix-container-plugin-wrong-nix.so");
    let out = Command::new("nix")
        .env("NIX_CONFIG", NIX_CONFIG)
        .arg("--plugin-files")
        .arg(&wrong)
        .args(["eval", "--expr", "builtins ? containerProfile"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "false");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "built for {n} 0.0.0-not-this-nix, but this is {n} 2.",
            n = nix_name()
        )),
        "{stderr}"
    );
    // The right one loads.
    let ok = Command::new("nix")
        .env("NIX_CONFIG", NIX_CONFIG)
        .arg("--plugin-files")
        .arg(plugin())
        .args(["eval", "--expr", "builtins ? containerProfile"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        "true",
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

//! End to end: containerProfile prepares a container, systemd-nspawn boots it
//! with exactly the argv the plugin rendered, and the container's own init
//! reports from inside what it sees.

use ncp_integration_tests::*;

#[test]
fn a_prepared_container_boots_with_the_rendered_argv() {
    let env = Env::new();
    let first = env.eval_json(&Env::profile_expr("boot1", "boot-a", ""));
    let second = env.eval_json(&Env::profile_expr("boot1", "boot-b", ""));
    assert_eq!(second["generation"], 2);
    let system = second["system"].as_str().unwrap();

    let c = boot(&env, &second);
    assert_eq!(
        c.mark("pid"),
        "1",
        "the system's init is the container's PID 1"
    );
    assert_eq!(c.mark("store"), "ro", "/nix/store is read-only inside");
    assert_eq!(
        c.mark("system"),
        system,
        "/nix/var/nix/profiles/system inside is the current generation"
    );
    assert_eq!(c.mark("label"), "boot-b");
    let status = c.stop();
    assert!(status.success(), "systemd-nspawn exited with {status}");
    assert_eq!(
        std::fs::read_to_string(env.state_dir().join("boot1/var/lib/ncp-test/state"))
            .unwrap()
            .trim(),
        "halted"
    );

    // Rolling the profile back is what decides the next boot.
    let back = env.eval_json("builtins.containerProfile { name = \"boot1\"; rollback = true; }");
    assert_eq!(back["system"], first["system"]);
    let c = boot(&env, &back);
    assert_eq!(c.mark("system"), first["system"].as_str().unwrap());
    assert_eq!(c.mark("label"), "boot-a");
    assert!(c.stop().success());
}

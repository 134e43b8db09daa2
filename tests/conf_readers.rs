//! Every value the plugin writes to a conf file reads back the same to each
//! of its readers (issue 12 item 8): bash and dash when they source it
//! (`set -a; . FILE`), nixos-container's own `^KEY=(.*)$` reader, and our
//! own parser (systemd's EnvironmentFile= is checked under a real systemd
//! in tests/systemd.rs). Nothing written can run a command in a shell that
//! sources it.

use std::collections::BTreeMap;
use std::process::Command;

use ncp_integration_tests::*;

/// What we meant: KEY=VALUE lines, one pair of double quotes removed.
fn intended(conf: &str) -> BTreeMap<String, String> {
    conf.lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn sourced_by(shell: &str, file: &std::path::Path, keys: &[String]) -> BTreeMap<String, String> {
    let print: String = keys
        .iter()
        .map(|k| format!("printf '%s=%s\\n' {k} \"${k}\"; "))
        .collect();
    let out = Command::new(shell)
        .args(["-c", &format!("set -a; . {}; {print}", file.display())])
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{shell}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

#[test]
fn every_written_value_reads_the_same_to_every_reader() {
    let env = Env::new();
    let data = env.path("data");
    std::fs::create_dir(&data).unwrap();
    let r = env.eval_json(&Env::profile_expr(
        "readers",
        "readers",
        &format!(
            "privateNetwork = true; hostAddress = \"10.231.5.1\"; localAddress = \"10.231.5.2/24\"; \
             hostAddress6 = \"fc00::1\"; localAddress6 = \"fc00::2/64\"; localMacAddress = \"02:de:ad:be:ef:01\"; \
             forwardPorts = [ {{ hostPort = 8080; containerPort = 80; }} {{ protocol = \"udp\"; hostPort = 53; }} ]; \
             bindMounts.\"/srv/a-b_c.d\" = {{ hostPath = \"{}\"; isReadOnly = false; }}; \
             bindMounts.\"/ro\" = {{ }}; tmpfs = [ \"/var/x:mode=0755,size=10%\" ]; \
             macvlans = [ \"eth1\" \"mv-a.b\" ]; additionalCapabilities = [ \"CAP_NET_ADMIN\" ]; \
             extraFlags = [ \"--property=CPUQuota=50%\" \"--setenv=A=b@c+d,e\" ]; autoStart = true; privateUsers = 65536;",
            data.display()
        ),
    ));
    let conf_file = std::path::Path::new(r["configFile"].as_str().unwrap());
    let text = std::fs::read_to_string(conf_file).unwrap();
    let want = intended(&text);
    assert_eq!(want.len(), 13, "{text}");
    let keys: Vec<String> = want.keys().cloned().collect();
    for shell in ["bash", "dash"] {
        assert_eq!(
            sourced_by(shell, conf_file, &keys),
            want,
            "{shell} reads {text}"
        );
    }
    // nixos-container reads values by /^KEY=(.*)$/ with no quote removal;
    // the keys it reads are written bare.
    let out = Command::new("perl")
        .args(["-ne", "print \"$1=$2\\n\" if /^([A-Z_0-9]+)=(.*)$/"])
        .arg(conf_file)
        .output()
        .unwrap();
    let perl: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    for k in [
        "HOST_ADDRESS",
        "LOCAL_ADDRESS",
        "LOCAL_ADDRESS6",
        "HOST_BRIDGE",
        "HOST_PORT",
        "AUTO_START",
    ] {
        assert_eq!(perl.get(k), want.get(k), "{k}");
    }
}

#[test]
fn values_a_shell_would_run_are_refused_before_anything_is_written() {
    let sys = system_expr("readers");
    for (attr, args) in [
        (
            "hostBridge",
            "privateNetwork = true; hostBridge = \"br0;touch/x\";",
        ),
        (
            "hostBridge",
            "privateNetwork = true; hostBridge = \"br0|id\";",
        ),
        (
            "networkNamespace",
            "networkNamespace = \"/run/netns/a&&id\";",
        ),
        (
            "networkNamespace",
            "networkNamespace = \"/run/netns/$(id)\";",
        ),
        ("networkNamespace", "networkNamespace = \"/run/netns/a>b\";"),
        ("extraFlags[0]", "extraFlags = [ \"--x=(a)\" ];"),
        (
            "bindMounts./a/../etc.mountPoint",
            "bindMounts.\"/a/../etc\" = { };",
        ),
        ("interfaces[0]", "interfaces = [ \"a~b\" ];"),
    ] {
        let env = Env::new();
        let e = env.eval_err(&format!(
            "builtins.containerProfile {{ name = \"inj\"; system = {sys}; {args} }}"
        ));
        assert!(e.contains(&format!("attribute '{attr}'")), "{args}: {e}");
        assert!(env.tree().is_empty(), "{args} wrote {:?}", env.tree());
    }
}

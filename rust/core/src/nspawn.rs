//! The systemd-nspawn command line that NixOS's generic container@.service
//! start script builds from a conf file, rendered here so that the plugin can
//! return it and the runtime can run it. One function of (conf, layout).

use crate::conf::Conf;
use crate::layout::{Layout, Roots};

pub const PROGRAM: &str = "systemd-nspawn";

/// Environment the start script exports for systemd-nspawn.
pub const ENV: &[(&str, &str)] = &[("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1")];

/// Keys the start script passes into the container with --setenv.
const SETENV_KEYS: &[&str] = &[
    "PRIVATE_NETWORK",
    "PRIVATE_USERS",
    "HOST_BRIDGE",
    "HOST_ADDRESS",
    "LOCAL_ADDRESS",
    "HOST_ADDRESS6",
    "LOCAL_ADDRESS6",
    "LOCAL_MAC_ADDRESS",
    "HOST_PORT",
];

/// The full argv, program first.
pub fn argv(conf: &Conf, roots: &Roots, layout: &Layout) -> Vec<String> {
    let d = |p: &std::path::Path| p.display().to_string();
    let mut a: Vec<String> = vec![
        PROGRAM.into(),
        "--keep-unit".into(),
        "-M".into(),
        layout.name.clone(),
        "-D".into(),
        d(&layout.root),
    ];

    if conf.value("PRIVATE_NETWORK") == "1" {
        a.push("--private-network".into());
    }
    // With a user namespace, /nix binds get idmapped so that they keep their owners.
    let mut bind_opt = "";
    let users = conf.value("PRIVATE_USERS");
    if !users.is_empty() {
        a.push(format!("--private-users={users}"));
        if users == "pick" || users.parse::<u64>().is_ok_and(|n| n > 0) {
            bind_opt = ":idmap";
        }
    }
    if [
        "HOST_ADDRESS",
        "LOCAL_ADDRESS",
        "HOST_ADDRESS6",
        "LOCAL_ADDRESS6",
        "LOCAL_MAC_ADDRESS",
    ]
    .iter()
    .any(|k| !conf.value(k).is_empty())
    {
        a.push("--network-veth".into());
    }
    for p in conf.value("HOST_PORT").split(',').filter(|p| !p.is_empty()) {
        a.push(format!("--port={p}"));
    }
    for (key, flag) in [
        ("HOST_BRIDGE", "--network-bridge"),
        ("NETWORK_NAMESPACE_PATH", "--network-namespace-path"),
    ] {
        let v = conf.value(key);
        if !v.is_empty() {
            a.push(format!("{flag}={v}"));
        }
    }
    for iface in conf.words("INTERFACES") {
        a.push(format!("--network-interface={iface}"));
    }
    for iface in conf.words("MACVLANS") {
        a.push(format!("--network-macvlan={iface}"));
    }

    let store = d(&roots.store_dir);
    let state = d(&roots.nix_state_dir);
    a.extend([
        "--notify-ready=yes".into(),
        "--kill-signal=SIGRTMIN+3".into(),
        format!("--bind-ro={store}:{store}{bind_opt}"),
        format!("--bind-ro={state}/db:{state}/db{bind_opt}"),
        format!("--bind-ro={state}/daemon-socket:{state}/daemon-socket{bind_opt}"),
        format!(
            "--bind={}:{}{bind_opt}",
            d(&layout.profile_dir),
            d(&roots.inner_profiles())
        ),
        format!(
            "--bind={}:{}{bind_opt}",
            d(&layout.gcroots_dir),
            d(&roots.inner_gcroots())
        ),
        "--link-journal=try-guest".into(),
    ]);
    for k in SETENV_KEYS {
        a.push("--setenv".into());
        a.push(format!("{k}={}", conf.value(k)));
    }
    a.extend(
        conf.words("EXTRA_NSPAWN_FLAGS")
            .into_iter()
            .map(String::from),
    );
    a.push(d(&roots.inner_init()));
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Settings;

    fn roots() -> Roots {
        Roots::resolve(&Settings::default()).unwrap()
    }

    #[test]
    fn default_invocation_is_nixos_generic_unit() {
        let r = roots();
        let l = r.container("web");
        let mut c = Conf::default();
        c.set("x", "PRIVATE_USERS", "no".into()).unwrap();
        c.set(
            "x",
            "EXTRA_NSPAWN_FLAGS",
            " --bind-ro=/srv:/srv --ephemeral".into(),
        )
        .unwrap();
        let a = argv(&c, &r, &l);
        let expect: Vec<&str> = vec![
            "systemd-nspawn",
            "--keep-unit",
            "-M",
            "web",
            "-D",
            "/var/lib/nixos-containers/web",
            "--private-users=no",
            "--notify-ready=yes",
            "--kill-signal=SIGRTMIN+3",
            "--bind-ro=/nix/store:/nix/store",
            "--bind-ro=/nix/var/nix/db:/nix/var/nix/db",
            "--bind-ro=/nix/var/nix/daemon-socket:/nix/var/nix/daemon-socket",
            "--bind=/nix/var/nix/profiles/per-container/web:/nix/var/nix/profiles",
            "--bind=/nix/var/nix/gcroots/per-container/web:/nix/var/nix/gcroots",
            "--link-journal=try-guest",
            "--setenv",
            "PRIVATE_NETWORK=",
            "--setenv",
            "PRIVATE_USERS=no",
            "--setenv",
            "HOST_BRIDGE=",
            "--setenv",
            "HOST_ADDRESS=",
            "--setenv",
            "LOCAL_ADDRESS=",
            "--setenv",
            "HOST_ADDRESS6=",
            "--setenv",
            "LOCAL_ADDRESS6=",
            "--setenv",
            "LOCAL_MAC_ADDRESS=",
            "--setenv",
            "HOST_PORT=",
            "--bind-ro=/srv:/srv",
            "--ephemeral",
            "/nix/var/nix/profiles/system/init",
        ];
        assert_eq!(a, expect);
    }

    #[test]
    fn network_and_idmap_flags() {
        let r = roots();
        let l = r.container("db");
        let mut c = Conf::default();
        for (k, v) in [
            ("PRIVATE_NETWORK", "1"),
            ("PRIVATE_USERS", "pick"),
            ("HOST_ADDRESS", "10.0.0.1"),
            ("HOST_PORT", "tcp:80:80,udp:53:53"),
            ("INTERFACES", "eth1 eth2"),
            ("MACVLANS", "eth3"),
        ] {
            c.set("x", k, v.into()).unwrap();
        }
        let a = argv(&c, &r, &l);
        let pos = |s: &str| {
            a.iter()
                .position(|x| x == s)
                .unwrap_or_else(|| panic!("{s} missing in {a:?}"))
        };
        assert!(pos("--private-network") < pos("--private-users=pick"));
        assert!(pos("--network-veth") < pos("--port=tcp:80:80"));
        assert!(pos("--port=udp:53:53") < pos("--network-interface=eth1"));
        pos("--network-interface=eth2");
        pos("--network-macvlan=eth3");
        pos("--bind-ro=/nix/store:/nix/store:idmap");
        pos("--bind=/nix/var/nix/profiles/per-container/db:/nix/var/nix/profiles:idmap");
    }
}

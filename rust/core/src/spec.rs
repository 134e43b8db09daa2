//! From the call's arguments to a checked container description: the target
//! generation and the conf file. Every rule here names the attribute it guards.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::args::Args;
use crate::conf::{check_word, Conf};
use crate::error::{Error, Result};
use crate::{name, store_path};

/// What the container's system profile should point at afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A store path: becomes the newest generation (unless it already is).
    System(String),
    /// An existing generation number.
    Generation(u64),
    /// The generation before the current one.
    Rollback,
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub target: Target,
    /// For `Target::System`; a switch keeps the conf file the container has.
    pub conf: Conf,
}

fn attr_err<T>(attr: &str, msg: impl Into<String>) -> Result<T> {
    Err(Error::attr(attr, msg))
}

/// `ADDR`, or for a local address `ADDR/PREFIX`, as NixOS passes to `ip
/// addr add`. A host address is also the container's gateway (`ip route add
/// default via HOST_ADDRESS` in NixOS's init wrapper), so it takes no prefix.
fn check_address(attr: &str, v: &str, v6: bool, prefix_allowed: bool) -> Result<()> {
    let (addr, prefix) = match v.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (v, None),
    };
    if prefix.is_some() && !prefix_allowed {
        return attr_err(
            attr,
            format!("{v:?} has a prefix length; the host address is also the container's gateway, give it without /PREFIX"),
        );
    }
    let (ok, max) = if v6 {
        (addr.parse::<Ipv6Addr>().is_ok(), 128)
    } else {
        (addr.parse::<Ipv4Addr>().is_ok(), 32)
    };
    let prefix_ok =
        prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|n| n <= max) && !p.starts_with('+'));
    if ok && prefix_ok {
        Ok(())
    } else {
        let kind = if v6 { "IPv6" } else { "IPv4" };
        attr_err(
            attr,
            format!("{v:?} is not an {kind} address (optionally with /PREFIX up to {max})"),
        )
    }
}

fn check_mac(attr: &str, v: &str) -> Result<()> {
    let parts: Vec<&str> = v.split(':').collect();
    if parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
    {
        Ok(())
    } else {
        attr_err(
            attr,
            format!("{v:?} is not a MAC address like 02:00:00:00:00:01"),
        )
    }
}

/// A Linux interface name as the kernel's dev_valid_name takes it (1 to 15
/// bytes, not `.` or `..`, no '/', ':' or white space), and a conf word.
pub fn check_interface(attr: &str, v: &str) -> Result<()> {
    let ok = !v.is_empty()
        && v.len() <= 15
        && v != "."
        && v != ".."
        && !v.chars().any(|c| c == '/' || c == ':' || c.is_whitespace());
    if !ok {
        return attr_err(attr, format!("{v:?} is not a network interface name (1 to 15 bytes, not '.' or '..', no '/', ':' or white space)"));
    }
    check_word(attr, v)
}

/// An absolute path in normal form: no empty, `.` or `..` component and no
/// trailing '/' (what the host binds or points at is then exactly what it
/// reads), and a conf word.
pub fn check_path(attr: &str, v: &str) -> Result<()> {
    if !v.starts_with('/') {
        return attr_err(attr, format!("{v:?} is not an absolute path"));
    }
    if v != "/" {
        if let Some(c) = v[1..]
            .split('/')
            .find(|c| c.is_empty() || *c == "." || *c == "..")
        {
            let what = if c.is_empty() {
                "an empty component ('//' or a trailing '/')".to_owned()
            } else {
                format!("a '{c}' component")
            };
            return attr_err(
                attr,
                format!("{v:?} has {what}; give the path in normal form"),
            );
        }
    }
    check_word(attr, v)
}

/// A path for a bind mount: a normal absolute path without ':' (nspawn's separator).
fn check_bind_path(attr: &str, v: &str) -> Result<()> {
    if v.contains(':') {
        return attr_err(
            attr,
            format!("{v:?} contains ':', which systemd-nspawn reads as a separator in --bind"),
        );
    }
    check_path(attr, v)
}

fn private_users(v: &Option<serde_json::Value>) -> Result<String> {
    const ATTR: &str = "privateUsers";
    match v {
        None | Some(serde_json::Value::Null) => Ok("no".into()),
        Some(serde_json::Value::String(s)) if ["no", "identity", "pick"].contains(&s.as_str()) => {
            Ok(s.clone())
        }
        Some(serde_json::Value::Number(n)) if n.as_u64().is_some_and(|n| n <= u32::MAX as u64) => {
            Ok(n.to_string())
        }
        Some(other) => attr_err(
            ATTR,
            format!("{other} is not \"no\", \"identity\", \"pick\" or a UID from 0 to 4294967295"),
        ),
    }
}

fn target(a: &Args, store_dir: &str) -> Result<Target> {
    match (&a.system, a.generation, a.rollback) {
        (Some(s), None, false) => {
            store_path::check(store_dir, "system", s)?;
            Ok(Target::System(s.clone()))
        }
        (None, Some(n), false) => switch_only(a, Target::Generation(n)),
        (None, None, true) => switch_only(a, Target::Rollback),
        (None, None, false) => attr_err(
            "system",
            "missing: give 'system' (a NixOS system), 'generation' (a number) or 'rollback = true'",
        ),
        _ => attr_err(
            "system",
            "'system', 'generation' and 'rollback' exclude each other; give exactly one",
        ),
    }
}

/// A switch to an existing generation changes the system profile only; conf
/// attributes beside it would silently do nothing, so they are refused.
fn switch_only(a: &Args, target: Target) -> Result<Target> {
    let allowed = ["name", "generation", "rollback"];
    match a.given.iter().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => attr_err(
            k,
            "cannot be combined with 'generation' or 'rollback', which only switch the system profile \
             and keep the container's conf file; change the conf with a call that gives 'system'",
        ),
        None => Ok(target),
    }
}

/// The port rule: a forwarded port as HOST_PORT's `PROTOCOL:HOST:CONTAINER`,
/// or what is wrong (the sub-attribute, "" for the entry, and why).
/// `nix-container create --port` checks its ports with it too.
pub fn forward_port(
    p: &crate::args::ForwardPort,
) -> std::result::Result<String, (&'static str, String)> {
    if p.protocol != "tcp" && p.protocol != "udp" {
        return Err((
            ".protocol",
            format!("{:?} is not \"tcp\" or \"udp\"", p.protocol),
        ));
    }
    let cp = p.container_port.unwrap_or(p.host_port);
    if p.host_port == 0 || cp == 0 {
        return Err(("", "ports are 1 to 65535".into()));
    }
    Ok(format!("{}:{}:{}", p.protocol, p.host_port, cp))
}

impl Spec {
    pub fn from_args(a: &Args, store_dir: &str) -> Result<Spec> {
        name::validate(&a.name)?;
        let target = target(a, store_dir)?;
        let mut c = Conf::default();
        c.set(
            "copyResolvConf",
            "COPY_RESOLV_CONF",
            if a.copy_resolv_conf { "1" } else { "0" }.into(),
        )?;

        let net_attrs = [
            ("hostAddress", a.host_address.is_some()),
            ("localAddress", a.local_address.is_some()),
            ("hostAddress6", a.host_address6.is_some()),
            ("localAddress6", a.local_address6.is_some()),
            ("localMacAddress", a.local_mac_address.is_some()),
            ("hostBridge", a.host_bridge.is_some()),
            ("forwardPorts", !a.forward_ports.is_empty()),
        ];
        if !a.private_network {
            // NixOS drops these silently without a private network; we say so.
            if let Some((attr, _)) = net_attrs.iter().find(|(_, set)| *set) {
                return attr_err(attr, "only has an effect with privateNetwork = true");
            }
        } else {
            c.set("privateNetwork", "PRIVATE_NETWORK", "1".into())?;
            if a.host_bridge.is_some() && (a.host_address.is_some() || a.host_address6.is_some()) {
                return attr_err(
                    "hostBridge",
                    "only one of hostAddress/hostAddress6 or hostBridge can be given",
                );
            }
            if let Some(b) = &a.host_bridge {
                check_interface("hostBridge", b)?;
                c.set("hostBridge", "HOST_BRIDGE", b.clone())?;
            }
            let mut ports = Vec::new();
            for (i, p) in a.forward_ports.iter().enumerate() {
                let attr = format!("forwardPorts[{i}]");
                ports.push(
                    forward_port(p)
                        .map_err(|(sub, msg)| Error::attr(format!("{attr}{sub}"), msg))?,
                );
            }
            if !ports.is_empty() {
                c.set("forwardPorts", "HOST_PORT", ports.join(","))?;
            }
            for (attr, key, v, v6, local) in [
                ("hostAddress", "HOST_ADDRESS", &a.host_address, false, false),
                (
                    "hostAddress6",
                    "HOST_ADDRESS6",
                    &a.host_address6,
                    true,
                    false,
                ),
                (
                    "localAddress",
                    "LOCAL_ADDRESS",
                    &a.local_address,
                    false,
                    true,
                ),
                (
                    "localAddress6",
                    "LOCAL_ADDRESS6",
                    &a.local_address6,
                    true,
                    true,
                ),
            ] {
                if let Some(v) = v {
                    check_address(attr, v, v6, local)?;
                    c.set(attr, key, v.clone())?;
                }
            }
            if let Some(m) = &a.local_mac_address {
                check_mac("localMacAddress", m)?;
                c.set("localMacAddress", "LOCAL_MAC_ADDRESS", m.clone())?;
            }
        }
        if let Some(ns) = &a.network_namespace {
            if a.private_network || !a.interfaces.is_empty() {
                return attr_err("networkNamespace", "excludes privateNetwork and interfaces");
            }
            check_path("networkNamespace", ns)?;
            c.set("networkNamespace", "NETWORK_NAMESPACE_PATH", ns.clone())?;
        }
        c.set(
            "privateUsers",
            "PRIVATE_USERS",
            private_users(&a.private_users)?,
        )?;
        for (attr, key, list) in [
            ("interfaces", "INTERFACES", &a.interfaces),
            ("macvlans", "MACVLANS", &a.macvlans),
        ] {
            for (i, iface) in list.iter().enumerate() {
                check_interface(&format!("{attr}[{i}]"), iface)?;
            }
            c.set(attr, key, list.join(" "))?;
        }
        if a.auto_start {
            c.set("autoStart", "AUTO_START", "1".into())?;
        }
        c.set(
            "extraFlags",
            "EXTRA_NSPAWN_FLAGS",
            extra_flags(a)?.iter().map(|f| format!(" {f}")).collect(),
        )?;

        Ok(Spec {
            name: a.name.clone(),
            target,
            conf: c,
        })
    }
}

/// EXTRA_NSPAWN_FLAGS: bind mounts first (as NixOS), then what NixOS bakes
/// into its per-container start script (ephemeral, capabilities, tmpfs) and
/// which a conf file can only carry as flags, then the user's extraFlags.
fn extra_flags(a: &Args) -> Result<Vec<String>> {
    let mut flags = Vec::new();
    for (key, b) in &a.bind_mounts {
        let attr = format!("bindMounts.{key}");
        let mount = b.mount_point.as_deref().unwrap_or(key);
        check_bind_path(&format!("{attr}.mountPoint"), mount)?;
        let prefix = if b.is_read_only {
            "--bind-ro="
        } else {
            "--bind="
        };
        match &b.host_path {
            Some(h) => {
                check_bind_path(&format!("{attr}.hostPath"), h)?;
                flags.push(format!("{prefix}{h}:{mount}"));
            }
            None => flags.push(format!("{prefix}{mount}")),
        }
    }
    if a.ephemeral {
        // After the unit's --link-journal=try-guest (the last one counts),
        // which systemd-nspawn before 256 refuses beside --ephemeral;
        // NixOS's own ephemeral containers link no journal either.
        flags.push("--link-journal=no".into());
        flags.push("--ephemeral".into());
    }

    for (i, cap) in a.additional_capabilities.iter().enumerate() {
        let ok = !cap.is_empty() && cap.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return attr_err(
                &format!("additionalCapabilities[{i}]"),
                format!("{cap:?} is not a capability name such as CAP_NET_ADMIN"),
            );
        }
    }
    if !a.additional_capabilities.is_empty() {
        flags.push(format!(
            "--capability={}",
            a.additional_capabilities.join(",")
        ));
    }
    for (i, t) in a.tmpfs.iter().enumerate() {
        let attr = format!("tmpfs[{i}]");
        if !t.starts_with('/') {
            return attr_err(
                &attr,
                format!("{t:?} is not an absolute path (PATH[:OPTIONS])"),
            );
        }
        let (path, _options) = t.split_once(':').unwrap_or((t, ""));
        check_path(&attr, path)?;
        check_word(&attr, t)?;
        flags.push(format!("--tmpfs={t}"));
    }
    for (i, f) in a.extra_flags.iter().enumerate() {
        check_word(&format!("extraFlags[{i}]"), f)?;
        flags.push(f.clone());
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYS: &str = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-web";

    fn spec(extra: &str) -> Result<Spec> {
        let json = format!(r#"{{"name":"web","system":"{SYS}"{extra}}}"#);
        Spec::from_args(&Args::from_json(&json)?, "/nix/store")
    }

    fn err(extra: &str) -> String {
        spec(extra).unwrap_err().to_string()
    }

    #[test]
    fn defaults_match_nixos() {
        let s = spec("").unwrap();
        assert_eq!(s.target, Target::System(SYS.into()));
        let text = s.conf.render();
        assert!(text.ends_with("COPY_RESOLV_CONF=1\nPRIVATE_USERS=no\nINTERFACES=\"\"\nMACVLANS=\"\"\nEXTRA_NSPAWN_FLAGS=\"\"\n"), "{text}");
    }

    #[test]
    fn full_network_conf() {
        let s = spec(
            r#","privateNetwork":true,"hostAddress":"10.231.136.1","localAddress":"10.231.136.2/24",
               "hostAddress6":"fc00::1","localAddress6":"fc00::2/64","localMacAddress":"02:00:00:00:00:01",
               "forwardPorts":[{"hostPort":8080,"containerPort":80},{"protocol":"udp","hostPort":53}],
               "bindMounts":{"/data":{"hostPath":"/srv/data","isReadOnly":false},"/ro":{}},
               "ephemeral":true,"additionalCapabilities":["CAP_NET_ADMIN","CAP_MKNOD"],"tmpfs":["/var"],
               "extraFlags":["--drop-capability=CAP_SYS_CHROOT"],"autoStart":true,"privateUsers":65536,
               "copyResolvConf":false"#,
        )
        .unwrap();
        let c = &s.conf;
        assert_eq!(c.get("PRIVATE_NETWORK"), Some("1"));
        assert_eq!(c.get("HOST_PORT"), Some("tcp:8080:80,udp:53:53"));
        assert_eq!(c.get("LOCAL_ADDRESS"), Some("10.231.136.2/24"));
        assert_eq!(c.get("PRIVATE_USERS"), Some("65536"));
        assert_eq!(c.get("AUTO_START"), Some("1"));
        assert_eq!(c.get("COPY_RESOLV_CONF"), Some("0"));
        assert_eq!(
            c.get("EXTRA_NSPAWN_FLAGS"),
            Some(" --bind=/srv/data:/data --bind-ro=/ro --link-journal=no --ephemeral --capability=CAP_NET_ADMIN,CAP_MKNOD --tmpfs=/var --drop-capability=CAP_SYS_CHROOT")
        );
    }

    #[test]
    fn bad_values_name_their_attribute() {
        for (extra, attr) in [
            (r#","hostAddress":"10.0.0.1""#, "hostAddress"),
            (
                r#","privateNetwork":true,"hostAddress":"10.0.0.300""#,
                "hostAddress",
            ),
            (
                r#","privateNetwork":true,"localAddress6":"fc00::1/129""#,
                "localAddress6",
            ),
            (
                r#","privateNetwork":true,"hostBridge":"br0 --x""#,
                "hostBridge",
            ),
            (
                r#","privateNetwork":true,"hostBridge":"br0","hostAddress":"10.0.0.1""#,
                "hostBridge",
            ),
            (
                r#","privateNetwork":true,"localMacAddress":"zz""#,
                "localMacAddress",
            ),
            (
                r#","privateNetwork":true,"forwardPorts":[{"protocol":"sctp","hostPort":1}]"#,
                "forwardPorts[0].protocol",
            ),
            (
                r#","bindMounts":{"/a":{"hostPath":"rel"}}"#,
                "bindMounts./a.hostPath",
            ),
            (r#","bindMounts":{"/a b":{}}"#, "bindMounts./a b.mountPoint"),
            (
                r#","bindMounts":{"/a":{"hostPath":"/x:y"}}"#,
                "bindMounts./a.hostPath",
            ),
            (
                r#","bindMounts":{"/a":{"hostPath":"/x\n--privileged"}}"#,
                "bindMounts./a.hostPath",
            ),
            (r#","extraFlags":["--a --b"]"#, "extraFlags[0]"),
            (r#","extraFlags":["--bind=/$HOME"]"#, "extraFlags[0]"),
            (r#","tmpfs":["var"]"#, "tmpfs[0]"),
            (
                r#","additionalCapabilities":["CAP X"]"#,
                "additionalCapabilities[0]",
            ),
            (r#","privateUsers":"maybe""#, "privateUsers"),
            (r#","privateUsers":-1"#, "privateUsers"),
            (r#","interfaces":["eth0\n"]"#, "interfaces[0]"),
            (r#","interfaces":["eth0;id"]"#, "interfaces[0]"),
            (r#","interfaces":["abcdefghijklmnop"]"#, "interfaces[0]"),
            (
                r#","privateNetwork":true,"hostBridge":"br0&&id""#,
                "hostBridge",
            ),
            (
                r#","privateNetwork":true,"hostAddress":"10.0.0.1/24""#,
                "hostAddress",
            ),
            (
                r#","networkNamespace":"/run/netns/x|id""#,
                "networkNamespace",
            ),
            (r#","networkNamespace":"/run/../etc""#, "networkNamespace"),
            (
                r#","bindMounts":{"/a/../../etc":{}}"#,
                "bindMounts./a/../../etc.mountPoint",
            ),
            (
                r#","bindMounts":{"/a":{"hostPath":"/srv/./x"}}"#,
                "bindMounts./a.hostPath",
            ),
            (r#","bindMounts":{"/a/":{}}"#, "bindMounts./a/.mountPoint"),
            (r#","tmpfs":["/var/../x"]"#, "tmpfs[0]"),
            (
                r#","networkNamespace":"/run/netns/x","privateNetwork":true"#,
                "networkNamespace",
            ),
            (r#","generation":3"#, "system"),
        ] {
            let e = err(extra);
            assert!(
                e.starts_with(&format!("attribute '{attr}': ")),
                "{extra}: {e}"
            );
        }
    }

    #[test]
    fn targets() {
        let g = Spec::from_args(
            &Args::from_json(r#"{"name":"a","generation":2}"#).unwrap(),
            "/nix/store",
        )
        .unwrap();
        assert_eq!(g.target, Target::Generation(2));
        let r = Spec::from_args(
            &Args::from_json(r#"{"name":"a","rollback":true}"#).unwrap(),
            "/nix/store",
        )
        .unwrap();
        assert_eq!(r.target, Target::Rollback);
        let e = Spec::from_args(&Args::from_json(r#"{"name":"a"}"#).unwrap(), "/nix/store")
            .unwrap_err();
        assert!(e.to_string().starts_with("attribute 'system': missing"));
    }
}

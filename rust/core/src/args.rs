//! The arguments of `builtins.containerProfile` / `containerSpec` as they
//! cross the bridge: JSON written by the plugin's own walk of the Nix value
//! (cpp/value-json.cc: path values stay host paths, where Nix's
//! `printValueAsJSON` would copy them into the store). Unknown
//! attributes are errors, so a typo never passes silently.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Args {
    /// The attributes the call gave (not part of the JSON).
    #[serde(skip)]
    pub given: Vec<String>,
    pub name: String,
    #[serde(default)]
    pub system: Option<String>,
    /// Make this existing generation current instead of adding one.
    #[serde(default)]
    pub generation: Option<u64>,
    /// Go back to the generation before the current one.
    #[serde(default)]
    pub rollback: bool,

    #[serde(default)]
    pub private_network: bool,
    #[serde(default)]
    pub host_address: Option<String>,
    #[serde(default)]
    pub local_address: Option<String>,
    #[serde(default)]
    pub host_address6: Option<String>,
    #[serde(default)]
    pub local_address6: Option<String>,
    #[serde(default)]
    pub local_mac_address: Option<String>,
    #[serde(default)]
    pub host_bridge: Option<String>,
    #[serde(default)]
    pub forward_ports: Vec<ForwardPort>,
    #[serde(default)]
    pub network_namespace: Option<String>,
    #[serde(default)]
    pub interfaces: Vec<String>,
    #[serde(default)]
    pub macvlans: Vec<String>,

    #[serde(default)]
    pub bind_mounts: BTreeMap<String, BindMount>,
    #[serde(default)]
    pub ephemeral: bool,
    /// "no", "identity", "pick" or a number: checked in `spec`.
    #[serde(default)]
    pub private_users: Option<serde_json::Value>,
    #[serde(default)]
    pub extra_flags: Vec<String>,
    #[serde(default)]
    pub auto_start: bool,
    #[serde(default)]
    pub additional_capabilities: Vec<String>,
    #[serde(default)]
    pub tmpfs: Vec<String>,
    #[serde(default = "yes")]
    pub copy_resolv_conf: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForwardPort {
    #[serde(default = "tcp")]
    pub protocol: String,
    pub host_port: u16,
    #[serde(default)]
    pub container_port: Option<u16>,
}

fn tcp() -> String {
    "tcp".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BindMount {
    #[serde(default)]
    pub host_path: Option<String>,
    #[serde(default = "yes")]
    pub is_read_only: bool,
    /// Defaults to the attribute name, as in NixOS.
    #[serde(default)]
    pub mount_point: Option<String>,
}

impl Args {
    /// Parses the JSON of the call's attribute set. Errors name the attribute
    /// (`bindMounts./data.hostPath`) and say what was wrong with it.
    pub fn from_json(json: &str) -> Result<Args> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| Error::Args(nix_words(&e.to_string())))?;
        let given = value
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let mut args: Args = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let msg = nix_words(&e.inner().to_string());
            if path == "." || path.is_empty() {
                Error::Args(msg)
            } else {
                Error::Attr { attr: path, msg }
            }
        })?;
        args.given = given;
        Ok(args)
    }
}

/// serde speaks of fields and JSON positions; Nix users write attributes.
fn nix_words(msg: &str) -> String {
    let msg = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    msg.replace("unknown field", "unknown attribute")
        .replace("missing field", "missing attribute")
        .replace("expected one of", "expected one of the attributes")
        .replace("invalid type: map", "invalid type: attribute set")
        .replace("invalid type: sequence", "invalid type: list")
        .replace("a sequence", "a list")
        .replace("struct ", "")
        .replace("u16", "a port number (1 to 65535)")
        .replace("u64", "a non-negative integer")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        Args::from_json(json).unwrap_err().to_string()
    }

    #[test]
    fn parses_a_full_call() {
        let a = Args::from_json(
            r#"{"name":"web","system":"/nix/store/x","privateNetwork":true,
                "bindMounts":{"/data":{"hostPath":"/srv","isReadOnly":false}},
                "forwardPorts":[{"hostPort":80}],"privateUsers":"pick"}"#,
        )
        .unwrap();
        assert!(a.private_network && a.copy_resolv_conf);
        assert_eq!(a.forward_ports[0].protocol, "tcp");
        assert!(!a.bind_mounts["/data"].is_read_only);
    }

    #[test]
    fn unknown_attribute_is_named() {
        let e = err(r#"{"name":"a","privateNetwok":true}"#);
        assert!(e.contains("unknown attribute `privateNetwok`"), "{e}");
    }

    #[test]
    fn nested_type_errors_name_the_path() {
        let e = err(r#"{"name":"a","bindMounts":{"/d":{"hostPath":1}}}"#);
        assert!(
            e.starts_with("attribute 'bindMounts./d.hostPath': invalid type"),
            "{e}"
        );
        let e = err(r#"{"name":"a","forwardPorts":[{"hostPort":70000}]}"#);
        assert!(e.starts_with("attribute 'forwardPorts[0].hostPort'"), "{e}");
        assert!(!e.contains(" at line "), "{e}");
        let e = err(r#"{"name":"a","privateNetwork":"yes"}"#);
        assert!(
            e.starts_with("attribute 'privateNetwork': invalid type: string"),
            "{e}"
        );
    }

    #[test]
    fn missing_name() {
        assert!(err(r#"{}"#).contains("missing attribute `name`"));
    }
}

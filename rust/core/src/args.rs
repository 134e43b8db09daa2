//! The arguments of `builtins.containerProfile` / `containerSpec` as they
//! cross the bridge: JSON written by the plugin's own walk of the Nix value
//! (cpp/value-json.cc: path values stay host paths, where Nix's
//! `printValueAsJSON` would copy them into the store). Unknown
//! attributes are errors, so a typo never passes silently.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Args {
    /// The attributes the call gave (not part of the JSON).
    #[serde(skip)]
    pub given: Vec<String>,
    pub name: String,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Make this existing generation current instead of adding one.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// Go back to the generation before the current one.
    #[serde(default)]
    pub rollback: bool,

    #[serde(default)]
    pub private_network: bool,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_address: Option<String>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_address: Option<String>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_address6: Option<String>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_address6: Option<String>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_mac_address: Option<String>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_bridge: Option<String>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub forward_ports: Vec<ForwardPort>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_namespace: Option<String>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<String>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub macvlans: Vec<String>,

    #[serde(default)]
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub bind_mounts: BTreeMap<String, BindMount>,
    #[serde(default)]
    pub ephemeral: bool,
    /// "no", "identity", "pick" or a number: checked in `spec`.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_users: Option<serde_json::Value>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_flags: Vec<String>,
    #[serde(default)]
    pub auto_start: bool,
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_capabilities: Vec<String>,
    #[serde(default)]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    #[serde(default = "yes")]
    pub copy_resolv_conf: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForwardPort {
    #[serde(default = "tcp")]
    pub protocol: String,
    pub host_port: u16,
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_port: Option<u16>,
}

fn tcp() -> String {
    "tcp".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BindMount {
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    #[serde(default = "yes")]
    pub is_read_only: bool,
    /// Defaults to the attribute name, as in NixOS.
    #[serde(default)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount_point: Option<String>,
}

impl Args {
    /// The arguments `{ name = NAME; }` alone (every other attribute at its
    /// default, as a call that omits it).
    pub fn named(name: &str) -> Args {
        Args {
            given: vec!["name".into()],
            name: name.into(),
            system: None,
            generation: None,
            rollback: false,
            private_network: false,
            host_address: None,
            local_address: None,
            host_address6: None,
            local_address6: None,
            local_mac_address: None,
            host_bridge: None,
            forward_ports: Vec::new(),
            network_namespace: None,
            interfaces: Vec::new(),
            macvlans: Vec::new(),
            bind_mounts: BTreeMap::new(),
            ephemeral: false,
            private_users: None,
            extra_flags: Vec::new(),
            auto_start: false,
            additional_capabilities: Vec::new(),
            tmpfs: Vec::new(),
            copy_resolv_conf: true,
        }
    }

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
    fn named_is_a_call_with_only_a_name_and_round_trips() {
        let a = Args::named("web");
        let b = Args::from_json(r#"{"name":"web"}"#).unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        let json = serde_json::to_string(&a).unwrap();
        let c = Args::from_json(&json).unwrap();
        assert_eq!(
            format!("{a:?}"),
            format!(
                "{:?}",
                Args {
                    given: a.given.clone(),
                    ..c
                }
            )
        );
    }

    #[test]
    fn missing_name() {
        assert!(err(r#"{}"#).contains("missing attribute `name`"));
    }
}

//! `target-check`: what a host has for a build to be recorded there (this
//! tool's version, nix, the plugin loaded), said there as JSON and judged
//! here in one line.

use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::ssh::{remote_status, ssh, Target, REMOTE_PROGRAM};
use crate::error::{failed, spawn_failed, Result};
use crate::output::print_json;

/// What `target-check` says about a host (printed there as JSON).
#[derive(Serialize, Deserialize, Debug)]
pub struct HostFacts {
    pub version: String,
    /// `nix --version`'s first line; None: no nix on its PATH.
    pub nix: Option<String>,
    /// Whether that nix loads the plugin (builtins.containerProfile exists).
    pub plugin: bool,
    /// What nix said when it did not.
    pub plugin_message: String,
}

/// `target-check` (run there): the facts above, as JSON.
pub fn check_here() -> Result<()> {
    let nix = Command::new("nix")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        });
    let (plugin, plugin_message) = match &nix {
        None => (false, String::new()),
        Some(_) => {
            let out = Command::new("nix")
                .args([
                    "--extra-experimental-features",
                    "nix-command",
                    "eval",
                    "--expr",
                ])
                .arg("builtins ? containerProfile")
                .stdin(Stdio::null())
                .output()
                .map_err(spawn_failed("nix eval"))?;
            let said = String::from_utf8_lossy(&out.stderr);
            let said = said
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .to_owned();
            (String::from_utf8_lossy(&out.stdout).trim() == "true", said)
        }
    };
    print_json(&HostFacts {
        version: env!("CARGO_PKG_VERSION").into(),
        nix,
        plugin,
        plugin_message,
    })
}

/// One line naming what `t` lacks for a build to be recorded there, if
/// anything.
pub fn check(t: &Target) -> Result<()> {
    let out = ssh(t, &["target-check".into()], false)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(spawn_failed("ssh"))?;
    let host = t.as_str();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(2) => {
            // An older nix-container, without target-check.
            return Err(failed(format!(
                "target host {host}: its {REMOTE_PROGRAM} is of another version than this one ({}); \
                 install the same nix-container-plugin there",
                env!("CARGO_PKG_VERSION")
            )));
        }
        code => {
            eprint!("{stderr}");
            remote_status(t, code)?;
            return Err(failed(format!(
                "target host {host}: {REMOTE_PROGRAM} target-check failed"
            )));
        }
    }
    let facts: HostFacts = serde_json::from_slice(&out.stdout).map_err(|e| {
        failed(format!(
            "target host {host}: {REMOTE_PROGRAM} target-check printed no facts ({e})"
        ))
    })?;
    if facts.version != env!("CARGO_PKG_VERSION") {
        return Err(failed(format!(
            "target host {host}: nix-container {} there, {} here; install the same version there",
            facts.version,
            env!("CARGO_PKG_VERSION")
        )));
    }
    if facts.nix.is_none() {
        return Err(failed(format!("target host {host}: no nix on its PATH")));
    }
    if !facts.plugin {
        return Err(failed(format!(
            "target host {host}: its nix ({}) does not load nix-container-plugin (plugin-files in its \
             nix.conf){}",
            facts.nix.unwrap_or_default(),
            if facts.plugin_message.is_empty() {
                String::new()
            } else {
                format!(": {}", facts.plugin_message)
            }
        )));
    }
    Ok(())
}

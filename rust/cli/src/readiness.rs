//! How a container says it is ready: decided by its system.

use std::path::Path;

use serde::Serialize;

/// How a container says it is ready, decided by its system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Readiness {
    /// Its init is systemd (a NixOS system has `systemd` at its top):
    /// ready at READY=1, which systemd sends when its boot is done and
    /// systemd-nspawn --notify-ready=yes passes on.
    Notify,
    /// Any other init: ready once it runs (it never notifies; waiting for
    /// READY=1 would wait for ever).
    Init,
}

impl Readiness {
    pub fn of(system: &str) -> Readiness {
        // A link to the systemd package in every NixOS toplevel; read as a
        // name in the (host's, read-only) store, never followed.
        match std::fs::symlink_metadata(Path::new(system).join("systemd")) {
            Ok(_) => Readiness::Notify,
            Err(_) => Readiness::Init,
        }
    }
}

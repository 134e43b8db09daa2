//! The cxx bridge: the only door between the C++ plugin and the Rust core,
//! with calls both ways (the shape of cxx's demo). Rust runs
//! containerProfile's steps (core container_profile.rs) and calls Nix
//! through one C++ type, `NixCalls`, for what needs libstore. Plain strings
//! and numbers cross it, never a Nix type, so this crate builds the same
//! against every Nix version. No panic crosses it: every entry point runs
//! under `catch_unwind` and turns a panic into an error the plugin reports as
//! an evaluation error; no C++ exception crosses it either (NixCalls keeps
//! Nix's error and the plugin rethrows it once the core has returned).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use ncp_core::container_profile::{self, Nix};
use ncp_core::{layout, plan, profile, settings};

#[cxx::bridge(namespace = "ncp::rs")]
mod ffi {
    enum SettingKind {
        Path,
        Bool,
        Seconds,
    }

    /// A row of the core's settings table, for the plugin to register.
    struct SettingRow {
        name: String,
        kind: SettingKind,
        default_value: String,
        doc: String,
    }

    struct SettingValue {
        name: String,
        value: String,
    }

    /// Nix's own directories and the plugin settings' values, as text.
    struct Settings {
        store_dir: String,
        nix_state_dir: String,
        values: Vec<SettingValue>,
    }

    /// containerProfile's result: the attribute set as JSON and the system
    /// the profile points at.
    struct Profiled {
        json: String,
        system: String,
    }

    extern "Rust" {
        type Plan;

        /// The plugin's settings (core settings.rs).
        fn setting_table() -> Vec<SettingRow>;
        /// Checks a call's arguments (the attribute set as JSON); no I/O.
        fn plan(args_json: &str, settings: &Settings) -> Result<Box<Plan>>;
        /// The store path to make current, or "" (rollback / switch).
        fn system(self: &Plan) -> String;
        /// containerProfile's steps, after the plugin has realised what the
        /// arguments depend on.
        fn container_profile(self: &mut Plan, nix: &NixCalls) -> Result<Profiled>;
        fn describe_spec(self: &Plan) -> Result<String>;
        /// containerGenerations' result as JSON.
        fn generations_json(arg_json: &str, settings: &Settings) -> Result<String>;
        /// The argv (a JSON list) of container `name` with conf text `conf`.
        fn nspawn_args(name: &str, conf: &str, settings: &Settings) -> Result<String>;
    }

    #[namespace = "ncp"]
    unsafe extern "C++" {
        include!("ncp/nix-calls.hh");
        type NixCalls;
        fn system_real_path(self: &NixCalls, system: &str) -> Result<String>;
        fn create_generation(self: &NixCalls, profile: &str, system: &str) -> Result<String>;
        fn interrupted(self: &NixCalls) -> bool;
        fn progress(self: &NixCalls, message: &str);
    }
}

pub struct Plan(plan::Plan);

/// Runs `f`, turning a panic into an error message.
fn guard<T>(f: impl FnOnce() -> Result<T, ncp_core::Error>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(format!(
                "internal error in nix-container-plugin (please report): {what}"
            ))
        }
    }
}

fn setting_table() -> Vec<ffi::SettingRow> {
    settings::TABLE
        .iter()
        .map(|r| ffi::SettingRow {
            name: r.name.into(),
            kind: match r.kind {
                settings::Kind::Path => ffi::SettingKind::Path,
                settings::Kind::Bool => ffi::SettingKind::Bool,
                settings::Kind::Seconds => ffi::SettingKind::Seconds,
            },
            default_value: r.default.into(),
            doc: format!("{} (default: {})", r.doc, r.default_doc),
        })
        .collect()
}

fn settings(s: &ffi::Settings) -> Result<layout::Settings, ncp_core::Error> {
    let mut out = layout::Settings {
        store_dir: s.store_dir.clone(),
        nix_state_dir: s.nix_state_dir.clone(),
        ..layout::Settings::new()
    };
    for v in &s.values {
        out.set(&v.name, &v.value)?;
    }
    Ok(out)
}

fn plan(args_json: &str, s: &ffi::Settings) -> Result<Box<Plan>, String> {
    guard(|| plan::Plan::new(args_json, &settings(s)?).map(|p| Box::new(Plan(p))))
}

/// Nix, as the core asks it, through the plugin's NixCalls.
struct CxxNix<'a>(&'a ffi::NixCalls);

impl Nix for CxxNix<'_> {
    fn system_real_path(&self, system: &str) -> ncp_core::Result<String> {
        self.0
            .system_real_path(system)
            .map_err(|e| ncp_core::Error::Nix(e.what().into()))
    }
    fn create_generation(&self, profile: &Path, system: &str) -> ncp_core::Result<String> {
        self.0
            .create_generation(&profile.display().to_string(), system)
            .map_err(|e| ncp_core::Error::Nix(e.what().into()))
    }
    fn interrupted(&self) -> bool {
        self.0.interrupted()
    }
    fn progress(&self, message: &str) {
        self.0.progress(message)
    }
}

impl Plan {
    fn system(&self) -> String {
        self.0.system().unwrap_or_default().to_owned()
    }
    fn container_profile(&mut self, nix: &ffi::NixCalls) -> Result<ffi::Profiled, String> {
        guard(|| {
            let done = container_profile::run(&mut self.0, &CxxNix(nix))?;
            let system = done.system.unwrap_or_default();
            Ok(ffi::Profiled {
                json: self.0.describe(
                    Some(system.as_str()).filter(|s| !s.is_empty()),
                    Some(done.outcome),
                ),
                system,
            })
        })
    }
    fn describe_spec(&self) -> Result<String, String> {
        guard(|| self.0.describe_spec())
    }
}

fn generations_json(arg_json: &str, s: &ffi::Settings) -> Result<String, String> {
    guard(|| profile::generations_json(arg_json, &layout::Roots::resolve(&settings(s)?)?))
}

fn nspawn_args(name: &str, conf: &str, s: &ffi::Settings) -> Result<String, String> {
    guard(|| plan::nspawn_args_json(name, conf, &settings(s)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_errors() {
        let r: Result<(), String> = guard(|| panic!("boom"));
        assert_eq!(
            r.unwrap_err(),
            "internal error in nix-container-plugin (please report): boom"
        );
    }

    #[test]
    fn settings_cross_as_names_and_values() {
        let s = ffi::Settings {
            store_dir: "/s".into(),
            nix_state_dir: "/v".into(),
            values: vec![
                ffi::SettingValue {
                    name: "container-legacy-layout".into(),
                    value: "true".into(),
                },
                ffi::SettingValue {
                    name: "container-lock-timeout".into(),
                    value: "9".into(),
                },
            ],
        };
        let got = settings(&s).unwrap();
        assert!(got.legacy_layout);
        assert_eq!(got.lock_timeout_secs, 9);
        assert_eq!(got.store_dir, "/s");
        let bad = ffi::Settings {
            values: vec![ffi::SettingValue {
                name: "container-x".into(),
                value: "".into(),
            }],
            ..s
        };
        assert!(settings(&bad).is_err());
    }
}

//! The cxx bridge: the only door between the C++ plugin and the Rust core.
//! Plain strings and numbers cross it, never a Nix type, so this crate builds
//! the same against every Nix version. No panic crosses it: every entry point
//! runs under `catch_unwind` and turns a panic into an error the plugin
//! reports as an evaluation error.

use std::panic::{catch_unwind, AssertUnwindSafe};

use ncp_core::{generation, layout, name, plan};

#[cxx::bridge(namespace = "ncp::rs")]
mod ffi {
    /// The plugin settings (empty = default) and Nix's own directories.
    struct Settings {
        store_dir: String,
        nix_state_dir: String,
        state_dir: String,
        config_dir: String,
        profiles_dir: String,
        gcroots_dir: String,
        legacy_layout: bool,
    }

    struct Outcome {
        generation: u64,
        changed: bool,
        system_changed: bool,
        conf_changed: bool,
    }

    extern "Rust" {
        type Plan;

        /// Checks a call's arguments (the attribute set as JSON); no I/O.
        fn plan(args_json: &str, settings: &Settings) -> Result<Box<Plan>>;
        /// The store path to make current, or "" (rollback / switch).
        fn system(self: &Plan) -> String;
        fn profile(self: &Plan) -> String;
        /// The generation to switch to, or -1.
        fn switch_to(self: &Plan) -> i64;
        fn rollback(self: &Plan) -> bool;
        fn check_system(self: &Plan, real_path: &str) -> Result<()>;
        /// The current generation when the call would change nothing, or -1
        /// (no lock, no write; see Plan::unchanged).
        fn unchanged(self: &Plan, system: &str) -> i64;
        fn prepare_nix_dirs(self: &Plan) -> Result<()>;
        fn prepare_root_and_conf(self: &mut Plan) -> Result<bool>;
        /// The result attribute set as JSON (system "" = null).
        fn describe(self: &Plan, system: &str, outcome: &Outcome) -> Result<String>;
        fn describe_spec(self: &Plan) -> Result<String>;

        /// The profile of the container a containerGenerations argument names
        /// (a JSON string, or an object with `name`).
        fn generations_profile(arg_json: &str, settings: &Settings) -> Result<String>;
        /// The generation to switch to (rollback when `to` < 0), given the
        /// existing ones and the current one (-1: none).
        fn switch_target(existing: &[u64], current: i64, to: i64) -> Result<u64>;
        /// The argv (a JSON list) of container `name` with conf text `conf`.
        fn nspawn_args(name: &str, conf: &str, settings: &Settings) -> Result<String>;
        /// Removes links a killed writer left beside `profile` (under its lock).
        fn remove_stale_temps(profile: &str) -> Result<usize>;
        /// Generation number of a profile link, or -1.
        fn generation_number(profile_name: &str, link_name: &str) -> i64;
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

fn settings(s: &ffi::Settings) -> layout::Settings {
    layout::Settings {
        store_dir: s.store_dir.clone(),
        nix_state_dir: s.nix_state_dir.clone(),
        state_dir: s.state_dir.clone(),
        config_dir: s.config_dir.clone(),
        profiles_dir: s.profiles_dir.clone(),
        gcroots_dir: s.gcroots_dir.clone(),
        // The run directory is the CLI's; the plugin never uses it.
        run_dir: String::new(),
        legacy_layout: s.legacy_layout,
    }
}

fn plan(args_json: &str, s: &ffi::Settings) -> Result<Box<Plan>, String> {
    guard(|| plan::Plan::new(args_json, &settings(s)).map(|p| Box::new(Plan(p))))
}

impl Plan {
    fn system(&self) -> String {
        self.0.system().unwrap_or_default().to_owned()
    }
    fn profile(&self) -> String {
        self.0.layout.profile.display().to_string()
    }
    fn switch_to(&self) -> i64 {
        match self.0.spec.target {
            ncp_core::spec::Target::Generation(n) => i64::try_from(n).unwrap_or(i64::MAX),
            _ => -1,
        }
    }
    fn rollback(&self) -> bool {
        self.0.spec.target == ncp_core::spec::Target::Rollback
    }
    fn check_system(&self, real_path: &str) -> Result<(), String> {
        guard(|| self.0.check_system(real_path))
    }
    fn unchanged(&self, system: &str) -> i64 {
        // A panic here just means "take the full path".
        catch_unwind(AssertUnwindSafe(|| self.0.unchanged(system)))
            .ok()
            .flatten()
            .map_or(-1, |n| n as i64)
    }
    fn prepare_nix_dirs(&self) -> Result<(), String> {
        guard(|| self.0.prepare_nix_dirs())
    }
    fn prepare_root_and_conf(&mut self) -> Result<bool, String> {
        guard(|| self.0.prepare_root_and_conf())
    }
    fn describe(&self, system: &str, o: &ffi::Outcome) -> Result<String, String> {
        let outcome = plan::Outcome {
            generation: o.generation,
            changed: o.changed,
            system_changed: o.system_changed,
            conf_changed: o.conf_changed,
        };
        guard(|| {
            Ok(self
                .0
                .describe(Some(system).filter(|s| !s.is_empty()), Some(outcome)))
        })
    }
    fn describe_spec(&self) -> Result<String, String> {
        guard(|| self.0.describe_spec())
    }
}

fn generations_profile(arg_json: &str, s: &ffi::Settings) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ByName {
        name: String,
    }
    guard(|| {
        let name = match serde_json::from_str::<String>(arg_json) {
            Ok(n) => n,
            Err(_) => {
                serde_json::from_str::<ByName>(arg_json)
                    .map_err(|e| {
                        ncp_core::Error::Args(format!(
                            "expected a container name or {{ name = \"…\"; }}: {e}"
                        ))
                    })?
                    .name
            }
        };
        name::validate(&name)?;
        let roots = layout::Roots::resolve(&settings(s))?;
        Ok(roots.container(&name).profile.display().to_string())
    })
}

fn switch_target(existing: &[u64], current: i64, to: i64) -> Result<u64, String> {
    let opt = |n: i64| u64::try_from(n).ok();
    generation::switch_target(existing, opt(current), opt(to))
}

fn nspawn_args(name: &str, conf: &str, s: &ffi::Settings) -> Result<String, String> {
    guard(|| plan::nspawn_args_json(name, conf, &settings(s)))
}

fn remove_stale_temps(profile: &str) -> Result<usize, String> {
    guard(|| ncp_core::profile::remove_stale_temps(std::path::Path::new(profile)))
}

fn generation_number(profile_name: &str, link_name: &str) -> i64 {
    generation::parse_link_name(profile_name, link_name).map_or(-1, |n| n as i64)
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
    fn generations_profile_takes_name_or_set() {
        let s = ffi::Settings {
            store_dir: String::new(),
            nix_state_dir: String::new(),
            state_dir: String::new(),
            config_dir: String::new(),
            profiles_dir: "/p".into(),
            gcroots_dir: String::new(),
            legacy_layout: false,
        };
        assert_eq!(generations_profile("\"web\"", &s).unwrap(), "/p/web/system");
        assert_eq!(
            generations_profile("{\"name\":\"web\"}", &s).unwrap(),
            "/p/web/system"
        );
        assert!(generations_profile("{\"name\":\"Web\"}", &s)
            .unwrap_err()
            .contains("upper-case"));
        assert!(generations_profile("{\"nam\":\"web\"}", &s).is_err());
    }
}

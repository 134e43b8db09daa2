//! The cxx bridge: the only door between the C++ plugin and the Rust core.
//! Plain strings and numbers cross it, never a Nix type, so this crate builds
//! the same against every Nix version. No panic crosses it: every entry point
//! runs under `catch_unwind` and turns a panic into an error the plugin
//! reports as an evaluation error.

use std::panic::{catch_unwind, AssertUnwindSafe};

use ncp_core::profile::ProfileDir;
use ncp_core::{layout, name, plan};

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
        /// Seconds to wait for a profile lock (0: the default).
        lock_timeout: u64,
    }

    struct Outcome {
        generation: u64,
        changed: bool,
        system_changed: bool,
        conf_changed: bool,
    }

    extern "Rust" {
        type Plan;
        type Lock;

        /// Checks a call's arguments (the attribute set as JSON); no I/O.
        fn plan(args_json: &str, settings: &Settings) -> Result<Box<Plan>>;
        /// The store path to make current, or "" (rollback / switch).
        fn system(self: &Plan) -> String;
        fn profile(self: &Plan) -> String;
        fn check_system(self: &Plan, real_path: &str) -> Result<()>;
        /// The current generation when the call would change nothing, or -1
        /// (no lock, no write; see Plan::unchanged).
        fn unchanged(self: &Plan, system: &str) -> i64;
        /// Creates (or opens) the profile, GC-root and conf directories.
        fn prepare_nix_dirs(self: &mut Plan) -> Result<()>;
        /// One attempt at the profile lock (held() false: someone else has
        /// it); an error once `waited_ms` reaches the lock timeout.
        fn try_lock(self: &Plan, waited_ms: u64) -> Result<Box<Lock>>;
        fn held(self: &Lock) -> bool;
        /// Under the lock: removes what killed writers left.
        fn remove_stale_temps(self: &Plan) -> Result<()>;
        fn prepare_root_and_conf(self: &mut Plan) -> Result<bool>;
        /// The store path the profile resolves to, or "".
        fn profile_system(self: &Plan) -> Result<String>;
        fn check_generation_room(self: &Plan) -> Result<()>;
        /// Makes the generation link createGeneration returned current.
        fn switch_to_link(self: &Plan, link: &str) -> Result<()>;
        /// `generation = N` / `rollback = true`.
        fn switch_generation(self: &Plan) -> Result<()>;
        fn current_generation(self: &Plan) -> Result<u64>;
        /// The result attribute set as JSON (system "" = null).
        fn describe(self: &Plan, system: &str, outcome: &Outcome) -> Result<String>;
        fn describe_spec(self: &Plan) -> Result<String>;

        /// containerGenerations: the generations of the container a call's
        /// argument names (a JSON string, or an object with `name`), as JSON.
        fn generations_json(arg_json: &str, settings: &Settings) -> Result<String>;
        /// The argv (a JSON list) of container `name` with conf text `conf`.
        fn nspawn_args(name: &str, conf: &str, settings: &Settings) -> Result<String>;
    }
}

pub struct Plan(plan::Plan);
pub struct Lock(#[allow(dead_code)] Option<ncp_core::profile_lock::ProfileLock>);

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
        lock_timeout_secs: s.lock_timeout,
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
    fn check_system(&self, real_path: &str) -> Result<(), String> {
        guard(|| self.0.check_system(real_path))
    }
    fn unchanged(&self, system: &str) -> i64 {
        // A panic here just means "take the full path".
        catch_unwind(AssertUnwindSafe(|| self.0.unchanged(system)))
            .ok()
            .flatten()
            .and_then(|n| i64::try_from(n).ok())
            .unwrap_or(-1)
    }
    fn prepare_nix_dirs(&mut self) -> Result<(), String> {
        guard(|| self.0.prepare_nix_dirs())
    }
    fn try_lock(&self, waited_ms: u64) -> Result<Box<Lock>, String> {
        guard(|| {
            self.0
                .try_lock(std::time::Duration::from_millis(waited_ms))
                .map(|l| Box::new(Lock(l)))
        })
    }
    fn remove_stale_temps(&self) -> Result<(), String> {
        guard(|| self.0.remove_stale_temps().map(|_| ()))
    }
    fn prepare_root_and_conf(&mut self) -> Result<bool, String> {
        guard(|| self.0.prepare_root_and_conf())
    }
    fn profile_system(&self) -> Result<String, String> {
        guard(|| self.0.profile_system().map(Option::unwrap_or_default))
    }
    fn check_generation_room(&self) -> Result<(), String> {
        guard(|| self.0.check_generation_room())
    }
    fn switch_to_link(&self, link: &str) -> Result<(), String> {
        guard(|| self.0.switch_to_link(link))
    }
    fn switch_generation(&self) -> Result<(), String> {
        guard(|| self.0.switch_generation())
    }
    fn current_generation(&self) -> Result<u64, String> {
        guard(|| self.0.current_generation())
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

impl Lock {
    fn held(&self) -> bool {
        self.0.is_some()
    }
}

/// The container name a containerGenerations argument gives.
fn generations_name(arg_json: &str) -> Result<String, ncp_core::Error> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ByName {
        name: String,
    }
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
    Ok(name)
}

fn generations_json(arg_json: &str, s: &ffi::Settings) -> Result<String, String> {
    guard(|| {
        let name = generations_name(arg_json)?;
        let roots = layout::Roots::resolve(&settings(s))?;
        let gens = match ProfileDir::open(&roots, &roots.container(&name))? {
            Some(p) => p.list()?,
            None => Vec::new(),
        };
        serde_json::to_string(&gens).map_err(|e| ncp_core::Error::Args(e.to_string()))
    })
}

fn nspawn_args(name: &str, conf: &str, s: &ffi::Settings) -> Result<String, String> {
    guard(|| plan::nspawn_args_json(name, conf, &settings(s)))
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
    fn generations_take_a_name_or_a_set() {
        assert_eq!(generations_name("\"web\"").unwrap(), "web");
        assert_eq!(generations_name("{\"name\":\"web\"}").unwrap(), "web");
        assert!(generations_name("{\"name\":\"Web\"}")
            .unwrap_err()
            .to_string()
            .contains("upper-case"));
        assert!(generations_name("{\"nam\":\"web\"}").is_err());
    }
}

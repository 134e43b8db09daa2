//! The steps of `builtins.containerProfile`, in their one order, and of
//! the CLI's `rollback` (the same steps, with no new generation). The few
//! things only Nix can do are asked of it through [`Nix`]: the plugin
//! answers with libstore (cpp/plugin.cc, through the bridge), the CLI,
//! which never adds a generation, without Nix.
//!
//! 1. no-op check: unchanged → the current generation, no lock, no write;
//! 2. the system must be a valid store path that looks like a NixOS system;
//! 3. the profile, GC-root and conf directories;
//! 4. the profile lock (waiting says so once, and stops when interrupted),
//!    and the sweep of killed writers' leftovers;
//! 5. the root file system and the conf file;
//! 6. a new generation (Nix's createGeneration, which also registers its GC
//!    root), or a switch to an existing one (`generation`, `rollback`).

use std::path::Path;

use crate::error::{Error, Result};
use crate::plan::{Outcome, Plan};

/// What the steps need from Nix.
pub trait Nix {
    /// The real path of store path `system` after Nix has checked that it
    /// is valid and holds it with a temporary GC root.
    fn system_real_path(&self, system: &str) -> Result<String>;
    /// libstore's createGeneration of `profile` pointing at `system`: the
    /// new (or the newest already pointing there) generation link.
    fn create_generation(&self, profile: &Path, system: &str) -> Result<String>;
    /// Whether the user asked to stop (^C).
    fn interrupted(&self) -> bool;
    /// A line of progress for the user.
    fn progress(&self, message: &str);
}

/// What the steps did.
#[derive(Debug, Clone)]
pub struct Done {
    /// The system the profile points at now.
    pub system: Option<String>,
    /// The generation that was current before (None: none was).
    pub from: Option<u64>,
    pub outcome: Outcome,
}

/// Runs the steps of `plan`.
pub fn run(plan: &mut Plan, nix: &dyn Nix) -> Result<Done> {
    let system = plan.system().map(str::to_owned);
    if let Some(system) = &system {
        // The common case when a host re-evaluates its containers: answered
        // from a few reads. The generation link keeps the system alive.
        if let Some(n) = plan.unchanged(system) {
            return Ok(Done {
                system: Some(system.clone()),
                from: Some(n),
                outcome: Outcome {
                    generation: n,
                    changed: false,
                    system_changed: false,
                    conf_changed: false,
                },
            });
        }
        plan.check_system(&nix.system_real_path(system)?)?;
    }

    plan.prepare_nix_dirs()?;
    // Concurrent changes of the same container queue here, as nix-env's do
    // on a profile.
    let _lock = {
        let p = plan.profile_dir()?;
        let what = p.profile_path();
        let mut said = false;
        p.lock(plan.lock_timeout, &mut || {
            if !said {
                nix.progress(&format!(
                    "waiting for the lock on profile '{}'",
                    what.display()
                ));
                said = true;
            }
            nix.interrupted()
        })?
    };

    let conf_changed = plan.prepare_root_and_conf()?;
    let p = plan.profile_dir()?;
    let before = p.system()?;
    let from = p.current()?;
    match &system {
        Some(s) => {
            plan.check_generation_room()?;
            let link = nix.create_generation(&plan.layout.profile, s)?;
            plan.switch_to_link(&link)?;
        }
        None => plan.switch_generation()?,
    }
    let after = p.system()?;
    let system_changed = before != after;
    Ok(Done {
        system: system.or(after),
        from,
        outcome: Outcome {
            generation: plan.current_generation()?,
            changed: conf_changed || system_changed,
            system_changed,
            conf_changed,
        },
    })
}

/// For callers that never add a generation (the CLI's rollback): asking
/// for one is a bug, reported as an error.
pub struct SwitchOnly;

impl Nix for SwitchOnly {
    fn system_real_path(&self, system: &str) -> Result<String> {
        Err(Error::Profile(format!(
            "internal: a switch was asked to check system '{system}'"
        )))
    }
    fn create_generation(&self, _: &Path, system: &str) -> Result<String> {
        Err(Error::Profile(format!(
            "internal: a switch was asked to add a generation for '{system}'"
        )))
    }
    fn interrupted(&self) -> bool {
        false
    }
    fn progress(&self, message: &str) {
        eprintln!("{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Settings;
    use std::cell::RefCell;

    /// createGeneration as libstore does it: reuse the newest generation if
    /// it points there, else add newest + 1 (the real one is exercised by
    /// the integration tests, through the plugin).
    #[derive(Default)]
    struct FakeNix {
        calls: RefCell<Vec<String>>,
    }

    impl Nix for FakeNix {
        fn system_real_path(&self, system: &str) -> Result<String> {
            self.calls.borrow_mut().push(format!("real {system}"));
            Ok(system.to_owned())
        }
        fn create_generation(&self, profile: &Path, system: &str) -> Result<String> {
            self.calls.borrow_mut().push(format!("create {system}"));
            let dir = profile.parent().unwrap();
            let mut newest = (0, String::new());
            for e in std::fs::read_dir(dir).unwrap() {
                let f = e.unwrap().file_name().into_string().unwrap();
                if let Some(n) = crate::generation::parse_link_name("system", &f) {
                    if n > newest.0 {
                        let to = std::fs::read_link(dir.join(&f)).unwrap();
                        newest = (n, to.display().to_string());
                    }
                }
            }
            if newest.1 == system {
                return Ok(dir
                    .join(format!("system-{}-link", newest.0))
                    .display()
                    .to_string());
            }
            let link = dir.join(format!("system-{}-link", newest.0 + 1));
            std::os::unix::fs::symlink(system, &link).unwrap();
            Ok(link.display().to_string())
        }
        fn interrupted(&self) -> bool {
            false
        }
        fn progress(&self, _: &str) {}
    }

    #[test]
    fn adds_reuses_switches_and_rolls_back_re_preparing_the_root() {
        let t = tempfile::tempdir().unwrap();
        let d = |x: &str| t.path().join(x).display().to_string();
        let store = t.path().join("store");
        let settings = Settings {
            store_dir: store.display().to_string(),
            state_dir: d("state"),
            config_dir: d("etc"),
            profiles_dir: d("profiles"),
            gcroots_dir: d("gcroots"),
            ..Default::default()
        };
        let sys = |s: &str| {
            let p = store.join(format!("0123456789abcdfghijklmnpqrsvwxyz-{s}"));
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("init"), "").unwrap();
            p.display().to_string()
        };
        let (a, b) = (sys("a"), sys("b"));
        let call = |json: String| {
            let nix = FakeNix::default();
            let mut plan = Plan::new(&json, &settings).unwrap();
            let done = run(&mut plan, &nix).unwrap();
            (done, nix.calls.into_inner(), plan)
        };
        let with = |s: &str| format!(r#"{{"name":"web","system":"{s}"}}"#);

        let (done, calls, plan) = call(with(&a));
        assert_eq!((done.outcome.generation, done.from), (1, None));
        assert!(done.outcome.changed && done.outcome.system_changed && done.outcome.conf_changed);
        assert_eq!(calls, [format!("real {a}"), format!("create {a}")]);
        let root = plan.layout.root.clone();
        assert!(root.is_dir());

        let (done, calls, _) = call(with(&a));
        assert!(!done.outcome.changed, "{done:?}");
        assert!(calls.is_empty(), "a no-op asked Nix for {calls:?}");

        let (done, _, _) = call(with(&b));
        assert_eq!((done.outcome.generation, done.from), (2, Some(1)));
        assert!(done.outcome.system_changed && !done.outcome.conf_changed);

        // A rollback (what the CLI's does too) switches, keeps the conf
        // and prepares the root again: here it was removed.
        std::fs::remove_dir_all(&root).unwrap();
        let (done, calls, _) = call(r#"{"name":"web","rollback":true}"#.into());
        assert_eq!((done.outcome.generation, done.from), (1, Some(2)));
        assert_eq!(done.system.as_deref(), Some(a.as_str()));
        assert!(calls.is_empty());
        assert!(root.is_dir(), "the rollback did not prepare the root");
        let (done, _, _) = call(r#"{"name":"web","generation":2}"#.into());
        assert_eq!(done.system.as_deref(), Some(b.as_str()));

        // SwitchOnly (the CLI) refuses to add a generation.
        let mut plan = Plan::new(&with(&sys("c")), &settings).unwrap();
        assert!(run(&mut plan, &SwitchOnly).is_err());
    }
}

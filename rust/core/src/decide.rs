//! What `apply` does to one container after its profile or conf changed: a
//! pure function of facts the runtime gathered, all of them the host's own
//! records (the conf the container was started with, saved at start,
//! against the current one; the system the host booted or last activated
//! in it against the one the profile points at). Nothing the container says
//! about itself (its /run/current-system) decides anything.

use serde::Serialize;

use crate::conf::Conf;

/// Conf keys that do not change how a running container was started.
const NOT_NEEDING_RESTART: &[&str] = &["AUTO_START", "SYSTEM_PATH"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Nothing,
    Start,
    /// Activate the profile's system inside (switch-to-configuration test).
    Reload,
    /// Stop and start: the nspawn command line or root preparation changed.
    Restart,
    /// The container no longer has a conf file: it was removed.
    Stop,
    /// It left the configuration that declared it: stop it (if this tool
    /// started it) and remove its conf file, keeping its state, as NixOS
    /// does with a container removed from `containers`.
    Retire,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub action: Action,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Facts<'a> {
    pub running: bool,
    /// The conf file now (None: there is none).
    pub conf: Option<&'a Conf>,
    /// The conf saved when this tool started the running container (None:
    /// something else started it).
    pub started_conf: Option<&'a Conf>,
    /// The system this tool booted or last activated in it.
    pub running_system: Option<&'a str>,
    /// Where the profile points.
    pub profile_system: Option<&'a str>,
    /// Some(false): a configuration declared it before and no longer does.
    pub declared: Option<bool>,
}

/// Keys whose values differ between two confs, ignoring those that do not
/// need a restart.
pub fn changed_keys(a: &Conf, b: &Conf) -> Vec<String> {
    let mut keys: Vec<&str> = a.entries().chain(b.entries()).map(|(k, _)| k).collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !NOT_NEEDING_RESTART.contains(k) && a.value(k) != b.value(k))
        .map(String::from)
        .collect()
}

pub fn decide(f: &Facts) -> Decision {
    let d = |action, reason: String| Decision { action, reason };
    if f.declared == Some(false) {
        let how = match (f.running, f.started_conf.is_some()) {
            (true, true) => "stopped; its conf file removed, its state kept",
            (true, false) => "its conf file removed, its state kept; running, but not started by nix-container, so left running",
            (false, _) => "its conf file removed, its state kept",
        };
        return d(
            Action::Retire,
            format!("removed from the configuration: {how}"),
        );
    }

    let Some(conf) = f.conf else {
        return if f.running {
            d(Action::Stop, "its conf file is gone".into())
        } else {
            d(Action::Nothing, "no conf file".into())
        };
    };
    if !f.running {
        return if conf.value("AUTO_START") == "1" {
            d(
                Action::Start,
                "autoStart is set and it is not running".into(),
            )
        } else {
            d(Action::Nothing, "stopped (not autoStart)".into())
        };
    }
    let Some(started) = f.started_conf else {
        // Stock NixOS's container@.service, or another tool, started it:
        // restarting it on a guess could break what they manage.
        return d(
            Action::Nothing,
            "running, but not started by nix-container (no record of its start); left alone".into(),
        );
    };
    let keys = changed_keys(started, conf);
    if !keys.is_empty() {
        return d(
            Action::Restart,
            format!("conf changed since it started: {}", keys.join(", ")),
        );
    }
    match (f.running_system, f.profile_system) {
        (_, None) => d(Action::Nothing, "its profile points at no system".into()),
        (Some(r), Some(p)) if r == p => d(Action::Nothing, "unchanged".into()),
        (r, Some(p)) => d(
            Action::Reload,
            format!("system changed: {} -> {p}", r.unwrap_or("(unknown)")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(pairs: &[(&str, &str)]) -> Conf {
        let mut c = Conf::default();
        for (k, v) in pairs {
            c.set("x", k, (*v).into()).unwrap();
        }
        c
    }

    #[test]
    fn decisions() {
        let a = conf(&[("PRIVATE_NETWORK", "1")]);
        let auto = conf(&[("PRIVATE_NETWORK", "1"), ("AUTO_START", "1")]);
        let b = conf(&[("EXTRA_NSPAWN_FLAGS", " --bind=/a:/a")]);
        let run = |conf, started, r, p| {
            decide(&Facts {
                running: true,
                conf,
                started_conf: started,
                running_system: r,
                profile_system: p,
                declared: None,
            })
            .action
        };
        let (s1, s2) = (Some("/nix/store/a"), Some("/nix/store/b"));
        assert_eq!(run(Some(&a), Some(&a), s1, s1), Action::Nothing);
        assert_eq!(run(Some(&a), Some(&a), s1, s2), Action::Reload);
        assert_eq!(run(Some(&a), Some(&a), None, s2), Action::Reload);
        // autoStart alone does not restart; any other key does, before reload.
        assert_eq!(run(Some(&auto), Some(&a), s1, s1), Action::Nothing);
        assert_eq!(run(Some(&b), Some(&a), s1, s2), Action::Restart);
        assert_eq!(run(Some(&a), None, s1, s2), Action::Nothing);
        assert_eq!(run(None, Some(&a), s1, s1), Action::Stop);
        let stopped = |conf| {
            decide(&Facts {
                conf,
                ..Default::default()
            })
            .action
        };
        assert_eq!(stopped(Some(&auto)), Action::Start);
        assert_eq!(stopped(Some(&a)), Action::Nothing);
        assert_eq!(stopped(None), Action::Nothing);
        let retired = |running, started| {
            decide(&Facts {
                running,
                conf: Some(&a),
                started_conf: started,
                declared: Some(false),
                ..Default::default()
            })
        };
        assert_eq!(retired(true, Some(&a)).action, Action::Retire);
        assert!(retired(true, None).reason.contains("left running"));
        assert_eq!(retired(false, None).action, Action::Retire);

        assert_eq!(
            changed_keys(&a, &b),
            vec![
                "EXTRA_NSPAWN_FLAGS".to_string(),
                "PRIVATE_NETWORK".to_string()
            ]
        );
    }
}

//! One call of containerProfile / containerSpec: the checked spec, where it
//! goes, and what it writes. `Plan::new` is pure; the methods that touch the
//! disk say so.

use std::path::Path;

use serde::Serialize;

use crate::args::Args;
use crate::conf::Conf;
use crate::error::{Error, Result};
use crate::fsutil::Dir;
use crate::layout::{Layout, Roots, Settings, PROFILE_NAME};
use crate::profile::ProfileDir;
use crate::spec::{Spec, Target};
use crate::{conf_file, generation, nspawn, rootfs};

pub struct Plan {
    pub roots: Roots,
    pub layout: Layout,
    pub spec: Spec,
    pub conf_text: String,
    pub argv: Vec<String>,
    pub lock_timeout: std::time::Duration,
    /// The profile directory, once prepare_nix_dirs has made or opened it.
    profile: Option<ProfileDir>,
}

/// What containerProfile did.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub generation: u64,
    /// The profile now points at another system, or the conf file changed.
    pub changed: bool,
    pub system_changed: bool,
    pub conf_changed: bool,
}

/// The attribute set both builtins return (containerProfile adds `Outcome`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Description<'a> {
    #[serde(flatten)]
    layout: &'a Layout,
    system: Option<&'a str>,
    gcroots_dir: &'a Path,
    conf: &'a str,
    nspawn_env: std::collections::BTreeMap<&'static str, &'static str>,
    #[serde(flatten)]
    outcome: Option<Outcome>,
}

impl Plan {
    /// Checks the call's arguments (JSON) against every rule; no I/O.
    pub fn new(args_json: &str, settings: &Settings) -> Result<Plan> {
        let roots = Roots::resolve(settings)?;
        let args = Args::from_json(args_json)?;
        Plan::from_args(&args, roots, settings.lock_timeout())
    }

    /// The same from typed arguments and resolved roots (the CLI's way in).
    pub fn from_args(args: &Args, roots: Roots, lock_timeout: std::time::Duration) -> Result<Plan> {
        let spec = Spec::from_args(args, &roots.store_dir_str())?;
        let layout = roots.container(&spec.name);
        let argv = nspawn::argv(&spec.conf, &roots, &layout);
        Ok(Plan {
            conf_text: spec.conf.render(),
            argv,
            layout,
            roots,
            spec,
            lock_timeout,
            profile: None,
        })
    }

    pub fn system(&self) -> Option<&str> {
        match &self.spec.target {
            Target::System(s) => Some(s),
            _ => None,
        }
    }

    /// After realisation: the system must look like a NixOS system.
    pub fn check_system(&self, path: &str) -> Result<()> {
        let init = Path::new(path).join("init");
        match std::fs::metadata(&init) {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => Err(Error::NotASystem {
                path: path.into(),
                why: "'init' is not a file".into(),
            }),
            Err(e) => Err(Error::NotASystem {
                path: path.into(),
                why: e.to_string(),
            }),
        }
    }

    /// The no-op check, without a lock and without writing: the newest
    /// generation is current and points at `system`, the conf file holds
    /// exactly what this call would write, and the root and GC-root
    /// directories exist. Returns the current generation then. Whatever
    /// does not hold sends the call down the full path; a concurrent change
    /// can only make this answer "not unchanged". Skipped on purpose:
    /// refreshing resolv.conf and re-applying the root's modes, which the
    /// start script does at every start anyway.
    pub fn unchanged(&self, system: &str) -> Option<u64> {
        let l = &self.layout;
        let p = ProfileDir::open(&self.roots, l).ok()??;
        let (link, n) = p.current_link().ok()??;
        if p.dir.read_link(&link).ok()?? != system {
            return None;
        }
        // Nix adds a generation unless the newest one already points there.
        // A temporary a killed writer left (ProfileDir::is_leftover) sends
        // the call to the full path, which removes it under the lock;
        // anything else planted there does not (the sweep would leave it,
        // and every call would take the slow path for ever).
        let mut newest = 0;
        for (file, kind) in p.dir.entries().ok()? {
            let f = file.to_str()?;
            if p.is_leftover(f, kind) {
                return None;
            }
            // Generations as ProfileDir::list counts them: links, no temporaries.
            if kind == Some(crate::fsutil::Kind::Symlink) && !f.contains(".tmp-") {
                newest = newest.max(generation::parse_link_name(PROFILE_NAME, f).unwrap_or(0));
            }
        }
        if newest != n {
            return None;
        }
        if !conf_file::holds(&l.config_file, &self.conf_text) {
            return None;
        }
        // The GC-root directory is not checked: the start script creates it.
        std::fs::symlink_metadata(&l.root)
            .is_ok_and(|m| m.file_type().is_dir())
            .then_some(n)
    }

    /// Creates the profile, GC-root and conf directories (before the profile lock).
    pub fn prepare_nix_dirs(&mut self) -> Result<()> {
        self.profile = Some(rootfs::prepare_nix_dirs(&self.roots, &self.layout)?);
        Ok(())
    }

    pub fn profile_dir(&self) -> Result<&ProfileDir> {
        self.profile
            .as_ref()
            .ok_or_else(|| Error::Profile("internal: the profile directory is not open".into()))
    }

    /// The store path the profile resolves to, if any.
    pub fn profile_system(&self) -> Result<Option<String>> {
        self.profile_dir()?.system()
    }

    pub fn current_generation(&self) -> Result<u64> {
        let p = self.profile_dir()?;
        p.current()?.ok_or_else(|| {
            Error::Profile(format!(
                "profile '{}' points at no generation of its own",
                p.profile_path().display()
            ))
        })
    }

    /// Before libstore's createGeneration adds newest + 1: that must not wrap.
    pub fn check_generation_room(&self) -> Result<()> {
        let p = self.profile_dir()?;
        let newest = p.newest()?;
        if newest == u64::MAX {
            return Err(Error::Profile(format!(
                "profile '{}' has a generation numbered {newest}, so no newer one can be \
                 numbered; delete it (nix-container delete-generations)",
                p.profile_path().display()
            )));
        }
        Ok(())
    }

    /// Makes the generation link `link` (a path libstore's createGeneration
    /// returned, in the profile directory) current.
    pub fn switch_to_link(&self, link: &str) -> Result<()> {
        let p = self.profile_dir()?;
        let n = Path::new(link)
            .file_name()
            .and_then(|f| f.to_str())
            .and_then(|f| generation::parse_link_name(&p.name, f))
            .ok_or_else(|| Error::Profile(format!("'{link}' is not a generation link")))?;
        if p.current()? != Some(n) {
            p.switch_to(n)?;
        }
        Ok(())
    }

    /// For `generation = N` / `rollback = true`: switches the profile as
    /// `nix-env --switch-generation` / `--rollback` do (under the lock).
    pub fn switch_generation(&self) -> Result<()> {
        let p = self.profile_dir()?;
        let numbers: Vec<u64> = p.list()?.iter().map(|g| g.number).collect();
        let to = match self.spec.target {
            Target::Generation(n) => Some(n),
            Target::Rollback => None,
            Target::System(_) => return Ok(()),
        };
        let n = generation::switch_target(&numbers, p.current()?, to).map_err(Error::Profile)?;
        p.switch_to(n)
    }

    /// Prepares the root file system and writes the conf file, under the
    /// profile lock. Returns whether the conf file changed. A switch to an
    /// existing generation keeps the conf file the container has (and from
    /// then on describes the container by it).
    pub fn prepare_root_and_conf(&mut self) -> Result<bool> {
        let dir = Dir::open_root(&self.roots.config_dir, 0o755)?;
        let file = self.layout.config_file_name();
        if self.system().is_none() {
            if let Some((text, conf)) = conf_file::read_in(&dir, &file)? {
                self.spec.conf = conf;
                self.argv = nspawn::argv(&self.spec.conf, &self.roots, &self.layout);
                self.conf_text = text;
            }
        }
        rootfs::prepare(
            &self.roots,
            &self.layout,
            self.spec.conf.value("COPY_RESOLV_CONF") == "1",
        )?;
        conf_file::replace(&dir, &file, &self.conf_text)
    }

    /// containerSpec's result: describes the container its arguments give.
    pub fn describe_spec(&self) -> Result<String> {
        match self.system() {
            Some(s) => Ok(self.describe(Some(s), None)),
            None => Err(Error::attr(
                "system",
                "missing: containerSpec describes a container from its arguments, while 'generation' and \
                 'rollback' switch an existing profile, which only containerProfile does",
            )),
        }
    }

    /// The result attribute set as JSON. `nspawnArgs` is not in it: the
    /// plugin adds it as a lazy attribute (see [`nspawn_args_json`]).
    pub fn describe(&self, system: Option<&str>, outcome: Option<Outcome>) -> String {
        let d = Description {
            layout: &self.layout,
            system,
            gcroots_dir: &self.layout.gcroots_dir,
            conf: &self.conf_text,
            nspawn_env: nspawn::ENV.iter().copied().collect(),
            outcome,
        };
        // Serialising plain strings, paths and numbers cannot fail.
        serde_json::to_string(&d).unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
    }
}

/// The systemd-nspawn argv of container `name` with conf text `conf`, as a
/// JSON list: what a result's lazy `nspawnArgs` evaluates to.
pub fn nspawn_args_json(name: &str, conf: &str, settings: &Settings) -> Result<String> {
    crate::name::validate(name)?;
    let roots = Roots::resolve(settings)?;
    let layout = roots.container(name);
    let conf = Conf::parse(conf).map_err(|msg| Error::Conf {
        path: layout.config_file.clone(),
        msg,
    })?;
    let argv = nspawn::argv(&conf, &roots, &layout);
    serde_json::to_string(&argv).map_err(|e| Error::Args(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_only_when_every_fact_holds() {
        let t = tempfile::tempdir().unwrap();
        let d = |x: &str| t.path().join(x).display().to_string();
        let settings = Settings {
            state_dir: d("state"),
            config_dir: d("etc"),
            profiles_dir: d("profiles"),
            gcroots_dir: d("gcroots"),
            ..Default::default()
        };
        let sys = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-s";
        let mut p = Plan::new(&format!(r#"{{"name":"web","system":"{sys}"}}"#), &settings).unwrap();
        assert_eq!(p.unchanged(sys), None);
        p.prepare_nix_dirs().unwrap();
        p.prepare_root_and_conf().unwrap();
        let pd = &p.layout.profile_dir;
        std::os::unix::fs::symlink(sys, pd.join("system-1-link")).unwrap();
        std::os::unix::fs::symlink("system-1-link", &p.layout.profile).unwrap();
        assert_eq!(p.unchanged(sys), Some(1));
        assert_eq!(
            p.unchanged("/nix/store/0123456789abcdfghijklmnpqrsvwxyz-t"),
            None
        );
        // A newer generation (after a rollback): Nix would add one.
        std::os::unix::fs::symlink("/nix/store/x", pd.join("system-2-link")).unwrap();
        assert_eq!(p.unchanged(sys), None);
        std::fs::remove_file(pd.join("system-2-link")).unwrap();
        std::os::unix::fs::symlink(sys, pd.join(".7_system")).unwrap();
        assert_eq!(
            p.unchanged(sys),
            None,
            "a stale temporary takes the full path"
        );
        std::fs::remove_file(pd.join(".7_system")).unwrap();
        // What a container's root may plant in its profile directory (bound
        // read-write into it) is no leftover: the no-op stays a no-op.
        std::fs::write(pd.join(".x"), "").unwrap();
        std::os::unix::fs::symlink("/nix/store/x", pd.join(".y")).unwrap();
        std::fs::write(pd.join("system-9-link.tmp-1-2"), "").unwrap();
        assert_eq!(
            p.unchanged(sys),
            Some(1),
            "a planted name forces the slow path"
        );
        // The conf read never follows a link or waits on a FIFO.
        let conf = std::fs::read(&p.layout.config_file).unwrap();
        let real = t.path().join("conf-copy");
        std::fs::write(&real, &conf).unwrap();
        std::fs::remove_file(&p.layout.config_file).unwrap();
        std::os::unix::fs::symlink(&real, &p.layout.config_file).unwrap();
        assert_eq!(p.unchanged(sys), None, "a linked conf was followed");
        std::fs::remove_file(&p.layout.config_file).unwrap();
        nix::unistd::mkfifo(
            &p.layout.config_file,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert_eq!(p.unchanged(sys), None);
        std::fs::remove_file(&p.layout.config_file).unwrap();
        std::fs::write(&p.layout.config_file, "PRIVATE_NETWORK=1\n").unwrap();
        assert_eq!(p.unchanged(sys), None);
        p.prepare_root_and_conf().unwrap();
        assert_eq!(p.unchanged(sys), Some(1));
        std::fs::remove_dir_all(&p.layout.root).unwrap();
        assert_eq!(p.unchanged(sys), None);
    }

    #[test]
    fn describe_has_every_attribute() {
        let p = Plan::new(
            r#"{"name":"web","system":"/nix/store/0123456789abcdfghijklmnpqrsvwxyz-s"}"#,
            &Settings::default(),
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&p.describe(p.system(), None)).unwrap();
        for k in [
            "name",
            "system",
            "profile",
            "profileDir",
            "root",
            "configFile",
            "gcrootsDir",
            "unit",
            "conf",
            "nspawnEnv",
        ] {
            assert!(v.get(k).is_some(), "{k} missing in {v}");
        }
        assert!(v.get("generation").is_none());
        let o = Outcome {
            generation: 3,
            changed: true,
            system_changed: true,
            conf_changed: false,
        };
        let v: serde_json::Value = serde_json::from_str(&p.describe(p.system(), Some(o))).unwrap();
        assert_eq!(v["generation"], 3);
        assert_eq!(v["confChanged"], false);
        assert_eq!(v["unit"], "container@web.service");
    }
}

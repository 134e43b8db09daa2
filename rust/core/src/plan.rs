//! One call of containerProfile / containerSpec: the checked spec, where it
//! goes, and what it writes. `Plan::new` is pure; the methods that touch the
//! disk say so.

use std::path::Path;

use serde::Serialize;

use crate::args::Args;
use crate::conf::Conf;
use crate::error::{Error, Result};
use crate::fsutil::Dir;
use crate::layout::{Layout, Roots, Settings};
use crate::spec::{Spec, Target};
use crate::{nspawn, rootfs};

#[derive(Debug, Clone)]
pub struct Plan {
    pub roots: Roots,
    pub layout: Layout,
    pub spec: Spec,
    pub conf_text: String,
    pub argv: Vec<String>,
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
    nspawn_args: &'a [String],
    nspawn_env: std::collections::BTreeMap<&'static str, &'static str>,
    #[serde(flatten)]
    outcome: Option<Outcome>,
}

impl Plan {
    /// Checks the call's arguments (JSON) against every rule; no I/O.
    pub fn new(args_json: &str, settings: &Settings) -> Result<Plan> {
        let roots = Roots::resolve(settings)?;
        let args = Args::from_json(args_json)?;
        let spec = Spec::from_args(&args, &roots.store_dir_str())?;
        let layout = roots.container(&spec.name);
        let argv = nspawn::argv(&spec.conf, &roots, &layout);
        Ok(Plan {
            conf_text: spec.conf.render(),
            argv,
            layout,
            roots,
            spec,
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

    /// Creates the profile, GC-root and conf directories (before the profile lock).
    pub fn prepare_nix_dirs(&self) -> Result<()> {
        rootfs::prepare_nix_dirs(&self.roots, &self.layout)
    }

    /// Prepares the root file system and writes the conf file, under the
    /// profile lock. Returns whether the conf file changed. A switch to an
    /// existing generation keeps the conf file the container has (and from
    /// then on describes the container by it).
    pub fn prepare_root_and_conf(&mut self) -> Result<bool> {
        let dir = Dir::open_root(&self.roots.config_dir, 0o755)?;
        let file = self.layout.config_file_name();
        if self.system().is_none() {
            if let Some(bytes) = dir.read(&file)? {
                let path = &self.layout.config_file;
                let bad = |msg: String| Error::Conf {
                    path: path.clone(),
                    msg,
                };
                let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))?;
                self.spec.conf = Conf::parse(&text).map_err(bad)?;
                self.argv = nspawn::argv(&self.spec.conf, &self.roots, &self.layout);
                self.conf_text = text;
            }
        }
        rootfs::prepare(
            &self.roots,
            &self.layout,
            self.spec.conf.value("COPY_RESOLV_CONF") == "1",
        )?;
        dir.replace_file(&file, self.conf_text.as_bytes(), 0o644)
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

    /// The result attribute set as JSON.
    pub fn describe(&self, system: Option<&str>, outcome: Option<Outcome>) -> String {
        let d = Description {
            layout: &self.layout,
            system,
            gcroots_dir: &self.layout.gcroots_dir,
            conf: &self.conf_text,
            nspawn_args: &self.argv,
            nspawn_env: nspawn::ENV.iter().copied().collect(),
            outcome,
        };
        // Serialising plain strings, paths and numbers cannot fail.
        serde_json::to_string(&d).unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "nspawnArgs",
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

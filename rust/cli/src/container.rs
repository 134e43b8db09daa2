//! One container as the runtime sees it: its paths, and the facts the
//! commands decide on (conf now and at start, profile, running system).

use std::path::Path;
use std::time::Duration;

use ncp_core::conf::Conf;
use ncp_core::layout::{Layout, Roots, CONSOLE_LOG, PID_FILE, STARTED_CONF};
use ncp_core::name;
use ncp_core::profile::ProfileDir;
use serde::Serialize;

use crate::error::{failed, CliError, Result};
use crate::procs;
use crate::runner::Runner;

pub struct Ctx {
    pub roots: Roots,
    pub runner: Runner,
    /// How long start and stop wait.
    pub timeout: Duration,
    /// How long to wait for a profile lock.
    pub lock_timeout: Duration,
}

pub struct Container<'a> {
    pub ctx: &'a Ctx,
    pub layout: Layout,
}

fn read_conf(path: &Path) -> Result<Option<(String, Conf)>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let conf = Conf::parse(&text)
                .map_err(|msg| failed(format!("conf file '{}': {msg}", path.display())))?;
            Ok(Some((text, conf)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(failed(format!("cannot read '{}': {e}", path.display()))),
    }
}

impl Ctx {
    /// Every container under the roots: a conf file, a profile directory or
    /// a root directory with a valid name.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut scan = |dir: &Path, suffix: &str| {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if let Some(n) = e.file_name().to_str().and_then(|f| f.strip_suffix(suffix)) {
                    if name::validate(n).is_ok() && (!suffix.is_empty() || e.path().is_dir()) {
                        names.push(n.to_owned());
                    }
                }
            }
        };
        scan(&self.roots.config_dir, ".conf");
        scan(&self.roots.profiles_dir, "");
        scan(&self.roots.state_dir, "");
        names.sort();
        names.dedup();
        names
    }

    /// The container `name`, which must exist under the roots.
    pub fn container(&self, name: &str) -> Result<Container<'_>> {
        name::validate(name)?;
        let layout = self.roots.container(name);
        if !(layout.config_file.exists() || layout.profile_dir.exists() || layout.root.exists()) {
            return Err(CliError::Unknown {
                name: name.into(),
                config: self.roots.config_dir.display().to_string(),
            });
        }
        Ok(Container { ctx: self, layout })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub name: String,
    pub state: &'static str,
    pub generation: Option<u64>,
    pub system: Option<String>,
    pub running_system: Option<String>,
    /// The running system is not the one the profile points at.
    pub system_differs: bool,
    /// Conf keys changed since it started (a restart applies them).
    pub conf_changed: Vec<String>,
    pub auto_start: bool,
    pub nspawn_pid: Option<i32>,
    pub leader: Option<i32>,
    pub runner: &'static str,
    pub unit: String,
    pub root: String,
    pub config_file: String,
    pub profile: String,
    pub console_log: String,
}

impl Container<'_> {
    pub fn name(&self) -> &str {
        &self.layout.name
    }
    pub fn run_file(&self, f: &str) -> std::path::PathBuf {
        self.layout.run_dir.join(f)
    }
    pub fn conf(&self) -> Result<Option<(String, Conf)>> {
        read_conf(&self.layout.config_file)
    }
    pub fn started_conf(&self) -> Result<Option<Conf>> {
        Ok(read_conf(&self.run_file(STARTED_CONF))?.map(|(_, c)| c))
    }
    pub fn console_log(&self) -> std::path::PathBuf {
        self.run_file(CONSOLE_LOG)
    }
    pub fn pid_file(&self) -> std::path::PathBuf {
        self.run_file(PID_FILE)
    }
    /// The profile directory (None: the container has none). A symlink
    /// there is refused, never followed.
    pub fn profile_dir(&self) -> Result<Option<ProfileDir>> {
        Ok(ProfileDir::open(&self.ctx.roots, &self.layout)?)
    }
    /// The store path the profile resolves to (links read, not followed).
    pub fn profile_system(&self) -> Option<String> {
        self.profile_dir().ok()??.system().ok()?
    }
    pub fn generation(&self) -> Result<Option<u64>> {
        match self.profile_dir()? {
            Some(p) => Ok(p.current()?),
            None => Ok(None),
        }
    }
    pub fn nspawn_pid(&self) -> Option<i32> {
        self.ctx.runner.nspawn_pid(self)
    }
    pub fn leader(&self) -> Option<i32> {
        self.nspawn_pid().and_then(procs::leader)
    }
    /// The leader of a running container, or NotRunning.
    pub fn require_leader(&self) -> Result<i32> {
        self.leader()
            .ok_or_else(|| CliError::NotRunning(self.name().into()))
    }

    pub fn status(&self) -> Result<Status> {
        let nspawn_pid = self.nspawn_pid();
        let leader = nspawn_pid.and_then(procs::leader);
        let system = self.profile_system();
        let running_system = leader.and_then(procs::running_system);
        let conf = self.conf()?;
        let conf_changed = match (leader, &conf, self.started_conf()?) {
            (Some(_), Some((_, now)), Some(then)) => ncp_core::decide::changed_keys(&then, now),
            _ => Vec::new(),
        };
        let d = |p: &Path| p.display().to_string();
        Ok(Status {
            name: self.name().into(),
            state: if leader.is_some() {
                "running"
            } else {
                "stopped"
            },
            generation: self.generation()?,
            system_differs: leader.is_some() && running_system != system,
            system,
            running_system,
            conf_changed,
            auto_start: conf.is_some_and(|(_, c)| c.value("AUTO_START") == "1"),
            nspawn_pid,
            leader,
            runner: self.ctx.runner.name(),
            unit: self.layout.unit.clone(),
            root: d(&self.layout.root),
            config_file: d(&self.layout.config_file),
            profile: d(&self.layout.profile),
            console_log: d(&self.console_log()),
        })
    }
}

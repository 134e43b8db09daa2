//! One container as the runtime sees it: its paths, and the facts the
//! commands decide on. Facts come from the host's own records (the conf it
//! started with, the system it activated, which process is its nspawn), not
//! from inside the container, whose root may have changed anything there.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ncp_core::conf::Conf;
use ncp_core::fsutil::{Chmod, Contents, Dir};
use ncp_core::layout::{Layout, Roots, ACTIVE_SYSTEM, CONSOLE_LOG, STARTED_CONF};
use ncp_core::name;
use ncp_core::profile::ProfileDir;
use serde::Serialize;

use crate::error::{failed, CliError, Result};
use crate::identity::Process;
use crate::runner::Runner;

/// The most the CLI reads of a conf file.
const MAX_CONF: usize = 64 * 1024;

pub struct Ctx {
    pub roots: Roots,
    /// The layout of NixOS before 22.05 (passed on to the plugin by create).
    pub legacy_layout: bool,
    pub runner: Runner,
    /// How long start waits for the init, and stop for it to halt.
    pub timeout: Duration,
    /// How long to wait for a profile lock.
    pub lock_timeout: Duration,
}

pub struct Container<'a> {
    pub ctx: &'a Ctx,
    pub layout: Layout,
}

/// Reads a conf file (host-owned directories; still bounded and never a FIFO).
fn read_conf(dir: &Path, file: &str) -> Result<Option<(String, Conf)>> {
    let Some(d) = Dir::open_existing_root(dir)? else {
        return Ok(None);
    };
    let path = d.child_path(file);
    let bytes = match d.read_bounded(file, MAX_CONF)? {
        Contents::Missing => return Ok(None),
        Contents::Data(b) => b,
        Contents::TooLarge => {
            return Err(failed(format!(
                "conf file '{}' is larger than {MAX_CONF} bytes",
                path.display()
            )))
        }
        Contents::NotRegular(k) => {
            return Err(failed(format!(
                "conf file '{}' is {}",
                path.display(),
                k.describe()
            )))
        }
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| failed(format!("conf file '{}' is not UTF-8", path.display())))?;
    let conf = Conf::parse(&text)
        .map_err(|msg| failed(format!("conf file '{}': {msg}", path.display())))?;
    Ok(Some((text, conf)))
}

impl Ctx {
    /// Every container under the roots: a conf file, a profile directory or
    /// a root directory with a valid name.
    /// An error when a root cannot be trusted (fsutil's checks) or read.
    pub fn names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = Vec::new();
        let mut scan = |dir: &Path, suffix: &str| -> Result<()> {
            let Some(d) = Dir::open_existing_root(dir)? else {
                return Ok(());
            };
            for (file, kind) in d.entries()? {
                let Some(f) = file.to_str() else { continue };
                if let Some(n) = f.strip_suffix(suffix) {
                    let wanted = if suffix.is_empty() {
                        kind == Some(ncp_core::fsutil::Kind::Dir)
                    } else {
                        true
                    };
                    if wanted && name::validate(n).is_ok() {
                        names.push(n.to_owned());
                    }
                }
            }
            Ok(())
        };
        scan(&self.roots.config_dir, ".conf")?;
        scan(&self.roots.profiles_dir, "")?;
        scan(&self.roots.state_dir, "")?;
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The container `name`, which must exist under the roots.
    pub fn container(&self, name: &str) -> Result<Container<'_>> {
        name::validate(name)?;
        let layout = self.roots.container(name);
        let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
        if !(exists(&layout.config_file) || exists(&layout.profile_dir) || exists(&layout.root)) {
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
    /// The system the host booted or last activated in it (its record).
    pub running_system: Option<String>,
    /// The running system is not the one the profile points at.
    pub system_differs: bool,
    /// Conf keys changed since it started (a restart applies them).
    pub conf_changed: Vec<String>,
    /// Started by this tool (or its units): only then does it act on it.
    pub managed: bool,
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

    /// The container's run directory (root-owned 0700), made if missing.
    pub fn run_dir(&self) -> Result<Dir> {
        Ok(Dir::open_root(&self.ctx.roots.run_dir, 0o700)?.ensure_dir(
            &self.layout.name,
            0o700,
            Chmod::Always,
        )?)
    }

    pub fn console_log(&self) -> PathBuf {
        self.layout.run_dir.join(CONSOLE_LOG)
    }

    pub fn conf(&self) -> Result<Option<(String, Conf)>> {
        read_conf(&self.ctx.roots.config_dir, &self.layout.config_file_name())
    }

    /// The conf it was started with (by this tool; None otherwise).
    pub fn started_conf(&self) -> Result<Option<Conf>> {
        Ok(read_conf(&self.layout.run_dir, STARTED_CONF)?.map(|(_, c)| c))
    }

    /// The system this tool booted or last activated in it.
    pub fn active_system(&self) -> Option<String> {
        let d = Dir::open_existing_root(&self.layout.run_dir).ok()??;
        match d.read_bounded(ACTIVE_SYSTEM, 4096).ok()? {
            Contents::Data(b) => String::from_utf8(b).ok(),
            _ => None,
        }
    }

    pub fn record_active_system(&self, system: &str) -> Result<()> {
        self.run_dir()?
            .replace_file(ACTIVE_SYSTEM, system.as_bytes(), 0o600)?;
        Ok(())
    }

    /// Forgets what was recorded of a run (it stopped).
    pub fn clear_run_records(&self) -> Result<()> {
        if let Some(d) = Dir::open_existing_root(&self.layout.run_dir)? {
            for f in [STARTED_CONF, ACTIVE_SYSTEM, ncp_core::layout::NSPAWN_RECORD] {
                d.unlink(f)?;
            }
        }
        Ok(())
    }

    /// The profile directory (None: the container has none). A symlink
    /// there is refused, never followed.
    pub fn profile_dir(&self) -> Result<Option<ProfileDir>> {
        Ok(ProfileDir::open(&self.ctx.roots, &self.layout)?)
    }

    /// The store path the profile resolves to (links read, not followed),
    /// if it is a store path at all.
    pub fn profile_system(&self) -> Option<String> {
        let s = self.profile_dir().ok()??.system().ok()??;
        ncp_core::store_path::check(&self.ctx.roots.store_dir_str(), "system", &s).ok()?;
        Some(s)
    }

    pub fn generation(&self) -> Result<Option<u64>> {
        match self.profile_dir()? {
            Some(p) => Ok(p.current()?),
            None => Ok(None),
        }
    }

    pub fn nspawn(&self) -> Option<Process> {
        self.ctx.runner.nspawn(self)
    }

    /// A systemd-nspawn for this container that this tool did not start
    /// (nor systemd for it): reason only to leave the container alone.
    pub fn foreign(&self) -> Option<i32> {
        let ours = self.nspawn().map(|p| p.pid);
        if ours.is_some() {
            return None;
        }
        crate::identity::foreign_nspawn(self.name(), None)
    }

    /// The container's init, if it runs.
    pub fn leader(&self) -> Option<Process> {
        self.nspawn()?.leader()
    }

    /// The init of a running container, or NotRunning.
    pub fn require_leader(&self) -> Result<Process> {
        if let Some(l) = self.leader() {
            return Ok(l);
        }
        match self.foreign() {
            Some(pid) => Err(failed(format!(
                "container '{}' runs, but not started by nix-container (systemd-nspawn {pid}): \
                 it cannot be proved to be this container, so nothing is run in it; \
                 use the tool that started it",
                self.name()
            ))),
            None => Err(CliError::NotRunning(self.name().into())),
        }
    }

    pub fn status(&self) -> Result<Status> {
        let nspawn = self.nspawn();
        let leader = nspawn.as_ref().and_then(|n| n.leader());
        let system = self.profile_system();
        let running_system = leader.as_ref().and(self.active_system());
        let conf = self.conf()?;
        let conf_changed = match (&leader, &conf, self.started_conf()?) {
            (Some(_), Some((_, now)), Some(then)) => ncp_core::decide::changed_keys(&then, now),
            _ => Vec::new(),
        };
        let d = |p: &Path| p.display().to_string();
        let foreign = if leader.is_none() {
            self.foreign()
        } else {
            None
        };
        Ok(Status {
            name: self.name().into(),
            state: if leader.is_some() || foreign.is_some() {
                "running"
            } else {
                "stopped"
            },
            managed: leader.is_some(),

            generation: self.generation()?,
            system_differs: leader.is_some()
                && running_system.is_some()
                && running_system != system,
            system,
            running_system,
            conf_changed,
            auto_start: conf.is_some_and(|(_, c)| c.value("AUTO_START") == "1"),
            nspawn_pid: nspawn.as_ref().map(|p| p.pid),
            leader: leader.as_ref().map(|p| p.pid),
            runner: self.ctx.runner.name(),
            unit: self.ctx.runner.unit(self),

            root: d(&self.layout.root),
            config_file: d(&self.layout.config_file),
            profile: d(&self.layout.profile),
            console_log: d(&self.console_log()),
        })
    }
}

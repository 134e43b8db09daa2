//! One container as the runtime sees it: its paths, and the facts the
//! commands decide on. Facts come from the host's own records (the conf it
//! started with, the system it activated, which process is its nspawn), not
//! from inside the container, whose root may have changed anything there.

use std::path::Path;
use std::time::Duration;

use ncp_core::conf::Conf;
use ncp_core::fsutil::Dir;
use ncp_core::layout::{Layout, Roots, Settings};
use ncp_core::name;
use ncp_core::profile::ProfileDir;

use crate::error::{CliError, Result};
use crate::records::Records;
use crate::runner::{Instance, Runner};

/// Default of `--timeout` for start: NixOS's containers.<name>.timeoutStartSec.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Default of `--timeout` for stop: the grace before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Ctx {
    pub roots: Roots,
    /// The plugin's settings in force (passed on to the plugin by create).
    pub settings: Settings,
    pub runner: Runner,
    /// How long start waits for the container to be ready.
    pub start_timeout: Duration,
    /// How long stop waits for it to halt before killing it.
    pub stop_timeout: Duration,
    /// How long to wait for a profile lock.
    pub lock_timeout: Duration,
}

pub struct Container<'a> {
    pub ctx: &'a Ctx,
    pub layout: Layout,
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

impl Container<'_> {
    pub fn name(&self) -> &str {
        &self.layout.name
    }

    /// What the runner needs of it.
    pub fn instance(&self) -> Instance<'_> {
        Instance {
            layout: &self.layout,
            roots: &self.ctx.roots,
        }
    }

    /// Its run records (records.rs).
    pub fn records(&self) -> Records {
        Records::new(&self.ctx.roots.run_dir, self.name())
    }

    pub fn conf(&self) -> Result<Option<(String, Conf)>> {
        Ok(ncp_core::conf_file::read(
            &self.ctx.roots.config_dir,
            &self.layout.config_file_name(),
        )?)
    }

    /// The conf it was started with (by this tool; None otherwise).
    pub fn started_conf(&self) -> Result<Option<Conf>> {
        self.records().started_conf()
    }

    /// The system this tool booted or last activated in it.
    pub fn active_system(&self) -> Option<String> {
        self.records().active_system()
    }

    pub fn record_active_system(&self, system: &str) -> Result<()> {
        self.records().save_active_system(system)
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
}

//! The run records of one container: facts the host wrote itself while it
//! ran the container (unlike anything inside it, which its root may have
//! changed), in `<run-dir>/NAME` (root-only, gone after a reboot, as the
//! containers are). This module owns every file name there.

use std::path::{Path, PathBuf};

use ncp_core::conf::Conf;
use ncp_core::fsutil::{Chmod, Contents, Dir};

use crate::error::Result;
use crate::identity::Record;

/// The conf a running container was started with.
const STARTED_CONF: &str = "started.conf";
/// The system the host last booted or activated in it.
const ACTIVE_SYSTEM: &str = "system";
/// Which process is its systemd-nspawn: pid, start time, boot id.
const NSPAWN_RECORD: &str = "nspawn.json";
/// Its init said it is ready (READY=1), or, for an init that does not
/// notify, it runs.
const READY: &str = "ready";
/// A stop is under way.
const STOPPING: &str = "stopping";
/// The last STATUS= its init sent.
const STATUS: &str = "status";
/// The console: what systemd-nspawn printed (direct runner), rotated.
pub const CONSOLE_LOG: &str = "console.log";
pub const CONSOLE_LOG_OLD: &str = "console.log.1";
/// The socket systemd-nspawn sends READY=1 to (NOTIFY_SOCKET).
const NOTIFY_SOCKET: &str = "notify";

/// The records of one container.
pub struct Records {
    /// `<run-dir>`: made root-only if missing.
    run_root: PathBuf,
    /// `<run-dir>/NAME`.
    dir: PathBuf,
    name: String,
}

impl Records {
    pub fn new(run_root: &Path, name: &str) -> Records {
        Records {
            run_root: run_root.to_owned(),
            dir: run_root.join(name),
            name: name.to_owned(),
        }
    }

    /// The directory (root-owned 0700), made if missing.
    pub fn dir(&self) -> Result<Dir> {
        Ok(Dir::open_root(&self.run_root, 0o700)?.ensure_dir(&self.name, 0o700, Chmod::Always)?)
    }

    fn existing(&self) -> Option<Dir> {
        Dir::open_existing_root(&self.dir).ok()?
    }

    fn read_small(&self, file: &str) -> Option<String> {
        match self.existing()?.read_bounded(file, 4096).ok()? {
            Contents::Data(b) => String::from_utf8(b).ok(),
            _ => None,
        }
    }

    fn exists(&self, file: &str) -> bool {
        self.existing()
            .and_then(|d| d.kind(file).ok().flatten())
            .is_some()
    }

    /// `<run-dir>/NAME`.
    pub fn dir_path(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn console_log(&self) -> PathBuf {
        self.path(CONSOLE_LOG)
    }

    pub fn notify_socket(&self) -> PathBuf {
        self.path(NOTIFY_SOCKET)
    }

    pub fn started_conf(&self) -> Result<Option<Conf>> {
        Ok(ncp_core::conf_file::read(&self.dir, STARTED_CONF)?.map(|(_, c)| c))
    }

    pub fn save_started_conf(&self, text: &str) -> Result<()> {
        self.dir()?
            .replace_file(STARTED_CONF, text.as_bytes(), 0o600)?;
        Ok(())
    }

    pub fn active_system(&self) -> Option<String> {
        self.read_small(ACTIVE_SYSTEM)
    }

    pub fn save_active_system(&self, system: &str) -> Result<()> {
        self.dir()?
            .replace_file(ACTIVE_SYSTEM, system.as_bytes(), 0o600)?;
        Ok(())
    }

    pub fn nspawn(&self) -> Option<Record> {
        serde_json::from_str(&self.read_small(NSPAWN_RECORD)?).ok()
    }

    pub fn save_nspawn(&self, r: &Record) -> Result<()> {
        let bytes = serde_json::to_vec(r).map_err(|e| crate::error::failed(e.to_string()))?;
        self.dir()?.replace_file(NSPAWN_RECORD, &bytes, 0o600)?;
        Ok(())
    }

    pub fn ready(&self) -> bool {
        self.exists(READY)
    }

    pub fn mark_ready(&self) -> Result<()> {
        self.dir()?.replace_file(READY, b"", 0o600)?;
        Ok(())
    }

    pub fn stopping(&self) -> bool {
        self.exists(STOPPING)
    }

    pub fn mark_stopping(&self) -> Result<()> {
        self.dir()?.replace_file(STOPPING, b"", 0o600)?;
        Ok(())
    }

    /// The last STATUS= the container's init sent, if any.
    pub fn status_text(&self) -> Option<String> {
        self.read_small(STATUS)
    }

    pub fn save_status_text(&self, text: &str) -> Result<()> {
        self.dir()?.replace_file(STATUS, text.as_bytes(), 0o600)?;
        Ok(())
    }

    /// Forgets a run (it stopped, or never came up). The console log stays:
    /// it tells why.
    pub fn clear(&self) -> Result<()> {
        if let Some(d) = Dir::open_existing_root(&self.dir)? {
            for f in [
                STARTED_CONF,
                ACTIVE_SYSTEM,
                NSPAWN_RECORD,
                READY,
                STOPPING,
                STATUS,
            ] {
                d.unlink(f)?;
            }
        }
        Ok(())
    }

    /// Forgets only that it was ready and the stop mark: a new start.
    pub fn clear_readiness(&self) -> Result<()> {
        if let Some(d) = Dir::open_existing_root(&self.dir)? {
            for f in [READY, STOPPING, STATUS] {
                d.unlink(f)?;
            }
        }
        Ok(())
    }
}

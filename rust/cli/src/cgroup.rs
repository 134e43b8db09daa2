//! The direct runner's cgroup for each container. Without systemd as PID 1
//! there is no machine.slice: systemd-nspawn (--register=no) puts its payload
//! in a `payload` group below its own cgroup, so every container started
//! from the same cgroup would share one, and their systemds (each the
//! owner of "its" tree) would create and remove each other's unit groups:
//! units then fail with "Failed to attach to cgroup …: No such file or
//! directory" (status 219/CGROUP) and the boot ends degraded. Each
//! container's systemd-nspawn therefore starts in a group of its own,
//! `nix-container.NAME` below the caller's, in the hierarchies systemd uses
//! (the named v1 `systemd` one and the unified v2 one), as systemd itself
//! gives each container@NAME.service its own.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use crate::error::{failed, Result};

/// The mounted hierarchies systemd manages, with the caller's group in each.
fn hierarchies() -> Vec<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut out = Vec::new();
    for line in own.lines() {
        // "ID:CONTROLLERS:PATH"
        let mut f = line.splitn(3, ':');
        let (Some(_), Some(ctl), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let mount = match ctl {
            "name=systemd" => Path::new("/sys/fs/cgroup/systemd"),
            "" if Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() => {
                Path::new("/sys/fs/cgroup/unified")
            }
            "" if Path::new("/sys/fs/cgroup/cgroup.procs").exists() => Path::new("/sys/fs/cgroup"),
            _ => continue,
        };
        out.push(mount.join(path.trim_start_matches('/')));
    }
    out
}

fn group_name(name: &str) -> String {
    format!("nix-container.{name}")
}

/// Makes container `name`'s groups; the `cgroup.procs` files a process
/// joins them by (written between fork and exec: see `join`).
pub fn prepare(name: &str) -> Result<Vec<CString>> {
    let mut procs = Vec::new();
    for h in hierarchies() {
        let dir = h.join(group_name(name));
        remove_empty(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| failed(format!("cannot make cgroup '{}': {e}", dir.display())))?;
        let file = dir.join("cgroup.procs");
        procs.push(
            CString::new(file.as_os_str().as_encoded_bytes())
                .map_err(|_| failed(format!("odd cgroup path '{}'", file.display())))?,
        );
    }
    Ok(procs)
}

/// Moves the calling process into the groups (async-signal-safe: open,
/// write, close; for a child between fork and exec).
///
/// # Safety
/// Only the calls named above; `procs` was made before the fork.
pub unsafe fn join(procs: &[CString]) -> std::io::Result<()> {
    for p in procs {
        let fd = libc::open(p.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = libc::write(fd, b"0\n".as_ptr().cast(), 2);
        libc::close(fd);
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Removes container `name`'s groups once nothing runs in them (what
/// systemd-nspawn left below them included); busy ones stay.
pub fn remove(name: &str) {
    for h in hierarchies() {
        remove_empty(&h.join(group_name(name)));
    }
}

fn remove_empty(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

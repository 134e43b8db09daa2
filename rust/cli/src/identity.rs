//! Which process is a container's, proved rather than guessed. A pid names
//! a process only until it exits; an unprivileged user can start a process
//! named like `systemd-nspawn -M NAME`. So a process is held by a pidfd
//! (which keeps naming that one process, or none once it exits), and taken
//! for a container's only when facts an unprivileged user cannot forge hold
//! after the pidfd is open: its start time and the boot match what was
//! recorded when it was started, it runs as root, and (for the container's
//! init) its parent is the verified systemd-nspawn, in another PID
//! namespace. Every signal goes through the pidfd.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What was recorded of a process when it was started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub pid: i32,
    /// Field 22 of /proc/PID/stat: clock ticks after boot.
    pub start_time: u64,
    pub boot_id: String,
}

/// A live process held by a pidfd.
pub struct Process {
    pub pid: i32,
    pub start_time: u64,
    fd: OwnedFd,
}

use ncp_core::procfs::{self, Stat};

fn stat(pid: i32) -> Option<Stat> {
    procfs::parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The real and effective uid of `pid`.
fn uids(pid: i32) -> Option<(u32, u32)> {
    procfs::uids(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// A capability mask line (`CapBnd`) of /proc/PID/status.
pub fn cap_mask(pid: i32, field: &str) -> Option<u64> {
    procfs::cap_mask(
        &std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        field,
    )
}

pub fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just gave us this descriptor; we own it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

impl Process {
    /// Opens `pid` and checks it with `ok` (run after the pidfd is open,
    /// so what it checks is the process the pidfd holds, or the pid was
    /// reused and the start time differs). Zombies count as gone.
    fn open_checked(pid: i32, ok: impl FnOnce(&Stat) -> bool) -> Option<Process> {
        if pid <= 0 {
            return None;
        }
        let fd = pidfd_open(pid)?;
        let st = stat(pid)?;
        if st.state == 'Z' || st.state == 'X' || !ok(&st) {
            return None;
        }
        Some(Process {
            pid,
            start_time: st.start_time,
            fd,
        })
    }

    /// The process a record names, if it is still that process (same start
    /// time, same boot) and runs as root.
    pub fn from_record(r: &Record) -> Option<Process> {
        if r.boot_id != boot_id() {
            return None;
        }
        let p = Self::open_checked(r.pid, |st| st.start_time == r.start_time)?;
        p.owned_by_root().then_some(p)
    }

    /// A root-owned process that a trusted party (systemd) names.
    pub fn trusted(pid: i32) -> Option<Process> {
        let p = Self::open_checked(pid, |_| true)?;
        p.owned_by_root().then_some(p)
    }

    /// Our own child, just spawned.
    pub fn child(pid: i32) -> Option<Process> {
        Self::open_checked(pid, |st| st.ppid == std::process::id() as i32)
    }

    pub fn record(&self) -> Record {
        Record {
            pid: self.pid,
            start_time: self.start_time,
            boot_id: boot_id(),
        }
    }

    fn owned_by_root(&self) -> bool {
        uids(self.pid) == Some((0, 0))
    }

    /// Still running (not exited, not a zombie) and still this process.
    pub fn alive(&self) -> bool {
        // The pidfd becomes readable when the process exits.
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no timeout.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n == 0
            && stat(self.pid).is_some_and(|st| st.start_time == self.start_time && st.state != 'Z')
    }

    /// Waits until it exits (its pidfd turns readable), at most `timeout`;
    /// true when it has.
    pub fn wait_exit(&self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if !self.alive() {
                return true;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            let mut p = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // At most 100 ms at a time: alive() also sees a zombie.
            let ms = left.as_millis().clamp(1, 100) as i32;
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut p, 1, ms) };
        }
    }

    /// Sends `sig` to exactly this process (never to a reused pid).
    pub fn signal(&self, sig: i32) -> std::io::Result<()> {
        // SAFETY: pidfd_send_signal(2) with our pidfd, a signal number, no
        // siginfo and no flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    pub fn pidfd(&self) -> &OwnedFd {
        &self.fd
    }

    /// The same process, held by a second pidfd.
    pub fn duplicate(&self) -> Option<Process> {
        Some(Process {
            pid: self.pid,
            start_time: self.start_time,
            fd: self.fd.try_clone().ok()?,
        })
    }

    /// The container's init below this systemd-nspawn: its child in another
    /// PID namespace that has executed the init (before that it is
    /// nspawn's own inner child, and a signal sent to it would be lost).
    pub fn leader(&self) -> Option<Process> {
        let ours = ns_inode(self.pid, "pid")?;
        let children = children(self.pid);
        children.into_iter().find_map(|pid| {
            let p = Self::open_checked(pid, |st| st.ppid == self.pid)?;
            let other_ns = ns_inode(pid, "pid").is_some_and(|ns| ns != ours);
            let execd = !cmdline(pid)
                .first()
                .is_some_and(|a| a.ends_with(ncp_core::nspawn::PROGRAM));
            // Re-check the parent is still alive and ours: the pid could
            // only have been reused by another of its children.
            (other_ns && execd && self.alive()).then_some(p)
        })
    }

    pub fn cmdline(&self) -> Vec<String> {
        cmdline(self.pid)
    }

    /// The file named `path` in /proc/PID, opened now and then proved to
    /// belong to this process (the pid cannot have been reused in between).
    pub fn open_proc(&self, path: &str, flags: nix::fcntl::OFlag) -> Option<OwnedFd> {
        let fd = nix::fcntl::open(
            PathBuf::from(format!("/proc/{}/{path}", self.pid)).as_path(),
            flags | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()?;
        self.alive().then_some(fd)
    }
}

/// The children of `pid` (all its threads'), from /proc.
fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
            out.extend(
                s.split_ascii_whitespace()
                    .filter_map(|c| c.parse::<i32>().ok()),
            );
        }
    }
    out
}

/// The inode of a process's namespace of kind `ns` (`pid`, `mnt`, …).
pub fn ns_inode(pid: i32, ns: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/{ns}"))
        .ok()
        .map(|m| m.ino())
}

/// Reads /proc/self's namespace inode of kind `ns`.
pub fn own_ns_inode(ns: &str) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/self/ns/{ns}"))
        .ok()
        .map(|m| m.ino())
}

/// A root-owned systemd-nspawn running machine `name` that nobody proved
/// to us (another tool, or a stock unit, started it), if any. Only ever a
/// reason to leave a container alone: never to signal or enter it.
pub fn foreign_nspawn(name: &str, except: Option<i32>) -> Option<i32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| Some(*pid) != except)
        .find(|&pid| {
            let argv = cmdline(pid);
            argv.first()
                .is_some_and(|a| a.ends_with(ncp_core::nspawn::PROGRAM))
                && argv.windows(2).any(|w| w[0] == "-M" && w[1] == name)
                && uids(pid) == Some((0, 0))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_names_only_its_own_process() {
        let me = std::process::id() as i32;
        let p = Process::open_checked(me, |_| true).unwrap();
        assert!(p.alive());
        let r = p.record();
        assert!(Process::from_record(&r).is_some() || uids(me) != Some((0, 0)));
        let stale = Record {
            start_time: r.start_time + 1,
            ..r.clone()
        };
        assert!(Process::from_record(&stale).is_none());
        let other_boot = Record {
            boot_id: "x".into(),
            ..r
        };
        assert!(Process::from_record(&other_boot).is_none());
    }
}

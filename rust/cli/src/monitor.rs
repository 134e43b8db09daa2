//! The direct runner's monitor: one small process per running container
//! (this program as `nix-container monitor NAME`), started just before its
//! systemd-nspawn and ending when that exits. It does what systemd does for
//! container@.service:
//!
//! - it keeps the console (systemd-nspawn's standard output and error) in
//!   `console.log`, bounded as journald bounds a unit's output: at most
//!   CONSOLE_CAP bytes there, the previous CONSOLE_CAP bytes in
//!   `console.log.1`, older output dropped. Root inside a container can
//!   write to its console as fast as it likes; it never gets more than
//!   2 × CONSOLE_CAP of the host's memory (the run directory is usually a
//!   tmpfs) or disk.
//! - it holds the socket systemd-nspawn sends READY=1 to (NOTIFY_SOCKET,
//!   as Type=notify units get), records readiness and the last STATUS=,
//!   and tells `start` at once through a pipe.
//!
//! The socket lives in the root-only run directory: only host root can
//! send to it.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::{failed, CliError, Result};
use crate::records::{Records, CONSOLE_LOG, CONSOLE_LOG_OLD};

/// The most one console log file holds (README: "Console log").
pub const CONSOLE_CAP: u64 = 4 << 20;

/// Where the monitor finds its descriptors.
const SOCKET_FD: RawFd = 3;
const READY_FD: RawFd = 4;

/// What `start` keeps of a monitor it started.
pub struct Started {
    /// The write end of the console pipe: systemd-nspawn's stdout and stderr.
    pub console: OwnedFd,
    /// Readable (one byte, or EOF) once READY=1 was heard or the monitor ended.
    pub ready: OwnedFd,
}

/// A descriptor duplicated to 10 or above, close-on-exec, so that placing
/// it at 3 or 4 in the child never clobbers another.
fn high(fd: &impl AsFd) -> Result<OwnedFd> {
    let raw = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))
        .map_err(|e| failed(format!("dup: {e}")))?;
    // SAFETY: fcntl just made this descriptor; we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Starts the monitor of the container whose records are `records`;
/// `args` are this program's arguments that reach the same roots.
pub fn start(records: &Records, args: &[String], name: &str) -> Result<Started> {
    records.dir()?;
    let sock_path = records.notify_socket();
    let _ = std::fs::remove_file(&sock_path);
    let sock = UnixDatagram::bind(&sock_path)
        .map_err(|e| failed(format!("cannot bind '{}': {e}", sock_path.display())))?;
    let (console_r, console_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| failed(format!("pipe: {e}")))?;
    let (ready_r, ready_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| failed(format!("pipe: {e}")))?;
    let sock_fd = high(&sock)?;
    let ready_fd = high(&ready_w)?;
    let (s, r) = (sock_fd.as_raw_fd(), ready_fd.as_raw_fd());
    let exe =
        std::env::current_exe().map_err(|e| failed(format!("cannot find this program: {e}")))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args)
        .args(["monitor", name])
        .stdin(Stdio::from(console_r))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls: dup2
    // (which clears close-on-exec on the copies) and setsid.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(s, SOCKET_FD) < 0 || libc::dup2(r, READY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Its own session: the caller's terminal and its signals
            // (^C in the shell that ran start) are not the monitor's.
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn().map_err(|source| CliError::Spawn {
        what: "the console monitor".into(),
        source,
    })?;
    Ok(Started {
        console: console_w,
        ready: ready_r,
    })
}

/// The console log files, newest last, as one text: the newest `max`
/// bytes of both.
pub fn console_tail(records: &Records, max: u64) -> String {
    let mut out = Vec::new();
    let new = records.path(CONSOLE_LOG);
    let new_len = std::fs::metadata(&new).map(|m| m.len()).unwrap_or(0);
    if new_len < max {
        out.extend(tail_of(&records.path(CONSOLE_LOG_OLD), max - new_len));
    }
    out.extend(tail_of(&new, max));
    String::from_utf8_lossy(&out).into_owned()
}

/// The last `max` bytes of a file of the run directory.
pub fn tail_of(path: &Path, max: u64) -> Vec<u8> {
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    read_from(path, len.saturating_sub(max), max)
}

/// At most `max` bytes of a file of the run directory, from `offset`.
pub fn read_from(path: &Path, offset: u64, max: u64) -> Vec<u8> {
    use std::io::{Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let mut buf = Vec::new();
    let _ = f
        .seek(SeekFrom::Start(offset))
        .and_then(|_| f.take(max).read_to_end(&mut buf));
    buf
}

/// The console log, bounded: appends, and rotates before a write would
/// take the file past the cap.
struct Console {
    dir: std::path::PathBuf,
    file: std::fs::File,
    len: u64,
    cap: u64,
}

impl Console {
    fn open(dir: &Path, cap: u64) -> std::io::Result<Console> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(dir.join(CONSOLE_LOG))?;
        let len = file.metadata()?.len();
        Ok(Console {
            dir: dir.to_owned(),
            file,
            len,
            cap,
        })
    }

    fn write(&mut self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            if self.len >= self.cap {
                std::fs::rename(self.dir.join(CONSOLE_LOG), self.dir.join(CONSOLE_LOG_OLD))?;
                *self = Console::open(&self.dir, self.cap)?;
            }
            let room = (self.cap - self.len).min(bytes.len() as u64) as usize;
            self.file.write_all(&bytes[..room])?;
            self.len += room as u64;
            bytes = &bytes[room..];
        }
        Ok(())
    }
}

/// The monitor itself (`nix-container monitor NAME`): returns when
/// systemd-nspawn has closed its output (it exited).
pub fn run(records: &Records) -> Result<()> {
    // SAFETY: ignoring terminal signals; SIGTERM and SIGKILL still end it.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // SAFETY: start placed these descriptors; nothing else owns them.
    let sock = unsafe { UnixDatagram::from_raw_fd(SOCKET_FD) };
    let mut ready = Some(unsafe { std::fs::File::from_raw_fd(READY_FD) });
    records.dir()?;
    let mut console = Console::open(records.dir_path(), CONSOLE_CAP)
        .map_err(|e| failed(format!("cannot open the console log: {e}")))?;
    let stdin = std::io::stdin();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (console_ready, notify_ready) = {
            let mut fds = [
                PollFd::new(stdin.as_fd(), PollFlags::POLLIN),
                PollFd::new(sock.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(failed(format!("poll: {e}"))),
                Ok(_) => {}
            }
            let hit = |f: &PollFd| {
                f.revents()
                    .is_some_and(|r| !(r & (PollFlags::POLLIN | PollFlags::POLLHUP)).is_empty())
            };
            (hit(&fds[0]), hit(&fds[1]))
        };
        if notify_ready {
            if let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                for line in msg.lines() {
                    if line == "READY=1" {
                        let _ = records.mark_ready();
                        if let Some(mut r) = ready.take() {
                            let _ = r.write_all(b"R");
                        }
                    } else if let Some(status) = line.strip_prefix("STATUS=") {
                        let status: String = status.chars().take(256).collect();
                        let _ = records.save_status_text(&status);
                    }
                }
            }
        }
        if console_ready {
            match stdin.lock().read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    // A full disk loses console output, never the container.
                    let _ = console.write(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
    let _ = std::fs::remove_file(records.notify_socket());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_log_is_rotated_at_its_cap() {
        let t = tempfile::tempdir().unwrap();
        let mut c = Console::open(t.path(), 100).unwrap();
        for i in 0..50u8 {
            c.write(&[b'a' + (i % 26); 7]).unwrap();
        }
        let new = std::fs::read(t.path().join(CONSOLE_LOG)).unwrap();
        let old = std::fs::read(t.path().join(CONSOLE_LOG_OLD)).unwrap();
        assert!(
            new.len() <= 100 && old.len() == 100,
            "{} {}",
            new.len(),
            old.len()
        );
        // 350 bytes written: the newest 150 are kept, in order.
        let mut all = old.clone();
        all.extend(&new);
        let written: Vec<u8> = (0..50u8).flat_map(|i| [b'a' + (i % 26); 7]).collect();
        assert_eq!(all, written[written.len() - all.len()..]);
    }
}

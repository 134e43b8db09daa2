//! The lock Nix takes on a profile (libstore's lockProfile: PathLocks on
//! PROFILE with deletion), kept compatible so that the plugin, the CLI,
//! nix-env and every other Nix process serialise: flock(LOCK_EX) on
//! `PROFILE.lock`; after locking, a file that its last holder unlinked (or
//! whose size is not 0: that holder marks it "d") is stale and we retry; on
//! release the holder unlinks the file and then writes "d" into it.
//!
//! Unlike Nix's, this lock lives in a directory the container's root owns, so
//! it never follows a link (a planted `system.lock -> /etc/shadow` would have
//! host root write "d" there), never opens what is not a regular file with
//! one link, removes a stale file that was left linked (which makes Nix spin
//! forever), and waits a bounded time.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{openat, Flock, FlockArg, OFlag};
use nix::sys::stat::{fstat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::error::{Error, Result};
use crate::fsutil::{Dir, Kind};

/// How many stale lock files one attempt replaces before it gives up.
const MAX_STALE_RETRIES: usize = 64;

pub struct ProfileLock {
    lock: Option<Flock<File>>,
    /// The profile directory (a duplicate descriptor, so the lock owns it).
    dir: OwnedFd,
    name: String,
}

pub fn lock_name(profile_name: &str) -> String {
    format!("{profile_name}.lock")
}

fn hard_links_error(dir: &Dir, name: &str, n: u64) -> Error {
    Error::Profile(format!(
        "refusing to use the profile lock '{}': it has {n} hard links, so writing it would \
         change another file too; remove it",
        dir.child_path(name).display()
    ))
}

/// Opens (creating it if missing) the lock file `name` in `dir` as a
/// regular file with one link, never following or opening anything else.
fn open_lock_file(dir: &Dir, name: &str) -> Result<File> {
    for _ in 0..MAX_STALE_RETRIES {
        match dir.kind(name)? {
            None => {
                let flags = OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_RDWR
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC;
                match openat(dir.fd.as_fd(), name, flags, Mode::from_bits_truncate(0o600)) {
                    Ok(fd) => return Ok(File::from(fd)),
                    Err(Errno::EEXIST) => continue, // someone else made it: look again
                    Err(e) => return Err(Error::io("create lock file", dir.child_path(name), e)),
                }
            }
            Some(Kind::File) => match dir.open_regular(name, true) {
                Ok(Some((f, st))) => {
                    if st.st_nlink > 1 {
                        return Err(hard_links_error(dir, name, st.st_nlink));
                    }
                    return Ok(f);
                }
                Ok(None) => continue, // removed meanwhile
                Err(e) => return Err(e),
            },
            Some(kind) => {
                return Err(Error::NotRegular {
                    path: dir.child_path(name),
                    kind: kind.describe(),
                })
            }
        }
    }
    Err(Error::Profile(format!(
        "the profile lock '{}' keeps changing; giving up",
        dir.child_path(name).display()
    )))
}

impl ProfileLock {
    /// One attempt at the lock of profile `profile_name` in `dir`:
    /// Ok(None) while someone else holds it.
    pub fn try_acquire(dir: &Dir, profile_name: &str) -> Result<Option<ProfileLock>> {
        let name = lock_name(profile_name);
        let path = dir.child_path(&name);
        for _ in 0..MAX_STALE_RETRIES {
            let file = open_lock_file(dir, &name)?;
            let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(l) => l,
                Err((_, Errno::EWOULDBLOCK)) => return Ok(None),
                Err((_, e)) => return Err(Error::io("lock", &path, e)),
            };
            let st = fstat(lock.as_fd()).map_err(|e| Error::io("stat lock file", &path, e))?;
            if st.st_nlink == 0 {
                continue; // its holder deleted it after we opened it: lock the new one
            }
            if st.st_nlink > 1 {
                return Err(hard_links_error(dir, &name, st.st_nlink));
            }
            if st.st_size != 0 {
                // Stale by Nix's rule, yet still linked (its holder's unlink
                // failed, or it was planted): Nix would retry on it forever.
                // Removing the name touches nothing outside this directory.
                let _ = unlinkat(dir.fd.as_fd(), name.as_str(), UnlinkatFlags::NoRemoveDir);
                continue;
            }
            let dir_fd = dir
                .fd
                .try_clone()
                .map_err(|e| Error::io("duplicate descriptor of", &dir.path, e))?;
            return Ok(Some(ProfileLock {
                lock: Some(lock),
                dir: dir_fd,
                name,
            }));
        }
        Err(Error::Profile(format!(
            "the profile lock '{}' keeps being replaced; giving up",
            path.display()
        )))
    }

    /// Waits at most `timeout` for the lock, asking `interrupted` between
    /// attempts (an interrupted wait is an error).
    pub fn acquire(
        dir: &Dir,
        profile_name: &str,
        timeout: Duration,
        interrupted: &mut dyn FnMut() -> bool,
    ) -> Result<ProfileLock> {
        let start = Instant::now();
        loop {
            if let Some(l) = Self::try_acquire(dir, profile_name)? {
                return Ok(l);
            }
            if let Some(e) = timed_out(dir, profile_name, start.elapsed(), timeout) {
                return Err(e);
            }
            if interrupted() {
                return Err(Error::Profile(
                    "interrupted while waiting for the profile lock".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// The error for a wait of `waited` on the lock, if that is `timeout` or more.
pub fn timed_out(
    dir: &Dir,
    profile_name: &str,
    waited: Duration,
    timeout: Duration,
) -> Option<Error> {
    (waited >= timeout).then(|| {
        Error::Profile(format!(
            "timed out after {}s waiting for the profile lock '{}': another process (nix-env, \
             nix-container or an evaluation) holds it; try again, or raise the timeout \
             (setting container-lock-timeout)",
            timeout.as_secs(),
            dir.child_path(&lock_name(profile_name)).display()
        ))
    })
}

impl Drop for ProfileLock {
    fn drop(&mut self) {
        if let Some(mut lock) = self.lock.take() {
            // Nix's order: unlink, then mark the (now nameless) file stale
            // for anyone already waiting on it.
            let _ = unlinkat(
                self.dir.as_fd(),
                self.name.as_str(),
                UnlinkatFlags::NoRemoveDir,
            );
            let _ = lock.write_all(b"d");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn dir(t: &tempfile::TempDir) -> Dir {
        Dir::open_root(t.path(), 0o755).unwrap()
    }

    #[test]
    fn serialises_and_leaves_no_lock_file() {
        let t = tempfile::tempdir().unwrap();
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (path, inside) = (t.path().to_owned(), inside.clone());
                std::thread::spawn(move || {
                    let d = Dir::open_root(&path, 0o755).unwrap();
                    for _ in 0..50 {
                        let _l = ProfileLock::acquire(
                            &d,
                            "system",
                            Duration::from_secs(30),
                            &mut || false,
                        )
                        .unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(!t.path().join("system.lock").exists());
    }

    #[test]
    fn planted_links_and_files_are_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let d = dir(&t);
        let victim = t.path().join("victim");
        std::fs::write(&victim, "secret").unwrap();
        std::os::unix::fs::symlink(&victim, t.path().join("system.lock")).unwrap();
        let e = ProfileLock::try_acquire(&d, "system")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("it is a symlink"), "{e}");
        std::fs::remove_file(t.path().join("system.lock")).unwrap();
        std::fs::hard_link(&victim, t.path().join("system.lock")).unwrap();
        let e = ProfileLock::try_acquire(&d, "system")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("2 hard links"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "secret");
        std::fs::remove_file(t.path().join("system.lock")).unwrap();
        nix::unistd::mkfifo(
            &t.path().join("system.lock"),
            Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let e = ProfileLock::try_acquire(&d, "system")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("FIFO"), "{e}");
        std::fs::remove_file(t.path().join("system.lock")).unwrap();
        // A stale (non-empty) file left in place is replaced, not spun on.
        std::fs::write(t.path().join("system.lock"), "d").unwrap();
        let l = ProfileLock::try_acquire(&d, "system")
            .unwrap()
            .expect("lock");
        drop(l);
        assert!(!t.path().join("system.lock").exists());
    }

    #[test]
    fn a_held_lock_times_out_with_a_clear_error() {
        let t = tempfile::tempdir().unwrap();
        let d = dir(&t);
        let _held = ProfileLock::try_acquire(&d, "system").unwrap().unwrap();
        assert!(ProfileLock::try_acquire(&d, "system").unwrap().is_none());
        let e = ProfileLock::acquire(&d, "system", Duration::from_millis(100), &mut || false)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("timed out"), "{e}");
        let mut asked = 0;
        let e = ProfileLock::acquire(&d, "system", Duration::from_secs(10), &mut || {
            asked += 1;
            true
        })
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("interrupted") && asked == 1, "{e}");
    }
}

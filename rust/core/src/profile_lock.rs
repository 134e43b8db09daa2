//! The lock Nix takes on a profile (`lockProfile`: PathLocks on PROFILE with
//! deletion), so that the CLI and every Nix process serialise on the same
//! file: flock(LOCK_EX) on `PROFILE.lock`; a lock file whose size is not 0 was
//! unlinked by its last holder and is stale, so we retry; on release the
//! holder unlinks the file and then writes "d" into it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, Result};

pub struct ProfileLock {
    lock: Option<Flock<File>>,
    path: PathBuf,
}

pub fn lock_path(profile: &Path) -> PathBuf {
    let mut s = profile.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

impl ProfileLock {
    /// Waits for the lock of `profile` (whose directory must exist).
    pub fn acquire(profile: &Path) -> Result<ProfileLock> {
        let path = lock_path(profile);
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .mode(0o600)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
                .map_err(|e| Error::io("open lock file", &path, e))?;
            let lock = Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, e)| Error::io("lock", &path, e))?;
            let len = lock
                .metadata()
                .map_err(|e| Error::io("stat lock file", &path, e))?
                .len();
            if len == 0 {
                return Ok(ProfileLock {
                    lock: Some(lock),
                    path,
                });
            }
            // Its holder deleted it after we opened it: lock the new one.
        }
    }
}

impl Drop for ProfileLock {
    fn drop(&mut self) {
        if let Some(mut lock) = self.lock.take() {
            // Nix's order: unlink, then mark the (now nameless) file stale
            // for anyone already waiting on it.
            let _ = std::fs::remove_file(&self.path);
            let _ = lock.write_all(b"d");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn serialises_and_leaves_no_lock_file() {
        let t = tempfile::tempdir().unwrap();
        let profile = t.path().join("system");
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (profile, inside) = (profile.clone(), inside.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let _l = ProfileLock::acquire(&profile).unwrap();
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
        assert!(!lock_path(&profile).exists());
    }
}

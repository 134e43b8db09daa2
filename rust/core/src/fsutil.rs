//! File system steps that never follow a symlink below a trusted root: every
//! path is walked one component at a time with openat(O_NOFOLLOW), and files
//! are replaced by writing a temporary file beside them and renaming it.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{fchmod, mkdirat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::error::{Error, Result};

/// A directory we hold open, with its path for messages.
pub struct Dir {
    pub fd: OwnedFd,
    pub path: PathBuf,
}

/// Whether to chmod a directory that already existed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Chmod {
    Always,
    IfCreated,
}

/// The process's umask, read once (umask(2) can only be read by setting it).
fn umask() -> u32 {
    static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *UMASK.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("Umask:"))?;
                u32::from_str_radix(line.split_whitespace().nth(1)?, 8).ok()
            })
            // Unknown: assume every bit may be masked, so always chmod.
            .unwrap_or(0o777)
    })
}

fn dir_flags() -> OFlag {
    OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC
}

impl Dir {
    /// Opens (creating it and its parents if missing) a configured root.
    /// The root itself is trusted configuration and may be a symlink.
    pub fn open_root(path: &Path, mode_if_created: u32) -> Result<Dir> {
        if std::fs::symlink_metadata(path).is_err() {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
            }
            match mkdirat(
                nix::fcntl::AT_FDCWD,
                path,
                Mode::from_bits_truncate(mode_if_created),
            ) {
                Ok(()) => {
                    let d = Self::open_path(path)?;
                    fchmod(d.fd.as_fd(), Mode::from_bits_truncate(mode_if_created))
                        .map_err(|e| Error::io("chmod", path, e))?;
                    return Ok(d);
                }
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(Error::io("create", path, e)),
            }
        }
        Self::open_path(path)
    }

    fn open_path(path: &Path) -> Result<Dir> {
        let fd = nix::fcntl::open(path, dir_flags(), Mode::empty())
            .map_err(|e| Error::io("open directory", path, e))?;
        Ok(Dir {
            fd,
            path: path.to_owned(),
        })
    }

    pub fn child_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Opens the subdirectory `name`, refusing a symlink or non-directory.
    pub fn open_dir(&self, name: &str) -> Result<Dir> {
        let path = self.child_path(name);
        match openat(
            self.fd.as_fd(),
            name,
            dir_flags() | OFlag::O_NOFOLLOW,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(Dir { fd, path }),
            Err(Errno::ELOOP | Errno::ENOTDIR) => Err(Error::Planted { path }),
            Err(e) => Err(Error::io("open directory", path, e)),
        }
    }

    /// `mkdir` + open + (maybe) `chmod` of the subdirectory `name`.
    pub fn ensure_dir(&self, name: &str, mode: u32, chmod: Chmod) -> Result<Dir> {
        let mode = Mode::from_bits_truncate(mode);
        let created = match mkdirat(self.fd.as_fd(), name, mode) {
            Ok(()) => true,
            Err(Errno::EEXIST) => false,
            Err(e) => return Err(Error::io("create directory", self.child_path(name), e)),
        };
        let dir = self.open_dir(name)?;
        // A directory just made has `mode` unless the umask took bits away.
        let exact = created && umask() & mode.bits() == 0;
        if !exact && (created || chmod == Chmod::Always) {
            fchmod(dir.fd.as_fd(), mode).map_err(|e| Error::io("chmod", &dir.path, e))?;
        }
        Ok(dir)
    }

    /// Creates the empty file `name` unless something of that name exists.
    pub fn touch(&self, name: &str, mode: u32) -> Result<()> {
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(self.fd.as_fd(), name, flags, Mode::from_bits_truncate(mode)) {
            Ok(_) | Err(Errno::EEXIST) => Ok(()),
            Err(e) => Err(Error::io("create", self.child_path(name), e)),
        }
    }

    /// The contents of the regular file `name`; None if it is missing or a symlink.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match openat(
            self.fd.as_fd(),
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut buf)
                    .map_err(|e| Error::io("read", self.child_path(name), e))?;
                Ok(Some(buf))
            }
            Err(Errno::ENOENT | Errno::ELOOP) => Ok(None),
            Err(e) => Err(Error::io("open", self.child_path(name), e)),
        }
    }

    /// Makes `name` a regular file holding `bytes`, atomically: readers see
    /// the old or the new contents, never a part. A symlink at `name` is
    /// replaced, not followed. Returns whether anything changed.
    ///
    /// The temporary name is fixed (`.NAME.tmp`): callers hold the container's
    /// profile lock, so no one else writes it, and a leftover from a killed
    /// process is simply replaced.
    pub fn replace_file(&self, name: &str, bytes: &[u8], mode: u32) -> Result<bool> {
        if self.read(name)?.as_deref() == Some(bytes) {
            return Ok(false);
        }
        let tmp = format!(".{name}.tmp");
        let tmp_path = self.child_path(&tmp);
        match unlinkat(self.fd.as_fd(), tmp.as_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(Error::io("remove", &tmp_path, e)),
        }
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let written = (|| {
            let fd = openat(
                self.fd.as_fd(),
                tmp.as_str(),
                flags,
                Mode::from_bits_truncate(mode),
            )
            .map_err(|e| Error::io("create", &tmp_path, e))?;
            fchmod(fd.as_fd(), Mode::from_bits_truncate(mode))
                .map_err(|e| Error::io("chmod", &tmp_path, e))?;
            std::fs::File::from(fd)
                .write_all(bytes)
                .map_err(|e| Error::io("write", &tmp_path, e))?;
            renameat(self.fd.as_fd(), tmp.as_str(), self.fd.as_fd(), name)
                .map_err(|e| Error::io("rename into place", self.child_path(name), e))
        })();
        if written.is_err() {
            let _ = unlinkat(self.fd.as_fd(), tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        written.map(|()| true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn ensure_dir_refuses_symlinks_and_sets_modes() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = Dir::open_root(&t.path().join("r"), 0o700).unwrap();
        assert_eq!(
            std::fs::metadata(t.path().join("r"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        symlink(outside.path(), t.path().join("r/etc")).unwrap();
        assert!(matches!(
            root.ensure_dir("etc", 0o755, Chmod::Always),
            Err(Error::Planted { .. })
        ));
        let v = root.ensure_dir("var", 0o711, Chmod::IfCreated).unwrap();
        assert_eq!(
            std::fs::metadata(&v.path).unwrap().permissions().mode() & 0o777,
            0o711
        );
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

    #[test]
    fn replace_file_is_atomic_and_does_not_follow() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::write(&outside, "keep").unwrap();
        let d = Dir::open_root(&t.path().join("d"), 0o755).unwrap();
        symlink(&outside, d.child_path("f")).unwrap();
        std::fs::write(d.child_path(".f.tmp"), "stale").unwrap();
        assert!(d.replace_file("f", b"new", 0o644).unwrap());
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(d.child_path("f")).unwrap(), "new");
        assert!(!d.child_path(".f.tmp").exists());
        assert!(!d.replace_file("f", b"new", 0o644).unwrap());
    }

    #[test]
    fn touch_leaves_links_alone() {
        let t = tempfile::tempdir().unwrap();
        let d = Dir::open_root(t.path(), 0o755).unwrap();
        symlink("/nonexistent/target", d.child_path("l")).unwrap();
        assert!(std::fs::symlink_metadata(d.child_path("l")).is_ok());
        d.touch("l", 0o644).unwrap();
        assert!(!Path::new("/nonexistent/target").exists());
        d.touch("f", 0o644).unwrap();
        assert!(d.child_path("f").is_file());
    }
}

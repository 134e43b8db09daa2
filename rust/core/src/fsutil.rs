//! File system steps for host code running as root among files that others
//! control (a container's root file system, its profile and GC-root
//! directories). Below a configured root every path is walked one component
//! at a time with openat(O_NOFOLLOW); files are opened only once they are
//! known to be regular files (an O_PATH descriptor is checked first, so a
//! FIFO or device is never opened); reads are bounded; files are replaced by
//! writing a temporary file beside them and renaming it. The configured roots
//! themselves must be owned by root and writable by no one else, as sshd's
//! StrictModes asks of a home directory.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{symlinkat, unlinkat, UnlinkatFlags};

use crate::error::{Error, Result};

/// The most the host reads of one file that others control.
pub const MAX_UNTRUSTED_READ: usize = 1 << 20;

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

/// What is found at a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// A FIFO, socket or device: never opened.
    Special,
}

impl Kind {
    fn of(st: &FileStat) -> Kind {
        match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFREG => Kind::File,
            SFlag::S_IFDIR => Kind::Dir,
            SFlag::S_IFLNK => Kind::Symlink,
            _ => Kind::Special,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Kind::File => "a regular file",
            Kind::Dir => "a directory",
            Kind::Symlink => "a symlink",
            Kind::Special => "a FIFO, socket or device",
        }
    }
}

/// A bounded read of a file others control.
#[derive(Debug, PartialEq, Eq)]
pub enum Contents {
    Missing,
    /// Not a regular file (it was not opened).
    NotRegular(Kind),
    /// Longer than the limit (only the limit was read).
    TooLarge,
    Data(Vec<u8>),
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

/// Why `path` (an existing directory, resolved) may not hold what the host
/// trusts: every directory from `/` down to it must be owned by root and
/// writable by no one else; an ancestor may be world-writable only with the
/// sticky bit (as /tmp), which keeps others from replacing what root made in it.
fn untrusted_because(path: &Path) -> Option<String> {
    let real = match std::fs::canonicalize(path) {
        Ok(r) => r,
        Err(e) => return Some(format!("cannot resolve it: {e}")),
    };
    let mut at = PathBuf::from("/");
    let mut chain = vec![at.clone()];
    for c in real.components().skip(1) {
        at.push(c);
        chain.push(at.clone());
    }
    let last = chain.len() - 1;
    for (i, dir) in chain.iter().enumerate() {
        let m = match std::fs::metadata(dir) {
            Ok(m) => m,
            Err(e) => return Some(format!("cannot stat '{}': {e}", dir.display())),
        };
        if m.uid() != 0 {
            return Some(format!(
                "'{}' is owned by uid {}, not root",
                dir.display(),
                m.uid()
            ));
        }
        let sticky = m.mode() & 0o1000 != 0;
        if m.mode() & 0o022 != 0 && !(sticky && i != last) {
            return Some(format!(
                "'{}' is writable by its group or by others (mode {:o})",
                dir.display(),
                m.mode() & 0o7777
            ));
        }
    }
    None
}

/// Checks a configured root once per process.
pub fn check_trusted(path: &Path) -> Result<()> {
    static CHECKED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    let mut checked = CHECKED.lock().unwrap_or_else(|p| p.into_inner());
    let set = checked.get_or_insert_with(HashSet::new);
    if set.contains(path) {
        return Ok(());
    }
    if let Some(why) = untrusted_because(path) {
        return Err(Error::Untrusted {
            path: path.to_owned(),
            why,
        });
    }
    set.insert(path.to_owned());
    Ok(())
}

fn not_found(e: Errno) -> bool {
    e == Errno::ENOENT
}

impl Dir {
    /// Opens (creating it and its parents, 0755, if missing) a configured
    /// root. The root is configuration and may be reached through symlinks,
    /// but it and every directory above it must be owned by root and
    /// writable by no one else.
    pub fn open_root(path: &Path, mode_if_created: u32) -> Result<Dir> {
        if std::fs::symlink_metadata(path).is_err() {
            if let Some(parent) = path.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(parent)
                    .map_err(|e| Error::io("create", parent, e))?;
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
                    check_trusted(path)?;
                    return Ok(d);
                }
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(Error::io("create", path, e)),
            }
        }
        check_trusted(path)?;
        Self::open_path(path)
    }

    /// Opens a configured root that exists (None if it does not), for
    /// commands that only read: nothing is created.
    pub fn open_existing_root(path: &Path) -> Result<Option<Dir>> {
        if std::fs::symlink_metadata(path).is_err() {
            return Ok(None);
        }
        check_trusted(path)?;
        Self::open_path(path).map(Some)
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
        self.open_dir_if_exists(name)?
            .ok_or_else(|| Error::io("open directory", self.child_path(name), Errno::ENOENT))
    }

    /// As [`Dir::open_dir`]; None when nothing of that name exists.
    pub fn open_dir_if_exists(&self, name: &str) -> Result<Option<Dir>> {
        let path = self.child_path(name);
        match openat(
            self.fd.as_fd(),
            name,
            dir_flags() | OFlag::O_NOFOLLOW,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(Some(Dir { fd, path })),
            Err(e) if not_found(e) => Ok(None),
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

    /// What `name` is, without following it; None if it does not exist.
    pub fn kind(&self, name: &str) -> Result<Option<Kind>> {
        Ok(self.stat(name)?.map(|st| Kind::of(&st)))
    }

    /// lstat of `name` inside this directory.
    pub fn stat(&self, name: &str) -> Result<Option<FileStat>> {
        match fstatat(self.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(st)),
            Err(e) if not_found(e) => Ok(None),
            Err(e) => Err(Error::io("stat", self.child_path(name), e)),
        }
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

    /// Opens `name` if it is a regular file: an O_PATH descriptor (which
    /// opens nothing: no FIFO blocks, no device driver runs) is checked
    /// first and then re-opened through /proc/self/fd, so what is opened is
    /// the very file that was checked. Err(NotRegular) names what it is.
    pub fn open_regular(
        &self,
        name: &str,
        write: bool,
    ) -> Result<Option<(std::fs::File, FileStat)>> {
        let path = self.child_path(name);
        let o_path = match openat(
            self.fd.as_fd(),
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) if not_found(e) => return Ok(None),
            Err(e) => return Err(Error::io("open", path, e)),
        };
        let st = fstat(&o_path).map_err(|e| Error::io("stat", &path, e))?;
        let kind = Kind::of(&st);
        if kind != Kind::File {
            return Err(Error::NotRegular {
                path,
                kind: kind.describe(),
            });
        }
        let access = if write {
            OFlag::O_RDWR
        } else {
            OFlag::O_RDONLY
        };
        let fd = nix::fcntl::open(
            format!("/proc/self/fd/{}", o_path.as_raw_fd()).as_str(),
            access | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open", &path, e))?;
        Ok(Some((std::fs::File::from(fd), st)))
    }

    /// At most `limit` bytes of the regular file `name`, never blocking on
    /// or opening anything else.
    pub fn read_bounded(&self, name: &str, limit: usize) -> Result<Contents> {
        let file = match self.open_regular(name, false) {
            Ok(Some((f, _))) => f,
            Ok(None) => return Ok(Contents::Missing),
            Err(Error::NotRegular { .. }) => {
                let kind = self.kind(name)?.unwrap_or(Kind::Special);
                return Ok(Contents::NotRegular(kind));
            }
            Err(e) => return Err(e),
        };
        let mut buf = Vec::new();
        file.take(limit as u64 + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io("read", self.child_path(name), e))?;
        if buf.len() > limit {
            return Ok(Contents::TooLarge);
        }
        Ok(Contents::Data(buf))
    }

    /// The target of the symlink `name` (bounded by the kernel at PATH_MAX);
    /// None if nothing of that name exists; an error if it is not a link.
    pub fn read_link(&self, name: &str) -> Result<Option<OsString>> {
        match readlinkat(self.fd.as_fd(), name) {
            Ok(t) => Ok(Some(t)),
            Err(e) if not_found(e) => Ok(None),
            Err(e) => Err(Error::io("read link", self.child_path(name), e)),
        }
    }

    /// The names in this directory (without `.` and `..`), with what they are.
    pub fn entries(&self) -> Result<Vec<(OsString, Option<Kind>)>> {
        let fd = openat(self.fd.as_fd(), ".", dir_flags(), Mode::empty())
            .map_err(|e| Error::io("read directory", &self.path, e))?;
        let mut d =
            nix::dir::Dir::from_fd(fd).map_err(|e| Error::io("read directory", &self.path, e))?;
        let mut out = Vec::new();
        for e in d.iter() {
            let e = e.map_err(|e| Error::io("read directory", &self.path, e))?;
            let name = e.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let kind = e.file_type().map(|t| match t {
                nix::dir::Type::File => Kind::File,
                nix::dir::Type::Directory => Kind::Dir,
                nix::dir::Type::Symlink => Kind::Symlink,
                _ => Kind::Special,
            });
            out.push((OsString::from_vec(name.to_vec()), kind));
        }
        Ok(out)
    }

    pub fn unlink(&self, name: &str) -> Result<bool> {
        match unlinkat(self.fd.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => Ok(true),
            Err(e) if not_found(e) => Ok(false),
            Err(e) => Err(Error::io("remove", self.child_path(name), e)),
        }
    }

    pub fn rmdir(&self, name: &str) -> Result<bool> {
        match unlinkat(self.fd.as_fd(), name, UnlinkatFlags::RemoveDir) {
            Ok(()) => Ok(true),
            Err(e) if not_found(e) => Ok(false),
            Err(e) => Err(Error::io("remove directory", self.child_path(name), e)),
        }
    }

    /// Points the link `name` at `target`, atomically: a temporary link
    /// `tmp` beside it, renamed over whatever `name` was (never followed).
    pub fn replace_link(&self, name: &str, target: &Path, tmp: &str) -> Result<()> {
        self.unlink(tmp)?;
        symlinkat(target, self.fd.as_fd(), tmp)
            .map_err(|e| Error::io("create link", self.child_path(tmp), e))?;
        renameat(self.fd.as_fd(), tmp, self.fd.as_fd(), name).map_err(|e| {
            let _ = self.unlink(tmp);
            Error::io("replace link", self.child_path(name), e)
        })
    }

    /// Makes `name` a regular file holding `bytes`, atomically: readers see
    /// the old or the new contents, never a part. Whatever is at `name` (a
    /// symlink, FIFO, device) is replaced, not followed or opened. Returns
    /// whether anything changed.
    ///
    /// The temporary name is fixed (`.NAME.tmp`): callers hold the container's
    /// profile lock, so no one else of ours writes it, and a leftover from a
    /// killed process is simply replaced.
    pub fn replace_file(&self, name: &str, bytes: &[u8], mode: u32) -> Result<bool> {
        if self.read_bounded(name, bytes.len())? == Contents::Data(bytes.to_vec()) {
            return Ok(false);
        }
        let tmp = format!(".{name}.tmp");
        let tmp_path = self.child_path(&tmp);
        self.unlink(&tmp)?;
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
            let _ = self.unlink(&tmp);
        }
        written.map(|()| true)
    }
}

/// The id of the mount a descriptor's file is on (statx STATX_MNT_ID):
/// unlike st_dev, it tells a bind mount from the file system it came from.
pub fn mount_id(fd: &impl AsFd) -> std::io::Result<u64> {
    // SAFETY: statx on a valid descriptor with an empty path and
    // AT_EMPTY_PATH fills `buf`, which lives on our stack.
    let mut buf: libc::statx = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::statx(
            fd.as_fd().as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_MNT_ID,
            &mut buf,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if buf.stx_mask & libc::STATX_MNT_ID == 0 {
        return Err(std::io::Error::other(
            "the kernel does not report mount ids (Linux < 5.8)",
        ));
    }
    Ok(buf.stx_mnt_id)
}

impl Dir {
    /// Every mount point at or below this directory (paths for messages),
    /// found by comparing mount ids while walking by descriptor: a path
    /// through a symlink, or a bind mount of the same file system, cannot
    /// hide one.
    pub fn mounts_below(&self) -> Result<Vec<PathBuf>> {
        let mut found = Vec::new();
        let parent = mount_id(&self.fd).map_err(|e| Error::io("stat", &self.path, e))?;
        self.collect_mounts(parent, &mut found)?;
        Ok(found)
    }

    fn collect_mounts(&self, mnt: u64, found: &mut Vec<PathBuf>) -> Result<()> {
        for (name, kind) in self.entries()? {
            let Some(name) = name.to_str() else {
                // Not UTF-8: open it by bytes is not supported by our Dir
                // helpers; a directory there must not hide a mount.
                return Err(Error::io(
                    "walk",
                    &self.path,
                    std::io::Error::other("a name that is not UTF-8"),
                ));
            };
            let is_dir = match kind {
                Some(k) => k == Kind::Dir,
                None => self.kind(name)? == Some(Kind::Dir),
            };
            if !is_dir {
                continue;
            }
            let Some(child) = self.open_dir_if_exists(name)? else {
                continue;
            };
            let id = mount_id(&child.fd).map_err(|e| Error::io("stat", &child.path, e))?;
            if id != mnt {
                found.push(child.path.clone());
            } else {
                child.collect_mounts(mnt, found)?;
            }
        }
        Ok(())
    }

    /// Removes `name` and everything below it without following a link and
    /// without crossing into another mount: if anything below is a mount
    /// point, nothing is removed and the error names them.
    pub fn remove_tree(&self, name: &str) -> Result<bool> {
        match self.kind(name)? {
            None => return Ok(false),
            Some(Kind::Dir) => {}
            Some(_) => return self.unlink(name),
        }
        let dir = self.open_dir(name)?;
        if mount_id(&dir.fd).map_err(|e| Error::io("stat", &dir.path, e))?
            != mount_id(&self.fd).map_err(|e| Error::io("stat", &self.path, e))?
        {
            return Err(Error::Mounted {
                paths: vec![dir.path.clone()],
            });
        }
        let mounts = dir.mounts_below()?;
        if !mounts.is_empty() {
            return Err(Error::Mounted { paths: mounts });
        }
        dir.empty()?;
        drop(dir);
        self.rmdir(name)
    }

    /// Removes everything in this directory (checked for mounts by the caller).
    fn empty(&self) -> Result<()> {
        for (name, kind) in self.entries()? {
            let Some(name) = name.to_str() else {
                return Err(Error::io(
                    "remove",
                    &self.path,
                    std::io::Error::other("a name that is not UTF-8"),
                ));
            };
            let is_dir = match kind {
                Some(k) => k == Kind::Dir,
                None => self.kind(name)? == Some(Kind::Dir),
            };
            if is_dir {
                let child = self.open_dir(name)?;
                child.empty()?;
                self.rmdir(name)?;
            } else {
                self.unlink(name)?;
            }
        }
        Ok(())
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
    fn fifos_are_neither_opened_nor_read_but_replaced() {
        let t = tempfile::tempdir().unwrap();
        let d = Dir::open_root(&t.path().join("d"), 0o755).unwrap();
        nix::unistd::mkfifo(&d.child_path("f"), Mode::from_bits_truncate(0o644)).unwrap();
        assert_eq!(
            d.read_bounded("f", 10).unwrap(),
            Contents::NotRegular(Kind::Special)
        );
        assert!(matches!(
            d.open_regular("f", true),
            Err(Error::NotRegular { .. })
        ));
        assert!(d.replace_file("f", b"x", 0o644).unwrap());
        assert_eq!(
            d.read_bounded("f", 10).unwrap(),
            Contents::Data(b"x".to_vec())
        );
        std::fs::write(d.child_path("big"), vec![b'a'; 11]).unwrap();
        assert_eq!(d.read_bounded("big", 10).unwrap(), Contents::TooLarge);
        assert_eq!(d.read_bounded("none", 10).unwrap(), Contents::Missing);
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

    #[test]
    fn remove_tree_never_crosses_a_mount_or_follows_a_link() {
        let t = tempfile::tempdir().unwrap();
        let d = Dir::open_root(t.path(), 0o755).unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        std::fs::create_dir_all(t.path().join("tree/a/b")).unwrap();
        std::fs::write(t.path().join("tree/a/b/f"), "x").unwrap();
        symlink(&outside, t.path().join("tree/a/link")).unwrap();
        // A bind mount below (of the same file system: st_dev is equal).
        std::fs::create_dir_all(t.path().join("tree/a/mnt")).unwrap();
        let mnt = t.path().join("tree/a/mnt");
        nix::mount::mount(
            Some(&outside),
            &mnt,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
        let e = d.remove_tree("tree").err().unwrap();
        nix::mount::umount(&mnt).unwrap();
        assert!(e.to_string().contains("/tree/a/mnt"), "{e}");
        assert!(t.path().join("tree/a/b/f").exists(), "nothing removed");
        assert!(d.remove_tree("tree").unwrap());
        assert!(!t.path().join("tree").exists());
        assert_eq!(std::fs::read_to_string(outside.join("keep")).unwrap(), "x");
    }

    #[test]
    fn roots_writable_by_others_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let open = t.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = Dir::open_root(&open.join("root"), 0o755)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("writable by its group or by others"), "{e}");
        // Sticky and world-writable (as /tmp) above a root-owned root is fine.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
        Dir::open_root(&open.join("root2"), 0o755).unwrap();
        let e = Dir::open_root(&open, 0o755).err().unwrap().to_string();
        assert!(e.contains("writable"), "the root itself: {e}");
        let owned = t.path().join("owned");
        std::fs::create_dir(&owned).unwrap();
        nix::unistd::chown(&owned, Some(nix::unistd::Uid::from_raw(4242)), None).unwrap();
        let e = Dir::open_root(&owned.join("x"), 0o755)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("owned by uid 4242"), "{e}");
    }
}

//! A container's NAME.conf file (or a saved copy of one) on disk: reading
//! it (through a directory descriptor, bounded, never following a link or
//! opening a FIFO, parsed with the one conf rule of conf.rs), asking whether
//! it holds given text without a write or a lock, and replacing it
//! atomically. The one owner of these; the plugin and the CLI both ask it.

use std::path::Path;

use crate::conf::Conf;
use crate::error::{Error, Result};
use crate::fsutil::{Contents, Dir};

/// The most read of a conf file: far more than any conf the plugin writes.
pub const MAX_CONF: usize = 64 * 1024;

/// The mode NixOS gives conf files.
const MODE: u32 = 0o644;

/// `dir/file` as text and parsed; None when the directory or the file is
/// missing.
pub fn read(dir: &Path, file: &str) -> Result<Option<(String, Conf)>> {
    match Dir::open_existing_root(dir)? {
        Some(d) => read_in(&d, file),
        None => Ok(None),
    }
}

/// `file` in the open directory `d`, as text and parsed; None when missing.
pub fn read_in(d: &Dir, file: &str) -> Result<Option<(String, Conf)>> {
    let path = d.child_path(file);
    let bad = |msg: String| Error::Conf {
        path: path.clone(),
        msg,
    };
    let bytes = match d.read_bounded(file, MAX_CONF)? {
        Contents::Missing => return Ok(None),
        Contents::Data(b) => b,
        Contents::TooLarge => return Err(bad(format!("larger than {MAX_CONF} bytes"))),
        Contents::NotRegular(k) => {
            return Err(Error::NotRegular {
                path: path.clone(),
                kind: k.describe(),
            })
        }
    };
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8".into()))?;
    let conf = Conf::parse(&text).map_err(bad)?;
    Ok(Some((text, conf)))
}

/// Makes `file` in `d` hold `text` (atomically; whatever was there, a
/// link or a FIFO included, is replaced, not followed). Returns whether
/// it changed.
pub fn replace(d: &Dir, file: &str, text: &str) -> Result<bool> {
    d.replace_file(file, text.as_bytes(), MODE)
}

/// Whether the conf file at `path` holds exactly `want`, for the no-op
/// check (no lock, no write): open (never following a link, never waiting
/// on a FIFO), a regular file, one read of one byte more than `want`,
/// close. Anything unexpected answers "no", which takes the full path.
pub fn holds(path: &Path, want: &str) -> bool {
    use nix::fcntl::{open, OFlag};
    use std::io::Read;
    let want = want.as_bytes();
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let Ok(fd) = open(path, flags, nix::sys::stat::Mode::empty()) else {
        return false;
    };
    let mut f = std::fs::File::from(fd);
    if !f.metadata().is_ok_and(|m| m.file_type().is_file()) {
        return false;
    }
    let mut buf = vec![0u8; want.len() + 1];
    // Local files return all that is asked for in one read; a short read
    // just means "different", which takes the full path.
    let Ok(got) = f.read(&mut buf) else {
        return false;
    };
    &buf[..got] == want
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bounded_and_refuses_links_and_fifos() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        assert!(read(&d.join("missing"), "a.conf").unwrap().is_none());
        assert!(read(d, "a.conf").unwrap().is_none());
        std::fs::write(d.join("a.conf"), "PRIVATE_NETWORK=1\n").unwrap();
        let (text, conf) = read(d, "a.conf").unwrap().unwrap();
        assert_eq!(text, "PRIVATE_NETWORK=1\n");
        assert_eq!(conf.value("PRIVATE_NETWORK"), "1");
        std::os::unix::fs::symlink(d.join("a.conf"), d.join("l.conf")).unwrap();
        assert!(read(d, "l.conf").is_err());
        nix::unistd::mkfifo(
            &d.join("f.conf"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert!(read(d, "f.conf").is_err());
        std::fs::write(d.join("big.conf"), vec![b'#'; MAX_CONF + 1]).unwrap();
        assert!(read(d, "big.conf")
            .unwrap_err()
            .to_string()
            .contains("larger"));
    }

    #[test]
    fn holds_never_follows_a_link_nor_waits_on_a_fifo() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::write(d.join("a.conf"), "X=1\n").unwrap();
        assert!(holds(&d.join("a.conf"), "X=1\n"));
        assert!(!holds(&d.join("a.conf"), "X=1"));
        assert!(!holds(&d.join("a.conf"), "X=1\nY=2\n"));
        assert!(!holds(&d.join("none.conf"), ""));
        std::os::unix::fs::symlink(d.join("a.conf"), d.join("l.conf")).unwrap();
        assert!(!holds(&d.join("l.conf"), "X=1\n"));
        // A FIFO with no writer: a plain open would block for ever.
        nix::unistd::mkfifo(
            &d.join("f.conf"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert!(!holds(&d.join("f.conf"), ""));
    }

    #[test]
    fn replace_swaps_a_planted_link_for_a_file() {
        let t = tempfile::tempdir().unwrap();
        let d = Dir::open_root(t.path(), 0o755).unwrap();
        std::fs::write(t.path().join("target"), "keep").unwrap();
        std::os::unix::fs::symlink(t.path().join("target"), t.path().join("a.conf")).unwrap();
        assert!(replace(&d, "a.conf", "X=1\n").unwrap());
        assert!(!replace(&d, "a.conf", "X=1\n").unwrap());
        assert_eq!(
            std::fs::read_to_string(t.path().join("target")).unwrap(),
            "keep"
        );
        assert_eq!(read_in(&d, "a.conf").unwrap().unwrap().0, "X=1\n");
    }
}

//! Reading a NAME.conf file (or a saved copy of one): through a directory
//! descriptor, bounded, never following a link or opening a FIFO, and
//! parsed with the one conf rule (conf.rs).

use std::path::Path;

use crate::conf::Conf;
use crate::error::{Error, Result};
use crate::fsutil::{Contents, Dir};

/// The most read of a conf file: far more than any conf the plugin writes.
pub const MAX_CONF: usize = 64 * 1024;

/// `dir/file` as text and parsed; None when the directory or the file is
/// missing.
pub fn read(dir: &Path, file: &str) -> Result<Option<(String, Conf)>> {
    let Some(d) = Dir::open_existing_root(dir)? else {
        return Ok(None);
    };
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
}

//! The CLI's own small files (run directory records): written whole through
//! the core's temporary-file-and-rename, so a crash leaves the old or the new one.

use std::path::Path;

use crate::error::{failed, Result};

/// Writes the run-directory record `path` with the core's atomic replace
/// (temporary file beside it, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Err(failed(format!("'{}' is not a file path", path.display())));
    };
    ncp_core::fsutil::Dir::open_root(dir, 0o700)?.replace_file(name, bytes, 0o644)?;
    Ok(())
}

/// Removes a file; a missing one is fine.
pub fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(failed(format!("cannot remove '{}': {e}", path.display())))
        }
        _ => Ok(()),
    }
}

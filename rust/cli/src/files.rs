//! The CLI's own small files (run directory records): written whole, via a
//! temporary file and rename, so a crash leaves the old or the new one.

use std::path::Path;

use crate::error::{failed, Result};

pub fn ensure_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| failed(format!("cannot create '{}': {e}", dir.display())))
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    ensure_dir(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| failed(format!("cannot write '{}': {e}", path.display())))
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

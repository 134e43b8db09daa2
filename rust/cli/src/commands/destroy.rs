//! `destroy`: everything of a container under the roots goes, and nothing
//! else. Every directory is removed through descriptors, never following a
//! link and never crossing into another mount (fsutil::remove_tree); if
//! anything is mounted below any of them, nothing is removed.

use std::path::Path;

use ncp_core::fsutil::Dir;

use crate::commands::apply::previously_declared;
use crate::commands::lifecycle;
use crate::recipe::Recipes;

use crate::container::Container;
use crate::error::{failed, Result};
use crate::say;
use crate::state::Probe;

/// The directories of `c`, each as (its root, its name there).
fn trees<'a>(c: &'a Container) -> [(&'a Path, &'a str); 4] {
    let r = &c.ctx.roots;
    let n = c.name();
    [
        (&r.state_dir, n),
        (&r.profiles_dir, n),
        (&r.gcroots_dir, n),
        (&r.run_dir, n),
    ]
}

pub fn destroy(c: &Container) -> Result<()> {
    // As nixos-container: a container a configuration declares comes back
    // at its next switch; it is removed from the configuration instead.
    if previously_declared(c.ctx)?.contains(c.name()) {
        return Err(failed(format!(
            "cannot destroy container '{}': a NixOS configuration declares it (remove it \
             from containers.<name> / nix-container.containers and switch instead)",
            c.name()
        )));
    }
    lifecycle::stop(c)?;
    if Probe::of(c).state.occupied() {
        return Err(failed(format!(
            "container '{}' is still running; not destroying it",
            c.name()
        )));
    }
    // First look everywhere; remove only when nothing is mounted anywhere.
    let mut opened = Vec::new();
    for (root, name) in trees(c) {
        let Some(parent) = Dir::open_existing_root(root)? else {
            continue;
        };
        if let Some(dir) = parent.open_dir_if_exists(name)? {
            let mounts = dir.mounts_below()?;
            if !mounts.is_empty() {
                return Err(failed(format!(
                    "container '{}': refusing to destroy while something is mounted below '{}': {}",
                    c.name(),
                    dir.path.display(),
                    mounts
                        .iter()
                        .map(|m| m.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        opened.push((parent, name));
    }
    // The profile's generations go under its lock, as nix-env would.
    if let Some(p) = c.profile_dir()? {
        let _lock = p.lock_for_removal(c.ctx.lock_timeout)?;

        for g in p.list()? {
            p.delete(g.number)?;
        }
        p.dir.unlink(&p.name)?;
    }
    for (parent, name) in &opened {
        parent.remove_tree(name)?;
    }
    // The conf file last, so that an interrupted destroy still lists the
    // container and can be run again.
    Recipes::new(&c.ctx.roots).forget(c.name())?;
    if let Some(d) = Dir::open_existing_root(&c.ctx.roots.config_dir)? {
        d.unlink(&c.layout.config_file_name())?;
    }
    say!("{}: destroyed", c.name());
    Ok(())
}

/// Wipes the container's state (its root) and prepares the root afresh as
/// the start script would; its conf file and generations stay (nixpkgs
/// #26029). Stops it first if it runs.
pub fn reset(c: &Container) -> Result<()> {
    if Probe::of(c).nspawn.is_some() {
        lifecycle::stop(c)?;
    }
    if Probe::of(c).state.occupied() {
        return Err(failed(format!(
            "container '{}' is still running; not resetting it",
            c.name()
        )));
    }
    let (_, conf) = c.conf()?.ok_or_else(|| {
        failed(format!(
            "container '{}' has no conf file to prepare its root from",
            c.name()
        ))
    })?;
    if let Some(state) = Dir::open_existing_root(&c.ctx.roots.state_dir)? {
        state.remove_tree(c.name())?;
    }
    ncp_core::rootfs::prepare(
        &c.ctx.roots,
        &c.layout,
        conf.value("COPY_RESOLV_CONF") == "1",
    )?;
    c.records().clear()?;
    say!(
        "{}: reset (root wiped and prepared afresh; conf and generations kept)",
        c.name()
    );
    Ok(())
}

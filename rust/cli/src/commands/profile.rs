//! The container's system profile: rollback, generations, deleting them.

use std::time::Duration;

use ncp_core::args::Args;
use ncp_core::container_profile::{self, SwitchOnly};
use ncp_core::plan::Plan;
use ncp_core::profile::{DeleteSpec, ProfileDir};
use ncp_core::profile_lock::ProfileLock;

use crate::commands::apply::{apply_one, said};
use crate::container::Container;
use crate::error::{failed, CliError, Result};
use crate::output::print_json;
use crate::say;

fn no_profile(c: &Container) -> CliError {
    failed(format!(
        "container '{}' has no profile directory '{}'",
        c.name(),
        c.layout.profile_dir.display()
    ))
}

/// The container's profile directory and its lock (the sweep done).
pub fn lock(c: &Container) -> Result<(ProfileDir, ProfileLock)> {
    let Some(p) = c.profile_dir()? else {
        return Err(no_profile(c));
    };
    let lock = p.lock(c.ctx.lock_timeout, &mut || false)?;
    Ok((p, lock))
}

/// Switches the profile (to `to`, or the previous generation) with the
/// steps builtins.containerProfile takes for `generation`/`rollback` (core
/// container_profile.rs: lock and sweep, root and conf, switch), then
/// applies.
pub fn rollback(c: &Container, to: Option<u64>, json: bool) -> Result<()> {
    if c.profile_dir()?.is_none() {
        return Err(no_profile(c));
    }
    let args = Args {
        generation: to,
        rollback: to.is_none(),
        ..Args::named(c.name())
    };
    let mut plan = Plan::from_args(&args, c.ctx.roots.clone(), c.ctx.lock_timeout)?;
    let done = container_profile::run(&mut plan, &SwitchOnly)
        .map_err(|e| failed(format!("container '{}': {e}", c.name())))?;
    let (from, n) = (done.from, done.outcome.generation);
    if !json {
        say!(
            "{}: switched from generation {} to {n}",
            c.name(),
            from.map(|f| f.to_string()).unwrap_or_else(|| "-".into())
        );
    }
    let applied = if crate::state::Probe::of(c).state.up() {
        Some(apply_one(c, false)?)
    } else {
        None
    };
    if json {
        return print_json(&serde_json::json!({
            "name": c.name(), "from": from, "to": n, "applied": applied,
        }));
    }
    if let Some(d) = applied {
        say!("{}: {}", c.name(), said(&d));
    }
    Ok(())
}

pub fn generations(c: &Container, json: bool) -> Result<()> {
    let gens = match c.profile_dir()? {
        Some(p) => p.list()?,
        None => Vec::new(),
    };
    if json {
        return print_json(&gens);
    }
    for g in &gens {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(g.creation_time.max(0) as u64);
        println!(
            "{:>4}   {}   {}{}",
            g.number,
            humantime::format_rfc3339_seconds(t),
            g.path,
            if g.current { "   (current)" } else { "" }
        );
    }
    Ok(())
}

pub fn delete_generations(c: &Container, spec: &[String], dry_run: bool, json: bool) -> Result<()> {
    let spec = DeleteSpec::parse(spec).map_err(CliError::Usage)?;
    let (p, _lock) = lock(c)?;
    let gens = p.list()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let doomed = spec
        .select(&gens, now)
        .map_err(|e| failed(format!("container '{}': {e}", c.name())))?;
    for &n in &doomed {
        if !dry_run {
            p.delete(n)?;
        }
        if !json {
            let verb = if dry_run { "would remove" } else { "removed" };
            say!("{}: {verb} generation {n}", c.name());
        }
    }
    if json {
        return print_json(&serde_json::json!({
            "name": c.name(), "dryRun": dry_run, "removed": doomed,
        }));
    }
    Ok(())
}

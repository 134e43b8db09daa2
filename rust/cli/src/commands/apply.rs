//! `apply`: what each container's last profile or conf change needs.

use std::collections::BTreeSet;

use crate::recipe::Recipes;
use ncp_core::decide::{decide, Action, Decision, Facts};
use ncp_core::fsutil::Dir;
use ncp_core::name;
use serde::Serialize;

use crate::commands::{inside, lifecycle};
use crate::container::{Container, Ctx};
use crate::error::{failed, Result};
use crate::output::{print_json, set_json};
use crate::say;
use crate::state::Probe;

#[derive(Serialize)]
struct Applied {
    name: String,
    #[serde(flatten)]
    decision: Decision,
    error: Option<String>,
}

/// "reload (system changed: …)".
pub fn said(d: &Decision) -> String {
    let verb = serde_json::to_value(d.action).ok();
    let verb = verb.as_ref().and_then(|v| v.as_str()).unwrap_or("?");
    format!("{verb} ({})", d.reason)
}

fn facts_decision(c: &Container, declared: Option<bool>) -> Result<Decision> {
    // A container something else started counts as running (and, with no
    // record of its start, is left alone); so does one starting or stopping.
    let running = Probe::of(c).state.occupied();

    let conf = c.conf()?.map(|(_, c)| c);
    let started = if running { c.started_conf()? } else { None };
    let running_system = if running { c.active_system() } else { None };
    let profile_system = c.profile_system();
    Ok(decide(&Facts {
        running,
        conf: conf.as_ref(),
        started_conf: started.as_ref(),
        running_system: running_system.as_deref(),
        profile_system: profile_system.as_deref(),
        declared,
    }))
}

pub fn apply_one(c: &Container, dry_run: bool) -> Result<Decision> {
    apply_declared(c, None, dry_run)
}

fn apply_declared(c: &Container, declared: Option<bool>, dry_run: bool) -> Result<Decision> {
    let d = facts_decision(c, declared)?;
    if !dry_run {
        match d.action {
            Action::Nothing => {}
            Action::Start => lifecycle::start(c)?,
            Action::Reload => inside::reload(c)?,
            Action::Restart => lifecycle::restart(c)?,
            Action::Stop => lifecycle::stop(c)?,
            Action::Retire => {
                if c.started_conf()?.is_some() && Probe::of(c).nspawn.is_some() {
                    lifecycle::stop(c)?;
                }
                if let Some(d) = Dir::open_existing_root(&c.ctx.roots.config_dir)? {
                    d.unlink(&c.layout.config_file_name())?;
                }
            }
        }
    }
    Ok(d)
}

pub fn previously_declared(ctx: &Ctx) -> Result<BTreeSet<String>> {
    Recipes::new(&ctx.roots).declared()
}

/// The hook: does what each container's last change needs. With
/// `declared` (the names a configuration declares), it acts on those and
/// on the ones it declared before and no longer does, and on nothing else.
pub fn apply(
    ctx: &Ctx,
    names: &[String],
    declared: Option<&[String]>,
    dry_run: bool,
    json: bool,
) -> Result<()> {
    set_json(json);
    let declared: Option<BTreeSet<String>> = match declared {
        None => None,
        Some(d) => {
            for n in d {
                name::validate(n)?;
            }
            Some(d.iter().cloned().collect())
        }
    };
    let names: Vec<String> = match &declared {
        Some(now) => now.union(&previously_declared(ctx)?).cloned().collect(),
        None if names.is_empty() => ctx.names()?,
        None => names.to_vec(),
    };
    let mut results = Vec::new();
    for n in &names {
        let is_declared = declared.as_ref().map(|d| d.contains(n));
        if is_declared == Some(false) && ctx.container(n).is_err() {
            continue; // declared once, gone since
        }
        let r = ctx
            .container(n)
            .and_then(|c| apply_declared(&c, is_declared, dry_run));

        results.push(match r {
            Ok(decision) => Applied {
                name: n.clone(),
                decision,
                error: None,
            },
            Err(e) => Applied {
                name: n.clone(),
                decision: Decision {
                    action: Action::Nothing,
                    reason: "failed".into(),
                },
                error: Some(e.to_string()),
            },
        });
    }
    if json {
        print_json(&results)?;
    } else {
        for r in &results {
            match &r.error {
                Some(e) => eprintln!("{}: error: {e}", r.name),
                None => say!(
                    "{}: {}{}",
                    r.name,
                    if dry_run { "would " } else { "" },
                    said(&r.decision)
                ),
            }
        }
    }
    if let (Some(d), false) = (&declared, dry_run) {
        Recipes::new(&ctx.roots).save_declared(d)?;
    }
    let failed_n = results.iter().filter(|r| r.error.is_some()).count();
    if failed_n > 0 {
        return Err(failed(format!(
            "apply failed for {failed_n} of {} containers",
            results.len()
        )));
    }
    Ok(())
}

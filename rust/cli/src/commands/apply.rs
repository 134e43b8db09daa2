//! `apply`: what each container's last profile or conf change needs.

use ncp_core::decide::{decide, Action, Decision, Facts};
use serde::Serialize;

use crate::commands::{inside, lifecycle};
use crate::container::{Container, Ctx};
use crate::error::{failed, Result};
use crate::output::{print_json, set_json};
use crate::say;

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

fn facts_decision(c: &Container) -> Result<Decision> {
    let running = c.leader().is_some();
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
    }))
}

pub fn apply_one(c: &Container, dry_run: bool) -> Result<Decision> {
    let d = facts_decision(c)?;
    if !dry_run {
        match d.action {
            Action::Nothing => {}
            Action::Start => lifecycle::start(c)?,
            Action::Reload => inside::reload(c)?,
            Action::Restart => lifecycle::restart(c)?,
            Action::Stop => lifecycle::stop(c)?,
        }
    }
    Ok(d)
}

/// The hook: does what each container's last change needs.
pub fn apply(ctx: &Ctx, names: &[String], dry_run: bool, json: bool) -> Result<()> {
    set_json(json);
    let names: Vec<String> = if names.is_empty() {
        ctx.names()
    } else {
        names.to_vec()
    };
    let mut results = Vec::new();
    for n in &names {
        let r = ctx.container(n).and_then(|c| apply_one(&c, dry_run));
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
    let failed_n = results.iter().filter(|r| r.error.is_some()).count();
    if failed_n > 0 {
        return Err(failed(format!(
            "apply failed for {failed_n} of {} containers",
            results.len()
        )));
    }
    Ok(())
}

//! Starting, stopping and looking at containers.

use std::time::{Duration, Instant};

use ncp_core::layout::STARTED_CONF;

use crate::container::{Container, Ctx};
use crate::error::{failed, CliError, Result};
use crate::output::{paint, print_json, Color};
use crate::runner::{wait_until, Runner};
use crate::{network, say};

/// As nixos-container: the names, one per line. --long: a table; --json: everything.
pub fn list(ctx: &Ctx, long: bool, json: bool) -> Result<()> {
    if !long && !json {
        for n in ctx.names()? {
            println!("{n}");
        }
        return Ok(());
    }
    let all = ctx
        .names()?
        .iter()
        .map(|n| ctx.container(n)?.status())
        .collect::<Result<Vec<_>>>()?;
    if json {
        return print_json(&all);
    }
    for s in &all {
        println!(
            "{:<12} {:<8} gen {:<4} {}{}",
            s.name,
            state_word(s.state),
            s.generation
                .map(|g| g.to_string())
                .unwrap_or_else(|| "-".into()),
            s.system.as_deref().unwrap_or("(no system)"),
            if s.system_differs {
                format!(
                    "  (running {})",
                    s.running_system.as_deref().unwrap_or("unknown")
                )
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

/// nixos-container's words: "up" or "down", coloured on a terminal.
fn state_word(state: &str) -> String {
    match state {
        "running" => paint("up", Color::Green),
        _ => paint("down", Color::Yellow),
    }
}

/// As nixos-container: "up" or "down"; for an unknown container "gone",
/// and the error (exit code 3). --long and --json: everything known.
pub fn status(ctx: &Ctx, name: &str, long: bool, json: bool) -> Result<()> {
    let c = match ctx.container(name) {
        Err(e @ CliError::Unknown { .. }) => {
            if json {
                print_json(&serde_json::json!({ "name": name, "state": "gone" }))?;
            } else {
                println!("gone");
            }
            return Err(e);
        }
        r => r?,
    };
    let s = c.status()?;

    if json {
        print_json(&s)?;
    } else if !long {
        println!("{}", state_word(s.state));
    } else {
        println!("{}: {}", s.name, state_word(s.state));
        println!(
            "  generation:     {}",
            s.generation
                .map(|g| g.to_string())
                .unwrap_or_else(|| "-".into())
        );
        println!("  system:         {}", s.system.as_deref().unwrap_or("-"));
        if let Some(r) = &s.running_system {
            println!(
                "  running system: {r}{}",
                if s.system_differs {
                    " (differs: `apply` reloads)"
                } else {
                    ""
                }
            );
        }
        if !s.conf_changed.is_empty() {
            println!(
                "  conf changed:   {} (`apply` restarts)",
                s.conf_changed.join(", ")
            );
        }
        if let (Some(p), Some(l)) = (s.nspawn_pid, s.leader) {
            println!("  nspawn pid:     {p} (init {l}), runner {}", s.runner);
        }
        println!("  unit:           {}", s.unit);
        println!("  root:           {}", s.root);
        println!("  conf:           {}", s.config_file);
        println!("  profile:        {}", s.profile);
        println!("  console log:    {}", s.console_log);
    }
    Ok(())
}

pub fn start(c: &Container) -> Result<()> {
    // Its nspawn, even before the init runs: a second one would fight
    // over the root.
    if let Some(p) = c.nspawn() {
        say!("{}: already running (systemd-nspawn {})", c.name(), p.pid);
        return Ok(());
    }
    if let Some(pid) = c.foreign() {
        say!(
            "{}: already running, started by another tool (systemd-nspawn {pid}); left alone",
            c.name()
        );
        return Ok(());
    }
    let (text, conf) = c.conf()?.ok_or_else(|| {
        failed(format!(
            "container '{}' has no conf file '{}': prepare it with builtins.containerProfile",
            c.name(),
            c.layout.config_file.display()
        ))
    })?;
    let system = c.profile_system().ok_or_else(|| {
        failed(format!(
            "container '{}': its profile '{}' points at no system in the store",
            c.name(),
            c.layout.profile.display()
        ))
    })?;
    if !std::path::Path::new(&system).join("init").is_file() {
        return Err(failed(format!(
            "container '{}': '{system}' has no init",
            c.name()
        )));
    }
    let run = c.run_dir()?;
    run.replace_file(STARTED_CONF, text.as_bytes(), 0o600)?;
    c.record_active_system(&system)?;
    // Show only what this start wrote to the (appended) console log.
    let log_from = std::fs::metadata(c.console_log())
        .map(|m| m.len())
        .unwrap_or(0);
    let result = c.ctx.runner.spawn(c, &conf).and_then(|spawned| {
        let nspawn = spawned.or_else(|| c.nspawn());
        let up = wait_until(c.ctx.timeout, || {
            c.leader().is_some() || !nspawn.as_ref().is_some_and(|p| p.alive())
        });
        match c.leader() {
            Some(l) if up => Ok(l),
            _ => {
                if let Some(p) = nspawn.filter(|p| p.alive()) {
                    let _ = p.signal(libc::SIGKILL);
                }
                Err(failed(format!(
                    "container '{}' did not start; console log {}:\n{}",
                    c.name(),
                    c.console_log().display(),
                    log_since(&c.console_log(), log_from)
                )))
            }
        }
    });
    match result {
        Ok(leader) => {
            if c.ctx.runner.configures_network() {
                network::configure(c, &conf, &leader)?;
            }
            say!("{}: started (init {}, {system})", c.name(), leader.pid);
            Ok(())
        }
        Err(e) => {
            let _ = c.clear_run_records();
            Err(e)
        }
    }
}

/// What the console log got after `offset` (its last 64 KiB at most).
pub fn log_since(path: &std::path::Path, offset: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = offset.max(len.saturating_sub(64 * 1024));
    let mut buf = Vec::new();
    let _ = f
        .seek(SeekFrom::Start(from))
        .and_then(|_| f.take(64 * 1024).read_to_end(&mut buf));
    String::from_utf8_lossy(&buf).into_owned()
}

/// Halts the container: SIGRTMIN+3 to its init, at most `c.ctx.timeout`,
/// then SIGKILL; says what it did.
pub fn stop(c: &Container) -> Result<()> {
    if let Some(pid) = c.foreign() {
        return Err(failed(format!(
            "container '{}' was not started by nix-container (systemd-nspawn {pid}); \
             stop it with the tool that started it",
            c.name()
        )));
    }
    let Some(nspawn) = c.nspawn() else {
        c.clear_run_records()?;
        say!("{}: not running", c.name());
        return Ok(());
    };
    let grace = c.ctx.timeout;
    match c.ctx.runner {
        Runner::Direct => say!(
            "{}: asking its init to halt (SIGRTMIN+3); SIGKILL after {}s",
            c.name(),
            grace.as_secs()
        ),
        Runner::Systemd { .. } => say!(
            "{}: stopping {} (its init gets SIGRTMIN+3); SIGKILL after {}s",
            c.name(),
            c.ctx.runner.unit(c),
            grace.as_secs()
        ),
    }

    let s = c.ctx.runner.stop(c, &nspawn, grace)?;
    c.clear_run_records()?;
    match s.escalated {
        None => say!("{}: halted in {:.1}s", c.name(), s.after.as_secs_f64()),
        Some(what) => say!(
            "{}: killed after {:.1}s: {what}",
            c.name(),
            s.after.as_secs_f64()
        ),
    }
    Ok(())
}

/// Kills the container at once (nixos-container terminate).
pub fn terminate(c: &Container) -> Result<()> {
    let Some(nspawn) = c.nspawn() else {
        c.clear_run_records()?;
        say!("{}: not running", c.name());
        return Ok(());
    };
    let t = Instant::now();
    c.ctx.runner.terminate(c, &nspawn)?;
    c.clear_run_records()?;
    say!(
        "{}: terminated (SIGKILL) in {:.1}s",
        c.name(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn restart(c: &Container) -> Result<()> {
    stop(c)?;
    // The unit (or our record) may need a moment to let go of the root.
    wait_until(Duration::from_secs(5), || c.nspawn().is_none());
    start(c)
}

/// In a unit's ExecStart: becomes systemd-nspawn (returns only an error).
pub fn exec_nspawn(c: &Container) -> crate::error::CliError {
    let conf = match c.conf() {
        Ok(Some((text, conf))) => {
            // What it started with, and the system the unit boots.
            let recorded = c.run_dir().and_then(|d| {
                d.replace_file(STARTED_CONF, text.as_bytes(), 0o600)?;
                Ok(())
            });
            if let Err(e) = recorded {
                return e;
            }
            if let Some(system) = c.profile_system() {
                if let Err(e) = c.record_active_system(&system) {
                    return e;
                }
            }
            conf
        }
        Ok(None) => return failed(format!("container '{}' has no conf file", c.name())),
        Err(e) => return e,
    };
    crate::runner::exec_nspawn(c, &conf)
}

/// In a unit's ExecStartPost: the private network, as NixOS's unit sets it up.
pub fn network_up(c: &Container) -> Result<()> {
    let (_, conf) = c
        .conf()?
        .ok_or_else(|| failed(format!("container '{}' has no conf file", c.name())))?;
    let leader = c.require_leader()?;
    network::configure(c, &conf, &leader)
}

/// Writes container@.service (this program as its ExecStart) and reloads systemd.
pub fn install_unit(dir: &std::path::Path) -> Result<()> {
    let cli =
        std::env::current_exe().map_err(|e| failed(format!("cannot find this program: {e}")))?;
    let d = ncp_core::fsutil::Dir::open_root(dir, 0o755)?;
    d.replace_file(
        "container@.service",
        crate::runner::unit_file(&cli).as_bytes(),
        0o644,
    )?;
    say!("wrote {}", dir.join("container@.service").display());
    if crate::runner::systemd_booted() {
        let o = crate::runner::systemctl(&["daemon-reload"])?;
        if !o.status.success() {
            return Err(failed(String::from_utf8_lossy(&o.stderr).trim().to_owned()));
        }
    }
    Ok(())
}

//! The commands. Each prints what it did on stdout (or JSON with --json) and
//! returns an error whose kind decides the exit code (error.rs).

use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use ncp_core::decide::{decide, Action, Decision, Facts};
use ncp_core::generation::switch_target;
use ncp_core::layout::{PID_FILE, STARTED_CONF};
use ncp_core::profile::{DeleteSpec, ProfileDir};
use ncp_core::profile_lock::ProfileLock;
use serde::Serialize;

use crate::container::{Container, Ctx};
use crate::error::{failed, CliError, Result};
use crate::{files, network, procs};

/// With --json, stdout carries only the JSON: progress goes to stderr.
static JSON_OUTPUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Prints what a command did (stdout, or stderr under --json).
macro_rules! say {
    ($($t:tt)*) => {
        if JSON_OUTPUT.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!($($t)*)
        } else {
            println!($($t)*)
        }
    };
}

fn print_json<T: Serialize>(v: &T) -> Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| failed(e.to_string()))?;
    println!("{s}");
    Ok(())
}

pub fn list(ctx: &Ctx, json: bool) -> Result<()> {
    let all = ctx
        .names()
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
            s.state,
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

/// `status`: exit 0 when running, 4 when stopped.
pub fn status(c: &Container, json: bool) -> Result<()> {
    let s = c.status()?;
    if json {
        print_json(&s)?;
    } else {
        println!("{}: {}", s.name, s.state);
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
        println!("  root:           {}", s.root);
        println!("  conf:           {}", s.config_file);
        println!("  profile:        {}", s.profile);
    }
    if s.leader.is_none() {
        return Err(CliError::NotRunning(s.name));
    }
    Ok(())
}

pub fn start(c: &Container) -> Result<()> {
    // Its nspawn, even before the init runs: a second one would fight
    // over the root.
    if let Some(p) = c.nspawn_pid() {
        say!("{}: already running (systemd-nspawn {p})", c.name());
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
            "container '{}': its profile '{}' points at no system",
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
    files::write_atomic(&c.run_file(STARTED_CONF), text.as_bytes())?;
    // Show only what this start wrote to the (appended) console log.
    let log_from = std::fs::metadata(c.console_log())
        .map(|m| m.len())
        .unwrap_or(0);
    let result = c.ctx.runner.spawn(c, &conf).and_then(|spawned| {
        let pid = spawned.or_else(|| c.nspawn_pid());
        let up = procs::wait_until(c.ctx.timeout, || {
            c.leader().is_some() || !pid.is_some_and(procs::alive)
        });
        match c.leader() {
            Some(l) if up => Ok(l),
            _ => {
                if let Some(p) = pid.filter(|p| procs::alive(*p)) {
                    let _ = procs::signal(p, libc::SIGKILL);
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
            if c.ctx.runner == crate::runner::Runner::Direct {
                network::configure(c, &conf, leader)?;
            }
            say!("{}: started (init {leader}, {system})", c.name());
            Ok(())
        }
        Err(e) => {
            let _ = files::remove(&c.run_file(STARTED_CONF));
            let _ = files::remove(&c.run_file(PID_FILE));
            Err(e)
        }
    }
}

fn log_since(path: &std::path::Path, offset: u64) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(bytes.get(offset as usize..).unwrap_or_default()).into_owned()
}

/// Halts the container: SIGRTMIN+3 to its init, waits, then kills.
pub fn stop(c: &Container) -> Result<()> {
    let Some(pid) = c.nspawn_pid() else {
        clear_run_records(c)?;
        say!("{}: not running", c.name());
        return Ok(());
    };
    let killed = c.ctx.runner.stop(c, pid)?;
    let how = if killed {
        "killed (it did not halt in time)"
    } else {
        "halted"
    };
    clear_run_records(c)?;
    say!("{}: {how}", c.name());
    Ok(())
}

fn clear_run_records(c: &Container) -> Result<()> {
    files::remove(&c.run_file(STARTED_CONF))?;
    files::remove(&c.run_file(PID_FILE))
}

/// PATH inside: NixOS's, then the usual places.
fn inner_path(c: &Container) -> String {
    let sys = c.ctx.roots.inner_profiles().join("system/sw/bin");
    format!(
        "/run/wrappers/bin:/run/current-system/sw/bin:{}:/usr/bin:/bin",
        sys.display()
    )
}

/// Runs `cmd` in every namespace of the container's init, with a clean
/// environment, as `nixos-container run` does.
pub fn run_inside(c: &Container, leader: i32, cmd: &[String]) -> Result<ExitStatus> {
    let mut command = Command::new("nsenter");
    command
        .args(["--target", &leader.to_string(), "--all", "--"])
        .args(cmd)
        .env_clear()
        .env("PATH", inner_path(c))
        .env("HOME", "/root")
        .env("container", "systemd-nspawn");
    if let Ok(t) = std::env::var("TERM") {
        command.env("TERM", t);
    }
    command
        .stdin(Stdio::inherit())
        .status()
        .map_err(|source| CliError::Spawn {
            what: "nsenter".into(),
            source,
        })
}

pub fn run(c: &Container, cmd: &[String]) -> Result<u8> {
    if cmd.is_empty() {
        return Err(CliError::Usage(
            "run: no command given (nix-container run NAME -- CMD…)".into(),
        ));
    }
    let leader = c.require_leader()?;
    let st = run_inside(c, leader, cmd)?;
    Ok(st.code().map(|c| c as u8).unwrap_or_else(|| {
        128 + std::os::unix::process::ExitStatusExt::signal(&st).unwrap_or(0) as u8
    }))
}

/// Activates the profile's system inside the running container.
pub fn reload(c: &Container) -> Result<()> {
    let leader = c.require_leader()?;
    let system = c.profile_system().ok_or_else(|| {
        failed(format!(
            "container '{}': its profile points at no system",
            c.name()
        ))
    })?;
    let switch = format!("{system}/bin/switch-to-configuration");
    let st = run_inside(c, leader, &[switch, "test".into()])?;
    if !st.success() {
        return Err(failed(format!(
            "container '{}': {system}/bin/switch-to-configuration test failed ({st})",
            c.name()
        )));
    }
    say!("{}: reloaded {system} (init {leader} kept)", c.name());
    Ok(())
}

#[derive(Serialize)]
struct Applied {
    name: String,
    #[serde(flatten)]
    decision: Decision,
    error: Option<String>,
}

/// "reload (system changed: …)".
fn said(d: &Decision) -> String {
    let verb = serde_json::to_value(d.action).ok();
    let verb = verb.as_ref().and_then(|v| v.as_str()).unwrap_or("?");
    format!("{verb} ({})", d.reason)
}

fn facts_decision(c: &Container) -> Result<Decision> {
    let leader = c.leader();
    let conf = c.conf()?.map(|(_, c)| c);
    let started = c.started_conf()?;
    let running_system = leader.and_then(procs::running_system);
    let profile_system = c.profile_system();
    Ok(decide(&Facts {
        running: leader.is_some(),
        conf: conf.as_ref(),
        started_conf: started.as_ref(),
        running_system: running_system.as_deref(),
        profile_system: profile_system.as_deref(),
    }))
}

fn apply_one(c: &Container, dry_run: bool) -> Result<Decision> {
    let d = facts_decision(c)?;
    if !dry_run {
        match d.action {
            Action::Nothing => {}
            Action::Start => start(c)?,
            Action::Reload => reload(c)?,
            Action::Restart => {
                stop(c)?;
                start(c)?;
            }
            Action::Stop => stop(c)?,
        }
    }
    Ok(d)
}

/// The hook: does what each container's last change needs.
pub fn apply(ctx: &Ctx, names: &[String], dry_run: bool, json: bool) -> Result<()> {
    JSON_OUTPUT.store(json, std::sync::atomic::Ordering::Relaxed);
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
                None => println!(
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

/// The container's profile directory and its lock.
fn lock(c: &Container) -> Result<(ProfileDir, ProfileLock)> {
    let Some(p) = c.profile_dir()? else {
        return Err(failed(format!(
            "container '{}' has no profile directory '{}'",
            c.name(),
            c.layout.profile_dir.display()
        )));
    };
    let lock = p.lock(c.ctx.lock_timeout)?;
    // Under the lock no live writer owns a temporary: what is there was
    // left by one that was killed.
    p.remove_stale_temps()?;
    Ok((p, lock))
}

/// Switches the profile (to `to`, or the previous generation), then applies.
pub fn rollback(c: &Container, to: Option<u64>) -> Result<()> {
    let (from, n) = {
        let (p, _lock) = lock(c)?;
        let numbers: Vec<u64> = p.list()?.iter().map(|g| g.number).collect();
        let cur = p.current()?;
        let n = switch_target(&numbers, cur, to)
            .map_err(|e| failed(format!("container '{}': {e}", c.name())))?;
        p.switch_to(n)?;
        (cur, n)
    };
    say!(
        "{}: switched from generation {} to {n}",
        c.name(),
        from.map(|f| f.to_string()).unwrap_or_else(|| "-".into())
    );
    if c.leader().is_some() {
        let d = apply_one(c, false)?;
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

pub fn delete_generations(c: &Container, spec: &[String], dry_run: bool) -> Result<()> {
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
    for n in doomed {
        if dry_run {
            say!("{}: would remove generation {n}", c.name());
        } else {
            p.delete(n)?;
            say!("{}: removed generation {n}", c.name());
        }
    }
    Ok(())
}

/// Mount points at or below `dir` (e.g. a bind mount of a container that is
/// still up): removing files below them would reach outside the roots.
fn mounts_below(dir: &std::path::Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == prefix || m.starts_with(&format!("{prefix}/")))
        .map(String::from)
        .collect()
}

pub fn destroy(c: &Container) -> Result<()> {
    stop(c)?;
    if c.nspawn_pid().is_some() {
        return Err(failed(format!(
            "container '{}' is still running; not destroying it",
            c.name()
        )));
    }
    let mounts = mounts_below(&c.layout.root);
    if !mounts.is_empty() {
        return Err(failed(format!(
            "container '{}': refusing to destroy while something is mounted in its root: {}",
            c.name(),
            mounts.join(", ")
        )));
    }
    // Everything is below a configured root; remove_dir_all does not follow
    // symlinks (a planted one is removed as a link). The conf file goes last,
    // so that an interrupted destroy still lists the container and can be run again.
    let l = &c.layout;
    if c.profile_dir()?.is_some() {
        let (p, _lock) = lock(c)?;
        for g in p.list()? {
            p.delete(g.number)?;
        }
        p.dir.unlink(&p.name)?;
    }
    for dir in [&l.root, &l.profile_dir, &l.gcroots_dir, &l.run_dir] {
        remove_tree(dir)?;
    }
    files::remove(&l.config_file)?;
    say!("{}: destroyed", c.name());
    Ok(())
}

fn remove_tree(p: &std::path::Path) -> Result<()> {
    match std::fs::symlink_metadata(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(failed(format!("cannot stat '{}': {e}", p.display()))),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p)
            .map_err(|e| failed(format!("cannot remove '{}': {e}", p.display()))),
        Ok(_) => files::remove(p),
    }
}

//! Starting, stopping and looking at containers. Every decision here reads
//! one probe of the container's state (state.rs).

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::Serialize;

use crate::container::{Container, Ctx};
use crate::error::{failed, CliError, Result};
use crate::identity::Process;
use crate::output::{paint, print_json, Color};
use crate::runner::{wait_until, Runner};
use crate::state::{Probe, Readiness, State};
use crate::{network, say};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub name: String,
    pub state: State,
    /// systemd's own view inside (`systemctl is-system-running`), when its
    /// init is systemd and it runs.
    pub inside: Option<String>,
    /// How it says it is ready (by its system).
    pub readiness: Option<Readiness>,
    /// The last STATUS= its init sent (direct runner).
    pub status_text: Option<String>,
    pub generation: Option<u64>,
    pub system: Option<String>,
    /// The system the host booted or last activated in it (its record).
    pub running_system: Option<String>,
    /// The running system is not the one the profile points at.
    pub system_differs: bool,
    /// Conf keys changed since it started (a restart applies them).
    pub conf_changed: Vec<String>,
    /// Started by this tool (or its units): only then does it act on it.
    pub managed: bool,
    pub auto_start: bool,
    pub nspawn_pid: Option<i32>,
    pub leader: Option<i32>,
    pub runner: &'static str,
    pub unit: String,
    pub root: String,
    pub config_file: String,
    pub profile: String,
    pub console_log: String,
}

/// Everything known of `c`, from one probe (and, with `inside`, systemd's
/// view inside).
pub fn status_of(c: &Container, inside: bool) -> Result<Status> {
    let mut probe = Probe::of(c);
    let said_inside = if inside { probe.inside(c) } else { None };
    let system = c.profile_system();
    let ours = probe.nspawn.is_some();
    let running_system = if ours { c.active_system() } else { None };
    let conf = c.conf()?;
    let conf_changed = match (ours, &conf, c.started_conf()?) {
        (true, Some((_, now)), Some(then)) => ncp_core::decide::changed_keys(&then, now),
        _ => Vec::new(),
    };
    let d = |p: &Path| p.display().to_string();
    let records = c.records();
    Ok(Status {
        name: c.name().into(),
        state: probe.state,
        inside: said_inside,
        readiness: running_system
            .as_deref()
            .or(system.as_deref())
            .map(Readiness::of),
        status_text: if ours { records.status_text() } else { None },
        managed: ours,
        generation: c.generation()?,
        system_differs: probe.leader.is_some()
            && running_system.is_some()
            && running_system != system,
        system,
        running_system,
        conf_changed,
        auto_start: conf.is_some_and(|(_, c)| c.value("AUTO_START") == "1"),
        nspawn_pid: probe.nspawn.as_ref().map(|p| p.pid).or(probe.foreign),
        leader: probe.leader.as_ref().map(|p| p.pid),
        runner: c.ctx.runner.name(),
        unit: c.ctx.runner.unit(&c.instance()),
        root: d(&c.layout.root),
        config_file: d(&c.layout.config_file),
        profile: d(&c.layout.profile),
        console_log: d(&records.console_log()),
    })
}

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
        .map(|n| status_of(&ctx.container(n)?, true))
        .collect::<Result<Vec<_>>>()?;
    if json {
        return print_json(&all);
    }
    for s in &all {
        println!(
            "{:<12} {:<10} gen {:<4} {}{}",
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

/// nixos-container's words, "up" (ready, or run by another tool) and
/// "down"; the states between are named: "starting", "stopping". Coloured
/// on a terminal.
fn state_word(state: State) -> String {
    match state {
        State::Running | State::Degraded | State::Foreign => paint("up", Color::Green),
        State::Stopped => paint("down", Color::Yellow),
        State::Starting | State::Stopping => paint(state.word(), Color::Yellow),
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
    let s = status_of(&c, long || json)?;

    if json {
        print_json(&s)?;
    } else if !long {
        println!("{}", state_word(s.state));
    } else {
        println!("{}: {}", s.name, state_word(s.state));
        println!(
            "  state:          {}{}",
            s.state.word(),
            s.inside
                .as_deref()
                .map(|i| format!(" (systemd inside: {i})"))
                .unwrap_or_default()
        );
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
        if let Some(r) = s.readiness {
            println!(
                "  ready when:     {}",
                match r {
                    Readiness::Notify => "its systemd says READY=1",
                    Readiness::Init => "its init has run for 0.2 s (it does not notify)",
                }
            );
        }
        if let Some(t) = &s.status_text {
            println!("  status:         {t}");
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

/// Starts the container and returns when it is ready (state.rs: READY=1
/// from its systemd, or its init running), bounded by the start timeout.
/// A start that fails or times out says which, shows what the console
/// got, and leaves nothing running.
pub fn start(c: &Container) -> Result<()> {
    let probe = Probe::of(c);
    match probe.state {
        State::Running | State::Degraded => {
            say!("{}: already running", c.name());
            return Ok(());
        }
        State::Foreign => {
            say!(
                "{}: already running, started by another tool (systemd-nspawn {}); left alone",
                c.name(),
                probe.foreign.unwrap_or(0)
            );
            return Ok(());
        }
        State::Starting => {
            // Another start is under way: wait for the same readiness.
            let nspawn = probe
                .nspawn
                .ok_or_else(|| failed("lost its systemd-nspawn"))?;
            say!(
                "{}: starting (systemd-nspawn {}); waiting until it is ready",
                c.name(),
                nspawn.pid
            );
            let system = c.active_system().or_else(|| c.profile_system());
            let readiness = system.as_deref().map_or(Readiness::Init, Readiness::of);
            let log_from = LogMark::now(c);
            return match wait_ready(c, &nspawn, None, readiness, None, false) {
                Ok(leader) => {
                    say!("{}: started (init {})", c.name(), leader.pid);
                    Ok(())
                }
                Err(why) => Err(give_up(c, Some(&nspawn), &why, &log_from)),
            };
        }
        State::Stopping => {
            let gone = wait_until(c.ctx.stop_timeout, || Probe::of(c).state == State::Stopped);
            if !gone {
                return Err(failed(format!(
                    "container '{}' is still stopping after {}s",
                    c.name(),
                    c.ctx.stop_timeout.as_secs()
                )));
            }
        }
        State::Stopped => {}
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
    if !Path::new(&system).join("init").is_file() {
        return Err(failed(format!(
            "container '{}': '{system}' has no init",
            c.name()
        )));
    }
    let readiness = Readiness::of(&system);
    let records = c.records();
    records.clear_readiness()?;
    records.save_started_conf(&text)?;
    records.save_active_system(&system)?;
    let log_from = LogMark::now(c);
    let spawned = match c
        .ctx
        .runner
        .spawn(&c.instance(), &conf, readiness, c.ctx.start_timeout)
    {
        Ok(s) => s,
        Err(e) => {
            let nspawn = Probe::of(c).nspawn;
            return Err(give_up(c, nspawn.as_ref(), &e.to_string(), &log_from));
        }
    };
    let nspawn = match spawned.nspawn.or_else(|| unit_nspawn(c)) {
        Some(n) => n,
        None => {
            return Err(give_up(c, None, "systemd-nspawn is not running", &log_from));
        }
    };
    let network = c.ctx.runner.configures_network().then_some(&conf);
    match wait_ready(c, &nspawn, spawned.ready, readiness, network, true) {
        Ok(leader) => {
            say!("{}: started (init {}, {system})", c.name(), leader.pid);
            Ok(())
        }
        Err(why) => Err(give_up(c, Some(&nspawn), &why, &log_from)),
    }
}

/// The systemd-nspawn of a unit systemd has just started: a Type=exec
/// unit's main process is this program until it execs systemd-nspawn.
fn unit_nspawn(c: &Container) -> Option<Process> {
    let mut found = None;
    wait_until(c.ctx.start_timeout, || {
        let v = c.ctx.runner.view(&c.instance());
        let gone = v.phase == Some(crate::runner::UnitPhase::Inactive);
        found = v.nspawn;
        found.is_some() || gone
    });
    found
}

/// Where the console log was when a start began (its file and length).
struct LogMark {
    ino: u64,
    len: u64,
}

impl LogMark {
    fn now(c: &Container) -> LogMark {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(c.records().console_log()).ok();
        LogMark {
            ino: m.as_ref().map_or(0, |m| m.ino()),
            len: m.as_ref().map_or(0, |m| m.len()),
        }
    }

    /// What the console got since (its last 64 KiB at most).
    fn since(&self, c: &Container) -> String {
        use std::os::unix::fs::MetadataExt;
        let records = c.records();
        let path = records.console_log();
        let m = std::fs::metadata(&path).ok();
        let rotated = m.as_ref().map_or(0, |m| m.ino()) != self.ino;
        let len = m.as_ref().map_or(0, |m| m.len());
        let from = if rotated { 0 } else { self.len.min(len) };
        let from = from.max(len.saturating_sub(64 * 1024));
        String::from_utf8_lossy(&crate::monitor::read_from(&path, from, len - from)).into_owned()
    }
}

/// The last lines of a text.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A start that did not come up: kills what runs of it, forgets the run,
/// and says why with the tail of the console (under systemd, its unit's
/// journal has it).
fn give_up(c: &Container, nspawn: Option<&Process>, why: &str, log: &LogMark) -> CliError {
    if let Some(n) = nspawn.filter(|n| n.alive()) {
        let _ = c.ctx.runner.terminate(&c.instance(), n);
    }
    let _ = c.records().clear();
    let console = last_lines(&log.since(c), 40);
    let console = if console.trim().is_empty() {
        match c.ctx.runner {
            Runner::Direct => "(nothing)".to_owned(),
            Runner::Systemd { .. } => {
                format!("see `journalctl -u {}`", c.ctx.runner.unit(&c.instance()))
            }
        }
    } else {
        console
    };
    failed(format!(
        "container '{}' did not start: {why}; console log {}:\n{console}",
        c.name(),
        c.records().console_log().display(),
    ))
}

/// How long an init that does not notify must have run to count as ready:
/// one that fails at once fails the start instead.
pub const INIT_SETTLE: Duration = Duration::from_millis(200);

/// Waits until the container is ready, bounded by the start timeout:
/// returns its init, or why not. `ready` is the monitor's pipe (readable
/// at READY=1); without it (another start waits, or systemd started it)
/// the records and the unit tell. With `network` (a fresh start whose
/// private network this tool sets up), the addresses are given as soon as
/// the init runs, before its services start, as NixOS's init wrapper does.
/// `unit_started`: this start's own `systemctl start` (or systemd-run) has
/// returned, so a Type=notify unit is active already.
fn wait_ready(
    c: &Container,
    nspawn: &Process,
    ready: Option<OwnedFd>,
    readiness: Readiness,
    network: Option<&ncp_core::conf::Conf>,
    unit_started: bool,
) -> std::result::Result<Process, String> {
    let timeout = c.ctx.start_timeout;
    let deadline = Instant::now() + timeout;
    let records = c.records();
    let mut ready = ready.map(std::fs::File::from);
    let mut leader: Option<Process> = None;
    let mut leader_since = Instant::now();
    let by_systemd = matches!(c.ctx.runner, Runner::Systemd { .. });
    loop {
        if !nspawn.alive() {
            return Err("systemd-nspawn exited".into());
        }
        if leader.is_none() {
            leader = nspawn.leader();
            leader_since = Instant::now();
            if let (Some(l), Some(conf)) = (&leader, network) {
                network::configure(c, conf, l).map_err(|e| e.to_string())?;
            }
        }
        if let Some(l) = &leader {
            let is_ready = match readiness {
                // This start's job (Type=notify) returned: active. A start
                // that joins another asks systemd.
                _ if by_systemd => unit_started || Probe::of(c).state.up(),
                // It never notifies: it runs, and has not failed at once.
                Readiness::Init => leader_since.elapsed() >= INIT_SETTLE && l.alive(),
                Readiness::Notify => records.ready(),
            };
            if is_ready {
                if !by_systemd && readiness == Readiness::Init {
                    records.mark_ready().map_err(|e| e.to_string())?;
                }
                return l.duplicate().ok_or_else(|| "its init exited".to_owned());
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(match (&leader, readiness) {
                (None, _) => format!("its init did not start within {}s", timeout.as_secs()),
                (Some(_), _) => format!(
                    "not ready within {}s (its systemd never said READY=1)",
                    timeout.as_secs()
                ),
            });
        }
        // Until the init runs, look often (that is when the network is set
        // up); then sleep on the monitor's pipe, which wakes us at READY=1.
        let slice = if leader.is_none() || readiness == Readiness::Init {
            Duration::from_millis(2)
        } else {
            Duration::from_millis(100)
        }
        .min(deadline - now);
        match &mut ready {
            Some(f) if leader.is_some() => {
                let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
                let ms = u16::try_from(slice.as_millis()).unwrap_or(u16::MAX);
                if let Ok(n) = poll(&mut fds, PollTimeout::from(ms)) {
                    if n > 0 {
                        // A byte: READY=1 (recorded). EOF: the monitor ended.
                        let mut b = [0u8; 1];
                        if !matches!(f.read(&mut b), Ok(1)) {
                            ready = None;
                        }
                    }
                }
            }
            _ => std::thread::sleep(slice),
        }
    }
}

/// Halts the container: SIGRTMIN+3 to its init, at most the stop timeout,
/// then SIGKILL; says what it did.
pub fn stop(c: &Container) -> Result<()> {
    let probe = Probe::of(c);
    if probe.state == State::Foreign {
        return Err(failed(format!(
            "container '{}' was not started by nix-container (systemd-nspawn {}); \
             stop it with the tool that started it",
            c.name(),
            probe.foreign.unwrap_or(0)
        )));
    }
    let Some(nspawn) = probe.nspawn else {
        c.records().clear()?;
        say!("{}: not running", c.name());
        return Ok(());
    };
    let grace = c.ctx.stop_timeout;
    match c.ctx.runner {
        Runner::Direct => say!(
            "{}: asking its init to halt (SIGRTMIN+3); SIGKILL after {}s",
            c.name(),
            grace.as_secs()
        ),
        Runner::Systemd { .. } => say!(
            "{}: stopping {} (its init gets SIGRTMIN+3); SIGKILL after {}s",
            c.name(),
            c.ctx.runner.unit(&c.instance()),
            grace.as_secs()
        ),
    }
    c.records().mark_stopping()?;
    let s = c.ctx.runner.stop(&c.instance(), &nspawn, grace)?;
    c.records().clear()?;
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
    let Some(nspawn) = Probe::of(c).nspawn else {
        c.records().clear()?;
        say!("{}: not running", c.name());
        return Ok(());
    };
    let t = Instant::now();
    c.records().mark_stopping()?;
    c.ctx.runner.terminate(&c.instance(), &nspawn)?;
    c.records().clear()?;
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
    wait_until(Duration::from_secs(5), || Probe::of(c).nspawn.is_none());
    start(c)
}

/// In a unit's ExecStart: becomes systemd-nspawn (returns only an error).
pub fn exec_nspawn(c: &Container) -> crate::error::CliError {
    let conf = match c.conf() {
        Ok(Some((text, conf))) => {
            // What it started with, and the system the unit boots.
            if let Err(e) = c.records().save_started_conf(&text) {
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
    crate::runner::exec_nspawn(&c.instance(), &conf)
}

/// In a unit's ExecStartPost: the private network, as NixOS's unit sets it up.
pub fn network_up(c: &Container) -> Result<()> {
    let (_, conf) = c
        .conf()?
        .ok_or_else(|| failed(format!("container '{}' has no conf file", c.name())))?;
    let leader = crate::commands::inside::require_leader(c)?;
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

//! Who runs systemd-nspawn: systemd (container@NAME.service, when systemd is
//! PID 1 and the unit exists for the default roots) or this tool itself
//! (detached, with a record of the process and a console log under the run
//! directory), so that the same commands work on NixOS, on a plain Debian
//! host and in CI. Either way the process is held by a pidfd and proved to
//! be the container's before it is signalled (identity.rs).

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ncp_core::conf::Conf;
use ncp_core::layout::{
    Layout, Roots, LEGACY_CONFIG_DIR, LEGACY_STATE_DIR, MODERN_CONFIG_DIR, MODERN_STATE_DIR,
};
use ncp_core::{nspawn, rootfs};

use crate::error::{failed, CliError, Result};
use crate::identity::Process;
use crate::readiness::Readiness;
use crate::records::Records;

/// One container as the runner needs it: its paths and where its records are.
pub struct Instance<'a> {
    pub layout: &'a Layout,
    pub roots: &'a Roots,
}

impl Instance<'_> {
    pub fn name(&self) -> &str {
        &self.layout.name
    }
    pub fn records(&self) -> Records {
        Records::new(&self.roots.run_dir, &self.layout.name)
    }
}

/// What systemd says of a container's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitPhase {
    Activating,
    Active,
    Deactivating,
    Inactive,
}

/// What the runner knows of a container, from one look.
pub struct View {
    /// Its systemd-nspawn, proved.
    pub nspawn: Option<Process>,
    /// Its unit's phase (the systemd runner only).
    pub phase: Option<UnitPhase>,
}

/// A start under way: what the caller waits on.
pub struct Spawned {
    /// The systemd-nspawn this tool started (None: systemd started it).
    pub nspawn: Option<Process>,
    /// Readable once the monitor heard READY=1 (direct runner).
    pub ready: Option<OwnedFd>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunnerChoice {
    Auto,
    Systemd,
    Direct,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    /// systemd runs each container in a unit of its own, so that it outlives
    /// whoever started it (a oneshot unit such as the module's apply unit
    /// is restarted at every change): `container@NAME.service` when a
    /// container@.service serves these roots (NixOS's for the stock roots,
    /// or the one `install-unit` writes, which reads nix.conf), else a
    /// transient `nix-container-NAME.service`.
    Systemd { template: bool },
    /// This tool runs systemd-nspawn itself (no systemd as PID 1).
    Direct,
}

/// The text of the container@.service that `install-unit` writes, for
/// hosts without NixOS's: it runs systemd-nspawn as NixOS's does (the
/// argv the plugin renders), with this CLI as ExecStart.
pub fn unit_file(cli: &Path) -> String {
    let cli = cli.display();
    format!(
        "# Written by `nix-container install-unit`: containers prepared by nix-container-plugin,\n\
         # run by systemd as NixOS's container@.service runs them. Roots from nix.conf.\n\
         [Unit]\n\
         Description=Container '%i' (nix-container-plugin)\n\
         After=network.target\n\
         \n\
         [Service]\n\
         Type=notify\n\
         NotifyAccess=all\n\
         ExecStart={cli} --runner systemd exec-nspawn %i\n\
         ExecStartPost={cli} --runner systemd network-up %i\n\
         ExecReload={cli} --runner systemd reload %i\n\
         KillMode=mixed\n\
         KillSignal=TERM\n\
         Delegate=yes\n\
         Slice=machine.slice\n\
         TimeoutStartSec=1min\n\
         RestartForceExitStatus=133\n\
         SuccessExitStatus=133\n\
         Restart=on-failure\n\
         DevicePolicy=closed\n\
         \n\
         [Install]\n\
         WantedBy=machines.target\n"
    )
}

/// How a stop went.
pub struct Stopped {
    pub after: Duration,
    /// What had to be done beyond asking the init to halt.
    pub escalated: Option<String>,
}

pub fn systemctl(args: &[&str]) -> Result<std::process::Output> {
    Command::new("systemctl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| CliError::Spawn {
            what: "systemctl".into(),
            source,
        })
}

/// `systemctl VERB UNIT`, failing with its message.
fn systemctl_ok(verb: &str, unit: &str) -> Result<()> {
    let o = systemctl(&[verb, unit])?;
    if !o.status.success() {
        return Err(failed(format!(
            "systemctl {verb} {unit} failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(())
}

/// The text of the container@.service systemd loads, read from its unit
/// search path in systemd's order (root-only system directories; reading
/// it costs no `systemctl cat` at every command). None: there is none, or
/// it is masked.
fn container_unit_file() -> Option<String> {
    const DIRS: &[&str] = &[
        "/etc/systemd/system",
        "/run/systemd/system",
        "/usr/local/lib/systemd/system",
        "/usr/lib/systemd/system",
        "/lib/systemd/system",
    ];
    let path = DIRS
        .iter()
        .map(|d| Path::new(d).join("container@.service"))
        .find(|p| p.exists())?;
    let text = std::fs::read_to_string(path).ok()?;
    (text.len() < 1 << 20 && !text.is_empty()).then_some(text)
}

/// SIGRTMIN+3: what systemd-nspawn's --kill-signal and systemd's halt use.
pub fn sigrtmin_plus_3() -> i32 {
    libc::SIGRTMIN() + 3
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes (a process's
/// exit is waited for on its pidfd instead: Process::wait_exit).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether systemd is PID 1 (sd_booted: /run/systemd/system exists).
pub fn systemd_booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

impl Runner {
    /// With systemd as PID 1, systemd runs the containers; elsewhere this
    /// tool does. A container@.service is used when it is NixOS's and the
    /// roots are the stock ones, or when it is ours (which reads nix.conf).
    pub fn detect(choice: RunnerChoice, roots: &Roots) -> Runner {
        let systemd = match choice {
            RunnerChoice::Systemd => true,
            RunnerChoice::Direct => false,
            RunnerChoice::Auto => systemd_booted(),
        };
        if !systemd {
            return Runner::Direct;
        }
        let stock = [
            (MODERN_STATE_DIR, MODERN_CONFIG_DIR),
            (LEGACY_STATE_DIR, LEGACY_CONFIG_DIR),
        ]
        .iter()
        .any(|(s, c)| roots.state_dir == Path::new(s) && roots.config_dir == Path::new(c));
        let template = match container_unit_file() {
            Some(text) => text.contains(" exec-nspawn %i") || stock,
            None => false,
        };
        Runner::Systemd { template }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Runner::Systemd { template: true } => "systemd (container@.service)",
            Runner::Systemd { template: false } => "systemd (transient unit)",
            Runner::Direct => "direct",
        }
    }

    /// The unit systemd runs container `name` in.
    pub fn unit(&self, c: &Instance) -> String {
        match self {
            Runner::Systemd { template: false } => format!("nix-container-{}.service", c.name()),
            _ => c.layout.unit.clone(),
        }
    }

    /// One look at a container: its systemd-nspawn, proved to be it (named
    /// by systemd, or the very process this tool recorded when it started
    /// it; root-owned, and running machine `NAME`), and its unit's phase.
    pub fn view(&self, c: &Instance) -> View {
        let (p, phase) = match self {
            Runner::Systemd { .. } => {
                let Ok(o) =
                    systemctl(&["show", "-p", "MainPID", "-p", "ActiveState", &self.unit(c)])
                else {
                    return View {
                        nspawn: None,
                        phase: None,
                    };
                };
                let text = String::from_utf8_lossy(&o.stdout).into_owned();
                let prop = |k: &str| {
                    text.lines()
                        .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                        .unwrap_or("")
                        .to_owned()
                };
                let phase = match prop("ActiveState").as_str() {
                    "activating" => UnitPhase::Activating,
                    "active" | "reloading" => UnitPhase::Active,
                    "deactivating" => UnitPhase::Deactivating,
                    _ => UnitPhase::Inactive,
                };
                let pid: i32 = prop("MainPID").parse().unwrap_or(0);
                (Process::trusted(pid), Some(phase))
            }
            Runner::Direct => (
                c.records().nspawn().and_then(|r| Process::from_record(&r)),
                None,
            ),
        };
        let nspawn = p.filter(|p| {
            let argv = p.cmdline();
            argv.first().is_some_and(|a| a.ends_with(nspawn::PROGRAM))
                && argv.windows(2).any(|w| w[0] == "-M" && w[1] == c.name())
        });
        View { nspawn, phase }
    }

    /// Starts systemd-nspawn for `c` (the caller saved the conf it starts
    /// with). With systemd, returns once the unit's start job is done
    /// (Type=notify: at READY=1).
    pub fn spawn(
        &self,
        c: &Instance,
        conf: &Conf,
        readiness: Readiness,
        timeout: Duration,
    ) -> Result<Spawned> {
        let by_systemd = Spawned {
            nspawn: None,
            ready: None,
        };
        match self {
            Runner::Systemd { template: true } => {
                systemctl_ok("start", &self.unit(c)).map(|()| by_systemd)
            }
            Runner::Systemd { template: false } => {
                spawn_transient(c, &self.unit(c), readiness, timeout).map(|()| by_systemd)
            }
            Runner::Direct => spawn_direct(c, conf),
        }
    }

    /// Whether this tool sets up a private network itself once the init
    /// runs (NixOS's unit and ours do it in the unit).
    pub fn configures_network(&self) -> bool {
        !matches!(self, Runner::Systemd { template: true })
    }

    /// Halts the container: SIGRTMIN+3 to its init (systemd-nspawn turns
    /// systemd's SIGTERM into it), at most `grace`, then SIGKILL.
    pub fn stop(&self, c: &Instance, nspawn: &Process, grace: Duration) -> Result<Stopped> {
        match self {
            Runner::Systemd { .. } => stop_unit(c, &self.unit(c), nspawn, grace),
            Runner::Direct => stop_direct(c, nspawn, grace),
        }
    }

    /// Kills the container at once: SIGKILL to its init (the kernel then
    /// kills everything in its PID namespace) and to systemd-nspawn.
    pub fn terminate(&self, c: &Instance, nspawn: &Process) -> Result<()> {
        match self {
            Runner::Systemd { .. } => {
                let o = systemctl(&["kill", "--signal=SIGKILL", &self.unit(c)])?;
                if !o.status.success() {
                    return Err(failed(String::from_utf8_lossy(&o.stderr).trim().to_owned()));
                }
            }
            Runner::Direct => {
                if let Some(l) = nspawn.leader() {
                    let _ = l.signal(libc::SIGKILL);
                }
                let _ = nspawn.signal(libc::SIGKILL);
            }
        }
        if !nspawn.wait_exit(Duration::from_secs(10)) {
            return Err(failed(format!(
                "container '{}': systemd-nspawn {} survived SIGKILL",
                c.name(),
                nspawn.pid
            )));
        }
        Ok(())
    }
}

/// The flags that give this program, run again (in a unit, as the
/// monitor), the roots this one uses (its environment has none of ours).
pub fn root_flags(r: &Roots) -> Vec<String> {
    r.by_setting()
        .into_iter()
        .chain([
            ("store-dir", r.store_dir.as_path()),
            ("nix-state-dir", r.nix_state_dir.as_path()),
        ])
        .map(|(k, p)| format!("--{k}={}", p.display()))
        .collect()
}

/// A transient unit of its own, as NixOS's container@.service is set up:
/// Type=notify for a system that notifies, else Type=exec (an init that
/// never says READY=1 would time out).
fn spawn_transient(
    c: &Instance,
    unit: &str,
    readiness: Readiness,
    timeout: Duration,
) -> Result<()> {
    let cli =
        std::env::current_exe().map_err(|e| failed(format!("cannot find this program: {e}")))?;
    let mut cmd = Command::new("systemd-run");
    cmd.arg(format!("--unit={unit}"))
        .arg(format!(
            "--description=Container '{}' (nix-container-plugin)",
            c.name()
        ))
        .arg(match readiness {
            Readiness::Notify => "--service-type=notify",
            Readiness::Init => "--service-type=exec",
        })
        .args(["--collect", "--quiet"])
        .args([
            "--property=NotifyAccess=all",
            "--property=KillMode=mixed",
            "--property=KillSignal=TERM",
            "--property=Delegate=yes",
            "--property=Slice=machine.slice",
            "--property=DevicePolicy=closed",
        ])
        .arg(format!(
            "--property=TimeoutStartSec={}",
            timeout.as_secs().max(1)
        ))
        .arg("--")
        .arg(cli)
        .args(root_flags(c.roots))
        .args(["--runner", "systemd", "exec-nspawn", c.name()])
        .stdin(Stdio::null());
    let o = cmd.output().map_err(|source| CliError::Spawn {
        what: "systemd-run".into(),
        source,
    })?;
    if !o.status.success() {
        return Err(failed(format!(
            "systemd-run --unit={unit} failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    Ok(())
}

/// `systemctl stop`, but bounded: after `grace`, SIGKILL to the unit.
fn stop_unit(c: &Instance, unit: &str, nspawn: &Process, grace: Duration) -> Result<Stopped> {
    let start = Instant::now();
    let o = systemctl(&["stop", "--no-block", unit])?;
    if !o.status.success() {
        return Err(failed(format!(
            "systemctl stop {unit} failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    if nspawn.wait_exit(grace) {
        return Ok(Stopped {
            after: start.elapsed(),
            escalated: None,
        });
    }
    let _ = systemctl(&["kill", "--signal=SIGKILL", unit]);
    if !nspawn.wait_exit(Duration::from_secs(10)) {
        return Err(failed(format!(
            "container '{}': {unit} survived SIGKILL",
            c.name()
        )));
    }
    Ok(Stopped {
        after: start.elapsed(),
        escalated: Some(format!(
            "it did not halt within {}s: sent SIGKILL to {unit}",
            grace.as_secs()
        )),
    })
}

fn stop_direct(c: &Instance, nspawn: &Process, grace: Duration) -> Result<Stopped> {
    let start = Instant::now();
    // Asked again every 250 ms: an init that has not yet installed its
    // handler ignores the signal (it is PID 1 of its namespace). Every
    // signal goes to the proved process through its pidfd.
    let deadline = start + grace;
    let halted = loop {
        let _ = match nspawn.leader() {
            Some(l) => l.signal(sigrtmin_plus_3()),
            None => nspawn.signal(libc::SIGTERM),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if nspawn.wait_exit(left.min(Duration::from_millis(250))) {
            break true;
        }
        if left.is_zero() {
            break false;
        }
    };
    if halted {
        return Ok(Stopped {
            after: start.elapsed(),
            escalated: None,
        });
    }
    let mut what = format!(
        "its init did not halt within {}s: sent SIGKILL to it",
        grace.as_secs()
    );
    if let Some(l) = nspawn.leader() {
        let _ = l.signal(libc::SIGKILL);
    }
    if !nspawn.wait_exit(Duration::from_secs(5)) {
        let _ = nspawn.signal(libc::SIGKILL);
        what.push_str(" and to systemd-nspawn");
        if !nspawn.wait_exit(Duration::from_secs(5)) {
            return Err(failed(format!(
                "container '{}': systemd-nspawn {} survived SIGKILL",
                c.name(),
                nspawn.pid
            )));
        }
    }
    Ok(Stopped {
        after: start.elapsed(),
        escalated: Some(what),
    })
}

/// What container@.service's start script does before systemd-nspawn: the
/// root prepared as it prepares it, the per-container profile and GC-root
/// directories (a container made by nixos-container has only its profile),
/// and Nix's daemon socket directory (the argv binds it, as NixOS does; a
/// host without nix-daemon may lack it).
pub fn prepare(c: &Instance, conf: &Conf) -> Result<()> {
    let roots = c.roots;
    rootfs::prepare(roots, c.layout, conf.value("COPY_RESOLV_CONF") == "1")?;
    rootfs::prepare_nix_dirs(roots, c.layout)?;
    let sock = roots.nix_state_dir.join("daemon-socket");
    std::fs::create_dir_all(&sock)
        .map_err(|e| failed(format!("cannot create '{}': {e}", sock.display())))
}

/// In a unit (ExecStart): prepares the root and becomes systemd-nspawn with
/// the argv the conf renders to. Only returns on error.
pub fn exec_nspawn(c: &Instance, conf: &Conf) -> CliError {
    if let Err(e) = prepare(c, conf) {
        return e;
    }
    let argv = nspawn::argv(conf, c.roots, c.layout);
    let e = Command::new(&argv[0])
        .args(&argv[1..])
        .envs(nspawn::ENV.iter().copied())
        .exec();
    CliError::Spawn {
        what: argv[0].clone(),
        source: e,
    }
}

/// systemd-nspawn with the argv the conf renders to, detached from us, its
/// console kept and its READY=1 heard by the monitor (monitor.rs).
fn spawn_direct(c: &Instance, conf: &Conf) -> Result<Spawned> {
    prepare(c, conf)?;
    let records = c.records();
    let monitor = crate::monitor::start(&records, &root_flags(c.roots), c.name())?;
    let argv = nspawn::argv(conf, c.roots, c.layout);
    let out = monitor
        .console
        .try_clone()
        .map_err(|e| failed(format!("dup: {e}")))?;
    // Its own cgroup: see cgroup.rs.
    let groups = crate::cgroup::prepare(c.name())?;
    let mut cmd = Command::new(&argv[0]);
    // SAFETY: between fork and exec only open, write and close (cgroup::join).
    unsafe {
        cmd.pre_exec(move || crate::cgroup::join(&groups));
    }
    // No machined without systemd as PID 1: do not register.
    let child = cmd
        .arg("--register=no")
        .args(&argv[1..])
        .envs(nspawn::ENV.iter().copied())
        .env("NOTIFY_SOCKET", records.notify_socket())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(monitor.console)
        .process_group(0)
        .spawn()
        .map_err(|source| CliError::Spawn {
            what: argv[0].clone(),
            source,
        })?;
    let p = Process::child(child.id() as i32).ok_or_else(|| {
        failed(format!(
            "systemd-nspawn exited at once; see {}",
            records.console_log().display()
        ))
    })?;
    records.save_nspawn(&p.record())?;
    Ok(Spawned {
        nspawn: Some(p),
        ready: Some(monitor.ready),
    })
}

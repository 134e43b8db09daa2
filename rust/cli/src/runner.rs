//! Who runs systemd-nspawn: systemd (container@NAME.service, when systemd is
//! PID 1 and the unit exists for the default roots) or this tool itself
//! (detached, with a record of the process and a console log under the run
//! directory), so that the same commands work on NixOS, on a plain Debian
//! host and in CI. Either way the process is held by a pidfd and proved to
//! be the container's before it is signalled (identity.rs).

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ncp_core::conf::Conf;
use ncp_core::fsutil::{Contents, Dir};
use ncp_core::layout::{
    Roots, LEGACY_CONFIG_DIR, LEGACY_STATE_DIR, MODERN_CONFIG_DIR, MODERN_STATE_DIR, NSPAWN_RECORD,
};
use ncp_core::{nspawn, rootfs};

use crate::container::Container;
use crate::error::{failed, CliError, Result};
use crate::identity::{Process, Record};

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

/// SIGRTMIN+3: what systemd-nspawn's --kill-signal and systemd's halt use.
pub fn sigrtmin_plus_3() -> i32 {
    libc::SIGRTMIN() + 3
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
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
        let template = match systemctl(&["cat", "container@.service"]) {
            Ok(o) if o.status.success() => {
                let ours = String::from_utf8_lossy(&o.stdout).contains(" exec-nspawn %i");
                ours || stock
            }
            _ => false,
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
    pub fn unit(&self, c: &Container) -> String {
        match self {
            Runner::Systemd { template: false } => format!("nix-container-{}.service", c.name()),
            _ => c.layout.unit.clone(),
        }
    }

    /// The systemd-nspawn of a running container, proved to be it: named by
    /// systemd, or the very process this tool recorded when it started it;
    /// root-owned, and running machine `NAME`.
    pub fn nspawn(&self, c: &Container) -> Option<Process> {
        let p = match self {
            Runner::Systemd { .. } => {
                let o = systemctl(&["show", "-p", "MainPID", "--value", &self.unit(c)]).ok()?;
                let pid: i32 = String::from_utf8_lossy(&o.stdout).trim().parse().ok()?;
                Process::trusted(pid)?
            }
            Runner::Direct => Process::from_record(&read_record(c)?)?,
        };
        let argv = p.cmdline();
        let is_nspawn = argv.first().is_some_and(|a| a.ends_with(nspawn::PROGRAM))
            && argv.windows(2).any(|w| w[0] == "-M" && w[1] == c.name());
        is_nspawn.then_some(p)
    }

    /// Starts systemd-nspawn for `c` (the caller saved the conf it starts
    /// with); returns the process when it is ours.
    pub fn spawn(&self, c: &Container, conf: &Conf) -> Result<Option<Process>> {
        match self {
            Runner::Systemd { template: true } => {
                systemctl_ok("start", &self.unit(c)).map(|()| None)
            }
            Runner::Systemd { template: false } => spawn_transient(c, &self.unit(c)).map(|()| None),
            Runner::Direct => spawn_direct(c, conf).map(Some),
        }
    }

    /// Whether this tool sets up a private network itself once the init
    /// runs (NixOS's unit and ours do it in the unit).
    pub fn configures_network(&self) -> bool {
        !matches!(self, Runner::Systemd { template: true })
    }

    /// Halts the container: SIGRTMIN+3 to its init (systemd-nspawn turns
    /// systemd's SIGTERM into it), at most `grace`, then SIGKILL.
    pub fn stop(&self, c: &Container, nspawn: &Process, grace: Duration) -> Result<Stopped> {
        match self {
            Runner::Systemd { .. } => stop_unit(c, &self.unit(c), nspawn, grace),
            Runner::Direct => stop_direct(c, nspawn, grace),
        }
    }

    /// Kills the container at once: SIGKILL to its init (the kernel then
    /// kills everything in its PID namespace) and to systemd-nspawn.
    pub fn terminate(&self, c: &Container, nspawn: &Process) -> Result<()> {
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
        if !wait_until(Duration::from_secs(10), || !nspawn.alive()) {
            return Err(failed(format!(
                "container '{}': systemd-nspawn {} survived SIGKILL",
                c.name(),
                nspawn.pid
            )));
        }
        Ok(())
    }
}

/// The flags that give the CLI in a unit the roots this one uses (a unit's
/// environment has none of ours).
fn root_flags(c: &Container) -> Vec<String> {
    let r = &c.ctx.roots;
    r.by_setting()
        .into_iter()
        .chain([
            ("store-dir", r.store_dir.as_path()),
            ("nix-state-dir", r.nix_state_dir.as_path()),
        ])
        .map(|(k, p)| format!("--{k}={}", p.display()))
        .collect()
}

/// A transient unit of its own, as NixOS's container@.service is set up.
fn spawn_transient(c: &Container, unit: &str) -> Result<()> {
    let cli =
        std::env::current_exe().map_err(|e| failed(format!("cannot find this program: {e}")))?;
    let mut cmd = Command::new("systemd-run");
    cmd.arg(format!("--unit={unit}"))
        .arg(format!(
            "--description=Container '{}' (nix-container-plugin)",
            c.name()
        ))
        .args(["--service-type=notify", "--collect", "--quiet"])
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
            c.ctx.timeout.as_secs().max(1)
        ))
        .arg("--")
        .arg(cli)
        .args(root_flags(c))
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
fn stop_unit(c: &Container, unit: &str, nspawn: &Process, grace: Duration) -> Result<Stopped> {
    let start = Instant::now();
    let o = systemctl(&["stop", "--no-block", unit])?;
    if !o.status.success() {
        return Err(failed(format!(
            "systemctl stop {unit} failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    if wait_until(grace, || !nspawn.alive()) {
        return Ok(Stopped {
            after: start.elapsed(),
            escalated: None,
        });
    }
    let _ = systemctl(&["kill", "--signal=SIGKILL", unit]);
    if !wait_until(Duration::from_secs(10), || !nspawn.alive()) {
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

/// The record of the systemd-nspawn this tool started for `c`, if any.
fn read_record(c: &Container) -> Option<Record> {
    let dir = Dir::open_existing_root(&c.layout.run_dir).ok()??;
    match dir.read_bounded(NSPAWN_RECORD, 4096).ok()? {
        Contents::Data(b) => serde_json::from_slice(&b).ok(),
        _ => None,
    }
}

fn stop_direct(c: &Container, nspawn: &Process, grace: Duration) -> Result<Stopped> {
    let start = Instant::now();
    // Asked again every 250 ms: an init that has not yet installed its
    // handler ignores the signal (it is PID 1 of its namespace). Every
    // signal goes to the proved process through its pidfd.
    let mut next = Instant::now();
    let halted = wait_until(grace, || {
        if Instant::now() >= next {
            next += Duration::from_millis(250);
            let _ = match nspawn.leader() {
                Some(l) => l.signal(sigrtmin_plus_3()),
                None => nspawn.signal(libc::SIGTERM),
            };
        }
        !nspawn.alive()
    });
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
    if !wait_until(Duration::from_secs(5), || !nspawn.alive()) {
        let _ = nspawn.signal(libc::SIGKILL);
        what.push_str(" and to systemd-nspawn");
        if !wait_until(Duration::from_secs(5), || !nspawn.alive()) {
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
/// root prepared as it prepares it, and Nix's daemon socket directory (the
/// argv binds it, as NixOS does; a host without nix-daemon may lack it).
pub fn prepare(c: &Container, conf: &Conf) -> Result<()> {
    let roots = &c.ctx.roots;
    rootfs::prepare(roots, &c.layout, conf.value("COPY_RESOLV_CONF") == "1")?;
    let sock = roots.nix_state_dir.join("daemon-socket");
    std::fs::create_dir_all(&sock)
        .map_err(|e| failed(format!("cannot create '{}': {e}", sock.display())))
}

/// In a unit (ExecStart): prepares the root and becomes systemd-nspawn with
/// the argv the conf renders to. Only returns on error.
pub fn exec_nspawn(c: &Container, conf: &Conf) -> CliError {
    if let Err(e) = prepare(c, conf) {
        return e;
    }
    let argv = nspawn::argv(conf, &c.ctx.roots, &c.layout);
    let e = Command::new(&argv[0])
        .args(&argv[1..])
        .envs(nspawn::ENV.iter().copied())
        .exec();
    CliError::Spawn {
        what: argv[0].clone(),
        source: e,
    }
}

/// systemd-nspawn with the argv the conf renders to, detached from us.
fn spawn_direct(c: &Container, conf: &Conf) -> Result<Process> {
    prepare(c, conf)?;
    let roots = &c.ctx.roots;
    let run = c.run_dir()?;
    let log_path = run.child_path(ncp_core::layout::CONSOLE_LOG);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| failed(format!("cannot open '{}': {e}", log_path.display())))?;
    let err = log
        .try_clone()
        .map_err(|e| failed(format!("cannot open '{}': {e}", log_path.display())))?;
    let argv = nspawn::argv(conf, roots, &c.layout);
    // No machined without systemd as PID 1: do not register.
    let child = Command::new(&argv[0])
        .arg("--register=no")
        .args(&argv[1..])
        .envs(nspawn::ENV.iter().copied())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|source| CliError::Spawn {
            what: argv[0].clone(),
            source,
        })?;
    let p = Process::child(child.id() as i32).ok_or_else(|| {
        failed(format!(
            "systemd-nspawn exited at once; see {}",
            log_path.display()
        ))
    })?;
    let record = serde_json::to_vec(&p.record()).map_err(|e| failed(e.to_string()))?;
    run.replace_file(NSPAWN_RECORD, &record, 0o600)?;
    Ok(p)
}

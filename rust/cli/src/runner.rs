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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    Systemd,
    Direct,
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

impl Runner {
    /// systemd runs containers only where it is PID 1 (sd_booted: the
    /// directory /run/systemd/system exists) and the roots are the ones its
    /// container@.service reads.
    pub fn detect(choice: RunnerChoice, roots: &Roots) -> Runner {
        match choice {
            RunnerChoice::Systemd => Runner::Systemd,
            RunnerChoice::Direct => Runner::Direct,
            RunnerChoice::Auto => {
                let stock = [
                    (MODERN_STATE_DIR, MODERN_CONFIG_DIR),
                    (LEGACY_STATE_DIR, LEGACY_CONFIG_DIR),
                ]
                .iter()
                .any(|(s, c)| roots.state_dir == Path::new(s) && roots.config_dir == Path::new(c));
                let unit =
                    || systemctl(&["cat", "container@.service"]).is_ok_and(|o| o.status.success());
                if stock && Path::new("/run/systemd/system").is_dir() && unit() {
                    Runner::Systemd
                } else {
                    Runner::Direct
                }
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Runner::Systemd => "systemd",
            Runner::Direct => "direct",
        }
    }

    /// The systemd-nspawn of a running container, proved to be it: named by
    /// systemd, or the very process this tool recorded when it started it;
    /// root-owned, and running machine `NAME`.
    pub fn nspawn(&self, c: &Container) -> Option<Process> {
        let p = match self {
            Runner::Systemd => {
                let o = systemctl(&["show", "-p", "MainPID", "--value", &c.layout.unit]).ok()?;
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
            Runner::Systemd => systemctl_ok("start", &c.layout.unit).map(|()| None),
            Runner::Direct => spawn_direct(c, conf).map(Some),
        }
    }

    /// Halts the container: systemd stops its unit; we send SIGRTMIN+3 to
    /// the init, wait at most `grace`, then kill.
    pub fn stop(&self, c: &Container, nspawn: &Process, grace: Duration) -> Result<Stopped> {
        let start = Instant::now();
        match self {
            Runner::Systemd => {
                systemctl_ok("stop", &c.layout.unit)?;
                Ok(Stopped {
                    after: start.elapsed(),
                    escalated: None,
                })
            }
            Runner::Direct => stop_direct(c, nspawn, grace),
        }
    }

    /// Kills the container at once: SIGKILL to its init (the kernel then
    /// kills everything in its PID namespace) and to systemd-nspawn.
    pub fn terminate(&self, c: &Container, nspawn: &Process) -> Result<()> {
        match self {
            Runner::Systemd => {
                let o = systemctl(&["kill", "--signal=SIGKILL", &c.layout.unit])?;
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

/// What container@.service's start script does, then systemd-nspawn with the
/// argv the conf renders to, detached from us.
fn spawn_direct(c: &Container, conf: &Conf) -> Result<Process> {
    let roots = &c.ctx.roots;
    rootfs::prepare(roots, &c.layout, conf.value("COPY_RESOLV_CONF") == "1")?;
    // The argv binds Nix's daemon socket directory, as NixOS does; a host
    // without nix-daemon may lack it.
    let sock = roots.nix_state_dir.join("daemon-socket");
    std::fs::create_dir_all(&sock)
        .map_err(|e| failed(format!("cannot create '{}': {e}", sock.display())))?;
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

//! Who runs systemd-nspawn: systemd (container@NAME.service, when systemd is
//! PID 1 and the unit exists for the default roots) or this tool itself
//! (detached, with a pid file and a console log under the run directory), so
//! that the same commands work on NixOS, on a plain Debian host and in CI.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ncp_core::conf::Conf;
use ncp_core::layout::{
    Roots, LEGACY_CONFIG_DIR, LEGACY_STATE_DIR, MODERN_CONFIG_DIR, MODERN_STATE_DIR,
};
use ncp_core::{nspawn, rootfs};

use crate::container::Container;
use crate::error::{failed, CliError, Result};
use crate::procs;

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

fn systemctl(args: &[&str]) -> Result<std::process::Output> {
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
                    systemctl(&["cat", "container@.service"]).is_ok_and(|o| o.status.success());
                if stock && Path::new("/run/systemd/system").is_dir() && unit {
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

    /// The systemd-nspawn process of a running container.
    pub fn nspawn_pid(&self, c: &Container) -> Option<i32> {
        let pid = match self {
            Runner::Systemd => {
                let o = systemctl(&["show", "-p", "MainPID", "--value", &c.layout.unit]).ok()?;
                String::from_utf8_lossy(&o.stdout).trim().parse().ok()?
            }
            Runner::Direct => std::fs::read_to_string(c.pid_file())
                .ok()?
                .trim()
                .parse()
                .ok()?,
        };
        (pid > 0 && procs::is_nspawn_for(pid, c.name())).then_some(pid)
    }

    /// Starts systemd-nspawn for `c` (the caller saved the conf it starts
    /// with); returns its pid when it is our child.
    pub fn spawn(&self, c: &Container, conf: &Conf) -> Result<Option<i32>> {
        match self {
            Runner::Systemd => systemctl_ok("start", &c.layout.unit).map(|()| None),
            Runner::Direct => spawn_direct(c, conf).map(Some),
        }
    }

    /// Halts the container whose systemd-nspawn is `pid`: systemd stops its
    /// unit; we send SIGRTMIN+3 to the init ourselves, wait `timeout`, then
    /// kill. Returns whether it had to be killed.
    pub fn stop(&self, c: &Container, pid: i32) -> Result<bool> {
        match self {
            Runner::Systemd => systemctl_ok("stop", &c.layout.unit).map(|()| false),
            Runner::Direct => stop_direct(c, pid),
        }
    }
}

fn stop_direct(c: &Container, pid: i32) -> Result<bool> {
    // Asked again every 250 ms: an init that has not yet installed its
    // handler ignores the signal (it is PID 1 of its namespace).
    let mut next = Instant::now();
    let halted = procs::wait_until(c.ctx.timeout, || {
        if Instant::now() >= next {
            next += Duration::from_millis(250);
            let _ = match procs::leader(pid) {
                Some(l) => procs::signal(l, procs::sigrtmin_plus_3()),
                None => procs::signal(pid, libc::SIGTERM),
            };
        }
        !procs::alive(pid)
    });
    if halted {
        return Ok(false);
    }
    if let Some(l) = procs::leader(pid) {
        let _ = procs::signal(l, libc::SIGKILL);
    }
    let _ = procs::signal(pid, libc::SIGKILL);
    if !procs::wait_until(Duration::from_secs(10), || !procs::alive(pid)) {
        return Err(failed(format!(
            "container '{}': systemd-nspawn {pid} survived SIGKILL",
            c.name()
        )));
    }
    Ok(true)
}

/// What container@.service's start script does, then systemd-nspawn with the
/// argv the conf renders to, detached from us.
fn spawn_direct(c: &Container, conf: &Conf) -> Result<i32> {
    let roots = &c.ctx.roots;
    rootfs::prepare(roots, &c.layout, conf.value("COPY_RESOLV_CONF") == "1")?;
    // The argv binds Nix's daemon socket directory, as NixOS does; a host
    // without nix-daemon may lack it.
    let sock = roots.nix_state_dir.join("daemon-socket");
    std::fs::create_dir_all(&sock)
        .map_err(|e| failed(format!("cannot create '{}': {e}", sock.display())))?;
    let log_path = c.console_log();
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
    let pid = child.id();
    crate::files::write_atomic(&c.pid_file(), pid.to_string().as_bytes())?;
    Ok(pid as i32)
}

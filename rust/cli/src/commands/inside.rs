//! Running things inside a running container (enter.rs does the entering).

use crate::container::Container;
use crate::enter::{any_terminal, environment, Command, Target};
use crate::error::{failed, CliError, Result};
use crate::identity::Process;
use crate::say;
use crate::state::{Probe, State};

/// The init of a running container (one probe), or why there is none.
pub fn require_leader(c: &Container) -> Result<Process> {
    let probe = Probe::of(c);
    if let Some(l) = probe.leader {
        return Ok(l);
    }
    match probe.state {
        State::Foreign => Err(failed(format!(
            "container '{}' runs, but not started by nix-container (systemd-nspawn {}): \
             it cannot be proved to be this container, so nothing is run in it; \
             use the tool that started it",
            c.name(),
            probe.foreign.unwrap_or(0)
        ))),
        State::Starting => Err(failed(format!(
            "container '{}' is starting and its init does not run yet; try again",
            c.name()
        ))),
        _ => Err(CliError::NotRunning(c.name().into())),
    }
}

pub fn target(c: &Container) -> Result<Target> {
    Target::of(c.name(), require_leader(c)?)
}

/// `run NAME -- CMD…`: exits with CMD's exit code.
pub fn run(c: &Container, cmd: &[String]) -> Result<u8> {
    if cmd.is_empty() {
        return Err(CliError::Usage(
            "run: no command given (nix-container run NAME -- CMD…)".into(),
        ));
    }
    let t = target(c)?;
    let code = t.run(&Command {
        argv: cmd.to_vec(),
        env: environment(c.profile_system().as_deref()),
        cwd: "/root".into(),
        pty: any_terminal(),
    })?;
    Ok(code.clamp(0, 255) as u8)
}

/// Activates the profile's system inside the running container.
pub fn reload(c: &Container) -> Result<()> {
    let t = target(c)?;
    let system = c.profile_system().ok_or_else(|| {
        failed(format!(
            "container '{}': its profile points at no system",
            c.name()
        ))
    })?;
    let code = t.run(&Command {
        argv: vec![
            format!("{system}/bin/switch-to-configuration"),
            "test".into(),
        ],
        env: environment(Some(&system)),
        cwd: "/".into(),
        pty: false,
    })?;
    if code != 0 {
        return Err(failed(format!(
            "container '{}': {system}/bin/switch-to-configuration test failed (exit code {code})",
            c.name()
        )));
    }
    c.record_active_system(&system)?;
    say!(
        "{}: reloaded {system} (init {} kept)",
        c.name(),
        t.leader_pid()
    );
    Ok(())
}

fn interactive(c: &Container, what: &str, argv: Vec<String>) -> Result<u8> {
    if !any_terminal() {
        return Err(CliError::Usage(format!(
            "{what} needs a terminal (it is an interactive session); for a command, use \
             `nix-container run {} -- CMD…`",
            c.name()
        )));
    }
    let t = target(c)?;
    let mut env = environment(c.profile_system().as_deref());
    env.retain(|(k, _)| k == "TERM" || k == "PATH");
    let code = t.run(&Command {
        argv,
        env,
        cwd: "/".into(),
        pty: true,
    })?;
    Ok(code.clamp(0, 255) as u8)
}

/// A login session: the container's own login program on a terminal of its
/// own (opened inside, from the container's /dev/ptmx), never the host's;
/// no machined involved, so nothing is left behind when it ends.
pub fn login(c: &Container) -> Result<u8> {
    interactive(c, "login", vec!["login".into()])
}

/// A root login shell, as nixos-container's `su root -l`.
pub fn root_login(c: &Container) -> Result<u8> {
    interactive(
        c,
        "root-login",
        vec!["su".into(), "-l".into(), "root".into()],
    )
}

//! Running things inside a running container (enter.rs does the entering).

use crate::container::Container;
use crate::enter::{any_terminal, Command, Target};
use crate::error::{failed, CliError, Result};
use crate::say;

/// The environment of a program run inside: NixOS's system path first (the
/// profile's store path, read-only inside), then the container's own.
pub fn environment(system: Option<&str>) -> Vec<(String, String)> {
    let mut path = Vec::new();
    if let Some(s) = system {
        path.push(format!("{s}/sw/bin"));
    }
    path.extend(
        [
            "/run/current-system/sw/bin",
            "/run/wrappers/bin",
            "/nix/var/nix/profiles/default/bin",
            "/usr/bin",
            "/bin",
        ]
        .map(String::from),
    );
    let mut env = vec![
        ("PATH".to_owned(), path.join(":")),
        ("HOME".to_owned(), "/root".to_owned()),
        ("USER".to_owned(), "root".to_owned()),
        ("LOGNAME".to_owned(), "root".to_owned()),
        ("container".to_owned(), "systemd-nspawn".to_owned()),
    ];
    if let Ok(t) = std::env::var("TERM") {
        env.push(("TERM".to_owned(), t));
    }
    env
}

pub fn target(c: &Container) -> Result<Target> {
    Target::of(c.name(), c.require_leader()?)
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

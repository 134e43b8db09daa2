//! --target-host: the same commands on other hosts, as nixos-rebuild's flag
//! of that name does for whole hosts. Commands that build (create, update
//! with a configuration, flake or system) evaluate and build here, copy the
//! system's closure with Nix's own copy over ssh (`nix copy --to
//! ssh-ng://…`, NIX_SSHOPTS as Nix and nixos-rebuild read it), and only
//! then record it there through that host's own nix-container and plugin
//! (`--system-path`), which applies it as it would here. Every other command
//! runs that host's nix-container over ssh with the same flags; its output
//! and exit code are ours. apply and update take several hosts: each is
//! done whatever the others did, and reported line by line.
//!
//! Host names and options go to ssh and nix as argv, never through a shell
//! here; ssh hands the command to the remote user's shell as one string,
//! so each word of it is quoted for a POSIX shell.

mod argv;
mod check;
mod ssh;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::Stdio;

use clap::ArgMatches;

use crate::cli::{Cmd, NixFlags, SourceArgs};
use crate::commands::{config_module, create_source, flake_ref, nixos_path};
use crate::error::{failed, CliError, Result};
use crate::nix_command;

use argv::{forwarded, ids, local_only};
use check::check;
pub use check::check_here;
use ssh::{remote_status, ssh};
pub use ssh::{targets, Target};

/// The system to copy for create/update (None: nothing to build here, as
/// with --from, which names a container there).
fn build_here(n: &str, s: &SourceArgs) -> Result<Option<String>> {
    let flags: &NixFlags = &s.nix;
    nix_command::check_flags(flags)?;
    if let Some(p) = &s.system_path {
        return Ok(Some(p.clone()));
    }
    if let Some(f) = &s.flake {
        let (flake, attr) = flake_ref(f)?;
        return nix_command::flake_system(n, &flake, &attr, flags).map(Some);
    }
    let Some(module) = config_module(n, s)? else {
        return Ok(None);
    };
    // The module is kept nowhere here: a temporary file (in a directory
    // only root can enter), read by Nix, removed after.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "nix-container-target-{}-{nanos}",
        std::process::id()
    ));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| failed(format!("{}: {e}", dir.display())))?;
    let path = dir.join("configuration.nix");
    let built = std::fs::write(&path, module)
        .map_err(|e| failed(format!("{}: {e}", path.display())))
        .and_then(|()| nix_command::config_system(n, &path, nixos_path(s)?.as_deref(), flags));
    let _ = std::fs::remove_dir_all(&dir);
    built.map(Some)
}

/// What happened on one host.
struct Outcome {
    host: String,
    code: u8,
    output: String,
}

/// Copies `system` to `t`, then runs nix-container there with `args`; its
/// output captured when `capture` (several hosts), else shown as it comes.
fn on_host(t: &Target, system: Option<&str>, args: &[OsString], capture: bool) -> Outcome {
    let host = t.as_str().to_owned();
    let fail = |e: CliError, output: String| Outcome {
        host: host.clone(),
        code: 1,
        output: format!("{output}{e}\n"),
    };
    let mut args = args.to_vec();
    if let Some(system) = system {
        if let Err(e) = check(t) {
            return fail(e, String::new());
        }
        match nix_command::copy_closure(t.as_str(), system, capture) {
            Ok((true, _)) => {}
            Ok((false, said)) => {
                return fail(
                    failed(format!(
                        "target host {host}: copying {system} failed; nothing was recorded there"
                    )),
                    said,
                )
            }
            Err(e) => return fail(e, String::new()),
        }
        let mut o = OsString::from("--system-path=");
        o.push(system);
        args.push(o);
    }
    let mut c = ssh(t, &args, !capture && wants_terminal(&args));
    if capture {
        c.stdin(Stdio::null());
        match c.output() {
            Ok(out) => {
                let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&out.stderr));
                match remote_status(t, out.status.code()) {
                    Ok(code) => Outcome {
                        host,
                        code,
                        output: text,
                    },
                    Err(e) => fail(e, text),
                }
            }
            Err(source) => fail(
                CliError::Spawn {
                    what: "ssh".into(),
                    source,
                },
                String::new(),
            ),
        }
    } else {
        match c.status() {
            Ok(st) => match remote_status(t, st.code()) {
                Ok(code) => Outcome {
                    host,
                    code,
                    output: String::new(),
                },
                Err(e) => fail(e, String::new()),
            },
            Err(source) => fail(
                CliError::Spawn {
                    what: "ssh".into(),
                    source,
                },
                String::new(),
            ),
        }
    }
}

/// run, login and root-login get a terminal there when they have one here.
fn wants_terminal(args: &[OsString]) -> bool {
    let cmd = args.first().and_then(|a| a.to_str()).unwrap_or("");
    matches!(cmd, "run" | "login" | "root-login") && std::io::stdin().is_terminal()
}

/// Runs the parsed command `cmd` (its matches `m`) on `targets`; the exit
/// code.
pub fn run(cmd: &Cmd, m: &ArgMatches, targets: &[Target]) -> Result<u8> {
    let several_ok = matches!(cmd, Cmd::Apply { .. } | Cmd::Update(_));
    if targets.len() > 1 && !several_ok {
        return Err(CliError::Usage(
            "only apply and update take several target hosts".into(),
        ));
    }
    let mut skip = local_only();
    // The flags that choose and build a system here.
    let mut build_flags: Vec<String> = ids::<SourceArgs>();
    build_flags.retain(|id| id != "from");
    let system = match cmd {
        Cmd::Create(a) => {
            let s = create_source(a);
            let system = build_here(&a.name, &s)?;
            if system.is_some() {
                skip.extend(build_flags);
            }
            system
        }
        Cmd::Update(a) => {
            let given = a.source.config.is_some()
                || a.source.config_file.is_some()
                || a.source.flake.is_some()
                || a.source.system_path.is_some();
            if given {
                skip.extend(build_flags);
                // One system for several containers is built as
                // manyFromConfig builds it: no host name of its own (each
                // container gets its name from systemd-nspawn).
                let name = match a.names.as_slice() {
                    [one] => one.as_str(),
                    _ => "",
                };
                build_here(name, &a.source)?
            } else if a.source.from.is_some() {
                None
            } else {
                return Err(CliError::Usage(format!(
                    "update {} --target-host: say what to build here (--config, --config-file, \
                     --flake or --system-path); that host records systems only",
                    a.names.join(" ")
                )));
            }
        }
        Cmd::Completions { .. } | Cmd::Man => {
            return Err(CliError::Usage(
                "completions and man are this host's; run them without --target-host".into(),
            ))
        }
        _ => None,
    };
    let args = forwarded(m, &skip)?;
    if targets.len() == 1 {
        // Shown as it came; what is left is our own message (an error).
        let o = on_host(&targets[0], system.as_deref(), &args, false);
        if o.code != 0 && !o.output.is_empty() {
            return Err(failed(o.output.trim_end_matches('\n')));
        }
        return Ok(o.code);
    }
    // Several hosts: each in a thread of its own, reported as they end.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        for t in targets {
            let tx = tx.clone();
            let (system, args) = (system.as_deref(), &args);
            scope.spawn(move || {
                let _ = tx.send(on_host(t, system, args, true));
            });
        }
        drop(tx);
        let mut failed_hosts = Vec::new();
        for o in rx {
            for line in o.output.lines() {
                println!("{}: {line}", o.host);
            }
            if o.code != 0 {
                println!("{}: failed (exit {})", o.host, o.code);
                failed_hosts.push(o.host);
            } else {
                println!("{}: done", o.host);
            }
        }
        if failed_hosts.is_empty() {
            Ok(0)
        } else {
            Err(failed(format!(
                "{} of {} target hosts failed: {}",
                failed_hosts.len(),
                targets.len(),
                failed_hosts.join(", ")
            )))
        }
    })
}

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

use std::ffi::{OsStr, OsString};
use std::io::IsTerminal;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory};
use serde::{Deserialize, Serialize};

use crate::cli::{Cli, Cmd, NixFlags, SourceArgs, TargetArgs};
use crate::commands::{config_module, create_source, flake_ref, nixos_path};
use crate::error::{failed, CliError, Result};
use crate::nix_command;
use crate::output::print_json;

/// A host to act on: `[USER@]HOST`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target(String);

impl Target {
    /// Checked so that it can only be ssh's destination and the authority
    /// of an ssh-ng:// URL: no option (leading '-'), no spaces, no URL or
    /// shell syntax.
    pub fn parse(s: &str) -> Result<Target> {
        let ok = |c: char| c.is_ascii_alphanumeric() || "._-@:".contains(c);
        let host = s.rsplit_once('@').map_or(s, |(_, h)| h);
        if s.is_empty()
            || host.is_empty()
            || s.starts_with('-')
            || host.starts_with('-')
            || s.matches('@').count() > 1
            || !s.chars().all(ok)
        {
            return Err(CliError::Usage(format!(
                "--target-host '{s}' is not [USER@]HOST (letters, digits, . _ - : and one @); \
                 give ssh options in NIX_SSHOPTS"
            )));
        }
        Ok(Target(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The hosts --target-host and --target-hosts-file name, in order, once each.
pub fn targets(a: &TargetArgs) -> Result<Vec<Target>> {
    let mut names = a.target_host.clone();
    if let Some(f) = &a.target_hosts_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| CliError::Usage(format!("--target-hosts-file {}: {e}", f.display())))?;
        names.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
        );
    }
    let mut out: Vec<Target> = Vec::new();
    for n in names {
        let t = Target::parse(&n)?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// NIX_SSHOPTS, split on white space as Nix and nixos-rebuild split it.
fn ssh_opts() -> Vec<String> {
    std::env::var("NIX_SSHOPTS")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// `s` as one word for a POSIX shell.
fn quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The program run there: nix-container on that host's PATH.
const REMOTE_PROGRAM: &str = "nix-container";

/// `ssh … HOST nix-container ARGS…`; a terminal there when `tty`.
fn ssh(t: &Target, args: &[OsString], tty: bool) -> Command {
    let mut c = Command::new("ssh");
    c.args(ssh_opts())
        .arg(if tty { "-t" } else { "-T" })
        // ssh's own options end here: the host can never be one.
        .arg("--")
        .arg(t.as_str());
    let words: Vec<String> = std::iter::once(OsStr::new(REMOTE_PROGRAM))
        .chain(args.iter().map(OsString::as_os_str))
        .map(quote)
        .collect();
    c.arg(words.join(" "));
    c
}

/// What ssh's exit code means: ssh's own failure (255) or a missing program
/// (127, from the remote shell) in one line; otherwise the remote's code.
fn remote_status(t: &Target, code: Option<i32>) -> Result<u8> {
    match code {
        Some(255) => Err(failed(format!(
            "target host {}: ssh failed (see its message above; ssh options come from NIX_SSHOPTS)",
            t.as_str()
        ))),
        Some(127) => Err(failed(format!(
            "target host {}: no {REMOTE_PROGRAM} on its PATH (install nix-container-plugin there)",
            t.as_str()
        ))),
        Some(c) => Ok(u8::try_from(c).unwrap_or(1)),
        None => Err(failed(format!(
            "target host {}: ssh was killed by a signal",
            t.as_str()
        ))),
    }
}

/// The command line given, again, for another host: every flag and
/// argument the user gave on the command line (not those from the
/// environment or defaults, which are this host's), except the ids in
/// `skip`. Made from clap's own definitions, so a new flag is forwarded
/// without being listed here.
fn forwarded(m: &ArgMatches, skip: &[String]) -> Result<Vec<OsString>> {
    let mut cli = Cli::command();
    cli.build();
    let (name, sub_m) = m
        .subcommand()
        .ok_or_else(|| CliError::Usage("no command".into()))?;
    let sub = cli
        .find_subcommand(name)
        .ok_or_else(|| CliError::Usage(format!("no command {name}")))?;
    let mut opts: Vec<OsString> = vec![name.into()];
    let mut positionals: Vec<(usize, Vec<OsString>)> = Vec::new();
    let mut last: Vec<OsString> = Vec::new();
    for arg in sub.get_arguments() {
        let id = arg.get_id().as_str();
        if skip.iter().any(|s| s == id) || sub_m.value_source(id) != Some(ValueSource::CommandLine)
        {
            continue;
        }
        let occurrences: Vec<Vec<OsString>> = sub_m
            .get_raw_occurrences(id)
            .map(|o| o.map(|vals| vals.map(OsStr::to_owned).collect()).collect())
            .unwrap_or_default();
        if arg.is_positional() {
            let vals = occurrences.into_iter().flatten().collect();
            if arg.is_last_set() {
                last = vals;
            } else {
                positionals.push((arg.get_index().unwrap_or(0), vals));
            }
            continue;
        }
        let Some(long) = arg.get_long() else { continue };
        if !arg.get_action().takes_values() {
            opts.push(format!("--{long}").into());
            continue;
        }
        for vals in occurrences {
            match (vals.as_slice(), arg.get_value_delimiter()) {
                // --name=VALUE: a value that starts with '-' stays a value.
                ([one], _) => {
                    let mut o = OsString::from(format!("--{long}="));
                    o.push(one);
                    opts.push(o);
                }
                (vals, Some(d)) => {
                    let mut o = OsString::from(format!("--{long}="));
                    for (i, v) in vals.iter().enumerate() {
                        if i > 0 {
                            o.push(d.to_string());
                        }
                        o.push(v);
                    }
                    opts.push(o);
                }
                (vals, None) => {
                    opts.push(format!("--{long}").into());
                    opts.extend(vals.iter().cloned());
                }
            }
        }
    }
    positionals.sort_by_key(|(i, _)| *i);
    opts.extend(positionals.into_iter().flat_map(|(_, v)| v));
    if !last.is_empty() {
        opts.push("--".into());
        opts.extend(last);
    }
    Ok(opts)
}

/// The ids of a group of flags (clap's, from their definitions).
fn ids<A: clap::Args>() -> Vec<String> {
    A::augment_args(clap::Command::new("ids"))
        .get_arguments()
        .map(|a| a.get_id().as_str().to_owned())
        .collect()
}

/// Flags that only this host acts on.
fn local_only() -> Vec<String> {
    ids::<TargetArgs>()
}

/// What `target-check` says about a host (printed there as JSON).
#[derive(Serialize, Deserialize, Debug)]
pub struct HostFacts {
    pub version: String,
    /// `nix --version`'s first line; None: no nix on its PATH.
    pub nix: Option<String>,
    /// Whether that nix loads the plugin (builtins.containerProfile exists).
    pub plugin: bool,
    /// What nix said when it did not.
    pub plugin_message: String,
}

/// `target-check` (run there): the facts above, as JSON.
pub fn check_here() -> Result<()> {
    let nix = Command::new("nix")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned()
        });
    let (plugin, plugin_message) = match &nix {
        None => (false, String::new()),
        Some(_) => {
            let out = Command::new("nix")
                .args([
                    "--extra-experimental-features",
                    "nix-command",
                    "eval",
                    "--expr",
                ])
                .arg("builtins ? containerProfile")
                .stdin(Stdio::null())
                .output()
                .map_err(|source| CliError::Spawn {
                    what: "nix eval".into(),
                    source,
                })?;
            let said = String::from_utf8_lossy(&out.stderr);
            let said = said
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .to_owned();
            (String::from_utf8_lossy(&out.stdout).trim() == "true", said)
        }
    };
    print_json(&HostFacts {
        version: env!("CARGO_PKG_VERSION").into(),
        nix,
        plugin,
        plugin_message,
    })
}

/// One line naming what `t` lacks for a build to be recorded there, if
/// anything.
fn check(t: &Target) -> Result<()> {
    let out = ssh(t, &["target-check".into()], false)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| CliError::Spawn {
            what: "ssh".into(),
            source,
        })?;
    let host = t.as_str();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {}
        Some(2) => {
            // An older nix-container, without target-check.
            return Err(failed(format!(
                "target host {host}: its {REMOTE_PROGRAM} is of another version than this one ({}); \
                 install the same nix-container-plugin there",
                env!("CARGO_PKG_VERSION")
            )));
        }
        code => {
            eprint!("{stderr}");
            remote_status(t, code)?;
            return Err(failed(format!(
                "target host {host}: {REMOTE_PROGRAM} target-check failed"
            )));
        }
    }
    let facts: HostFacts = serde_json::from_slice(&out.stdout).map_err(|e| {
        failed(format!(
            "target host {host}: {REMOTE_PROGRAM} target-check printed no facts ({e})"
        ))
    })?;
    if facts.version != env!("CARGO_PKG_VERSION") {
        return Err(failed(format!(
            "target host {host}: nix-container {} there, {} here; install the same version there",
            facts.version,
            env!("CARGO_PKG_VERSION")
        )));
    }
    if facts.nix.is_none() {
        return Err(failed(format!("target host {host}: no nix on its PATH")));
    }
    if !facts.plugin {
        return Err(failed(format!(
            "target host {host}: its nix ({}) does not load nix-container-plugin (plugin-files in its \
             nix.conf){}",
            facts.nix.unwrap_or_default(),
            if facts.plugin_message.is_empty() {
                String::new()
            } else {
                format!(": {}", facts.plugin_message)
            }
        )));
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::FromArgMatches;

    fn fwd(argv: &[&str], skip: &[String]) -> Vec<String> {
        let m = Cli::command().get_matches_from(argv);
        Cli::from_arg_matches(&m).expect("parses");
        forwarded(&m, skip)
            .expect("forwards")
            .into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_command_line_is_given_again_without_this_hosts_flags() {
        let skip = local_only();
        assert_eq!(
            fwd(
                &[
                    "nix-container",
                    "--target-host",
                    "h",
                    "--timeout",
                    "5",
                    "run",
                    "c",
                    "--",
                    "ls",
                    "-l"
                ],
                &skip
            ),
            ["run", "--timeout=5", "c", "--", "ls", "-l"]
        );
        assert_eq!(
            fwd(
                &[
                    "nix-container",
                    "apply",
                    "--declared=a,b",
                    "--dry-run",
                    "--target-host=h",
                    "web"
                ],
                &skip
            ),
            ["apply", "--dry-run", "--declared=a,b", "web"]
        );
        assert_eq!(
            fwd(&["nix-container", "apply", "--all", "--declared="], &skip),
            ["apply", "--all", "--declared="]
        );
    }

    #[test]
    fn build_flags_stay_here() {
        let mut skip = local_only();
        skip.extend(ids::<SourceArgs>().into_iter().filter(|i| i != "from"));
        assert_eq!(
            fwd(
                &[
                    "nix-container",
                    "create",
                    "c",
                    "--config=-x",
                    "--option",
                    "cores",
                    "2",
                    "--auto-start",
                    "--port",
                    "tcp:80",
                    "--target-host",
                    "h"
                ],
                &skip
            ),
            ["create", "--auto-start", "--port=tcp:80", "c"]
        );
    }

    #[test]
    fn a_host_is_never_an_option_or_shell_text() {
        for bad in [
            "-oProxyCommand=x",
            "a b",
            "h;rm",
            "a@b@c",
            "",
            "u@-x",
            "$(x)",
            "h/x",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        for good in ["host", "root@10.0.0.2", "a.b-c_d", "fe80::1"] {
            assert!(Target::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn words_are_quoted_for_the_remote_shell() {
        assert_eq!(quote(OsStr::new("plain-1.2")), "plain-1.2");
        assert_eq!(quote(OsStr::new("a b")), "'a b'");
        assert_eq!(quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(quote(OsStr::new("$(x)")), "'$(x)'");
        assert_eq!(quote(OsStr::new("")), "''");
    }
}

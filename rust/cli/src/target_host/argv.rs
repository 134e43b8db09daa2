//! The command line again, for another host: what the user gave, made
//! from clap's own definitions, less the flags that stay here.

use std::ffi::{OsStr, OsString};

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory};

use crate::cli::{Cli, TargetArgs};
use crate::error::{CliError, Result};

/// The command line given, again, for another host: every flag and
/// argument the user gave on the command line (not those from the
/// environment or defaults, which are this host's), except the ids in
/// `skip`. Made from clap's own definitions, so a new flag is forwarded
/// without being listed here.
pub fn forwarded(m: &ArgMatches, skip: &[String]) -> Result<Vec<OsString>> {
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
pub fn ids<A: clap::Args>() -> Vec<String> {
    A::augment_args(clap::Command::new("ids"))
        .get_arguments()
        .map(|a| a.get_id().as_str().to_owned())
        .collect()
}

/// Flags that only this host acts on.
pub fn local_only() -> Vec<String> {
    ids::<TargetArgs>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::SourceArgs;
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
}

//! Reaching another host: who it is ([USER@]HOST, checked), the ssh
//! command line (NIX_SSHOPTS, then the host, never an option), the remote
//! command quoted for the remote shell, and what ssh's exit code means.

use std::ffi::{OsStr, OsString};
use std::process::Command;

use crate::cli::TargetArgs;
use crate::error::{failed, CliError, Result};

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
pub const REMOTE_PROGRAM: &str = "nix-container";

/// `ssh … HOST nix-container ARGS…`; a terminal there when `tty`.
pub fn ssh(t: &Target, args: &[OsString], tty: bool) -> Command {
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
pub fn remote_status(t: &Target, code: Option<i32>) -> Result<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;

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

//! What a container shows of itself: its address, its SSH host key, its
//! logs, its network set-up.

use std::io::Write;
use std::os::unix::process::CommandExt;

use ncp_core::fsutil::{Contents, Dir};

use crate::container::Container;
use crate::error::{failed, CliError, Result};
use crate::output::print_json;
use crate::runner::Runner;

/// As nixos-container: LOCAL_ADDRESS without its prefix length, else LOCAL_ADDRESS6.
pub fn show_ip(c: &Container, json: bool) -> Result<()> {
    let (_, conf) = c
        .conf()?
        .ok_or_else(|| failed(format!("container '{}' has no conf file", c.name())))?;
    let ip = ["LOCAL_ADDRESS", "LOCAL_ADDRESS6"]
        .iter()
        .map(|k| conf.value(k))
        .find(|v| !v.is_empty())
        .map(|v| v.split('/').next().unwrap_or(v).to_owned())
        .ok_or_else(|| {
            failed(format!(
                "container '{}' has no local address; give it one (privateNetwork with \
                 localAddress, or create --local-address)",
                c.name()
            ))
        })?;
    if json {
        print_json(&serde_json::json!({ "name": c.name(), "address": ip }))
    } else {
        println!("{ip}");
        Ok(())
    }
}

/// As nixos-container: the container's /etc/ssh/ssh_host_ed25519_key.pub
/// (else ..._ecdsa_...), read from its root without following a link it
/// planted and with a bound; exit code 1 when it has none.
pub fn show_host_key(c: &Container) -> Result<u8> {
    let state = Dir::open_existing_root(&c.ctx.roots.state_dir)?
        .ok_or_else(|| failed(format!("container '{}' has no root", c.name())))?;
    let ssh = state
        .open_dir_if_exists(c.name())?
        .map(|r| r.open_dir_if_exists("etc"))
        .transpose()?
        .flatten()
        .map(|e| e.open_dir_if_exists("ssh"))
        .transpose()?
        .flatten();
    let Some(ssh) = ssh else { return Ok(1) };
    for f in ["ssh_host_ed25519_key.pub", "ssh_host_ecdsa_key.pub"] {
        if let Contents::Data(b) = ssh.read_bounded(f, 16 * 1024)? {
            std::io::stdout()
                .write_all(&b)
                .map_err(|e| failed(e.to_string()))?;
            return Ok(0);
        }
    }
    Ok(1)
}

/// The console log this tool's runner keeps, or the unit's journal.
pub fn logs(c: &Container, lines: usize, follow: bool) -> Result<u8> {
    if let Runner::Systemd { .. } = c.ctx.runner {
        let unit = c.ctx.runner.unit(c);
        let mut cmd = std::process::Command::new("journalctl");
        cmd.args(["--no-pager", "-u", &unit, "-n", &lines.to_string()]);
        if follow {
            cmd.arg("-f");
        }
        let e = cmd.exec();
        return Err(CliError::Spawn {
            what: "journalctl".into(),
            source: e,
        });
    }
    let path = c.console_log();
    let mut printed = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let text = super::lifecycle::log_since(&path, 0);
    let tail: Vec<&str> = text.lines().collect();
    for l in &tail[tail.len().saturating_sub(lines)..] {
        println!("{l}");
    }
    if !follow {
        return Ok(0);
    }
    // Until interrupted, as tail -f.
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len > printed {
            print!("{}", super::lifecycle::log_since(&path, printed));
            let _ = std::io::stdout().flush();
            printed = len;
        }
    }
}

pub fn network_plan(c: &Container) -> Result<()> {
    let (_, conf) = c
        .conf()?
        .ok_or_else(|| failed(format!("container '{}' has no conf file", c.name())))?;
    print_json(&crate::network::plan(c.name(), &conf))
}

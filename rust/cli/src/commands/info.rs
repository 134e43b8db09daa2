//! What a container shows of itself: its address, its SSH host key, its
//! logs, its network set-up.

use std::io::Write;
use std::os::unix::process::CommandExt;

use ncp_core::fsutil::{Contents, Dir};

use std::os::unix::fs::MetadataExt;

use crate::container::Container;
use crate::enter::{environment, Command, Target};
use crate::error::{failed, CliError, Result};
use crate::output::print_json;
use crate::runner::Runner;
use crate::state::{Probe, Readiness};

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

/// A running container whose init is systemd: its own journal, read by
/// its own journalctl inside (entered as `run` enters). Otherwise, or with
/// `--console`: the console log this tool's runner keeps (both rotated
/// files), or the unit's journal on the host (systemd runner).
pub fn logs(c: &Container, lines: usize, follow: bool, console: bool) -> Result<u8> {
    if !console {
        let probe = Probe::of(c);
        let system = c.active_system().or_else(|| c.profile_system());
        if let (Some(leader), Some(system)) = (probe.leader, system) {
            if Readiness::of(&system) == Readiness::Notify {
                let mut argv = vec![
                    "journalctl".to_owned(),
                    "--no-pager".into(),
                    "-n".into(),
                    lines.to_string(),
                ];
                if follow {
                    argv.push("-f".into());
                }
                let code = Target::of(c.name(), leader)?.run(&Command {
                    argv,
                    env: environment(Some(&system)),
                    cwd: "/".into(),
                    pty: false,
                })?;
                return Ok(code.clamp(0, 255) as u8);
            }
        }
    }
    if let Runner::Systemd { .. } = c.ctx.runner {
        let unit = c.ctx.runner.unit(&c.instance());
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
    let records = c.records();
    let text = crate::monitor::console_tail(&records, 2 * crate::monitor::CONSOLE_CAP);
    let tail: Vec<&str> = text.lines().collect();
    for l in &tail[tail.len().saturating_sub(lines)..] {
        println!("{l}");
    }
    if !follow {
        return Ok(0);
    }
    // Until interrupted, as tail -F: across the monitor's rotations.
    let path = records.console_log();
    let stat = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| (m.ino(), m.len()))
            .unwrap_or((0, 0))
    };
    let (mut ino, mut printed) = stat(&path);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let (now_ino, len) = stat(&path);
        if now_ino != ino {
            // Rotated: the rest of the old file, then the new one.
            let old = records.path(crate::records::CONSOLE_LOG_OLD);
            let (old_ino, old_len) = stat(&old);
            if old_ino == ino && old_len > printed {
                print_bytes(&crate::monitor::read_from(&old, printed, old_len - printed));
            }
            ino = now_ino;
            printed = 0;
        }
        if len > printed {
            print_bytes(&crate::monitor::read_from(&path, printed, len - printed));
            printed = len;
        }
    }
}

fn print_bytes(b: &[u8]) {
    let mut out = std::io::stdout();
    let _ = out.write_all(b);
    let _ = out.flush();
}

pub fn network_plan(c: &Container) -> Result<()> {
    let (_, conf) = c
        .conf()?
        .ok_or_else(|| failed(format!("container '{}' has no conf file", c.name())))?;
    print_json(&crate::network::plan(c.name(), &conf))
}

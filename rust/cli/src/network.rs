//! A private network's addresses, for containers this tool runs itself.
//! Under systemd, NixOS's container@.service does this (its postStart on the
//! host side, the container's init wrapper inside); the argv we render runs
//! the system's init directly, so here the host does both, with its own `ip`
//! in the container's network namespace for the inside.

use std::process::{Command, Stdio};

use ncp_core::conf::Conf;

use crate::container::Container;
use crate::error::{failed, Result};

fn ip(netns_of: Option<i32>, args: &[&str]) -> Result<()> {
    let mut cmd = match netns_of {
        Some(pid) => {
            let mut c = Command::new("nsenter");
            c.args(["--target", &pid.to_string(), "--net", "--", "ip"]);
            c
        }
        None => Command::new("ip"),
    };
    let out = cmd
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| failed(format!("cannot run ip: {e}")))?;
    if !out.status.success() {
        return Err(failed(format!(
            "ip {} ({}) failed: {}",
            args.join(" "),
            if netns_of.is_some() { "inside" } else { "host" },
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

pub fn configure(c: &Container, conf: &Conf, leader: i32) -> Result<()> {
    if conf.value("PRIVATE_NETWORK") != "1" {
        return Ok(());
    }
    let host_if = format!("ve-{}", c.name());
    let v = |k| conf.value(k);
    let inside = Some(leader);
    // Host side (NixOS postStart): only without a bridge, which owns the link.
    if v("HOST_BRIDGE").is_empty()
        && !(v("HOST_ADDRESS").is_empty() && v("HOST_ADDRESS6").is_empty())
    {
        ip(None, &["link", "set", "dev", &host_if, "up"])?;
        for (fam, host, local) in [
            ("-4", "HOST_ADDRESS", "LOCAL_ADDRESS"),
            ("-6", "HOST_ADDRESS6", "LOCAL_ADDRESS6"),
        ] {
            if !v(host).is_empty() {
                ip(None, &[fam, "addr", "add", v(host), "dev", &host_if])?;
            }
            if !v(local).is_empty() {
                ip(None, &[fam, "route", "add", v(local), "dev", &host_if])?;
            }
        }
    }
    // Inside (NixOS's container init wrapper): host0 is nspawn's veth end.
    if !v("LOCAL_MAC_ADDRESS").is_empty() {
        ip(
            inside,
            &[
                "link",
                "set",
                "dev",
                "host0",
                "address",
                v("LOCAL_MAC_ADDRESS"),
            ],
        )?;
    }
    for (fam, host, local) in [
        ("-4", "HOST_ADDRESS", "LOCAL_ADDRESS"),
        ("-6", "HOST_ADDRESS6", "LOCAL_ADDRESS6"),
    ] {
        if !v(local).is_empty() {
            ip(inside, &[fam, "addr", "add", v(local), "dev", "host0"])?;
            ip(inside, &["link", "set", "dev", "host0", "up"])?;
        }
        if !v(host).is_empty() && !v(local).is_empty() {
            let gw = v(host).split('/').next().unwrap_or_default();
            ip(inside, &[fam, "route", "add", gw, "dev", "host0"])?;
            ip(inside, &[fam, "route", "add", "default", "via", gw])?;
        }
    }
    Ok(())
}

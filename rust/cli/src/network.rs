//! A private network's addresses, for containers this tool runs itself.
//! Under systemd, NixOS's container@.service does this: its postStart on
//! the host side, and its container init wrapper inside (which renames
//! nspawn's `host0` to `eth0` before stage 2). The argv we render runs the
//! system's init directly, so here the host does both, in the same order
//! and on the same conditions, running its own `ip` in the network
//! namespace (only) of the proved init, entered through its pidfd.

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use ncp_core::conf::Conf;

use crate::container::Container;
use crate::error::{failed, Result};
use crate::identity::Process;

fn ip(inside: Option<&Process>, args: &[&str]) -> Result<()> {
    let mut cmd = Command::new("ip");
    cmd.args(args).stdin(Stdio::null());
    if let Some(p) = inside {
        let fd = p.pidfd().as_raw_fd();
        // SAFETY: setns(2) in the forked child before exec; the pidfd is
        // open there (it is only closed on exec).
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }
    let out = cmd
        .output()
        .map_err(|e| failed(format!("cannot run ip: {e}")))?;
    if !out.status.success() {
        return Err(failed(format!(
            "ip {} ({}) failed: {}",
            args.join(" "),
            if inside.is_some() { "inside" } else { "host" },
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

pub fn configure(c: &Container, conf: &Conf, leader: &Process) -> Result<()> {
    let v = |k| conf.value(k);
    let set = |k| !conf.value(k).is_empty();
    let addresses = set("HOST_ADDRESS")
        || set("HOST_ADDRESS6")
        || set("LOCAL_ADDRESS")
        || set("LOCAL_ADDRESS6");
    // Host side (postStart): the veth's host end, unless a bridge owns it.
    if addresses && !set("HOST_BRIDGE") {
        let host_if = format!("ve-{}", c.name());
        ip(None, &["link", "set", "dev", &host_if, "up"])?;
        for (cmd, key) in [
            (&["addr"][..], "HOST_ADDRESS"),
            (&["-6", "addr"], "HOST_ADDRESS6"),
            (&["route"], "LOCAL_ADDRESS"),
            (&["-6", "route"], "LOCAL_ADDRESS6"),
        ] {
            if set(key) {
                let mut a = cmd.to_vec();
                a.extend(["add", v(key), "dev", &host_if]);
                ip(None, &a)?;
            }
        }
    }
    // Inside (the container init wrapper).
    if addresses || set("HOST_BRIDGE") || set("LOCAL_MAC_ADDRESS") {
        let i = Some(leader);
        ip(i, &["link", "set", "host0", "name", "eth0"])?;
        if set("LOCAL_MAC_ADDRESS") {
            ip(
                i,
                &[
                    "link",
                    "set",
                    "dev",
                    "eth0",
                    "address",
                    v("LOCAL_MAC_ADDRESS"),
                ],
            )?;
        }
        ip(i, &["link", "set", "dev", "eth0", "up"])?;
        if set("LOCAL_ADDRESS") {
            ip(i, &["addr", "add", v("LOCAL_ADDRESS"), "dev", "eth0"])?;
        }
        if set("LOCAL_ADDRESS6") {
            ip(
                i,
                &["-6", "addr", "add", v("LOCAL_ADDRESS6"), "dev", "eth0"],
            )?;
        }
        if set("HOST_ADDRESS") {
            ip(i, &["route", "add", v("HOST_ADDRESS"), "dev", "eth0"])?;
            ip(i, &["route", "add", "default", "via", v("HOST_ADDRESS")])?;
        }
        if set("HOST_ADDRESS6") {
            ip(
                i,
                &["-6", "route", "add", v("HOST_ADDRESS6"), "dev", "eth0"],
            )?;
            ip(
                i,
                &["-6", "route", "add", "default", "via", v("HOST_ADDRESS6")],
            )?;
        }
    }
    Ok(())
}

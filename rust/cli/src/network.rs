//! A private network's addresses, for containers this tool (or its unit)
//! runs.
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

/// One `ip` call of the set-up: on the host, or inside the container's
/// network namespace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    pub inside: bool,
    pub args: Vec<String>,
}

/// The `ip` calls NixOS makes for a container with conf `conf`: its unit's
/// postStart on the host (the veth's host end, unless a bridge owns it),
/// then its container init wrapper inside (nspawn's host0 renamed eth0,
/// LOCAL_MAC_ADDRESS, addresses, routes), on the same conditions, in order.
pub fn plan(name: &str, conf: &Conf) -> Vec<Step> {
    let v = |k| conf.value(k).to_owned();
    let set = |k| !conf.value(k).is_empty();
    let mut steps = Vec::new();
    let mut step = |inside: bool, args: &[&str]| {
        steps.push(Step {
            inside,
            args: args.iter().map(|a| a.to_string()).collect(),
        })
    };
    let addresses = set("HOST_ADDRESS")
        || set("HOST_ADDRESS6")
        || set("LOCAL_ADDRESS")
        || set("LOCAL_ADDRESS6");
    if addresses && !set("HOST_BRIDGE") {
        let host_if = format!("ve-{name}");
        step(false, &["link", "set", "dev", &host_if, "up"]);
        for (cmd, key) in [
            (&["addr"][..], "HOST_ADDRESS"),
            (&["-6", "addr"], "HOST_ADDRESS6"),
            (&["route"], "LOCAL_ADDRESS"),
            (&["-6", "route"], "LOCAL_ADDRESS6"),
        ] {
            if set(key) {
                let val = v(key);
                let mut a = cmd.to_vec();
                a.extend(["add", val.as_str(), "dev", &host_if]);
                step(false, &a);
            }
        }
    }
    if addresses || set("HOST_BRIDGE") || set("LOCAL_MAC_ADDRESS") {
        step(true, &["link", "set", "host0", "name", "eth0"]);
        if set("LOCAL_MAC_ADDRESS") {
            step(
                true,
                &[
                    "link",
                    "set",
                    "dev",
                    "eth0",
                    "address",
                    &v("LOCAL_MAC_ADDRESS"),
                ],
            );
        }
        step(true, &["link", "set", "dev", "eth0", "up"]);
        if set("LOCAL_ADDRESS") {
            step(true, &["addr", "add", &v("LOCAL_ADDRESS"), "dev", "eth0"]);
        }
        if set("LOCAL_ADDRESS6") {
            step(
                true,
                &["-6", "addr", "add", &v("LOCAL_ADDRESS6"), "dev", "eth0"],
            );
        }
        if set("HOST_ADDRESS") {
            step(true, &["route", "add", &v("HOST_ADDRESS"), "dev", "eth0"]);
            step(
                true,
                &["route", "add", "default", "via", &v("HOST_ADDRESS")],
            );
        }
        if set("HOST_ADDRESS6") {
            step(
                true,
                &["-6", "route", "add", &v("HOST_ADDRESS6"), "dev", "eth0"],
            );
            step(
                true,
                &["-6", "route", "add", "default", "via", &v("HOST_ADDRESS6")],
            );
        }
    }
    steps
}

pub fn configure(c: &Container, conf: &Conf, leader: &Process) -> Result<()> {
    for s in plan(c.name(), conf) {
        let args: Vec<&str> = s.args.iter().map(String::as_str).collect();
        ip(s.inside.then_some(leader), &args)?;
    }
    Ok(())
}

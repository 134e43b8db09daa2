//! Facts about processes, read from /proc: whether a pid is a live
//! systemd-nspawn for a container, the container's leader (its init), and
//! what the system running inside is.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The pid is alive (a zombie counts as gone: nobody we can wait for).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => stat_fields(&s).is_some_and(|(state, _)| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// (state, ppid) from /proc/PID/stat; the command name may contain spaces
/// and parentheses, so parse after the last ')'.
fn stat_fields(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_ascii_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

pub fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `pid` is a systemd-nspawn running machine `name`.
pub fn is_nspawn_for(pid: i32, name: &str) -> bool {
    let argv = cmdline(pid);
    alive(pid)
        && argv
            .first()
            .is_some_and(|a| a.ends_with(ncp_core::nspawn::PROGRAM))
        && argv.windows(2).any(|w| w[0] == "-M" && w[1] == name)
}

fn pid_ns(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// The container's init: the child of systemd-nspawn that lives in another
/// PID namespace and has executed the init (before that it is nspawn's own
/// inner child, and a signal sent to it would be lost).
pub fn leader(nspawn: i32) -> Option<i32> {
    let ours = pid_ns(nspawn)?;
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| stat_fields(&s))
                .is_some_and(|(state, ppid)| ppid == nspawn && state != 'Z')
                && pid_ns(pid).is_some_and(|ns| ns != ours)
                && !cmdline(pid)
                    .first()
                    .is_some_and(|a| a.ends_with(ncp_core::nspawn::PROGRAM))
        })
}

/// Where /run/current-system points inside the container (its root as the
/// leader sees it).
pub fn running_system(leader: i32) -> Option<String> {
    let link = Path::new("/proc")
        .join(leader.to_string())
        .join("root/run/current-system");
    std::fs::read_link(link)
        .ok()
        .map(|p| p.display().to_string())
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGRTMIN+3: what systemd-nspawn's --kill-signal and systemd's halt use.
pub fn sigrtmin_plus_3() -> i32 {
    libc::SIGRTMIN() + 3
}

pub fn signal(pid: i32, sig: i32) -> std::io::Result<()> {
    // SAFETY: kill(2) has no memory effects; pid and signal are plain ints.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        assert_eq!(stat_fields("42 (a) b (c)) S 7 42 42 0"), Some(('S', 7)));
        assert_eq!(stat_fields("garbage"), None);
        assert!(alive(std::process::id() as i32));
        assert!(!is_nspawn_for(std::process::id() as i32, "x"));
    }
}

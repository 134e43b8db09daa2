//! Running a program inside a running container (run, reload, login), with
//! no more power than the container's own init has, and only once it is
//! proved to be inside that container.
//!
//! `nsenter --all` is not enough: the kernel sets the root of a process
//! entering a mount namespace to that namespace's root mount, but
//! systemd-nspawn makes the container's root by moving a mount onto "/" as
//! *it* sees "/". When nspawn itself ran chrooted (a clean-room build, a
//! chroot, some CI), that "/" is not the namespace's root mount, so nsenter
//! lands in the host's file system view with the container's host name and
//! PID namespace: `reload` would then run the container's
//! switch-to-configuration against the host. So here the root is taken from
//! the init itself (/proc/INIT/root, opened before entering), and the result
//! is checked before exec: "/" is the init's root, the namespaces are the
//! init's, and the container's /proc shows the init as its PID 1.
//!
//! The process then drops every capability outside the init's bounding set,
//! sets no_new_privs, enters the container's user namespace when it has one
//! (privateUsers), and, on a terminal, gets a pseudo-terminal of its own, so
//! it never holds the host's terminal (TIOCSTI could type into it).

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;

use nix::fcntl::OFlag;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};

use crate::error::{failed, CliError, Result};
use crate::identity::{cap_mask, ns_inode, own_ns_inode, Process};

/// Namespaces entered, and checked after entering.
const CHECKED_NS: &[(&str, libc::c_int)] = &[
    ("mnt", libc::CLONE_NEWNS),
    ("pid", libc::CLONE_NEWPID),
    ("net", libc::CLONE_NEWNET),
    ("uts", libc::CLONE_NEWUTS),
    ("ipc", libc::CLONE_NEWIPC),
    ("cgroup", libc::CLONE_NEWCGROUP),
];

/// What is known of a container's init before entering it.
pub struct Target {
    leader: Process,
    container: String,
    /// /proc/INIT/root, opened (O_PATH) while the init was proved alive.
    root: OwnedFd,
    root_id: (u64, u64),
    ns: Vec<(&'static str, u64)>,
    user_ns: Option<u64>,
    cap_bnd: u64,
}

/// What the entering child execs, made before fork (the child allocates
/// as little as it can).
struct Exec {
    /// Where the program may be, along the PATH for inside.
    candidates: Vec<CString>,
    argv: Vec<CString>,
    env: Vec<CString>,
    cwd: CString,
    /// The highest capability number the kernel knows.
    last_cap: u32,
}

/// What to run inside.
pub struct Command {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    /// Give it a pseudo-terminal relayed to ours (when ours is a terminal).
    pub pty: bool,
}

impl Target {
    pub fn of(container: &str, leader: Process) -> Result<Target> {
        let gone = || failed(format!("container '{container}': its init exited"));
        let root = leader
            .open_proc("root", OFlag::O_PATH | OFlag::O_DIRECTORY)
            .ok_or_else(gone)?;
        let st = nix::sys::stat::fstat(&root)
            .map_err(|e| failed(format!("stat of the container's root: {e}")))?;
        let mut ns = Vec::new();
        for (name, _) in CHECKED_NS {
            ns.push((*name, ns_inode(leader.pid, name).ok_or_else(gone)?));
        }
        let theirs = ns_inode(leader.pid, "user").ok_or_else(gone)?;
        let user_ns = (Some(theirs) != own_ns_inode("user")).then_some(theirs);
        let cap_bnd = cap_mask(leader.pid, "CapBnd").ok_or_else(gone)?;
        if !leader.alive() {
            return Err(gone());
        }
        Ok(Target {
            container: container.to_owned(),
            root,
            root_id: (st.st_dev as u64, st.st_ino as u64),
            ns,
            user_ns,
            cap_bnd,
            leader,
        })
    }

    pub fn leader_pid(&self) -> i32 {
        self.leader.pid
    }

    /// Runs `cmd` inside (no terminal) and returns what it printed on
    /// standard output (the first 64 KiB; the rest is read and dropped) with
    /// its exit code, if it ended within `limit`. The program is the container's own:
    /// it may print for ever or never end, and neither may hold us.
    pub fn output(&self, cmd: &Command, limit: std::time::Duration) -> Result<(i32, String)> {
        let (r, w) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| failed(format!("pipe: {e}")))?;
        let reader = std::thread::spawn(move || {
            let mut f = std::fs::File::from(r);
            let mut out = Vec::new();
            let _ = (&mut f).take(64 * 1024).read_to_end(&mut out);
            let _ = std::io::copy(&mut f, &mut std::io::sink());
            out
        });
        let deadline = std::time::Instant::now() + limit;
        // On a timeout the reader is left behind: what runs inside may
        // keep the pipe open.
        let code = self.run_to(cmd, Some(w), Some(deadline))?;
        let out = reader.join().unwrap_or_default();
        Ok((code, String::from_utf8_lossy(&out).into_owned()))
    }

    /// Runs `cmd` inside; returns its exit code (128 + signal if killed).
    /// An Err means nothing ran.
    pub fn run(&self, cmd: &Command) -> Result<i32> {
        self.run_to(cmd, None, None)
    }

    /// `run`, its standard output to `stdout` when given; with `deadline`,
    /// the entering child is killed then and it is an error.
    fn run_to(
        &self,
        cmd: &Command,
        stdout: Option<OwnedFd>,
        deadline: Option<std::time::Instant>,
    ) -> Result<i32> {
        let argv: Vec<CString> = cmd
            .argv
            .iter()
            .map(|a| CString::new(a.as_str()))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| CliError::Usage("a command argument contains a NUL byte".into()))?;
        if argv.is_empty() {
            return Err(CliError::Usage("no command given".into()));
        }
        let env: Vec<CString> = cmd
            .env
            .iter()
            .filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok())
            .collect();
        // execvpe would search our own PATH: the candidates come from the
        // PATH given for inside, computed here (no allocation after fork).
        let program = &cmd.argv[0];
        let candidates: Vec<CString> = if program.contains('/') {
            vec![argv[0].clone()]
        } else {
            let path = cmd
                .env
                .iter()
                .find(|(k, _)| k == "PATH")
                .map_or("", |(_, v)| v.as_str());
            path.split(':')
                .filter(|d| !d.is_empty())
                .filter_map(|d| CString::new(format!("{d}/{program}")).ok())
                .collect()
        };
        let cwd =
            CString::new(cmd.cwd.as_str()).map_err(|_| CliError::Usage("bad directory".into()))?;
        let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .unwrap_or(40);
        let exec = Exec {
            candidates,
            argv,
            env,
            cwd,
            last_cap,
        };
        let channel = if cmd.pty {
            Some(crate::pty::Channel::new()?)
        } else {
            None
        };
        // Errors of the entering child come back through this pipe; exec
        // closes it (O_CLOEXEC), so EOF with nothing read means it ran.
        let (err_r, err_w) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| failed(format!("pipe: {e}")))?;
        // SAFETY: the child only calls async-signal-safe functions until
        // exec or _exit (allocation is done before fork), so no lock another
        // thread of ours held at fork (output's reader) is ever needed.
        match unsafe { fork() }.map_err(|e| failed(format!("fork: {e}")))? {
            ForkResult::Child => {
                drop(err_r);
                if let Some(fd) = &stdout {
                    // SAFETY: dup2 onto our standard output (clears CLOEXEC there).
                    unsafe { libc::dup2(fd.as_raw_fd(), 1) };
                }
                let pty_sock = channel.as_ref().map(|c| c.theirs.as_raw_fd());
                let e = self.enter_and_exec(&exec, pty_sock, err_w.as_raw_fd());
                let _ = nix::unistd::write(&err_w, e.as_bytes());
                // SAFETY: leaving the forked child without running Rust destructors.
                unsafe { libc::_exit(125) }
            }
            ForkResult::Parent { child } => {
                drop(err_w);
                // The reader sees EOF once the child is done with it.
                drop(stdout);
                // The pty is opened inside; its master end comes back here.
                let relay = channel.and_then(|c| {
                    drop(c.theirs);
                    crate::pty::receive(&c.ours).map(crate::pty::relay_in_background)
                });
                let mut msg = String::new();
                let _ = std::fs::File::from(err_r).read_to_string(&mut msg);
                let flags = deadline.map(|_| nix::sys::wait::WaitPidFlag::WNOHANG);
                let status = loop {
                    match waitpid(child, flags) {
                        Err(nix::errno::Errno::EINTR) => continue,
                        Ok(WaitStatus::StillAlive) => {
                            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                                let _ = nix::sys::signal::kill(child, nix::sys::signal::SIGKILL);
                                let _ = waitpid(child, None);
                                return Err(failed(format!(
                                    "container '{}': {} did not finish in time",
                                    self.container, cmd.argv[0]
                                )));
                            }
                            std::thread::sleep(std::time::Duration::from_millis(5));
                        }
                        r => break r,
                    }
                };
                if let Some(r) = relay {
                    r.finish();
                }
                if !msg.is_empty() {
                    return Err(failed(format!(
                        "container '{}': refusing to run anything inside: {msg}",
                        self.container
                    )));
                }
                match status.map_err(|e| failed(format!("wait: {e}")))? {
                    WaitStatus::Exited(_, code) => Ok(code),
                    WaitStatus::Signaled(_, sig, _) => Ok(128 + sig as i32),
                    other => Ok(128
                        + match other {
                            WaitStatus::Stopped(_, s) => s as i32,
                            _ => 0,
                        }),
                }
            }
        }
    }

    /// In the first child: enter, fork into the PID namespace, prove, drop
    /// privileges, exec. Returns only an error message.
    fn enter_and_exec(&self, exec: &Exec, pty_sock: Option<RawFd>, err_fd: RawFd) -> String {
        if pty_sock.is_none() {
            // No terminal of ours is passed on, and the controlling one is
            // given up, so that /dev/tty inside cannot reach it either.
            // SAFETY: open/ioctl/close on /dev/tty, which may not exist.
            unsafe {
                let fd = libc::open(
                    c"/dev/tty".as_ptr(),
                    libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
                );
                if fd >= 0 {
                    libc::ioctl(fd, libc::TIOCNOTTY);
                    libc::close(fd);
                }
            }
        }
        let mut flags = CHECKED_NS.iter().fold(0, |f, (_, c)| f | c);
        if self.user_ns.is_some() {
            flags |= libc::CLONE_NEWUSER;
        }
        // SAFETY: setns(2) with a pidfd and namespace flags (Linux >= 5.8).
        if unsafe { libc::setns(self.leader.pidfd().as_raw_fd(), flags) } != 0 {
            return format!(
                "cannot enter its namespaces: {}",
                std::io::Error::last_os_error()
            );
        }
        if self.user_ns.is_some() {
            // Our host uid is not mapped in the container's user namespace;
            // become its root, as nsenter does (setgroups may be denied
            // there, which leaves no supplementary groups to drop anyway).
            // SAFETY: credential calls with constant arguments.
            unsafe {
                if libc::setgroups(0, std::ptr::null()) != 0
                    && std::io::Error::last_os_error().raw_os_error() != Some(libc::EPERM)
                {
                    return format!("setgroups: {}", std::io::Error::last_os_error());
                }
                if libc::setgid(0) != 0 || libc::setuid(0) != 0 {
                    return format!(
                        "cannot become the container's root: {}",
                        std::io::Error::last_os_error()
                    );
                }
            }
        }

        // The init's root, not whatever root the mount namespace has.
        // SAFETY: fchdir/chroot on a descriptor and a constant path.
        if unsafe { libc::fchdir(self.root.as_raw_fd()) } != 0
            || unsafe { libc::chroot(c".".as_ptr()) } != 0
        {
            return format!(
                "cannot change to its root: {}",
                std::io::Error::last_os_error()
            );
        }
        // A new PID namespace takes effect for children only.
        // SAFETY: as above, single-threaded; the grandchild execs or _exits.
        match unsafe { libc::fork() } {
            -1 => format!("fork: {}", std::io::Error::last_os_error()),
            0 => {
                let e = self.prove_drop_exec(exec, pty_sock);
                // SAFETY: err_fd is the inherited pipe's write end.
                let _ = unsafe { libc::write(err_fd, e.as_ptr().cast(), e.len()) };
                unsafe { libc::_exit(125) }
            }
            pid => {
                // SAFETY: err_fd belongs to the grandchild now.
                unsafe { libc::close(err_fd) };
                if let Some(s) = pty_sock {
                    // SAFETY: as err_fd: only the grandchild sends on it.
                    unsafe { libc::close(s) };
                }

                let mut status = 0;
                loop {
                    // SAFETY: waiting for our own child.
                    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
                    if r == pid
                        || (r == -1
                            && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR))
                    {
                        break;
                    }
                }
                // SAFETY: pass the grandchild's fate on as our own.
                unsafe {
                    if libc::WIFSIGNALED(status) {
                        let sig = libc::WTERMSIG(status);
                        libc::signal(sig, libc::SIG_DFL);
                        libc::kill(libc::getpid(), sig);
                    }
                    libc::_exit(if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else {
                        125
                    })
                }
            }
        }
    }

    fn prove_drop_exec(&self, exec: &Exec, pty_sock: Option<RawFd>) -> String {
        let Exec {
            candidates,
            argv,
            env,
            cwd,
            last_cap,
        } = exec;
        if let Err(e) = self.prove() {
            return e;
        }
        // A pty of the container's own, opened from its /dev/ptmx.
        let slave = match pty_sock.map(crate::pty::open_inside) {
            Some(Ok(fd)) => Some(fd),
            Some(Err(e)) => return e,
            None => None,
        };
        if let Err(e) = drop_privileges(self.cap_bnd, *last_cap) {
            return e;
        }
        if let Some(fd) = slave {
            // SAFETY: a new session whose controlling terminal is our pty.
            unsafe {
                libc::setsid();
                if libc::ioctl(fd, libc::TIOCSCTTY, 0) != 0 {
                    return format!(
                        "cannot take the terminal: {}",
                        std::io::Error::last_os_error()
                    );
                }
                for target in 0..3 {
                    libc::dup2(fd, target);
                }
                if fd > 2 {
                    libc::close(fd);
                }
            }
        }
        // SAFETY: chdir with a C string; a missing directory falls back to "/".
        unsafe {
            if libc::chdir(cwd.as_ptr()) != 0 {
                libc::chdir(c"/".as_ptr());
            }
        }
        let mut args: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        args.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
        envp.push(std::ptr::null());
        // As execvpe does, but along the PATH for inside: the first
        // candidate that exists runs; EACCES is reported if nothing ran.
        let mut error = libc::ENOENT;
        for c in candidates {
            // SAFETY: NULL-terminated arrays of C strings that outlive the call.
            unsafe { libc::execve(c.as_ptr(), args.as_ptr(), envp.as_ptr()) };
            let e = std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::ENOENT);
            if e == libc::EACCES {
                error = e;
            } else if e != libc::ENOENT && e != libc::ENOTDIR {
                error = e;
                break;
            }
        }
        format!(
            "cannot run '{}': {} (PATH inside: the system's sw/bin, /run/current-system/sw/bin, …)",
            argv[0].to_string_lossy(),
            std::io::Error::from_raw_os_error(error)
        )
    }

    /// Inside (in the PID namespace, under the init's root): is this the
    /// container? "/" must be the init's root, our namespaces the init's,
    /// and the /proc we see must show the init as PID 1.
    fn prove(&self) -> std::result::Result<(), String> {
        let root = std::fs::metadata("/").map_err(|e| format!("cannot stat '/': {e}"))?;
        if (root.dev(), root.ino()) != self.root_id {
            return Err("'/' here is not the root of the container's init".into());
        }
        for (name, ino) in &self.ns {
            if own_ns_inode(name) != Some(*ino) {
                return Err(format!(
                    "this process is not in the init's {name} namespace (is the container's /proc mounted?)"
                ));
            }
        }
        if let Some(u) = self.user_ns {
            if own_ns_inode("user") != Some(u) {
                return Err("this process is not in the container's user namespace".into());
            }
        }
        let stat = std::fs::read_to_string("/proc/1/stat")
            .map_err(|e| format!("cannot read the container's /proc/1: {e}"))?;
        let start = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_ascii_whitespace().nth(19))
            .and_then(|s| s.parse::<u64>().ok());
        if start != Some(self.leader.start_time) {
            return Err("PID 1 here is not the container's init".into());
        }
        Ok(())
    }
}

/// Keeps only the capabilities in `bounding` (the init's bounding set), in
/// every set, and sets no_new_privs: nothing run inside can do more than
/// the container's own processes could.
fn drop_privileges(bounding: u64, last_cap: u32) -> std::result::Result<(), String> {
    for cap in 0..=last_cap.min(63) {
        if bounding & (1 << cap) == 0 {
            // SAFETY: prctl with integer arguments.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) } != 0 {
                return Err(format!(
                    "cannot drop capability {cap}: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
    }
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut hdr = Header {
        version: 0x2008_0522,
        pid: 0,
    }; // _LINUX_CAPABILITY_VERSION_3
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with a version 3 header and two data words.
    unsafe {
        if libc::syscall(libc::SYS_capget, &mut hdr as *mut Header, data.as_mut_ptr()) != 0 {
            return Err(format!("capget: {}", std::io::Error::last_os_error()));
        }
        for (i, d) in data.iter_mut().enumerate() {
            let mask = (bounding >> (32 * i)) as u32;
            d.effective &= mask;
            d.permitted &= mask;
            d.inheritable &= mask;
        }
        if libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, data.as_ptr()) != 0 {
            return Err(format!("capset: {}", std::io::Error::last_os_error()));
        }
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Whether any of our standard input, output or error is a terminal: then
/// the program inside gets a pty of its own for all three.
pub fn any_terminal() -> bool {
    let t = |fd: std::os::fd::BorrowedFd| nix::unistd::isatty(fd).unwrap_or(false);
    t(std::io::stdin().as_fd()) || t(std::io::stdout().as_fd()) || t(std::io::stderr().as_fd())
}

/// The environment of a program run inside: NixOS's system path first (the
/// profile's store path, read-only inside), then the container's own.
pub fn environment(system: Option<&str>) -> Vec<(String, String)> {
    let mut path = Vec::new();
    if let Some(s) = system {
        path.push(format!("{s}/sw/bin"));
    }
    path.extend(
        [
            "/run/current-system/sw/bin",
            "/run/wrappers/bin",
            "/nix/var/nix/profiles/default/bin",
            "/usr/bin",
            "/bin",
        ]
        .map(String::from),
    );
    let mut env = vec![
        ("PATH".to_owned(), path.join(":")),
        ("HOME".to_owned(), "/root".to_owned()),
        ("USER".to_owned(), "root".to_owned()),
        ("LOGNAME".to_owned(), "root".to_owned()),
        ("container".to_owned(), "systemd-nspawn".to_owned()),
    ];
    if let Ok(t) = std::env::var("TERM") {
        env.push(("TERM".to_owned(), t));
    }
    env
}

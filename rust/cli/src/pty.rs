//! A pseudo-terminal for a session inside a container, relayed to ours. The
//! program inside never holds the host's terminal (with it, TIOCSTI could
//! type commands into the shell the user returns to); it gets the slave of
//! a pty of its own, and our terminal is put in raw mode while the relay
//! copies keystrokes in and output out (and the window size along).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg, Termios};
use nix::unistd::Pid;

use crate::error::{failed, Result};

pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

pub struct Relay {
    thread: JoinHandle<()>,
    stop: Arc<AtomicBool>,
    restore: Option<Termios>,
}

fn window_size(fd: &impl AsFd) -> Option<libc::winsize> {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize on our stack.
    (unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } == 0).then_some(ws)
}

fn set_window_size(fd: &impl AsFd, ws: &libc::winsize) {
    // SAFETY: TIOCSWINSZ reads a winsize.
    unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSWINSZ, ws) };
}

impl Pty {
    pub fn open() -> Result<Pty> {
        let p = nix::pty::openpty(None, None)
            .map_err(|e| failed(format!("cannot open a pseudo-terminal: {e}")))?;
        if let Some(ws) = window_size(&std::io::stdin()) {
            set_window_size(&p.master, &ws);
        }
        // Inherited across fork by the child; closed on exec of anything else.
        nix::fcntl::fcntl(
            &p.master,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        )
        .map_err(|e| failed(format!("fcntl: {e}")))?;
        Ok(Pty {
            master: p.master,
            slave: p.slave,
        })
    }

    /// In the parent after fork: our terminal raw, and a thread copying
    /// between it and the pty until the session closes the pty or
    /// [`Relay::finish`] stops it.
    pub fn relay_in_background(self, _child: Pid) -> Relay {
        drop(self.slave);
        let stdin = std::io::stdin();
        let restore = termios::tcgetattr(&stdin).ok();
        if let Some(t) = &restore {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let master = self.master;
        let thread = std::thread::spawn(move || copy_loop(master, flag));
        Relay {
            thread,
            stop,
            restore,
        }
    }
}

fn copy_loop(master: OwnedFd, stop: Arc<AtomicBool>) {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut size = window_size(&stdin).map(|w| (w.ws_row, w.ws_col));
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    let mut drain_rounds = 0;
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        if stopping {
            // The program inside exited: pass on what is left, briefly.
            drain_rounds += 1;
            if drain_rounds > 5 {
                break;
            }
        }
        if let Some(ws) = window_size(&stdin) {
            if size != Some((ws.ws_row, ws.ws_col)) {
                size = Some((ws.ws_row, ws.ws_col));
                set_window_size(&master, &ws);
            }
        }
        let mut fds = vec![PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if stdin_open && !stopping {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::from(100u8)) {
            Ok(0) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
            Ok(_) => {}
        }
        let master_ready = fds[0].revents().unwrap_or(PollFlags::empty());
        let stdin_ready = fds
            .get(1)
            .and_then(|f| f.revents())
            .unwrap_or(PollFlags::empty());
        if !master_ready.is_empty() {
            match nix::unistd::read(&master, &mut buf) {
                Ok(0) | Err(_) => break, // EIO: every holder of the slave is gone
                Ok(n) => {
                    if write_all(&stdout, &buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        if !stdin_ready.is_empty() {
            match nix::unistd::read(&stdin, &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let _ = write_all(&master, &buf[..n]);
                }
            }
        }
    }
}

fn write_all(fd: &impl AsFd, mut b: &[u8]) -> nix::Result<()> {
    while !b.is_empty() {
        match nix::unistd::write(fd, b) {
            Ok(n) => b = &b[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Relay {
    /// After the program exited: drain, stop, restore our terminal.
    pub fn finish(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        if let Some(t) = &self.restore {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, t);
        }
    }
}

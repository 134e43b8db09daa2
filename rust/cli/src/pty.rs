//! A pseudo-terminal for a session inside a container, relayed to ours. The
//! program inside never holds the host's terminal (with it, TIOCSTI could
//! type commands into the shell the user returns to). Its pty is opened
//! inside the container, from the container's own /dev/ptmx, so that it has
//! a name there (login, su and utmp need one), and the master end is passed
//! to us over a socket (SCM_RIGHTS), as machined does for `machinectl
//! shell`. Our terminal is put in raw mode while the relay copies keystrokes
//! in and output out (and the window size along).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::sys::termios::{self, SetArg, Termios};

use crate::error::{failed, Result};

/// The two ends of the socket the master end travels through.
pub struct Channel {
    pub ours: OwnedFd,
    pub theirs: OwnedFd,
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

impl Channel {
    pub fn new() -> Result<Channel> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| failed(format!("socketpair: {e}")))?;
        Ok(Channel { ours, theirs })
    }
}

/// Inside the container (after fork, before exec; only system calls): opens
/// a pty from its /dev/ptmx, sends the master end through `sock`, and
/// returns the slave end, or an error message.
pub fn open_inside(sock: RawFd) -> std::result::Result<RawFd, String> {
    let err = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    // SAFETY: the classic posix_openpt sequence on descriptors we own, and
    // one sendmsg with a stack-built SCM_RIGHTS control message.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if master < 0 {
            return Err(err("cannot open the container's /dev/ptmx"));
        }
        if libc::grantpt(master) != 0 || libc::unlockpt(master) != 0 {
            return Err(err("cannot unlock the pty"));
        }
        let mut name = [0 as libc::c_char; 128];
        if libc::ptsname_r(master, name.as_mut_ptr(), name.len()) != 0 {
            return Err(err("ptsname"));
        }
        let slave = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        if slave < 0 {
            return Err(err("cannot open the pty's slave"));
        }
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let space = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
        let mut cbuf = [0u8; 64];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::copy_nonoverlapping(
            (&master as *const RawFd).cast::<u8>(),
            libc::CMSG_DATA(cmsg),
            std::mem::size_of::<RawFd>(),
        );
        if libc::sendmsg(sock, &msg, 0) < 0 {
            return Err(err("cannot pass the pty on"));
        }
        libc::close(master);
        libc::close(sock);
        Ok(slave)
    }
}

/// In the parent: the master end sent by [`open_inside`] (None: the child
/// failed before, and its error comes through the error pipe).
pub fn receive(sock: &OwnedFd) -> Option<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cbuf = [0u8; 64];
    // SAFETY: recvmsg into stack buffers; the descriptor, if any, is ours.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = cbuf.len();
        if libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) <= 0 {
            return None;
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
        {
            return None;
        }
        let mut fd: RawFd = -1;
        std::ptr::copy_nonoverlapping(
            libc::CMSG_DATA(cmsg),
            (&mut fd as *mut RawFd).cast::<u8>(),
            std::mem::size_of::<RawFd>(),
        );
        (fd >= 0).then(|| OwnedFd::from_raw_fd(fd))
    }
}

/// Our terminal raw, and a thread copying between it and `master` until
/// the session closes the pty or [`Relay::finish`] stops it.
pub fn relay_in_background(master: OwnedFd) -> Relay {
    let stdin = std::io::stdin();
    if let Some(ws) = window_size(&stdin).or_else(|| window_size(&std::io::stdout())) {
        set_window_size(&master, &ws);
    }
    let restore = termios::tcgetattr(&stdin).ok();
    if let Some(t) = &restore {
        let mut raw = t.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || copy_loop(master, flag));
    Relay {
        thread,
        stop,
        restore,
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
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
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
                Ok(0) | Err(_) => {
                    // End of our input: end of input for the session too.
                    stdin_open = false;
                    let _ = write_all(&master, &[4]);
                }
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

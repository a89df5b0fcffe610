//! larder under systemd, without libsystemd. Socket activation: the
//! listening sockets systemd opened for larder ([`inherited_listeners`]).
//! The notification protocol (`Type=notify`): one datagram per state
//! change to the Unix socket named by
//! `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace).
//! `EXTEND_TIMEOUT_USEC` while starting, `READY=1` once the port is open,
//! `STOPPING=1` when a stop begins, `WATCHDOG=1` at half the
//! `WatchdogSec` systemd asks for. Without
//! `NOTIFY_SOCKET` (not under systemd) every call does nothing.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub struct Notifier {
    socket: UnixDatagram,
    target: SocketAddr,
}

impl Notifier {
    /// The notifier systemd asked for, if it did.
    pub fn from_env() -> Option<Notifier> {
        let name = std::env::var_os("NOTIFY_SOCKET")?;
        let name = name.to_str()?;
        let target = match name.strip_prefix('@') {
            Some(abstract_name) => {
                use std::os::linux::net::SocketAddrExt;
                SocketAddr::from_abstract_name(abstract_name.as_bytes()).ok()?
            }
            None if name.starts_with('/') => SocketAddr::from_pathname(name).ok()?,
            None => return None,
        };
        let socket = UnixDatagram::unbound().ok()?;
        Some(Notifier { socket, target })
    }

    /// Sends `state` (`KEY=value` lines). A lost notification is logged,
    /// never fatal: the server serves either way.
    pub fn send(&self, state: &str) {
        if let Err(error) = self.socket.send_to_addr(state.as_bytes(), &self.target) {
            tracing::warn!(%error, state, "cannot notify systemd");
        }
    }
}

/// How often to tell systemd's watchdog that larder is alive: half of
/// `WATCHDOG_USEC`, if it is meant for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Some(pid) = std::env::var("WATCHDOG_PID").ok().and_then(|pid| pid.parse::<u32>().ok()) {
        if pid != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Whether the sockets systemd passed have been taken: each is owned by
/// one listener, once.
static INHERITED_TAKEN: AtomicBool = AtomicBool::new(false);

/// The listening sockets systemd passed to this process (`LISTEN_FDS`,
/// from file descriptor 3 on, when `LISTEN_PID` is ours), in the order of
/// the socket unit's `ListenStream=` lines; empty when not socket
/// activated. They are handed out once: a second call gets none.
pub fn inherited_listeners() -> Result<Vec<std::net::TcpListener>, String> {
    const FIRST: libc::c_int = 3;
    let ours = std::env::var("LISTEN_PID").ok().and_then(|pid| pid.parse::<u32>().ok()) == Some(std::process::id());
    let count: libc::c_int = std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse().ok()).unwrap_or(0);
    if !ours || count <= 0 || INHERITED_TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(Vec::new());
    }
    let mut listeners = Vec::new();
    for fd in FIRST..FIRST + count {
        let mut kind: libc::c_int = 0;
        let mut length = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `length` bytes into `kind`, a
        // c_int that lives across the call; on a descriptor that is not an
        // open socket it fails and writes nothing.
        let answered = unsafe {
            libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_TYPE, (&mut kind as *mut libc::c_int).cast(), &mut length)
        };
        if answered != 0 || kind != libc::SOCK_STREAM {
            return Err(format!("socket activation: file descriptor {fd} is not a listening stream socket"));
        }
        // SAFETY: `fd` is an open stream socket (getsockopt answered for
        // it) that systemd passed to this process for larder to own
        // (LISTEN_PID is ours), and INHERITED_TAKEN makes this the only
        // place that ever takes it, so the listener is its sole owner.
        let listener = unsafe { <std::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        listener.set_nonblocking(true).map_err(|error| format!("socket activation: {error}"))?;
        listeners.push(listener);
    }
    Ok(listeners)
}

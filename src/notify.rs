//! systemd's notification protocol (`Type=notify`), without libsystemd:
//! one datagram per state change to the Unix socket named by
//! `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace).
//! `EXTEND_TIMEOUT_USEC` while starting, `READY=1` once the port is open,
//! `STOPPING=1` when a stop begins, `WATCHDOG=1` at half the
//! `WatchdogSec` systemd asks for. Without
//! `NOTIFY_SOCKET` (not under systemd) every call does nothing.

use std::os::unix::net::{SocketAddr, UnixDatagram};
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

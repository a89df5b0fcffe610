//! What keeps one client from starving the rest: a cap on connections per
//! client address, and a connection that fails when the client stops
//! reading its answer.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// Open connections by client address.
pub struct ClientSlots {
    open: Mutex<HashMap<IpAddr, usize>>,
    per_client: usize,
}

/// One connection's place in [`ClientSlots`], given back on drop.
pub struct ClientSlot {
    slots: Arc<ClientSlots>,
    address: IpAddr,
}

impl ClientSlots {
    pub fn new(per_client: usize) -> Arc<ClientSlots> {
        Arc::new(ClientSlots { open: Mutex::new(HashMap::new()), per_client })
    }

    /// A slot for one more connection from `address`, if it has fewer
    /// than its share open.
    pub fn take(self: &Arc<Self>, address: IpAddr) -> Option<ClientSlot> {
        let address = client_of(address);
        let mut open = self.open.lock().unwrap_or_else(|poison| poison.into_inner());
        let count = open.entry(address).or_insert(0);
        if *count >= self.per_client {
            return None;
        }
        *count += 1;
        Some(ClientSlot { slots: self.clone(), address })
    }
}

/// Whom an address stands for: an IPv4 address itself, an IPv6 address
/// its /64 (one host can take any address in its /64).
fn client_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
        v4 => v4,
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

/// A connection whose writes fail once they have waited `limit` without
/// progress: an answer the client stops reading (a stalled GET) frees
/// its connection and its file instead of holding them for ever.
pub struct WriteStallLimit<T> {
    inner: T,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteStallLimit<T> {
    pub fn new(inner: T, limit: Duration) -> WriteStallLimit<T> {
        WriteStallLimit { inner, limit, stalled: None }
    }

    /// After a write that could not proceed: still waiting, or given up.
    fn waited(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let limit = self.limit;
        let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading")),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteStallLimit<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteStallLimit<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.waited(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.waited(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.waited(cx).map(Err),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_per_client_are_counted_and_given_back() {
        let slots = ClientSlots::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = slots.take(a).unwrap();
        let _second = slots.take(a).unwrap();
        assert!(slots.take(a).is_none());
        let _other = slots.take(b).unwrap();
        drop(first);
        assert!(slots.take(a).is_some());
        // One IPv6 host is its /64.
        let v6 = ClientSlots::new(1);
        let _held = v6.take("fd00::1".parse().unwrap()).unwrap();
        assert!(v6.take("fd00::ffff:2".parse().unwrap()).is_none());
        assert!(v6.take("fd00:0:0:1::1".parse().unwrap()).is_some());
    }
}

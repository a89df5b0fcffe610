//! Bodies: the request body as the handlers read it (with an idle timeout
//! and size limits), and the response bodies they build.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http_body::{Body, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use tokio::sync::mpsc;

use crate::checksum::MultiHasher;
use crate::store::ExpectedDigests;

use super::error::S3Error;

pub type ResponseBody = BoxBody<Bytes, io::Error>;

pub fn empty() -> ResponseBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// A response body fed by the store's reader.
pub fn stream(receiver: mpsc::Receiver<io::Result<Bytes>>) -> ResponseBody {
    ChannelBody { receiver }.boxed()
}

struct ChannelBody {
    receiver: mpsc::Receiver<io::Result<Bytes>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.receiver.poll_recv(cx).map(|chunk| chunk.map(|result| result.map(Frame::data)))
    }
}

/// A response body that reports, when it ends or is dropped (the client
/// went away), how many bytes it handed to the connection.
pub fn metered(inner: ResponseBody, on_end: impl FnOnce(u64) + Send + Sync + 'static) -> ResponseBody {
    MeteredBody { inner, sent: 0, on_end: Some(Box::new(on_end)) }.boxed()
}

type OnEnd = Box<dyn FnOnce(u64) + Send + Sync>;

struct MeteredBody {
    inner: ResponseBody,
    sent: u64,
    on_end: Option<OnEnd>,
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.sent += data.len() as u64;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        if let Some(on_end) = self.on_end.take() {
            on_end(self.sent);
        }
    }
}

pub fn request_timeout() -> S3Error {
    S3Error::new(
        "RequestTimeout",
        StatusCode::BAD_REQUEST,
        "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.",
    )
}

pub fn incomplete_body() -> S3Error {
    S3Error::new(
        "IncompleteBody",
        StatusCode::BAD_REQUEST,
        "You did not provide the number of bytes specified by the Content-Length HTTP header.",
    )
}

/// How slowly a body may arrive: at least `bytes_per_sec` on average over
/// every `window`, and never silent for longer than `idle`.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub idle: Duration,
    pub bytes_per_sec: u64,
    pub window: Duration,
}

/// The current window of [`Pace`]: since when, and how much came.
#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    bytes: u64,
    last_data: Instant,
}

/// The request body, read at most once. Every byte read through it is
/// checked against the digests the request declared (see [`BodyCheck`]),
/// so no handler can act on a body its signature does not cover.
pub struct RequestBody {
    incoming: Option<Incoming>,
    pace: Pace,
    /// Set when reading starts (a 100 Continue goes out only then).
    window: Option<Window>,
    /// Bytes read so far.
    pub received: u64,
    check: BodyCheck,
}

/// What the body must hash to, and the running hashes. A mismatch is
/// reported in place of the body's end, so a reader never sees a
/// complete body that was not the one signed.
#[derive(Default)]
enum BodyCheck {
    /// Nothing declared (or the check was handed to the store).
    #[default]
    None,
    Digests(Box<RunningDigests>),
    /// The body broke off: every later read fails too.
    Failed,
    /// An aws-chunked body: only the decoder, which checks each chunk's
    /// signature, may read it; the digests apply to the decoded bytes.
    AwsChunked(ExpectedDigests),
}

struct RunningDigests {
    expected: ExpectedDigests,
    hasher: MultiHasher,
}

impl BodyCheck {
    fn of(expected: ExpectedDigests) -> BodyCheck {
        if expected.md5.is_none() && expected.payload_sha256.is_none() && expected.checksum.is_none() {
            return BodyCheck::None;
        }
        let hasher = MultiHasher::new(expected.digest_set(None));
        BodyCheck::Digests(Box::new(RunningDigests { expected, hasher }))
    }

    fn update(&mut self, data: &[u8]) {
        if let BodyCheck::Digests(running) = self {
            running.hasher.update(data);
        }
    }

    /// At the body's end: does what was read match what was declared? The
    /// same check the store makes of an upload before it commits.
    fn finish(&mut self) -> Result<(), S3Error> {
        let BodyCheck::Digests(running) = std::mem::take(self) else {
            return Ok(());
        };
        let RunningDigests { expected, hasher } = *running;
        expected.check(&hasher.finish()).map_err(S3Error::from)
    }
}

fn aws_chunked_not_accepted() -> S3Error {
    S3Error::invalid_request("An aws-chunked payload is accepted only by PutObject and UploadPart.")
}

impl Window {
    /// At a window's end: was enough sent? Then a new window begins.
    fn check(&mut self, pace: Pace) -> Result<(), S3Error> {
        let elapsed = self.start.elapsed();
        if u128::from(self.bytes) * 1000 < u128::from(pace.bytes_per_sec) * elapsed.as_millis() {
            return Err(request_timeout());
        }
        let now = Instant::now();
        *self = Window { start: now, bytes: 0, last_data: self.last_data };
        Ok(())
    }
}

impl RequestBody {
    pub fn new(incoming: Incoming, pace: Pace) -> RequestBody {
        RequestBody { incoming: Some(incoming), pace, window: None, received: 0, check: BodyCheck::None }
    }

    /// From now on, the body read must match `expected` (the signed
    /// payload hash, Content-MD5, an `x-amz-checksum-*` header).
    pub fn expect(&mut self, expected: ExpectedDigests) {
        self.check = BodyCheck::of(expected);
    }

    /// Marks the body as aws-chunked: it may be read only after
    /// [`RequestBody::hand_over_check`], by the decoder.
    pub fn expect_aws_chunked(&mut self, expected: ExpectedDigests) {
        self.check = BodyCheck::AwsChunked(expected);
    }

    /// For a reader that checks the body itself (an upload: the store
    /// hashes what it writes and checks before it commits, so hashing
    /// here too would only cost time). Returns what to check.
    pub fn hand_over_check(&mut self) -> ExpectedDigests {
        match std::mem::take(&mut self.check) {
            BodyCheck::Digests(running) => running.expected,
            BodyCheck::AwsChunked(expected) => expected,
            BodyCheck::None | BodyCheck::Failed => ExpectedDigests::default(),
        }
    }

    /// Has any of the body been read (so a 100 Continue went out)?
    pub fn touched(&self) -> bool {
        self.received > 0 || self.incoming.is_none()
    }

    /// The next data chunk; `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, S3Error> {
        match self.check {
            BodyCheck::AwsChunked(_) => return Err(aws_chunked_not_accepted()),
            BodyCheck::Failed => return Err(incomplete_body()),
            _ => {}
        }
        let Some(incoming) = self.incoming.as_mut() else {
            return Ok(None);
        };
        let pace = self.pace;
        let now = Instant::now();
        let window = self.window.get_or_insert(Window { start: now, bytes: 0, last_data: now });
        loop {
            // Wake at whichever comes first: the idle limit, or the end of
            // the window, where a trickle too thin to use is cut off.
            let idle_deadline = window.last_data + pace.idle;
            let window_end = window.start + pace.window;
            let deadline = if pace.bytes_per_sec > 0 { idle_deadline.min(window_end) } else { idle_deadline };
            let frame = match tokio::time::timeout_at(deadline.into(), incoming.frame()).await {
                Ok(frame) => frame,
                Err(_) if Instant::now() >= idle_deadline => return Err(request_timeout()),
                Err(_) => {
                    window.check(pace)?;
                    continue;
                }
            };
            match frame {
                None => {
                    self.incoming = None;
                    return self.check.finish().map(|()| None);
                }
                Some(Err(_)) => {
                    // Never a clean end after this: the check fails for good.
                    self.incoming = None;
                    self.check = BodyCheck::Failed;
                    return Err(incomplete_body());
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        window.bytes += data.len() as u64;
                        window.last_data = Instant::now();
                        if pace.bytes_per_sec > 0 && window.last_data >= window_end {
                            window.check(pace)?;
                        }
                        self.received += data.len() as u64;
                        self.check.update(&data);
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// Moves the body out, leaving an empty one, for a reader that must
    /// hold it while the request context is in use elsewhere.
    pub fn take(&mut self) -> RequestBody {
        let empty = RequestBody {
            incoming: None,
            pace: self.pace,
            window: self.window,
            received: self.received,
            check: BodyCheck::None,
        };
        std::mem::replace(self, empty)
    }

    /// Has the whole body been read (or was there none)?
    pub fn is_complete(&self) -> bool {
        self.incoming.as_ref().is_none_or(Body::is_end_stream)
    }

    /// Reads a small body whole (XML documents); larger than `limit` is
    /// MaxMessageLengthExceeded.
    pub async fn read_to_end(&mut self, limit: usize) -> Result<Bytes, S3Error> {
        let mut out = BytesMut::new();
        while let Some(chunk) = self.next_chunk().await? {
            if out.len() + chunk.len() > limit {
                return Err(S3Error::new(
                    "MaxMessageLengthExceeded",
                    StatusCode::BAD_REQUEST,
                    "Your request was too big.",
                ));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out.freeze())
    }

    /// Reads and drops up to `limit` more bytes, so that an error answer to
    /// an upload reaches a client that does not wait for 100 Continue.
    pub async fn drain(&mut self, limit: u64) {
        self.check = BodyCheck::None;
        let start = self.received;
        while self.received - start < limit {
            match self.next_chunk().await {
                Ok(Some(_)) => {}
                _ => return,
            }
        }
    }
}

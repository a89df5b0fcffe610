//! Bodies: the request body as the handlers read it (with an idle timeout
//! and size limits), and the response bodies they build.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http_body::{Body, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use tokio::sync::mpsc;

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

/// The request body, read at most once.
pub struct RequestBody {
    incoming: Option<Incoming>,
    idle_timeout: Duration,
    /// Bytes read so far.
    pub received: u64,
}

impl RequestBody {
    pub fn new(incoming: Incoming, idle_timeout: Duration) -> RequestBody {
        RequestBody { incoming: Some(incoming), idle_timeout, received: 0 }
    }

    /// Has any of the body been read (so a 100 Continue went out)?
    pub fn touched(&self) -> bool {
        self.received > 0 || self.incoming.is_none()
    }

    /// The next data chunk; `None` at the end.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, S3Error> {
        let Some(incoming) = self.incoming.as_mut() else {
            return Ok(None);
        };
        loop {
            let frame =
                tokio::time::timeout(self.idle_timeout, incoming.frame()).await.map_err(|_| request_timeout())?;
            match frame {
                None => {
                    self.incoming = None;
                    return Ok(None);
                }
                Some(Err(_)) => {
                    self.incoming = None;
                    return Err(incomplete_body());
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.received += data.len() as u64;
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// Moves the body out, leaving an empty one, for a reader that must
    /// hold it while the request context is in use elsewhere.
    pub fn take(&mut self) -> RequestBody {
        let empty = RequestBody { incoming: None, idle_timeout: self.idle_timeout, received: self.received };
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
        let start = self.received;
        while self.received - start < limit {
            match self.next_chunk().await {
                Ok(Some(_)) => {}
                _ => return,
            }
        }
    }
}

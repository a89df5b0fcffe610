//! aws-chunked request bodies: `<hex size>[;chunk-signature=<sig>]\r\n
//! <data>\r\n` ... a final empty chunk, then optional trailer lines. The
//! three flavours S3 takes are told apart by `x-amz-content-sha256`:
//! signed chunks, signed chunks with a signed trailer, and unsigned chunks
//! with a trailer. Decoded bytes stream on as they arrive; a chunk's
//! signature is checked at its end, and any failure fails the whole upload
//! before anything is committed.

use bytes::{Buf, Bytes, BytesMut};
use http::StatusCode;
use sha2::{Digest, Sha256};

use crate::sigv4::ChunkChain;

use super::body::{incomplete_body, RequestBody};
use super::error::S3Error;

/// Longest chunk header or trailer line accepted.
const MAX_LINE: usize = 4096;
/// Most trailer lines accepted.
const MAX_TRAILERS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`
    Signed,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`
    SignedWithTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`
    UnsignedWithTrailer,
}

impl Flavour {
    pub fn from_content_sha256(value: &str) -> Option<Flavour> {
        match value {
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" => Some(Flavour::Signed),
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => Some(Flavour::SignedWithTrailer),
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => Some(Flavour::UnsignedWithTrailer),
            _ => None,
        }
    }

    fn signed(self) -> bool {
        self != Flavour::UnsignedWithTrailer
    }

    fn has_trailer(self) -> bool {
        self != Flavour::Signed
    }
}

/// Where the encoded bytes come from: the request body, or any other
/// source of chunks (fuzzing feeds the decoder through this).
pub trait ByteSource {
    /// The next chunk; `None` at the end.
    fn next_chunk(&mut self) -> impl std::future::Future<Output = Result<Option<Bytes>, S3Error>> + Send;
}

/// A body held in memory, in the frames it arrived in (tests, fuzzing).
impl ByteSource for std::collections::VecDeque<Bytes> {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, S3Error> {
        Ok(self.pop_front())
    }
}

impl ByteSource for RequestBody {
    fn next_chunk(&mut self) -> impl std::future::Future<Output = Result<Option<Bytes>, S3Error>> + Send {
        RequestBody::next_chunk(self)
    }
}

pub struct AwsChunkedBody<'a, B: ByteSource = RequestBody> {
    body: &'a mut B,
    flavour: Flavour,
    chain: Option<ChunkChain>,
    buffer: BytesMut,
    /// Data bytes left in the current chunk; `None` between chunks.
    remaining: Option<u64>,
    signature: Option<String>,
    hasher: Option<Sha256>,
    done: bool,
    decoded: u64,
    declared: u64,
    trailers: Vec<(String, String)>,
}

fn signature_mismatch() -> S3Error {
    S3Error::new(
        "SignatureDoesNotMatch",
        StatusCode::FORBIDDEN,
        "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
    )
}

fn malformed_trailer() -> S3Error {
    S3Error::new(
        "MalformedTrailerError",
        StatusCode::BAD_REQUEST,
        "The request contained trailing data that was not well-formed or did not conform to our published schema.",
    )
}

impl<'a, B: ByteSource> AwsChunkedBody<'a, B> {
    /// `chain` is required for the signed flavours; `declared` is
    /// `x-amz-decoded-content-length`.
    pub fn new(body: &'a mut B, flavour: Flavour, chain: Option<ChunkChain>, declared: u64) -> Self {
        AwsChunkedBody {
            body,
            flavour,
            chain,
            buffer: BytesMut::new(),
            remaining: None,
            signature: None,
            hasher: None,
            done: false,
            decoded: 0,
            declared,
            trailers: Vec::new(),
        }
    }

    /// Trailer lines, names in lower case, once the body is read.
    pub fn trailers(&self) -> &[(String, String)] {
        &self.trailers
    }

    /// Reads more encoded bytes; running out is an incomplete body.
    async fn fill(&mut self) -> Result<(), S3Error> {
        match self.body.next_chunk().await? {
            Some(chunk) => {
                self.buffer.extend_from_slice(&chunk);
                Ok(())
            }
            None => Err(incomplete_body()),
        }
    }

    async fn line(&mut self) -> Result<String, S3Error> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\r\n") {
                // Too long whether it came in one piece or in several.
                if end > MAX_LINE {
                    return Err(incomplete_body());
                }
                let line = self.buffer.split_to(end);
                self.buffer.advance(2);
                return String::from_utf8(line.to_vec()).map_err(|_| incomplete_body());
            }
            // Longer than a line may be, or a whole line and its `\r`.
            if self.buffer.len() > MAX_LINE + 1 {
                return Err(incomplete_body());
            }
            self.fill().await?;
        }
    }

    async fn empty_line(&mut self) -> Result<(), S3Error> {
        if self.line().await?.is_empty() {
            Ok(())
        } else {
            Err(incomplete_body())
        }
    }

    /// The next piece of decoded data; `None` at the end of the body.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, S3Error> {
        loop {
            if self.done {
                // Read the HTTP body to its very end (with Transfer-Encoding
                // its last chunk may come later): hyper keeps the connection
                // alive only for a request read in full. Bytes after the
                // aws-chunked end are an error.
                while let Some(extra) = self.body.next_chunk().await? {
                    if !extra.is_empty() {
                        return Err(incomplete_body());
                    }
                }
                if self.decoded != self.declared || !self.buffer.is_empty() {
                    return Err(incomplete_body());
                }
                return Ok(None);
            }
            match self.remaining {
                Some(0) => {
                    self.empty_line().await?;
                    self.check_signature()?;
                    self.remaining = None;
                }
                Some(remaining) => {
                    if self.buffer.is_empty() {
                        self.fill().await?;
                    }
                    let take = usize::try_from(remaining.min(self.buffer.len() as u64)).expect("bounded by the buffer");
                    let data = self.buffer.split_to(take).freeze();
                    if let Some(hasher) = &mut self.hasher {
                        hasher.update(&data);
                    }
                    self.remaining = Some(remaining - take as u64);
                    self.decoded += take as u64;
                    return Ok(Some(data));
                }
                None => {
                    let size = self.chunk_header().await?;
                    if size > 0 {
                        self.remaining = Some(size);
                        continue;
                    }
                    // The final, empty chunk: signed too, then trailer or end.
                    self.check_signature()?;
                    if self.flavour.has_trailer() {
                        self.read_trailer().await?;
                    } else {
                        self.empty_line().await?;
                    }
                    self.done = true;
                }
            }
        }
    }

    /// Reads `<hex size>[;chunk-signature=<sig>]` and starts the chunk's hash.
    async fn chunk_header(&mut self) -> Result<u64, S3Error> {
        let line = self.line().await?;
        let (size, extensions) = line.split_once(';').unwrap_or((line.as_str(), ""));
        let size = u64::from_str_radix(size.trim(), 16).map_err(|_| incomplete_body())?;
        self.signature =
            extensions.split(';').find_map(|ext| ext.trim().strip_prefix("chunk-signature=")).map(str::to_string);
        if self.flavour.signed() && self.signature.is_none() {
            return Err(signature_mismatch());
        }
        if self.decoded.saturating_add(size) > self.declared {
            return Err(incomplete_body());
        }
        self.hasher = self.flavour.signed().then(Sha256::new);
        Ok(size)
    }

    /// Checks the signature of the chunk that just ended (signed flavours).
    fn check_signature(&mut self) -> Result<(), S3Error> {
        let (Some(chain), Some(hasher)) = (self.chain.as_mut(), self.hasher.take()) else {
            return if self.flavour.signed() { Err(signature_mismatch()) } else { Ok(()) };
        };
        let signature = self.signature.take().unwrap_or_default();
        if chain.verify_chunk(&hasher.finalize().into(), &signature) {
            Ok(())
        } else {
            Err(signature_mismatch())
        }
    }

    /// Reads `name:value` lines up to an empty line; with a signed trailer,
    /// the `x-amz-trailer-signature` line must sign the lines before it.
    async fn read_trailer(&mut self) -> Result<(), S3Error> {
        let mut canonical = Vec::new();
        let mut signature_checked = false;
        loop {
            let line = self.line().await?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').ok_or_else(malformed_trailer)?;
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
            if name == "x-amz-trailer-signature" {
                let chain = self.chain.as_mut().ok_or_else(malformed_trailer)?;
                if !chain.verify_trailer(&canonical, &value) {
                    return Err(signature_mismatch());
                }
                signature_checked = true;
                continue;
            }
            if self.trailers.len() >= MAX_TRAILERS || signature_checked {
                return Err(malformed_trailer());
            }
            canonical.extend_from_slice(format!("{name}:{value}\n").as_bytes());
            self.trailers.push((name, value));
        }
        if self.flavour == Flavour::SignedWithTrailer && !signature_checked {
            return Err(signature_mismatch());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    async fn decode(body: &[u8], frame: usize) -> Result<(Vec<u8>, Vec<(String, String)>), &'static str> {
        let mut source: VecDeque<Bytes> = body.chunks(frame).map(Bytes::copy_from_slice).collect();
        let mut decoder = AwsChunkedBody::new(&mut source, Flavour::UnsignedWithTrailer, None, 11);
        let mut data = Vec::new();
        while let Some(chunk) = decoder.next_chunk().await.map_err(|error| error.code)? {
            data.extend_from_slice(&chunk);
        }
        Ok((data, decoder.trailers().to_vec()))
    }

    /// Found by fuzzing (fuzz/fuzz_targets/aws_chunked.rs): a trailer line
    /// longer than `MAX_LINE` was taken when it came in one frame and
    /// refused when it came in several.
    #[tokio::test]
    async fn long_lines_are_refused_however_framed() {
        let long = [&b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:"[..], &[b'a'; 5000], b"\r\n\r\n"].concat();
        for frame in [1, 7, 4096, long.len()] {
            assert_eq!(decode(&long, frame).await, Err("IncompleteBody"), "frames of {frame}");
        }
        // A line of exactly MAX_LINE bytes is taken, whatever the framing.
        let name = "x-amz-checksum-crc32";
        let value = "a".repeat(MAX_LINE - name.len() - 1);
        let longest = format!("b\r\nhello world\r\n0\r\n{name}:{value}\r\n\r\n");
        for frame in [1, 7, 4096, 4097, longest.len()] {
            let (data, trailers) = decode(longest.as_bytes(), frame).await.unwrap();
            assert_eq!((data.as_slice(), trailers), (&b"hello world"[..], vec![(name.to_string(), value.clone())]));
        }
    }
}

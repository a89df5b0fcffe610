//! How an upload's bytes arrive (a plain body, or one of the aws-chunked
//! flavours), the checks made from the request head before any byte is
//! read, and the pump that feeds the decoded bytes to the store.

use http::StatusCode;

use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::sigv4::ChunkChain;
use crate::store::{ExpectedDigests, SpaceReservation, Upload};

use super::body::incomplete_body;
use super::chunked::{AwsChunkedBody, Flavour};
use super::error::S3Error;
use super::headers::header;
use super::{RequestContext, S3};

pub enum Encoding {
    Plain,
    /// `Transfer-Encoding: chunked` and no length (a pipe: `curl -T -`):
    /// the limit and the free space are checked as the bytes come.
    Streamed,
    AwsChunked {
        flavour: Flavour,
        trailer: Option<ChecksumAlgorithm>,
    },
}

/// The payload as the head describes it.
pub struct Payload {
    /// The object bytes to expect (decoded length for aws-chunked); the
    /// most allowed for a streamed body.
    pub length: u64,
    pub encoding: Encoding,
    /// The space set aside for it, given back when the payload is dropped.
    _space: SpaceReservation,
}

impl Payload {
    /// The checksum a trailer will carry, which the upload must compute.
    pub fn trailer_checksum(&self) -> Option<ChecksumAlgorithm> {
        match self.encoding {
            Encoding::AwsChunked { trailer, .. } => trailer,
            Encoding::Plain | Encoding::Streamed => None,
        }
    }
}

fn too_large(length: Option<u64>, max: u64) -> S3Error {
    let error = S3Error::new(
        "EntityTooLarge",
        StatusCode::BAD_REQUEST,
        "Your proposed upload exceeds the maximum allowed size",
    );
    match length {
        Some(length) => error.with("ProposedSize", length.to_string()),
        None => error,
    }
    .with("MaxSizeAllowed", max.to_string())
}

/// How often a streamed body checks the free space.
const STREAMED_SPACE_CHECK: u64 = 4 << 20;

fn missing_length() -> S3Error {
    S3Error::new(
        "MissingContentLength",
        StatusCode::LENGTH_REQUIRED,
        "You must provide the Content-Length HTTP header.",
    )
}

/// Reads the payload's shape from the head and checks it against `max`
/// and the free space, before a byte of the body is read.
pub fn inspect(s3: &S3, context: &RequestContext, max: u64) -> Result<Payload, S3Error> {
    let content_sha256 = context.auth.as_ref().and_then(|auth| auth.content_sha256.as_deref()).unwrap_or_default();
    let encoding = match Flavour::from_content_sha256(content_sha256) {
        Some(flavour) => {
            let trailer = match header(&context.headers, "x-amz-trailer") {
                None => None,
                Some(name) => Some(
                    ChecksumAlgorithm::ALL
                        .into_iter()
                        .find(|algorithm| algorithm.header_name().eq_ignore_ascii_case(name.trim()))
                        .ok_or_else(|| {
                            S3Error::invalid_request("The value specified in the x-amz-trailer header is not supported")
                        })?,
                ),
            };
            Encoding::AwsChunked { flavour, trailer }
        }
        None if content_sha256.starts_with("STREAMING-") => {
            return Err(S3Error::not_implemented().with("Operation", content_sha256.to_string()));
        }
        None => Encoding::Plain,
    };
    let length_header = match encoding {
        Encoding::Plain | Encoding::Streamed => "content-length",
        Encoding::AwsChunked { .. } => "x-amz-decoded-content-length",
    };
    let declared = header(&context.headers, length_header).map(|v| v.trim().parse::<u64>().ok());
    let chunked =
        header(&context.headers, "transfer-encoding").is_some_and(|value| value.trim().eq_ignore_ascii_case("chunked"));
    let (length, encoding) = match (declared, encoding) {
        (Some(Some(length)), encoding) => (length, encoding),
        // No length, but HTTP's own chunks: the body says where it ends.
        (None, Encoding::Plain) if chunked => {
            if s3.store.nearly_full() {
                return Err(S3Error::insufficient_storage());
            }
            return Ok(Payload { length: max, encoding: Encoding::Streamed, _space: super::object::reserve(s3, 0)? });
        }
        _ => return Err(missing_length()),
    };
    if length > max {
        return Err(too_large(Some(length), max));
    }
    // The declared size is set aside until the upload ends, so that
    // concurrent uploads cannot together promise more than the disk holds.
    let space = super::object::reserve(s3, length)?;
    Ok(Payload { length, encoding, _space: space })
}

/// Feeds the body's object bytes to `upload`, exactly `payload.length` of
/// them; a checksum sent as a trailer joins `expected`. On failure the
/// upload is abandoned, its temporary file gone, before the error returns.
pub async fn receive(
    s3: &S3,
    context: &mut RequestContext,
    payload: &Payload,
    mut upload: Upload,
    expected: &mut ExpectedDigests,
) -> Result<Upload, S3Error> {
    match pump(&s3.store, context, payload, &mut upload, expected).await {
        Ok(()) => Ok(upload),
        Err(error) => {
            upload.abandon().await;
            Err(error)
        }
    }
}

async fn pump(
    store: &crate::store::Store,
    context: &mut RequestContext,
    payload: &Payload,
    upload: &mut Upload,
    expected: &mut ExpectedDigests,
) -> Result<(), S3Error> {
    match payload.encoding {
        Encoding::Plain => {
            let mut received = 0u64;
            while let Some(chunk) = context.body.next_chunk().await? {
                received += chunk.len() as u64;
                if received > payload.length {
                    return Err(incomplete_body());
                }
                upload.write(chunk).await?;
            }
            if received != payload.length {
                return Err(incomplete_body());
            }
        }
        Encoding::Streamed => {
            let (mut received, mut checked) = (0u64, 0u64);
            while let Some(chunk) = context.body.next_chunk().await? {
                received += chunk.len() as u64;
                if received > payload.length {
                    return Err(too_large(None, payload.length));
                }
                // Bytes already written count in the free space itself;
                // the margin the index needs must stay.
                if received - checked >= STREAMED_SPACE_CHECK {
                    checked = received;
                    if store.nearly_full() {
                        return Err(S3Error::insufficient_storage());
                    }
                }
                upload.write(chunk).await?;
            }
        }
        Encoding::AwsChunked { flavour, trailer } => {
            let chain = match (&context.auth, &context.signing_key) {
                (Some(auth), Some(key)) => Some(ChunkChain::new(auth, key.clone())),
                _ => None,
            };
            let mut body = AwsChunkedBody::new(&mut context.body, flavour, chain, payload.length);
            while let Some(chunk) = body.next_chunk().await? {
                upload.write(chunk).await?;
            }
            if let Some(algorithm) = trailer {
                let value = body
                    .trailers()
                    .iter()
                    .find(|(name, _)| name == algorithm.header_name())
                    .map(|(_, value)| value.as_str())
                    .ok_or_else(|| {
                        S3Error::invalid_request(format!("Missing trailer checksum {}", algorithm.header_name()))
                    })?;
                let checksum = Checksum::from_base64(algorithm, value).ok_or_else(|| {
                    S3Error::invalid_request(format!(
                        "Value for {} trailing header is invalid.",
                        algorithm.header_name()
                    ))
                })?;
                if expected.checksum.as_ref().is_some_and(|sent| sent != &checksum) {
                    return Err(S3Error::bad_digest(format!(
                        "The {} you specified did not match the calculated checksum.",
                        algorithm.name()
                    )));
                }
                expected.checksum = Some(checksum);
            }
        }
    }
    Ok(())
}

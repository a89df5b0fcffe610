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
    AwsChunked { flavour: Flavour, trailer: Option<ChecksumAlgorithm> },
}

/// The payload as the head describes it.
pub struct Payload {
    /// The object bytes to expect (decoded length for aws-chunked).
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
            Encoding::Plain => None,
        }
    }
}

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
        Encoding::Plain => "content-length",
        Encoding::AwsChunked { .. } => "x-amz-decoded-content-length",
    };
    let length = header(&context.headers, length_header)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(missing_length)?;
    if length > max {
        return Err(S3Error::new(
            "EntityTooLarge",
            StatusCode::BAD_REQUEST,
            "Your proposed upload exceeds the maximum allowed size",
        )
        .with("ProposedSize", length.to_string())
        .with("MaxSizeAllowed", max.to_string()));
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
    context: &mut RequestContext,
    payload: &Payload,
    mut upload: Upload,
    expected: &mut ExpectedDigests,
) -> Result<Upload, S3Error> {
    match pump(context, payload, &mut upload, expected).await {
        Ok(()) => Ok(upload),
        Err(error) => {
            upload.abandon().await;
            Err(error)
        }
    }
}

async fn pump(
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

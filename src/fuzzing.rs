//! Entry points for the cargo-fuzz targets in `fuzz/` (see fuzz/README.md);
//! not part of larder's API. Re-exports the crate-internal parsers the
//! targets call, and drives the async decoders over bytes in memory.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, Write};
use std::sync::OnceLock;

use bytes::Bytes;

use crate::s3::chunked::{AwsChunkedBody, ByteSource};
use crate::s3::form_data;
use crate::s3::post::{check_conditions, parse_conditions, read_fields, Form, FormReader};
use crate::s3::S3Error;
use crate::sigv4::{ChunkChain, Scope, SigningKey};
use crate::store::blob::{append_footer, read_footer};

pub use crate::s3::chunked::Flavour;
pub use crate::s3::cors::CorsConfig;
pub use crate::s3::headers::{
    evaluate_conditions, expected_digests, object_headers, object_meta, parse_range, write_condition, Condition,
    RangeRequest,
};
pub use crate::s3::multipart::{parse_completed_parts, part_number};
pub use crate::s3::post::sanitize as sanitize_file_name;
pub use crate::s3::router::{route, split_path, Operation, Query};
pub use crate::s3::xml::{parse as parse_xml, Element};
pub use crate::store::record::{CompletedRecord, DecodeError, Footer, PartRef};

/// AWS's aws-chunked example (tests/data/aws-chunked-example.md): the
/// chunk signature chain of the signed flavours starts from its seed
/// signature, so the signed seeds of `aws_chunked` are signed with these.
pub const CHUNKED_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
pub const CHUNKED_AMZ_DATE: &str = "20130524T000000Z";
pub const CHUNKED_SEED_SIGNATURE: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

/// Runs a future that never waits on I/O or timers to its end.
fn block_on<F: Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime"))
        .block_on(future)
}

/// A request body held in memory, in the frames hyper would deliver.
struct Frames {
    frames: VecDeque<Bytes>,
    /// End with an error (the client went away) instead of the body's end.
    fail_at_end: bool,
}

impl ByteSource for Frames {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, S3Error> {
        match self.frames.pop_front() {
            Some(frame) => Ok(Some(frame)),
            // As `RequestBody` when the connection fails: one error, then the end.
            None if std::mem::take(&mut self.fail_at_end) => {
                Err(S3Error::new("IncompleteBody", http::StatusCode::BAD_REQUEST, "the connection failed"))
            }
            None => Ok(None),
        }
    }
}

/// What the aws-chunked decoder made of a body: the decoded bytes it
/// handed on (also those before an error), the trailers, and how it ended.
pub struct ChunkedOutcome {
    pub data: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    pub result: Result<(), S3Error>,
}

/// Decodes `frames` as an aws-chunked body of `flavour` declaring
/// `declared` decoded bytes; `signed` gives the decoder the signature
/// chain of AWS's example (as an authenticated request has one).
pub fn aws_chunked(
    flavour: Flavour,
    signed: bool,
    declared: u64,
    frames: Vec<Bytes>,
    fail_at_end: bool,
) -> ChunkedOutcome {
    static KEY: OnceLock<(SigningKey, Scope)> = OnceLock::new();
    let (key, scope) = KEY.get_or_init(|| {
        let scope = Scope { date: CHUNKED_AMZ_DATE[..8].to_string(), region: "us-east-1".into(), service: "s3".into() };
        (SigningKey::derive(CHUNKED_SECRET, &scope), scope)
    });
    let chain = signed.then(|| ChunkChain::from_seed(key.clone(), CHUNKED_AMZ_DATE, scope, CHUNKED_SEED_SIGNATURE));
    let mut source = Frames { frames: frames.into(), fail_at_end };
    block_on(async {
        let mut body = AwsChunkedBody::new(&mut source, flavour, chain, declared);
        let mut data = Vec::new();
        let result = loop {
            match body.next_chunk().await {
                Ok(Some(chunk)) => data.extend_from_slice(&chunk),
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        ChunkedOutcome { data, trailers: body.trailers().to_vec(), result }
    })
}

/// A POST Object form as read: fields before the file (names lower case),
/// the file's name and bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct PostForm {
    pub fields: Vec<(String, String)>,
    pub file_name: String,
    pub file: Vec<u8>,
}

/// Reads a multipart/form-data body as `s3/post.rs` reads a POST Object
/// form: the boundary from `content_type`, the fields before the file
/// (`read_fields`), the file's bytes, then the parts after it.
pub fn post_form(content_type: &str, frames: Vec<Bytes>, max_total: u64) -> Result<PostForm, S3Error> {
    let boundary = form_data::boundary(content_type).ok_or_else(form_data::malformed)?;
    let mut source = Frames { frames: frames.into(), fail_at_end: false };
    block_on(async {
        let mut reader = FormReader::new(&mut source, &boundary, max_total);
        let (form, file_name) = read_fields(&mut reader).await?;
        let mut file = Vec::new();
        while let Some(chunk) = reader.chunk().await? {
            file.extend_from_slice(&chunk);
        }
        while reader.next_part().await?.is_some() {}
        Ok(PostForm { fields: form.fields, file_name, file })
    })
}

/// Parses a POST policy document (JSON, already base64-decoded) and checks
/// the form's fields against it for `bucket`: the expiration, and the
/// `content-length-range` if the policy has one.
pub fn post_policy(
    document: &[u8],
    fields: Vec<(String, String)>,
    bucket: &str,
) -> Result<(i64, Option<(u64, u64)>), S3Error> {
    let policy: serde_json::Value =
        serde_json::from_slice(document).map_err(|_| S3Error::invalid_argument("Invalid Policy: not base64 JSON"))?;
    let (expiration, conditions) = parse_conditions(&policy)?;
    let range = check_conditions(&Form { fields }, bucket, &conditions)?;
    Ok((expiration, range))
}

/// A scratch file for the blob functions, which read and write files.
fn scratch_path() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("larder-fuzz-blob-{}", std::process::id()))
}

/// `read_footer` over a blob file holding `blob`.
pub fn read_blob_footer(blob: &[u8]) -> io::Result<Option<Footer>> {
    let path = scratch_path();
    std::fs::write(&path, blob)?;
    let footer = read_footer(&path);
    std::fs::remove_file(&path)?;
    footer
}

/// The blob file the store writes: `data`, then `footer` and the trailer.
pub fn encode_blob(data: &[u8], footer: &Footer) -> io::Result<Vec<u8>> {
    let path = scratch_path();
    let mut file = std::fs::File::create(&path)?;
    file.write_all(data)?;
    append_footer(&mut file, &footer.encode())?;
    drop(file);
    let blob = std::fs::read(&path);
    std::fs::remove_file(&path)?;
    blob
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    /// The signed flavour of AWS's example decodes with the fuzzing key.
    #[test]
    fn aws_example_decodes() {
        let chunks = [vec![b'a'; 65536], vec![b'a'; 1024], Vec::new()];
        let signatures = [
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
        ];
        let mut body = Vec::new();
        for (chunk, signature) in chunks.iter().zip(signatures) {
            body.extend_from_slice(format!("{:x};chunk-signature={signature}\r\n", chunk.len()).as_bytes());
            body.extend_from_slice(chunk);
            body.extend_from_slice(b"\r\n");
        }
        let frames = body.chunks(1000).map(Bytes::copy_from_slice).collect();
        let outcome = aws_chunked(Flavour::Signed, true, 66560, frames, false);
        assert!(outcome.result.is_ok());
        assert_eq!(Sha256::digest(&outcome.data), Sha256::digest(chunks.concat()));
    }
}

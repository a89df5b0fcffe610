//! aws-chunked uploads in all three flavours, as SDKs frame them, and
//! every way they can go wrong: each failure leaves no object and no
//! temporary file.

use larder::checksum::{ChecksumAlgorithm, ChecksumHasher};
use larder::sigv4::{ChunkChain, Scope, SigningKey};
use larder::timefmt;

use crate::harness::*;

const SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
const SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
const UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

struct Upload<'a> {
    flavour: &'static str,
    data: &'a [u8],
    chunk_size: usize,
    /// Trailer name and value (the value in base64).
    trailer: Option<(&'static str, String)>,
    content_encoding: &'static str,
    /// Declared x-amz-decoded-content-length; the data length when unset.
    declared: Option<u64>,
    transfer_chunked: bool,
    tamper_chunk: Option<usize>,
    tamper_trailer_signature: bool,
    /// Drop this many bytes from the end of the encoded body.
    truncate: usize,
}

impl<'a> Upload<'a> {
    fn new(flavour: &'static str, data: &'a [u8]) -> Upload<'a> {
        Upload {
            flavour,
            data,
            chunk_size: 64 * 1024,
            trailer: None,
            content_encoding: "aws-chunked",
            declared: None,
            transfer_chunked: false,
            tamper_chunk: None,
            tamper_trailer_signature: false,
            truncate: 0,
        }
    }

    fn with_crc32_trailer(mut self) -> Upload<'a> {
        self.trailer = Some(("x-amz-checksum-crc32", crc32(self.data)));
        self
    }

    fn send(&self, client: &Client, bucket: &str, key: &str) -> Response {
        let now = timefmt::now();
        let mut request = Request::new("PUT", bucket, key)
            .header("x-amz-content-sha256", self.flavour)
            .header("content-encoding", self.content_encoding)
            .header("x-amz-decoded-content-length", &self.declared.unwrap_or(self.data.len() as u64).to_string())
            .at(now);
        if let Some((name, _)) = &self.trailer {
            request = request.header("x-amz-trailer", name);
        }
        let length_header = if self.transfer_chunked {
            ("transfer-encoding", "chunked".to_string())
        } else {
            ("content-length", "0".to_string())
        };
        let head = client.encode(&request.clone().unsigned_header(length_header.0, &length_header.1));
        let head = String::from_utf8_lossy(&head);
        let seed = head.split("Signature=").nth(1).unwrap()[..64].to_string();
        let mut body = self.encode_body(client, now, &seed);
        body.truncate(body.len() - self.truncate);
        let request = if self.transfer_chunked {
            let mut framed = format!("{:x}\r\n", body.len()).into_bytes();
            framed.extend_from_slice(&body);
            framed.extend_from_slice(b"\r\n0\r\n\r\n");
            request.unsigned_header("transfer-encoding", "chunked").body(framed)
        } else {
            request.unsigned_header("content-length", &body.len().to_string()).body(body)
        };
        let bytes = client.encode(&request);
        send_raw(client.addr, &bytes, false)
    }

    fn encode_body(&self, client: &Client, now: i64, seed: &str) -> Vec<u8> {
        let scope =
            Scope { date: timefmt::format_scope_date(now), region: client.region.clone(), service: "s3".into() };
        let key = SigningKey::derive(&client.credentials.secret_key, &scope);
        let mut chain = ChunkChain::from_seed(key, &timefmt::format_amz_date(now), &scope, seed);
        let signed = self.flavour != UNSIGNED_TRAILER;
        let mut out = Vec::new();
        let mut chunks: Vec<&[u8]> = self.data.chunks(self.chunk_size).collect();
        chunks.push(&[]);
        for (i, chunk) in chunks.iter().enumerate() {
            if signed {
                let mut signature = chain.sign_chunk(chunk);
                if self.tamper_chunk == Some(i) {
                    signature = signature.chars().rev().collect();
                }
                out.extend_from_slice(format!("{:x};chunk-signature={signature}\r\n", chunk.len()).as_bytes());
            } else {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            }
            out.extend_from_slice(chunk);
            if !chunk.is_empty() {
                out.extend_from_slice(b"\r\n");
            }
        }
        if let Some((name, value)) = &self.trailer {
            let line = format!("{name}:{value}\n");
            out.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
            if self.flavour == SIGNED_TRAILER {
                let mut signature = chain.sign_trailer(line.as_bytes());
                if self.tamper_trailer_signature {
                    signature = signature.chars().rev().collect();
                }
                out.extend_from_slice(format!("x-amz-trailer-signature:{signature}\r\n").as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

fn crc32(data: &[u8]) -> String {
    let mut hasher = ChecksumHasher::new(ChecksumAlgorithm::Crc32);
    hasher.update(data);
    hasher.finish().to_base64()
}

fn setup() -> (TestServer, Client) {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "chunked");
    (server, client)
}

#[track_caller]
fn assert_nothing_stored(server: &TestServer, client: &Client, key: &str) {
    get(client, "chunked", key).assert_error(404, "NoSuchKey");
    assert!(std::fs::read_dir(server.dir.join("tmp")).unwrap().next().is_none(), "no temporary file may remain");
}

#[test]
fn signed_chunks_as_minio_go_sends_them() {
    let (_server, client) = setup();
    let data = pattern(200_000, 11);
    let response = Upload::new(SIGNED, &data).send(&client, "chunked", "signed");
    response.assert_status(200);
    assert_eq!(response.header("etag"), Some(format!("\"{}\"", md5_hex(&data)).as_str()));
    let got = get(&client, "chunked", "signed");
    assert!(got.body == data);
    assert_eq!(got.header("content-encoding"), None, "aws-chunked is not stored");

    let upload = Upload { content_encoding: "gzip,aws-chunked", chunk_size: 8192, ..Upload::new(SIGNED, &data) };
    upload.send(&client, "chunked", "gzipped").assert_status(200);
    assert_eq!(get(&client, "chunked", "gzipped").header("content-encoding"), Some("gzip"));

    let empty = Upload::new(SIGNED, b"");
    empty.send(&client, "chunked", "empty").assert_status(200);
    assert_eq!(get(&client, "chunked", "empty").body.len(), 0);
}

#[test]
fn signed_chunks_inside_transfer_encoding_chunked() {
    let (_server, client) = setup();
    let data = pattern(70_000, 12);
    let upload = Upload { transfer_chunked: true, ..Upload::new(SIGNED, &data) };
    upload.send(&client, "chunked", "te").assert_status(200);
    assert!(get(&client, "chunked", "te").body == data);
}

#[test]
fn a_bad_chunk_signature_stores_nothing() {
    let (server, client) = setup();
    let data = pattern(200_000, 13);
    for chunk in [0, 1, 3] {
        let upload = Upload { tamper_chunk: Some(chunk), ..Upload::new(SIGNED, &data) };
        upload.send(&client, "chunked", "tampered").assert_error(403, "SignatureDoesNotMatch");
        assert_nothing_stored(&server, &client, "tampered");
    }
}

#[test]
fn signed_trailer_with_checksum() {
    let (server, client) = setup();
    let data = pattern(100_000, 14);
    let response = Upload::new(SIGNED_TRAILER, &data).with_crc32_trailer().send(&client, "chunked", "trailer");
    response.assert_status(200);
    let got = client.send(&Request::new("GET", "chunked", "trailer").header("x-amz-checksum-mode", "ENABLED"));
    assert!(got.body == data);
    assert_eq!(got.header("x-amz-checksum-crc32"), Some(crc32(&data).as_str()));

    let upload = Upload { tamper_trailer_signature: true, ..Upload::new(SIGNED_TRAILER, &data).with_crc32_trailer() };
    upload.send(&client, "chunked", "bad-trailer-signature").assert_error(403, "SignatureDoesNotMatch");
    assert_nothing_stored(&server, &client, "bad-trailer-signature");
}

#[test]
fn unsigned_trailer_as_boto3_sends_it() {
    let (server, client) = setup();
    let data = pattern(150_000, 15);
    let upload = Upload { transfer_chunked: true, ..Upload::new(UNSIGNED_TRAILER, &data).with_crc32_trailer() };
    upload.send(&client, "chunked", "boto").assert_status(200);
    let got = client.send(&Request::new("GET", "chunked", "boto").header("x-amz-checksum-mode", "ENABLED"));
    assert!(got.body == data);
    assert_eq!(got.header("x-amz-checksum-crc32"), Some(crc32(&data).as_str()));

    let mut upload = Upload::new(UNSIGNED_TRAILER, &data);
    upload.trailer = Some(("x-amz-checksum-crc32", crc32(b"different bytes")));
    let response = upload.send(&client, "chunked", "bad-crc");
    response.assert_error(400, "BadDigest");
    assert!(response.text().contains("CRC32"));
    assert_nothing_stored(&server, &client, "bad-crc");
}

#[test]
fn truncated_and_overlong_bodies() {
    let (server, client) = setup();
    let data = pattern(100_000, 16);
    let truncated = Upload { truncate: 1000, ..Upload::new(SIGNED, &data) };
    truncated.send(&client, "chunked", "short").assert_error(400, "IncompleteBody");
    assert_nothing_stored(&server, &client, "short");

    let claims_more = Upload { declared: Some(100_001), ..Upload::new(UNSIGNED_TRAILER, &data).with_crc32_trailer() };
    claims_more.send(&client, "chunked", "short").assert_error(400, "IncompleteBody");
    assert_nothing_stored(&server, &client, "short");

    let claims_less = Upload { declared: Some(99_999), ..Upload::new(SIGNED, &data) };
    claims_less.send(&client, "chunked", "long").assert_error(400, "IncompleteBody");
    assert_nothing_stored(&server, &client, "long");
}

#[test]
fn missing_decoded_length_or_unknown_trailer() {
    let (_server, client) = setup();
    let response = client.send(
        &Request::new("PUT", "chunked", "k")
            .header("x-amz-content-sha256", UNSIGNED_TRAILER)
            .header("content-encoding", "aws-chunked")
            .body("0\r\n\r\n"),
    );
    response.assert_error(411, "MissingContentLength");
    let response = client.send(
        &Request::new("PUT", "chunked", "k")
            .header("x-amz-content-sha256", UNSIGNED_TRAILER)
            .header("x-amz-decoded-content-length", "0")
            .header("x-amz-trailer", "x-amz-checksum-md7")
            .body("0\r\n\r\n"),
    );
    response.assert_error(400, "InvalidRequest");
}

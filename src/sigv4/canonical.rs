//! The canonical request and the string to sign.

use sha2::{Digest, Sha256};

use super::encode::uri_encode_into;
use super::{Request, Scope, ALGORITHM};

/// Builds the six-line canonical request. The path is re-encoded from its
/// decoded bytes with `/` kept (S3 does not normalise or double-encode);
/// query names and values are re-encoded and sorted; signed headers are
/// trimmed, inner whitespace runs collapsed, repeats joined with `,`.
pub fn canonical_request(request: &Request<'_>, signed_headers: &str, payload_line: &str) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(request.method);
    out.push('\n');
    uri_encode_into(&mut out, request.path, true);
    out.push('\n');

    // The encoded query parameters go into one scratch string, sorted by
    // (name, value) through their ranges in it: no string per parameter.
    let mut encoded = String::with_capacity(256);
    let mut pairs: Vec<(usize, usize, usize)> = Vec::with_capacity(request.query.len());
    for param in request.query.iter().filter(|param| param.name != "X-Amz-Signature") {
        let start = encoded.len();
        uri_encode_into(&mut encoded, param.name.as_bytes(), false);
        let middle = encoded.len();
        uri_encode_into(&mut encoded, param.value.as_bytes(), false);
        pairs.push((start, middle, encoded.len()));
    }
    pairs.sort_unstable_by(|a, b| {
        (&encoded[a.0..a.1], &encoded[a.1..a.2]).cmp(&(&encoded[b.0..b.1], &encoded[b.1..b.2]))
    });
    for (i, (start, middle, end)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&encoded[start..middle]);
        out.push('=');
        out.push_str(&encoded[middle..end]);
    }
    out.push('\n');

    for name in signed_headers.split(';') {
        out.push_str(name);
        out.push(':');
        let mut first = true;
        for value in request.headers.get_all(name) {
            if !first {
                out.push(',');
            }
            first = false;
            push_trimmed(&mut out, value.as_bytes());
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(signed_headers);
    out.push('\n');
    out.push_str(payload_line);
    out
}

/// Appends a header value with leading and trailing whitespace removed and
/// inner runs of whitespace folded to one space.
fn push_trimmed(out: &mut String, value: &[u8]) {
    let text = String::from_utf8_lossy(value);
    let mut words = text.split_ascii_whitespace();
    if let Some(word) = words.next() {
        out.push_str(word);
        for word in words {
            out.push(' ');
            out.push_str(word);
        }
    }
}

pub fn string_to_sign(amz_date: &str, scope: &Scope, canonical_request: &str) -> String {
    let mut out = String::with_capacity(160);
    for part in [ALGORITHM, "\n", amz_date, "\n", &scope.date, "/", &scope.region, "/", &scope.service] {
        out.push_str(part);
    }
    out.push_str("/aws4_request\n");
    let mut digest_hex = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(canonical_request.as_bytes()), &mut digest_hex).expect("64 hex digits");
    out.push_str(std::str::from_utf8(&digest_hex).expect("hex is ASCII"));
    out
}

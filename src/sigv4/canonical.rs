//! The canonical request and the string to sign.

use sha2::{Digest, Sha256};

use super::{uri_encode, Request, Scope, ALGORITHM};

/// Builds the six-line canonical request. The path is re-encoded from its
/// decoded bytes with `/` kept (S3 does not normalise or double-encode);
/// query names and values are re-encoded and sorted; signed headers are
/// trimmed, inner whitespace runs collapsed, repeats joined with `,`.
pub fn canonical_request(request: &Request<'_>, signed_headers: &str, payload_line: &str) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(request.method);
    out.push('\n');
    out.push_str(&uri_encode(request.path, true));
    out.push('\n');

    let mut query: Vec<(String, String)> = request
        .query
        .iter()
        .filter(|param| param.name != "X-Amz-Signature")
        .map(|param| (uri_encode(param.name.as_bytes(), false), uri_encode(param.value.as_bytes(), false)))
        .collect();
    query.sort_unstable();
    for (i, (name, value)) in query.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
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
    format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        scope.to_scope_string(),
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

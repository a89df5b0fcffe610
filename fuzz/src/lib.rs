//! Shaping the fuzzer's bytes into what larder's parsers read: a request
//! written as text, and a body cut into frames.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

/// hyper's default limit on the number of request headers.
const MAX_HEADERS: usize = 100;

/// A request written as text, as the files of AWS's SigV4 suite
/// (`*-signed-request.txt`) write it:
///
/// ```text
/// GET /path?query HTTP/1.1
/// Host:example.amazonaws.com
/// X-Amz-Date:20150830T123600Z
///
/// body
/// ```
pub struct TextRequest<'a> {
    pub method: &'a str,
    /// Path and query, still encoded.
    pub target: &'a str,
    pub headers: HeaderMap,
    pub body: &'a [u8],
}

impl TextRequest<'_> {
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(self.target, |(path, _)| path)
    }

    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, query)| query)
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// Reads a [`TextRequest`]: the first line `METHOD target [HTTP/1.1]`
/// (UTF-8, or `None`), then `name:value` lines up to an empty line. As
/// hyper does, values are trimmed, folded lines are joined with a space,
/// and at most 100 headers are taken; a line that makes no valid header is
/// skipped. Lines end with `\n` or `\r\n`.
pub fn text_request(data: &[u8]) -> Option<TextRequest<'_>> {
    let mut rest = data;
    let mut next_line = || -> Option<&[u8]> {
        if rest.is_empty() {
            return None;
        }
        let (line, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => (&rest[..end], &rest[end + 1..]),
            None => (rest, &[][..]),
        };
        rest = after;
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    };
    let first = std::str::from_utf8(next_line()?).ok()?;
    let first = first.strip_suffix(" HTTP/1.1").unwrap_or(first);
    let (method, target) = first.split_once(' ').unwrap_or((first, ""));
    let mut fields: Vec<(&[u8], Vec<u8>)> = Vec::new();
    while let Some(line) = next_line() {
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some((_, value)) = fields.last_mut() {
                value.push(b' ');
                value.extend_from_slice(trim(line));
            }
            continue;
        }
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            fields.push((&line[..colon], trim(&line[colon + 1..]).to_vec()));
        }
    }
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        if headers.len() >= MAX_HEADERS {
            break;
        }
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(trim(&value))) {
            headers.append(name, value);
        }
    }
    Some(TextRequest { method, target, headers, body: rest })
}

/// Takes bytes off the front of the input: the fuzzer's choices.
pub struct Choices<'a>(pub &'a [u8]);

impl<'a> Choices<'a> {
    pub fn byte(&mut self) -> u8 {
        let (&first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        first
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    pub fn rest(self) -> &'a [u8] {
        self.0
    }
}

/// Cuts `body` into frames of the given lengths (zero lengths skipped:
/// hyper hands on no empty frames); what is left is the last frame.
pub fn frames(body: &[u8], lengths: impl IntoIterator<Item = usize>) -> Vec<Bytes> {
    let mut frames = Vec::new();
    let mut rest = body;
    for length in lengths {
        if rest.is_empty() {
            break;
        }
        if length == 0 {
            continue;
        }
        let (frame, after) = rest.split_at(length.min(rest.len()));
        frames.push(Bytes::copy_from_slice(frame));
        rest = after;
    }
    if !rest.is_empty() {
        frames.push(Bytes::copy_from_slice(rest));
    }
    frames
}

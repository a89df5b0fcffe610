//! multipart/form-data (RFC 7578), streamed, for POST Object. Read before
//! anything is authenticated, so every part of it is bounded: the bytes
//! of one part's headers, the number of parts, and (by the caller) the
//! bytes of fields and file. Memory never exceeds one incoming chunk plus
//! the header limit, whatever the client sends.

use bytes::{Buf, Bytes, BytesMut};
use http::StatusCode;

use super::chunked::ByteSource;
use super::error::S3Error;

/// Bytes of one part's header block, as browsers send a few hundred.
pub const MAX_PART_HEADER_BYTES: usize = 8 * 1024;
/// Parts in one form: S3's form has fewer than 30 fields.
pub const MAX_PARTS: usize = 64;
/// Longest boundary RFC 2046 allows.
const MAX_BOUNDARY_BYTES: usize = 70;

pub fn malformed() -> S3Error {
    S3Error::new(
        "MalformedPOSTRequest",
        StatusCode::BAD_REQUEST,
        "The body of your POST request is not well-formed multipart/form-data.",
    )
}

/// The boundary named in a `multipart/form-data; boundary=...` type.
pub fn boundary(content_type: &str) -> Option<String> {
    let (kind, parameters) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let value = parameters.split(';').find_map(|parameter| {
        let (name, value) = parameter.split_once('=')?;
        name.trim().eq_ignore_ascii_case("boundary").then(|| value.trim())
    })?;
    let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
    (!value.is_empty() && value.len() <= MAX_BOUNDARY_BYTES).then(|| value.to_string())
}

/// What a part's headers say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartHead {
    pub name: String,
    pub file_name: Option<String>,
}

enum State {
    /// In a part's data (or the preamble, before the first boundary).
    Data,
    /// Just past a delimiter line's boundary: a part's headers follow.
    Headers,
    /// After the closing delimiter.
    End,
}

/// Reads a form part by part; each part's data streams through
/// [`FormReader::chunk`].
pub struct FormReader<'a, B: ByteSource> {
    body: &'a mut B,
    /// `\r\n--boundary`: the preamble is read as if it followed a line
    /// break, so the first delimiter looks like every other one.
    delimiter: Vec<u8>,
    buffer: BytesMut,
    state: State,
    parts: usize,
    body_ended: bool,
    /// Bytes read so far, and the most the whole form may have.
    read: u64,
    max_total: u64,
}

impl<'a, B: ByteSource> FormReader<'a, B> {
    pub fn new(body: &'a mut B, boundary: &str, max_total: u64) -> FormReader<'a, B> {
        let mut buffer = BytesMut::with_capacity(64 * 1024);
        buffer.extend_from_slice(b"\r\n");
        let delimiter = [b"\r\n--", boundary.as_bytes()].concat();
        FormReader { body, delimiter, buffer, state: State::Data, parts: 0, body_ended: false, read: 0, max_total }
    }

    /// Raises the most the whole form may have (once it is authorised).
    pub fn allow(&mut self, max_total: u64) {
        self.max_total = max_total;
    }

    /// Reads more of the body into the buffer; false at its end.
    async fn fill(&mut self) -> Result<bool, S3Error> {
        if self.body_ended {
            return Ok(false);
        }
        match self.body.next_chunk().await? {
            Some(chunk) => {
                self.read += chunk.len() as u64;
                if self.read > self.max_total {
                    return Err(S3Error::new(
                        "MaxMessageLengthExceeded",
                        StatusCode::BAD_REQUEST,
                        "Your request was too big.",
                    ));
                }
                self.buffer.extend_from_slice(&chunk);
                Ok(true)
            }
            None => {
                self.body_ended = true;
                Ok(false)
            }
        }
    }

    /// The next part's head, skipping what is left of the current part;
    /// `None` after the closing delimiter.
    pub async fn next_part(&mut self) -> Result<Option<PartHead>, S3Error> {
        while let State::Data = self.state {
            self.chunk().await?;
        }
        if let State::End = self.state {
            return Ok(None);
        }
        // After the boundary: `--` closes the form, else the line ends.
        while self.buffer.len() < 2 {
            if !self.fill().await? {
                return Err(malformed());
            }
        }
        if self.buffer.starts_with(b"--") {
            self.state = State::End;
            return Ok(None);
        }
        self.parts += 1;
        if self.parts > MAX_PARTS {
            return Err(S3Error::new(
                "MalformedPOSTRequest",
                StatusCode::BAD_REQUEST,
                format!("Your POST request has more than {MAX_PARTS} parts."),
            ));
        }
        // Transport padding (spaces, tabs), the line break, then headers
        // up to an empty line: `\r\n` + headers + `\r\n\r\n`, or `\r\n\r\n`
        // at once for a part without headers.
        let end = loop {
            let padding = self.buffer.iter().take_while(|b| **b == b' ' || **b == b'\t').count();
            let text = &self.buffer[padding..];
            if text.starts_with(b"\r\n\r\n") {
                break (padding, padding + 2, padding + 4);
            }
            if let Some(at) = memchr::memmem::find(text, b"\r\n\r\n") {
                if !text.starts_with(b"\r\n") {
                    return Err(malformed());
                }
                break (padding, padding + at + 2, padding + at + 4);
            }
            if self.buffer.len() > MAX_PART_HEADER_BYTES {
                return Err(S3Error::new(
                    "MalformedPOSTRequest",
                    StatusCode::BAD_REQUEST,
                    format!("A part's headers in your POST request exceed {MAX_PART_HEADER_BYTES} bytes."),
                ));
            }
            if !self.fill().await? {
                return Err(malformed());
            }
        };
        let (start, headers_end, data_start) = end;
        let head = parse_part_head(&self.buffer[start..headers_end])?;
        self.buffer.advance(data_start);
        self.state = State::Data;
        Ok(Some(head))
    }

    /// The next bytes of the current part's data; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, S3Error> {
        if !matches!(self.state, State::Data) {
            return Ok(None);
        }
        loop {
            if let Some(at) = memchr::memmem::find(&self.buffer, &self.delimiter) {
                let data = self.buffer.split_to(at).freeze();
                self.buffer.advance(self.delimiter.len());
                self.state = State::Headers;
                return Ok((!data.is_empty()).then_some(data));
            }
            // All but what could be the start of a delimiter is data.
            let safe = self.buffer.len().saturating_sub(self.delimiter.len() - 1);
            if safe > 0 {
                return Ok(Some(self.buffer.split_to(safe).freeze()));
            }
            if !self.fill().await? {
                return Err(malformed());
            }
        }
    }
}

/// The `Content-Disposition: form-data; name="..."; filename="..."` of a
/// part's header block (`\r\n`-separated lines; others are ignored).
fn parse_part_head(block: &[u8]) -> Result<PartHead, S3Error> {
    let text = String::from_utf8_lossy(block);
    let mut head = None;
    for line in text.split("\r\n").filter(|line| !line.is_empty()) {
        let (name, value) = line.split_once(':').ok_or_else(malformed)?;
        if name.trim().eq_ignore_ascii_case("content-disposition") {
            head = Some(parse_disposition(value)?);
        }
    }
    head.ok_or_else(malformed)
}

fn parse_disposition(value: &str) -> Result<PartHead, S3Error> {
    let mut parameters = split_parameters(value).into_iter();
    let kind = parameters.next().unwrap_or_default();
    if !kind.trim().eq_ignore_ascii_case("form-data") {
        return Err(malformed());
    }
    let (mut name, mut file_name) = (None, None);
    for parameter in parameters {
        let Some((key, value)) = parameter.split_once('=') else { continue };
        let value = unquote(value.trim());
        match key.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(value),
            "filename" => file_name = Some(value),
            _ => {}
        }
    }
    Ok(PartHead { name: name.ok_or_else(malformed)?, file_name })
}

/// Splits on `;` outside double quotes.
fn split_parameters(value: &str) -> Vec<String> {
    let (mut parts, mut current, mut quoted, mut escaped) = (Vec::new(), String::new(), false, false);
    for c in value.chars() {
        match c {
            _ if escaped => {
                escaped = false;
                current.push(c);
            }
            '\\' if quoted => {
                escaped = true;
                current.push(c);
            }
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ';' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts
}

fn unquote(value: &str) -> String {
    match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.extend(chars.next()),
                    _ => out.push(c),
                }
            }
            out
        }
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// Every part and its data, reading the body in chunks of `size`.
    fn read_all(body: &[u8], size: usize) -> Result<Vec<(PartHead, Vec<u8>)>, S3Error> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let mut source: VecDeque<Bytes> = body.chunks(size).map(Bytes::copy_from_slice).collect();
            let mut form = FormReader::new(&mut source, "XyZ", 1 << 20);
            let mut parts = Vec::new();
            while let Some(head) = form.next_part().await? {
                let mut data = Vec::new();
                while let Some(chunk) = form.chunk().await? {
                    data.extend_from_slice(&chunk);
                }
                parts.push((head, data));
            }
            Ok(parts)
        })
    }

    const FORM: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nuploads/${filename}\r\n\
--XyZ\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\";c.txt\"\r\nContent-Type: text/plain\r\n\r\n\
line one\r\n-XyZ not yet\r\n--XyZ--\r\nepilogue";

    #[test]
    fn reads_fields_and_files_in_any_chunking() {
        for size in [1, 2, 3, 7, 16, 1000] {
            let parts = read_all(FORM, size).unwrap();
            assert_eq!(parts.len(), 2, "chunks of {size}");
            assert_eq!(parts[0].0, PartHead { name: "key".into(), file_name: None });
            assert_eq!(parts[0].1, b"uploads/${filename}");
            assert_eq!(parts[1].0.file_name.as_deref(), Some("a \"b\";c.txt"));
            assert_eq!(parts[1].1, b"line one\r\n-XyZ not yet");
        }
    }

    #[test]
    fn boundaries() {
        assert_eq!(boundary("multipart/form-data; boundary=abc").as_deref(), Some("abc"));
        assert_eq!(boundary("Multipart/Form-Data;boundary=\"a b\"").as_deref(), Some("a b"));
        assert_eq!(boundary("text/plain; boundary=abc"), None);
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary(&format!("multipart/form-data; boundary={}", "x".repeat(71))), None);
    }

    #[test]
    fn unbounded_input_is_refused_within_the_limits() {
        // Headers that never end: refused once past the limit.
        let mut flood = b"--XyZ\r\n".to_vec();
        flood.extend(std::iter::repeat_n(b'A', 100_000));
        let error = read_all(&flood, 4096).unwrap_err();
        assert_eq!(error.code, "MalformedPOSTRequest");
        // Too many parts.
        let part = b"--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nv\r\n";
        let many: Vec<u8> = part.iter().copied().cycle().take(part.len() * (MAX_PARTS + 1)).collect();
        assert!(read_all(&many, 512).is_err());
        // A body that stops inside a part, or has no boundary at all.
        assert!(read_all(&FORM[..FORM.len() - 20], 64).is_err());
        assert!(read_all(b"no boundary here", 4).is_err());
        assert!(read_all(b"--XyZ\r\nX-Other: 1\r\n\r\nv\r\n--XyZ--", 4).is_err());
        // More than the whole form may hold, even as a preamble.
        assert_eq!(read_all(&vec![b'-'; (1 << 20) + 1], 65536).unwrap_err().code, "MaxMessageLengthExceeded");
    }
}

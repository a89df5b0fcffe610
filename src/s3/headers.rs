//! Reading S3 request headers (metadata, digests, conditions, ranges) and
//! writing the object headers of GET and HEAD answers.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::sigv4::ParsedAuth;
use crate::store::{ExpectedDigests, ObjectMeta, ObjectRecord, WriteCondition};
use crate::timefmt;

use super::error::S3Error;
use super::router::Query;

/// S3's limit on user metadata: names and values together.
pub const MAX_USER_METADATA_BYTES: usize = 2048;

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// A header's value as UTF-8 text, accepting non-ASCII bytes.
fn header_text(value: &HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

/// Content-Encoding without the `aws-chunked` token, which describes only
/// how this request's body was framed.
fn without_aws_chunked(value: &str) -> Option<String> {
    let kept: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|token| !token.is_empty() && !token.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!kept.is_empty()).then(|| kept.join(","))
}

/// The stored headers of a new object: the standard ones and `x-amz-meta-*`.
pub fn object_meta(headers: &HeaderMap) -> Result<ObjectMeta, S3Error> {
    let text = |name: &str| headers.get(name).map(header_text);
    let mut user: Vec<(String, Vec<u8>)> = headers
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_str().strip_prefix("x-amz-meta-")?;
            Some((name.to_string(), value.as_bytes().to_vec()))
        })
        .collect();
    user.sort();
    let size: usize = user.iter().map(|(name, value)| name.len() + value.len()).sum();
    if size > MAX_USER_METADATA_BYTES {
        return Err(S3Error::new(
            "MetadataTooLarge",
            StatusCode::BAD_REQUEST,
            "Your metadata headers exceed the maximum allowed metadata size.",
        )
        .with("Size", size.to_string())
        .with("MaxSizeAllowed", MAX_USER_METADATA_BYTES.to_string()));
    }
    Ok(ObjectMeta {
        content_type: text("content-type"),
        content_encoding: text("content-encoding").and_then(|value| without_aws_chunked(&value)),
        content_disposition: text("content-disposition"),
        content_language: text("content-language"),
        cache_control: text("cache-control"),
        expires: text("expires"),
        user,
    })
}

/// The digests a request asks the server to check, and a checksum
/// algorithm to compute and store without a value to check.
pub fn expected_digests(
    headers: &HeaderMap,
    auth: Option<&ParsedAuth>,
) -> Result<(ExpectedDigests, Option<ChecksumAlgorithm>), S3Error> {
    let mut expected = ExpectedDigests::default();
    if let Some(value) = headers.get("content-md5") {
        let invalid =
            || S3Error::new("InvalidDigest", StatusCode::BAD_REQUEST, "The Content-MD5 you specified was invalid.");
        let text = value.to_str().map_err(|_| invalid())?;
        let bytes = BASE64.decode(text.trim()).map_err(|_| invalid())?;
        expected.md5 = Some(bytes.try_into().map_err(|_| invalid())?);
    }
    // Header auth names the payload hash it signed; a presigned URL may
    // sign the header too. Either way a body that does not match it is
    // refused.
    let declared =
        auth.and_then(|auth| auth.content_sha256.as_deref()).or_else(|| header(headers, "x-amz-content-sha256"));
    if let Some(hash) = declared {
        let mut bytes = [0u8; 32];
        if hex::decode_to_slice(hash, &mut bytes).is_ok() {
            expected.payload_sha256 = Some(bytes);
        }
    }
    let mut sent = ChecksumAlgorithm::ALL.into_iter().filter(|algorithm| headers.contains_key(algorithm.header_name()));
    if let Some(algorithm) = sent.next() {
        if sent.next().is_some() {
            return Err(S3Error::invalid_request(
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
            ));
        }
        let text = header(headers, algorithm.header_name()).unwrap_or_default();
        let checksum = Checksum::from_base64(algorithm, text).ok_or_else(|| {
            S3Error::invalid_request(format!("Value for {} header is invalid.", algorithm.header_name()))
        })?;
        expected.checksum = Some(checksum);
    }
    let requested = match header(headers, "x-amz-sdk-checksum-algorithm").or_else(|| header(headers, "x-amz-checksum-algorithm")) {
        Some(name) => Some(ChecksumAlgorithm::from_name(name).ok_or_else(|| {
            S3Error::invalid_request("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
        })?),
        None => None,
    };
    if let (Some(requested), Some(checksum)) = (requested, &expected.checksum) {
        if requested != checksum.algorithm {
            return Err(S3Error::invalid_request(format!(
                "Value for x-amz-sdk-checksum-algorithm header is invalid: expected {}",
                checksum.algorithm.name()
            )));
        }
    }
    Ok((expected, requested))
}

/// `If-None-Match: *` (no object yet), `If-None-Match: <etag>[, ...]`
/// (not that version) or `If-Match: <etag>` on a write.
pub fn write_condition(headers: &HeaderMap) -> Result<WriteCondition, S3Error> {
    match (header(headers, "if-none-match"), header(headers, "if-match")) {
        (Some(value), _) if value.trim() == "*" => Ok(WriteCondition::Absent),
        (Some(list), _) => Ok(WriteCondition::EtagIsNoneOf(
            list.split(',')
                .map(|etag| {
                    let etag = etag.trim();
                    etag.strip_prefix("W/").unwrap_or(etag).trim_matches('"').to_string()
                })
                .filter(|etag| !etag.is_empty())
                .collect(),
        )),
        (None, Some(etag)) => {
            let etag = etag.trim();
            Ok(WriteCondition::EtagMatches(etag.strip_prefix("W/").unwrap_or(etag).trim_matches('"').to_string()))
        }
        (None, None) => Ok(WriteCondition::None),
    }
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|candidate| {
        let candidate = candidate.strip_prefix("W/").unwrap_or(candidate);
        candidate == "*" || candidate.trim_matches('"') == etag
    })
}

/// What the conditional headers say to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Condition {
    Proceed,
    /// 304 (GET and HEAD only).
    NotModified,
    Failed(&'static str),
}

/// Evaluates If-Match, If-Unmodified-Since, If-None-Match and
/// If-Modified-Since (with `prefix` `x-amz-copy-source-` for a copy's
/// source) the way S3 and RFC 7232 order them.
pub fn evaluate_conditions(headers: &HeaderMap, prefix: &str, record: &ObjectRecord) -> Condition {
    let get = |name: &str| match prefix {
        "" => header(headers, name),
        _ => header(headers, &format!("{prefix}{name}")),
    };
    let date = |name: &str| get(name).and_then(timefmt::parse_http_date);
    match get("if-match") {
        Some(list) if !etag_matches(list, &record.etag) => return Condition::Failed("If-Match"),
        Some(_) => {}
        None => {
            if let Some(since) = date("if-unmodified-since") {
                if record.last_modified > since {
                    return Condition::Failed("If-Unmodified-Since");
                }
            }
        }
    }
    match get("if-none-match") {
        Some(list) if etag_matches(list, &record.etag) => return Condition::NotModified,
        Some(_) => {}
        None => {
            if let Some(since) = date("if-modified-since") {
                if record.last_modified <= since {
                    return Condition::NotModified;
                }
            }
        }
    }
    Condition::Proceed
}

#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No range, or one S3 ignores (bad syntax, several ranges).
    Whole,
    /// Inclusive first and last byte.
    Bytes(u64, u64),
    Unsatisfiable,
}

pub fn parse_range(value: &str, size: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let number = |text: &str| text.trim().parse::<u64>().ok();
    match (first.trim().is_empty(), number(first), number(last)) {
        (true, _, Some(suffix)) => {
            if suffix == 0 || size == 0 {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Bytes(size.saturating_sub(suffix), size - 1)
            }
        }
        (false, Some(start), None) if last.trim().is_empty() => {
            if start >= size {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Bytes(start, size - 1)
            }
        }
        (false, Some(start), Some(end)) if start <= end => {
            if start >= size {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Bytes(start, end.min(size - 1))
            }
        }
        _ => RangeRequest::Whole,
    }
}

/// Adds the headers GET and HEAD return for an object, with any
/// `response-*` overrides from the query.
pub fn object_headers(headers: &mut HeaderMap, record: &ObjectRecord, query: &Query, with_checksum: bool) {
    use http::header::{
        ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_ENCODING, CONTENT_LANGUAGE, CONTENT_TYPE, ETAG,
        EXPIRES, LAST_MODIFIED,
    };
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    let meta = &record.meta;
    let overridable: [(HeaderName, &str, &Option<String>); 6] = [
        (CONTENT_TYPE, "response-content-type", &meta.content_type),
        (CONTENT_LANGUAGE, "response-content-language", &meta.content_language),
        (EXPIRES, "response-expires", &meta.expires),
        (CACHE_CONTROL, "response-cache-control", &meta.cache_control),
        (CONTENT_DISPOSITION, "response-content-disposition", &meta.content_disposition),
        (CONTENT_ENCODING, "response-content-encoding", &meta.content_encoding),
    ];
    // Most requests override nothing: one pass over the query says so.
    let overrides = query.0.iter().any(|param| param.name.starts_with("response-"));
    for (name, parameter, stored) in overridable {
        match (query.get(parameter).filter(|_| overrides), stored) {
            (Some(value), _) => set(name, value),
            (None, Some(value)) => set(name, value),
            (None, None) if name == CONTENT_TYPE => set(name, "binary/octet-stream"),
            (None, None) => {}
        }
    }
    if let Ok(etag) = HeaderValue::try_from(format!("\"{}\"", record.etag)) {
        headers.insert(ETAG, etag);
    }
    if let Ok(date) = HeaderValue::try_from(timefmt::format_http_date(record.last_modified)) {
        headers.insert(LAST_MODIFIED, date);
    }
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    for (name, value) in &meta.user {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(format!("x-amz-meta-{name}").as_bytes()), HeaderValue::from_bytes(value))
        {
            headers.insert(name, value);
        }
    }
    if with_checksum {
        if let Some((algorithm, value, kind)) = stored_checksum(record) {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(algorithm.header_name(), value);
                headers.insert("x-amz-checksum-type", HeaderValue::from_static(kind));
            }
        }
    }
}

/// An object's checksum as S3 writes it, with its type: of the whole
/// object (FULL_OBJECT), or of a multipart object's parts' checksums
/// (COMPOSITE), marked `-<parts>`.
pub fn stored_checksum(record: &ObjectRecord) -> Option<(ChecksumAlgorithm, String, &'static str)> {
    let checksum = record.checksum.as_ref()?;
    Some(if record.parts.is_empty() || record.full_object_checksum {
        (checksum.algorithm, checksum.to_base64(), "FULL_OBJECT")
    } else {
        (checksum.algorithm, format!("{}-{}", checksum.to_base64(), record.parts.len()), "COMPOSITE")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        assert_eq!(parse_range("bytes=0-4", 10), Bytes(0, 4));
        assert_eq!(parse_range("bytes=5-", 10), Bytes(5, 9));
        assert_eq!(parse_range("bytes=-3", 10), Bytes(7, 9));
        assert_eq!(parse_range("bytes=-30", 10), Bytes(0, 9));
        assert_eq!(parse_range("bytes=8-100", 10), Bytes(8, 9));
        assert_eq!(parse_range("bytes=10-", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=10-20", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 10), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=5-2", 10), Whole);
        assert_eq!(parse_range("bytes=0-1,3-4", 10), Whole);
        assert_eq!(parse_range("items=0-1", 10), Whole);
        assert_eq!(parse_range("bytes=x-1", 10), Whole);
        assert_eq!(parse_range(&format!("bytes={}-", 5u64 << 32), 6 << 32), Bytes(5 << 32, (6 << 32) - 1));
    }

    #[test]
    fn etag_lists() {
        assert!(etag_matches("\"abc\"", "abc"));
        assert!(etag_matches("\"x\", W/\"abc\"", "abc"));
        assert!(etag_matches("*", "abc"));
        assert!(!etag_matches("\"abd\"", "abc"));
    }
}

//! ListObjectsV2 and ListObjects (v1): one paging engine, two documents.
//! (ListObjectVersions is in `versions.rs`.)

use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use base64::Engine;

use crate::sigv4::uri_encode;
use crate::store::{ObjectRecord, Store};
use crate::timefmt;

use super::bucket::write_owner;
use super::error::S3Error;
use super::router::ListVersion;
use super::xml::XmlWriter;
use super::{xml_response, RequestContext, S3Result, S3};

const MAX_KEYS: usize = 1000;
/// Records fetched from the index per step.
const BATCH: usize = 1000;
/// Keys skipped inside one common prefix before jumping past it in the
/// index instead: keeps both small and huge "directories" cheap.
const SKIP_BEFORE_JUMP: usize = 64;

#[derive(Default)]
struct Page {
    objects: Vec<(String, ObjectRecord)>,
    prefixes: Vec<String>,
    truncated: bool,
    /// The last key or common prefix returned: where the next page starts.
    last: Option<String>,
}

/// The smallest index position after every key that starts with `prefix`.
fn past(prefix: &str) -> Vec<u8> {
    // 0xFF never occurs in UTF-8, so it sorts after any continuation.
    let mut bytes = prefix.as_bytes().to_vec();
    bytes.push(0xFF);
    bytes
}

/// Collects one page: keys under `prefix` after `start`, rolled up into
/// common prefixes at `delimiter`. A common prefix at or before `start`
/// was returned by an earlier page and is skipped.
async fn collect_page(
    store: &Store,
    bucket: &str,
    prefix: &str,
    delimiter: &str,
    start: Option<&str>,
    max_keys: usize,
) -> Result<Page, S3Error> {
    let mut page = Page::default();
    let mut after: Option<Vec<u8>> = start.map(|start| start.as_bytes().to_vec());
    loop {
        let batch = store.list_objects(bucket, prefix, after.clone(), if max_keys == 0 { 0 } else { BATCH }).await?;
        if max_keys == 0 {
            return Ok(page);
        }
        let exhausted = batch.len() < BATCH;
        let mut current_prefix: Option<String> = None;
        let mut skipped = 0;
        let mut jumped = false;
        for (key, record) in batch {
            after = Some(key.as_bytes().to_vec());
            if let Some(common) = &current_prefix {
                if key.starts_with(common.as_str()) {
                    skipped += 1;
                    if skipped > SKIP_BEFORE_JUMP {
                        after = Some(past(common));
                        jumped = true;
                        break;
                    }
                    continue;
                }
            }
            let rolled_up = (!delimiter.is_empty())
                .then(|| key.get(prefix.len()..).and_then(|rest| rest.find(delimiter)))
                .flatten()
                .map(|at| key[..prefix.len() + at + delimiter.len()].to_string());
            let returned = page.objects.len() + page.prefixes.len();
            match rolled_up {
                Some(common) => {
                    skipped = 0;
                    if start.is_none_or(|start| common.as_str() > start) {
                        if returned == max_keys {
                            page.truncated = true;
                            return Ok(page);
                        }
                        page.prefixes.push(common.clone());
                        page.last = Some(common.clone());
                    }
                    current_prefix = Some(common);
                }
                None => {
                    if returned == max_keys {
                        page.truncated = true;
                        return Ok(page);
                    }
                    page.last = Some(key.clone());
                    page.objects.push((key, record));
                }
            }
        }
        if exhausted && !jumped {
            return Ok(page);
        }
    }
}

pub(super) fn parse_max_keys(context: &RequestContext) -> Result<usize, S3Error> {
    match context.query.get("max-keys") {
        None => Ok(MAX_KEYS),
        Some(text) => match text.trim().parse::<i64>() {
            Ok(value) if value < 0 => {
                Err(S3Error::invalid_argument("Argument maxKeys must be an integer between 0 and 2147483647")
                    .with("ArgumentName", "maxKeys")
                    .with("ArgumentValue", text))
            }
            Ok(value) => Ok(usize::try_from(value).unwrap_or(MAX_KEYS).min(MAX_KEYS)),
            Err(_) => Err(S3Error::invalid_argument("Provided max-keys not an integer or within integer range")
                .with("ArgumentName", "max-keys")
                .with("ArgumentValue", text)),
        },
    }
}

/// `encoding-type=url`: keys come back URL-encoded.
pub(super) fn url_encoded(context: &RequestContext) -> Result<bool, S3Error> {
    match context.query.get("encoding-type") {
        None => Ok(false),
        Some(value) if value.eq_ignore_ascii_case("url") => Ok(true),
        Some(value) => Err(S3Error::invalid_argument("Invalid Encoding Method specified in Request")
            .with("ArgumentName", "encoding-type")
            .with("ArgumentValue", value)),
    }
}

pub async fn list_objects(s3: &S3, context: &mut RequestContext, version: ListVersion) -> S3Result {
    let query = &context.query;
    let prefix = query.get("prefix").unwrap_or_default();
    let delimiter = query.get("delimiter").unwrap_or_default();
    let max_keys = parse_max_keys(context)?;
    let url_encoded = url_encoded(context)?;
    let encode = |text: &str| if url_encoded { uri_encode(text.as_bytes(), true) } else { text.to_string() };
    let token = match (version, query.get("continuation-token")) {
        (ListVersion::V2, Some(token)) => {
            Some(TOKEN.decode(token).ok().and_then(|bytes| String::from_utf8(bytes).ok()).ok_or_else(|| {
                S3Error::invalid_argument("The continuation token provided is incorrect")
                    .with("ArgumentName", "continuation-token")
            })?)
        }
        _ => None,
    };
    let start = match version {
        ListVersion::V2 => token.clone().or_else(|| query.get("start-after").map(str::to_string)),
        ListVersion::V1 | ListVersion::Versions => query.get("marker").map(str::to_string),
    }
    .filter(|start| !start.is_empty());
    let page = collect_page(&s3.store, &context.bucket, prefix, delimiter, start.as_deref(), max_keys).await?;

    let root = "ListBucketResult";
    let mut out = XmlWriter::new(root);
    out.element("Name", &context.bucket).element("Prefix", &encode(prefix));
    match version {
        ListVersion::V2 => {
            if let Some(token) = query.get("continuation-token") {
                out.element("ContinuationToken", token);
            }
            if let Some(start_after) = query.get("start-after") {
                out.element("StartAfter", &encode(start_after));
            }
            out.element("KeyCount", &(page.objects.len() + page.prefixes.len()).to_string());
            if page.truncated {
                if let Some(last) = &page.last {
                    out.element("NextContinuationToken", &TOKEN.encode(last));
                }
            }
        }
        ListVersion::V1 | ListVersion::Versions => {
            out.element("Marker", &encode(query.get("marker").unwrap_or_default()));
            if page.truncated && !delimiter.is_empty() {
                if let Some(last) = &page.last {
                    out.element("NextMarker", &encode(last));
                }
            }
        }
    }
    out.element("MaxKeys", &max_keys.to_string());
    // Echoed when given, even empty, as S3 does.
    if query.has("delimiter") {
        out.element("Delimiter", &encode(delimiter));
    }
    if url_encoded {
        out.element("EncodingType", "url");
    }
    out.element("IsTruncated", if page.truncated { "true" } else { "false" });
    let with_owner = version != ListVersion::V2 || query.get("fetch-owner") == Some("true");
    for (key, record) in &page.objects {
        out.open("Contents").element("Key", &encode(key));
        out.element("LastModified", &timefmt::format_iso8601(record.last_modified))
            .element("ETag", &format!("\"{}\"", record.etag));
        if let Some(checksum) = &record.checksum {
            out.element("ChecksumAlgorithm", checksum.algorithm.name());
        }
        out.element("Size", &record.size.to_string()).element("StorageClass", "STANDARD");
        if with_owner {
            write_owner(&mut out, &context.principal);
        }
        out.close("Contents");
    }
    for common in &page.prefixes {
        out.open("CommonPrefixes").element("Prefix", &encode(common)).close("CommonPrefixes");
    }
    xml_response(out.finish(root))
}

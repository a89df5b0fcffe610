//! Versioning: Get/PutBucketVersioning and ListObjectVersions. Reads and
//! deletes of one version live with the other object operations
//! (`object.rs`, `delete_objects.rs`).

use http::StatusCode;

use crate::sigv4::uri_encode;
use crate::store::{ObjectRecord, Selector, Versioning};
use crate::timefmt;

use super::bucket::write_owner;
use super::error::S3Error;
use super::object::{selector, version_text};
use super::xml::{self, XmlWriter};
use super::{empty_response, xml_response, RequestContext, S3Result, S3};

/// Versions fetched from the index per step.
const BATCH: usize = 1000;
const MAX_DOCUMENT_BYTES: usize = 16 * 1024;

pub async fn get_bucket_versioning(s3: &S3, context: &mut RequestContext) -> S3Result {
    let bucket = s3.store.bucket(&context.bucket).await?;
    let mut out = XmlWriter::new("VersioningConfiguration");
    // A bucket never versioned answers an empty configuration, as in S3.
    match bucket.versioning {
        Versioning::Unversioned => {}
        Versioning::Enabled => {
            out.element("Status", "Enabled");
        }
        Versioning::Suspended => {
            out.element("Status", "Suspended");
        }
    }
    xml_response(out.finish("VersioningConfiguration"))
}

pub async fn put_bucket_versioning(s3: &S3, context: &mut RequestContext) -> S3Result {
    let document = context.body.read_to_end(MAX_DOCUMENT_BYTES).await?;
    let root = xml::parse(&document).map_err(|_| S3Error::malformed_xml())?;
    if root.name != "VersioningConfiguration" {
        return Err(S3Error::malformed_xml());
    }
    if root.child("MfaDelete").is_some_and(|mfa| mfa.text.trim() == "Enabled") {
        return Err(S3Error::invalid_request("MFA delete is not supported: larder has no MFA devices.")
            .with("ArgumentName", "MfaDelete"));
    }
    let versioning = match root.child("Status").map(|status| status.text.trim()) {
        Some("Enabled") => Versioning::Enabled,
        Some("Suspended") => Versioning::Suspended,
        // No status changes nothing, as in S3.
        None => {
            s3.store.bucket(&context.bucket).await?;
            return empty_response(StatusCode::OK);
        }
        Some(_) => return Err(S3Error::malformed_xml()),
    };
    let bucket = s3.store.bucket(&context.bucket).await?;
    if bucket.object_lock && versioning != Versioning::Enabled {
        return Err(S3Error::new(
            "InvalidBucketState",
            StatusCode::CONFLICT,
            "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.",
        ));
    }
    s3.store.set_versioning(&context.bucket, versioning).await?;
    empty_response(StatusCode::OK)
}

/// One entry of a ListObjectVersions page.
enum Entry {
    Version { key: String, record: Box<ObjectRecord>, latest: bool },
    CommonPrefix(String),
}

/// Where a page starts: after a key (all its versions), or after one
/// version of it.
type Start = Option<(String, Option<Selector>)>;

/// Collects one page of versions under `prefix`, rolled up at `delimiter`
/// into common prefixes (each once, and never one at or before the key
/// marker). Returns the entries and whether more follow.
async fn collect_page(
    s3: &S3,
    bucket: &str,
    prefix: &str,
    delimiter: &str,
    start: Start,
    max_keys: usize,
) -> Result<(Vec<Entry>, bool), S3Error> {
    let mut out = Vec::new();
    if max_keys == 0 {
        s3.store.bucket(bucket).await?;
        return Ok((out, false));
    }
    let marker = start.as_ref().map(|(key, _)| key.clone());
    let mut after = start.map(|(key, which)| (key.into_bytes(), which));
    loop {
        let batch = s3.store.list_versions(bucket, prefix, after.clone(), BATCH).await?;
        let exhausted = batch.len() < BATCH;
        let mut jumped = false;
        for (key, record, latest) in batch {
            let rolled_up = (!delimiter.is_empty())
                .then(|| key.get(prefix.len()..).and_then(|rest| rest.find(delimiter)))
                .flatten()
                .map(|at| key[..prefix.len() + at + delimiter.len()].to_string());
            if let Some(common) = rolled_up {
                // Past every key under it, in the index: 0xFF never occurs in UTF-8.
                let mut past = common.clone().into_bytes();
                past.push(0xFF);
                after = Some((past, None));
                jumped = true;
                if marker.as_deref().is_none_or(|marker| common.as_str() > marker) {
                    if out.len() == max_keys {
                        return Ok((out, true));
                    }
                    out.push(Entry::CommonPrefix(common));
                }
                break;
            }
            if out.len() == max_keys {
                return Ok((out, true));
            }
            after = Some((key.clone().into_bytes(), Some(Selector::Version(record.version))));
            out.push(Entry::Version { key, record: Box::new(record), latest });
        }
        if exhausted && !jumped {
            return Ok((out, false));
        }
    }
}

pub async fn list_object_versions(s3: &S3, context: &mut RequestContext) -> S3Result {
    let query = &context.query;
    let prefix = query.get("prefix").unwrap_or_default();
    let delimiter = query.get("delimiter").unwrap_or_default();
    let max_keys = super::list::parse_max_keys(context)?;
    let url_encoded = super::list::url_encoded(context)?;
    let encode = |text: &str| if url_encoded { uri_encode(text.as_bytes(), true) } else { text.to_string() };
    let key_marker = query.get("key-marker").filter(|marker| !marker.is_empty());
    let version_marker = query.get("version-id-marker");
    let start = match (key_marker, version_marker) {
        (None, Some(marker)) if !marker.is_empty() => {
            return Err(S3Error::invalid_argument("A version-id marker cannot be specified without a key marker.")
                .with("ArgumentName", "version-id-marker")
                .with("ArgumentValue", marker))
        }
        (None, _) => None,
        (Some(key), None | Some("")) => Some((key.to_string(), None)),
        (Some(key), Some(marker)) => {
            let which = selector(Some(marker)).map_err(|_| {
                S3Error::invalid_argument("Invalid version id specified")
                    .with("ArgumentName", "version-id-marker")
                    .with("ArgumentValue", marker)
            })?;
            Some((key.to_string(), Some(which)))
        }
    };
    let (page, truncated) = collect_page(s3, &context.bucket, prefix, delimiter, start, max_keys).await?;

    let mut out = XmlWriter::new("ListVersionsResult");
    out.element("Name", &context.bucket)
        .element("Prefix", &encode(prefix))
        .element("KeyMarker", &encode(key_marker.unwrap_or_default()))
        .element("VersionIdMarker", version_marker.unwrap_or_default());
    if truncated {
        match page.last() {
            Some(Entry::Version { key, record, .. }) => {
                out.element("NextKeyMarker", &encode(key))
                    .element("NextVersionIdMarker", &version_text(record.version));
            }
            Some(Entry::CommonPrefix(common)) => {
                out.element("NextKeyMarker", &encode(common));
            }
            None => {}
        }
    }
    out.element("MaxKeys", &max_keys.to_string());
    if query.has("delimiter") {
        out.element("Delimiter", &encode(delimiter));
    }
    if url_encoded {
        out.element("EncodingType", "url");
    }
    out.element("IsTruncated", if truncated { "true" } else { "false" });
    for entry in &page {
        let Entry::Version { key, record, latest } = entry else { continue };
        let element = if record.delete_marker { "DeleteMarker" } else { "Version" };
        out.open(element)
            .element("Key", &encode(key))
            .element("VersionId", &version_text(record.version))
            .element("IsLatest", if *latest { "true" } else { "false" })
            .element("LastModified", &timefmt::format_iso8601(record.last_modified));
        if !record.delete_marker {
            out.element("ETag", &format!("\"{}\"", record.etag));
            if let Some(checksum) = &record.checksum {
                out.element("ChecksumAlgorithm", checksum.algorithm.name());
            }
            out.element("Size", &record.size.to_string()).element("StorageClass", "STANDARD");
        }
        write_owner(&mut out, &context.principal);
        out.close(element);
    }
    for entry in &page {
        if let Entry::CommonPrefix(common) = entry {
            out.open("CommonPrefixes").element("Prefix", &encode(common)).close("CommonPrefixes");
        }
    }
    xml_response(out.finish("ListVersionsResult"))
}

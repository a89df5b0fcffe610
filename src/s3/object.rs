//! Object operations: PutObject, CopyObject, GetObject and HeadObject,
//! DeleteObject.

use http::{HeaderValue, Response, StatusCode};

use crate::checksum::{Checksum, ChecksumAlgorithm, DigestSet};
use crate::sigv4;
use crate::store::{
    Deleted, ExpectedDigests, ObjectFile, ObjectRecord, Selector, StoreError, Upload, VersionId, Versioning,
    WriteCondition,
};
use crate::timefmt;

use super::body;
use super::error::S3Error;
use super::headers::{self, evaluate_conditions, header, parse_range, Condition, RangeRequest};
use super::xml::XmlWriter;
use super::{empty_response, payload, xml_response, RequestContext, S3Result, S3};

/// Largest single PUT (and copy source), as S3 allows.
pub const MAX_OBJECT_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// The version a `versionId` names: absent, the current one; `null`, the
/// null version.
pub fn selector(version: Option<&str>) -> Result<Selector, S3Error> {
    let invalid = |message: &str, text: &str| {
        S3Error::invalid_argument(message).with("ArgumentName", "versionId").with("ArgumentValue", text)
    };
    match version {
        None => Ok(Selector::Current),
        Some("") => Err(invalid("Version id cannot be the empty string", "")),
        Some("null") => Ok(Selector::Version(None)),
        Some(text) => match VersionId::parse(text) {
            Some(id) => Ok(Selector::Version(Some(id))),
            None => Err(invalid("Invalid version id specified", text)),
        },
    }
}

/// How S3 writes a version id: the null version is `null`.
pub fn version_text(version: Option<VersionId>) -> String {
    version.map_or_else(|| "null".to_string(), |id| id.to_string())
}

/// Adds `x-amz-version-id` to a write's answer when the write made a
/// version (versioning enabled).
pub fn with_version_header(mut response: Response<body::ResponseBody>, record: &ObjectRecord) -> S3Result {
    if let Some(version) = record.version {
        let value = HeaderValue::from_str(&version.to_string()).map_err(|_| S3Error::internal())?;
        response.headers_mut().insert("x-amz-version-id", value);
    }
    Ok(response)
}

/// Fails a conditional write from its head, before the body is read; the
/// commit checks the condition again, atomically.
pub async fn check_write_condition(
    s3: &S3,
    context: &RequestContext,
    condition: &WriteCondition,
) -> Result<(), S3Error> {
    if *condition == WriteCondition::None {
        return Ok(());
    }
    let current = match s3.store.head_object(&context.bucket, &context.key).await {
        Ok(record) => Some(record),
        Err(StoreError::NoSuchKey) => None,
        Err(error) => return Err(error.into()),
    };
    condition.check(current.as_ref())?;
    Ok(())
}

/// Echoes a computed checksum in its `x-amz-checksum-*` header.
pub fn with_checksum_header(builder: http::response::Builder, checksum: Option<&Checksum>) -> http::response::Builder {
    match checksum {
        Some(checksum) => builder.header(checksum.algorithm.header_name(), checksum.to_base64()),
        None => builder,
    }
}

pub async fn put_object(s3: &S3, context: &mut RequestContext) -> S3Result {
    let payload = payload::inspect(s3, context, MAX_OBJECT_BYTES)?;
    let condition = headers::write_condition(&context.headers)?;
    check_write_condition(s3, context, &condition).await?;
    let meta = headers::object_meta(&context.headers)?;
    let lock = super::object_lock::lock_for_write(s3, context, &context.bucket).await?;
    let (_, store_checksum) = headers::expected_digests(&context.headers, context.auth.as_ref())?;
    let store_checksum = store_checksum.or(payload.trailer_checksum());
    // The store hashes what it writes and checks it before the commit.
    let mut expected = context.body.hand_over_check();
    let upload = s3.store.begin_upload(&context.bucket, &context.key, expected.digest_set(store_checksum)).await?;
    let upload = payload::receive(s3, context, &payload, upload, &mut expected).await?;
    let record = upload.commit_locked(meta, expected, condition, lock).await?;
    let response = with_checksum_header(Response::builder().status(StatusCode::OK), record.checksum.as_ref())
        .header(http::header::ETAG, format!("\"{}\"", record.etag))
        .body(body::empty())
        .map_err(|_| S3Error::internal())?;
    with_version_header(response, &record)
}

/// S3 tells only those who may list the bucket that a key is missing;
/// anyone else is denied, so strangers cannot probe which keys exist.
async fn missing_key(s3: &S3, context: &RequestContext) -> S3Error {
    match s3.authorize(context, super::access::LIST_BUCKET, &context.bucket, &context.key).await {
        Ok(()) => S3Error::no_such_key(),
        Err(_) => S3Error::access_denied(),
    }
}

/// The bytes of part `number` (1-based); a single-PUT object is one part.
fn part_range(record: &ObjectRecord, number: u32) -> Result<RangeRequest, S3Error> {
    let segments = record.segments();
    let index = usize::try_from(number).unwrap_or(usize::MAX) - 1;
    let Some(segment) = segments.get(index) else {
        return Err(S3Error::new(
            "InvalidPartNumber",
            StatusCode::RANGE_NOT_SATISFIABLE,
            "The requested partnumber is not satisfiable",
        )
        .with("PartNumberRequested", number.to_string())
        .with("ActualPartCount", segments.len().to_string()));
    };
    if segment.size == 0 {
        return Ok(RangeRequest::Whole);
    }
    let start: u64 = segments[..index].iter().map(|s| s.size).sum();
    Ok(RangeRequest::Bytes(start, start + segment.size - 1))
}

pub async fn get_object(s3: &S3, context: &mut RequestContext, include_body: bool) -> S3Result {
    let which = selector(context.query.get("versionId"))?;
    // Rewriting a public object's headers (say, as text/html) is for
    // signed requests only, as in S3.
    if context.principal == crate::iam::Principal::Anonymous
        && context.query.0.iter().any(|p| p.name.starts_with("response-"))
    {
        return Err(S3Error::invalid_request(
            "Request specific response headers cannot be used for anonymous GET requests.",
        ));
    }
    let part = match context.query.get("partNumber") {
        Some(text) => Some(super::multipart::part_number(Some(text))?),
        None => None,
    };
    let found = if include_body {
        s3.store.open_version(&context.bucket, &context.key, which).await.map(|(record, file)| (record, Some(file)))
    } else {
        s3.store.head_version(&context.bucket, &context.key, which).await.map(|record| (record, None))
    };
    let (record, file) = match found {
        Ok(found) => found,
        Err(StoreError::NoSuchKey) => return Err(missing_key(s3, context).await),
        Err(error) => return Err(error.into()),
    };
    match evaluate_conditions(&context.headers, "", &record) {
        Condition::Proceed => {}
        Condition::Failed(condition) => return Err(S3Error::precondition_failed(condition)),
        Condition::NotModified => {
            return Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .header(http::header::ETAG, format!("\"{}\"", record.etag))
                .header(http::header::LAST_MODIFIED, timefmt::format_http_date(record.last_modified))
                .body(body::empty())
                .map_err(|_| S3Error::internal());
        }
    }
    let range = match (header(&context.headers, "range"), part) {
        (Some(_), Some(_)) => {
            return Err(S3Error::invalid_request("Cannot specify both Range header and partNumber query parameter"))
        }
        (Some(value), None) => parse_range(value, record.size),
        (None, Some(number)) => part_range(&record, number)?,
        (None, None) => RangeRequest::Whole,
    };
    let (status, start, end) = match range {
        RangeRequest::Whole => (StatusCode::OK, 0, record.size),
        RangeRequest::Bytes(first, last) => (StatusCode::PARTIAL_CONTENT, first, last + 1),
        RangeRequest::Unsatisfiable => {
            return Err(S3Error::new(
                "InvalidRange",
                StatusCode::RANGE_NOT_SATISFIABLE,
                "The requested range is not satisfiable",
            )
            .with("RangeRequested", header(&context.headers, "range").unwrap_or_default())
            .with("ActualObjectSize", record.size.to_string()));
        }
    };
    // A checksum describes the whole object, so a range never carries one.
    let with_checksum = status == StatusCode::OK
        && header(&context.headers, "x-amz-checksum-mode").is_some_and(|v| v.eq_ignore_ascii_case("ENABLED"));
    let mut response = Response::new(body::empty());
    *response.status_mut() = status;
    let response_headers = response.headers_mut();
    headers::object_headers(response_headers, &record, &context.query, with_checksum);
    super::object_lock::add_lock_headers(response_headers, &record.lock);
    if which == Selector::Current {
        if let Some(expiration) = s3.expiration_header(&context.bucket, &context.key, &record).await {
            if let Ok(value) = HeaderValue::from_str(&expiration) {
                response_headers.insert("x-amz-expiration", value);
            }
        }
    }
    // The null version is named only in a bucket that has had versioning.
    let named = match (record.version, which) {
        (Some(_), _) => true,
        (None, Selector::Version(None)) => {
            s3.store.bucket(&context.bucket).await?.versioning != Versioning::Unversioned
        }
        (None, _) => false,
    };
    if named {
        let version = HeaderValue::from_str(&version_text(record.version)).map_err(|_| S3Error::internal())?;
        response_headers.insert("x-amz-version-id", version);
    }
    let reservation = s3.through_share(context, (start, end, record.size), response_headers).await?;

    response_headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if part.is_some() {
        response_headers.insert("x-amz-mp-parts-count", HeaderValue::from(record.segments().len()));
    }
    if status == StatusCode::PARTIAL_CONTENT {
        let range = format!("bytes {start}-{}/{}", end - 1, record.size);
        response_headers
            .insert(http::header::CONTENT_RANGE, HeaderValue::from_str(&range).map_err(|_| S3Error::internal())?);
    }
    let content = match file {
        Some(file) if end > start => match file.already_read(start, end) {
            Some(bytes) => body::full(bytes),
            None => body::stream(file.stream(start, end)),
        },
        _ => body::empty(),
    };
    *response.body_mut() = match reservation {
        Some(reservation) => body::metered(content, move |sent| reservation.settle(sent)),
        None => content,
    };
    Ok(response)
}

pub async fn delete_object(s3: &S3, context: &mut RequestContext) -> S3Result {
    let deleted = match selector(context.query.get("versionId"))? {
        Selector::Current => s3.store.delete_object(&context.bucket, &context.key).await?,
        Selector::Version(version) => {
            let guard = super::object_lock::delete_guard(s3, context, &context.bucket, &context.key).await;
            s3.store.delete_version(&context.bucket, &context.key, version, guard).await?
        }
    };
    let mut response = empty_response(StatusCode::NO_CONTENT)?;
    let Deleted { version, delete_marker, versioned } = deleted;
    let headers = response.headers_mut();
    if delete_marker {
        headers.insert("x-amz-delete-marker", HeaderValue::from_static("true"));
    }
    if versioned {
        let version = HeaderValue::from_str(&version_text(version)).map_err(|_| S3Error::internal())?;
        headers.insert("x-amz-version-id", version);
    }
    Ok(response)
}

/// Sets `bytes` aside on the disk for a write (see `Store::reserve_space`).
pub fn reserve(s3: &S3, bytes: u64) -> Result<crate::store::SpaceReservation, S3Error> {
    s3.store.reserve_space(bytes).ok_or_else(S3Error::insufficient_storage)
}

/// Reads `x-amz-copy-source`: `[/]bucket/key[?versionId=...]`, URL-encoded.
fn copy_source(context: &RequestContext) -> Result<(String, String, Selector), S3Error> {
    let invalid =
        || S3Error::invalid_argument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey");
    let raw = header(&context.headers, "x-amz-copy-source").ok_or_else(invalid)?;
    let (path, version) = match raw.split_once("?versionId=") {
        Some((path, version)) => (path, Some(version)),
        None => (raw, None),
    };
    let which = selector(version)?;
    let decoded = sigv4::percent_decode(path, false).map_err(|_| invalid())?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
    let decoded = decoded.strip_prefix('/').unwrap_or(&decoded);
    match decoded.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() && !key.contains('\0') => {
            Ok((bucket.to_string(), key.to_string(), which))
        }
        _ => Err(invalid()),
    }
}

/// The source of a copy, open, with its `x-amz-copy-source-if-*`
/// conditions checked.
pub struct CopySource {
    pub bucket: String,
    pub key: String,
    pub record: ObjectRecord,
    pub file: ObjectFile,
    /// Named by version id: S3 then names the source's version in its answer.
    pub by_version: bool,
}

impl CopySource {
    /// `x-amz-copy-source-version-id`, when S3 sends it.
    pub fn version_header(&self) -> Option<HeaderValue> {
        (self.by_version || self.record.version.is_some())
            .then(|| HeaderValue::from_str(&version_text(self.record.version)).ok())
            .flatten()
    }
}

pub async fn open_copy_source(s3: &S3, context: &RequestContext) -> Result<CopySource, S3Error> {
    let (bucket, key, which) = copy_source(context)?;
    s3.authorize(context, super::access::READ_OBJECT, &bucket, &key).await?;
    let (record, file) = s3.store.open_version(&bucket, &key, which).await.map_err(|error| match error {
        StoreError::NoSuchKey => S3Error::no_such_key().with("Key", key.clone()),
        StoreError::NoSuchBucket => S3Error::no_such_bucket().with("BucketName", bucket.clone()),
        // A delete marker cannot be copied: S3 answers 400 for a version
        // id, and as a missing key for the current one.
        StoreError::DeleteMarker { current: false, .. } => S3Error::invalid_request(
            "The source of a copy request may not specifically refer to a delete marker by version id.",
        ),
        StoreError::DeleteMarker { current: true, .. } => S3Error::no_such_key().with("Key", key.clone()),
        other => other.into(),
    })?;
    if evaluate_conditions(&context.headers, "x-amz-copy-source-", &record) != Condition::Proceed {
        return Err(S3Error::precondition_failed("x-amz-copy-source-If"));
    }
    Ok(CopySource { bucket, key, record, file, by_version: which != Selector::Current })
}

/// Streams `[start, end)` of a copy source into an upload; on failure the
/// upload is abandoned before the error returns.
pub async fn copy_bytes(file: ObjectFile, start: u64, end: u64, mut upload: Upload) -> Result<Upload, S3Error> {
    let mut chunks = file.stream(start, end);
    while let Some(chunk) = chunks.recv().await {
        let written = match chunk {
            Ok(chunk) => upload.write(chunk).await.map_err(S3Error::from),
            Err(error) => {
                tracing::error!(%error, "reading a copy source failed");
                Err(S3Error::internal())
            }
        };
        if let Err(error) = written {
            upload.abandon().await;
            return Err(error);
        }
    }
    Ok(upload)
}

pub async fn copy_object(s3: &S3, context: &mut RequestContext) -> S3Result {
    let replace = match header(&context.headers, "x-amz-metadata-directive") {
        None => false,
        Some(value) if value.eq_ignore_ascii_case("COPY") => false,
        Some(value) if value.eq_ignore_ascii_case("REPLACE") => true,
        Some(_) => return Err(S3Error::invalid_argument("Unknown metadata directive.")),
    };
    let copy_source = open_copy_source(s3, context).await?;
    let source_version = copy_source.version_header();
    let CopySource { bucket: source_bucket, key: source_key, record: source, file, by_version } = copy_source;
    // Copying an older version over its key restores it: that is allowed.
    if source_bucket == context.bucket && source_key == context.key && !replace && !by_version {
        return Err(S3Error::invalid_request(
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    if source.size > MAX_OBJECT_BYTES {
        return Err(S3Error::invalid_request(format!(
            "The specified copy source is larger than the maximum allowable size for a copy source: {MAX_OBJECT_BYTES}"
        )));
    }
    let meta = if replace { headers::object_meta(&context.headers)? } else { source.meta.clone() };
    let lock = super::object_lock::lock_for_write(s3, context, &context.bucket).await?;
    let checksum = match header(&context.headers, "x-amz-checksum-algorithm") {
        Some(name) => Some(
            ChecksumAlgorithm::from_name(name)
                .ok_or_else(|| S3Error::invalid_request("Checksum algorithm provided is unsupported."))?,
        ),
        None => source.checksum.as_ref().map(|c| c.algorithm),
    };
    let _space = reserve(s3, source.size)?;
    let upload = s3.store.begin_upload(&context.bucket, &context.key, DigestSet { sha256: false, checksum }).await?;
    let upload = copy_bytes(file, 0, source.size, upload).await?;
    let record = upload.commit_locked(meta, ExpectedDigests::default(), WriteCondition::None, lock).await?;
    let mut out = XmlWriter::new("CopyObjectResult");
    out.element("LastModified", &timefmt::format_iso8601(record.last_modified))
        .element("ETag", &format!("\"{}\"", record.etag));
    if let Some(checksum) = &record.checksum {
        out.element(&super::multipart::checksum_element(checksum.algorithm), &checksum.to_base64());
    }
    let mut response = with_version_header(xml_response(out.finish("CopyObjectResult"))?, &record)?;
    if let Some(version) = source_version {
        response.headers_mut().insert("x-amz-copy-source-version-id", version);
    }
    Ok(response)
}

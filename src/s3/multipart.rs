//! Multipart uploads: CreateMultipartUpload, UploadPart, UploadPartCopy,
//! CompleteMultipartUpload, AbortMultipartUpload, ListParts and
//! ListMultipartUploads.

use http::{HeaderValue, Response, StatusCode};

use crate::checksum::{Checksum, ChecksumAlgorithm};
use crate::store::{BlobId, CompletedPart, MAX_PART_NUMBER};
use crate::timefmt;

use super::body;
use super::bucket::write_owner;
use super::error::S3Error;
use super::headers::{self, header};
use super::object::{copy_bytes, open_copy_source, with_checksum_header, CopySource, MAX_OBJECT_BYTES};
use super::payload;
use super::xml::{self, XmlWriter};
use super::{empty_response, xml_response, RequestContext, S3Result, S3};

/// 10,000 parts with checksums fit well within this.
const MAX_COMPLETE_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;
const MAX_LISTED: usize = 1000;

fn upload_id(context: &RequestContext) -> Result<BlobId, S3Error> {
    let text = context.query.get("uploadId").unwrap_or_default();
    BlobId::from_hex(text).ok_or_else(|| S3Error::no_such_upload(text))
}

pub fn part_number(text: Option<&str>) -> Result<u32, S3Error> {
    text.and_then(|text| text.trim().parse::<u32>().ok()).filter(|n| (1..=MAX_PART_NUMBER).contains(n)).ok_or_else(
        || {
            S3Error::invalid_argument("Part number must be an integer between 1 and 10000, inclusive")
                .with("ArgumentName", "partNumber")
                .with("ArgumentValue", text.unwrap_or_default())
        },
    )
}

/// `Checksum<ALGORITHM>` element name, as S3 writes it.
pub fn checksum_element(algorithm: ChecksumAlgorithm) -> String {
    format!("Checksum{}", algorithm.name())
}

/// `x-amz-checksum-type`: is the completed object's checksum of the whole
/// object (FULL_OBJECT, the CRCs only; CRC64NVME always) rather than of its
/// parts' checksums (COMPOSITE, not CRC64NVME)?
fn checksum_type(context: &RequestContext, algorithm: Option<ChecksumAlgorithm>) -> Result<bool, S3Error> {
    let asked = header(&context.headers, "x-amz-checksum-type").map(str::trim);
    let Some(algorithm) = algorithm else {
        return match asked {
            None => Ok(false),
            Some(_) => Err(S3Error::invalid_request(
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
            )),
        };
    };
    let crc = !matches!(algorithm, ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256);
    match asked.map(str::to_ascii_uppercase).as_deref() {
        None => Ok(algorithm == ChecksumAlgorithm::Crc64Nvme),
        Some("FULL_OBJECT") if crc => Ok(true),
        Some("COMPOSITE") if algorithm != ChecksumAlgorithm::Crc64Nvme => Ok(false),
        Some(kind @ ("FULL_OBJECT" | "COMPOSITE")) => Err(S3Error::invalid_request(format!(
            "The {kind} checksum type cannot be used with the {} checksum algorithm.",
            algorithm.name().to_ascii_lowercase()
        ))),
        Some(_) => Err(S3Error::invalid_request("Value for x-amz-checksum-type header is invalid.")),
    }
}

pub async fn create_multipart_upload(s3: &S3, context: &mut RequestContext) -> S3Result {
    let meta = headers::object_meta(&context.headers)?;
    let algorithm = match header(&context.headers, "x-amz-checksum-algorithm") {
        Some(name) => Some(ChecksumAlgorithm::from_name(name).ok_or_else(|| {
            S3Error::invalid_request("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
        })?),
        None => None,
    };
    let full_object = checksum_type(context, algorithm)?;
    let lock = super::object_lock::lock_for_write(s3, context, &context.bucket).await?;
    let id = s3.store.create_upload(&context.bucket, &context.key, meta, algorithm, full_object, lock).await?;
    let mut out = XmlWriter::new("InitiateMultipartUploadResult");
    out.element("Bucket", &context.bucket).element("Key", &context.key).element("UploadId", &id.to_hex());
    let mut response = xml_response(out.finish("InitiateMultipartUploadResult"))?;
    if let Some(algorithm) = algorithm {
        let headers = response.headers_mut();
        headers.insert("x-amz-checksum-algorithm", HeaderValue::from_static(algorithm.name()));
        let kind = if full_object { "FULL_OBJECT" } else { "COMPOSITE" };
        headers.insert("x-amz-checksum-type", HeaderValue::from_static(kind));
    }
    Ok(response)
}

pub async fn upload_part(s3: &S3, context: &mut RequestContext) -> S3Result {
    let number = part_number(context.query.get("partNumber"))?;
    let id = upload_id(context)?;
    let payload = payload::inspect(s3, context, MAX_OBJECT_BYTES)?;
    let (_, sent_algorithm) = headers::expected_digests(&context.headers, context.auth.as_ref())?;
    // The store hashes what it writes and checks it before the commit.
    let mut expected = context.body.hand_over_check();
    let upload =
        s3.store.upload(id, &context.bucket, &context.key).await.map_err(|_| S3Error::no_such_upload(&id.to_hex()))?;
    let algorithm = sent_algorithm.or(payload.trailer_checksum()).or(upload.checksum_algorithm);
    let writer = s3.store.begin_part(id, &context.bucket, &context.key, number, expected.digest_set(algorithm)).await?;
    let writer = payload::receive(s3, context, &payload, writer, &mut expected).await?;
    let part = writer.commit_part(expected).await?;
    with_checksum_header(Response::builder().status(StatusCode::OK), part.checksum.as_ref())
        .header(http::header::ETAG, format!("\"{}\"", part.etag))
        .body(body::empty())
        .map_err(|_| S3Error::internal())
}

/// `bytes=first-last` of `x-amz-copy-source-range`, checked against the source.
fn copy_range(context: &RequestContext, size: u64) -> Result<(u64, u64), S3Error> {
    let Some(value) = header(&context.headers, "x-amz-copy-source-range") else {
        return Ok((0, size));
    };
    let invalid =
        || S3Error::invalid_argument(format!("Range specified is not valid for source object of size: {size}"));
    let (first, last) =
        value.trim().strip_prefix("bytes=").and_then(|spec| spec.split_once('-')).ok_or_else(invalid)?;
    let (first, last) =
        (first.trim().parse::<u64>().map_err(|_| invalid())?, last.trim().parse::<u64>().map_err(|_| invalid())?);
    if first > last || last >= size {
        return Err(invalid());
    }
    Ok((first, last + 1))
}

pub async fn upload_part_copy(s3: &S3, context: &mut RequestContext) -> S3Result {
    let number = part_number(context.query.get("partNumber"))?;
    let id = upload_id(context)?;
    let upload =
        s3.store.upload(id, &context.bucket, &context.key).await.map_err(|_| S3Error::no_such_upload(&id.to_hex()))?;
    let copy_source = open_copy_source(s3, context).await?;
    let source_version = copy_source.version_header();
    let CopySource { record: source, file, .. } = copy_source;
    let (start, end) = copy_range(context, source.size)?;
    if end - start > MAX_OBJECT_BYTES {
        return Err(S3Error::invalid_request(
            "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120",
        ));
    }
    let digests = crate::checksum::DigestSet { sha256: false, checksum: upload.checksum_algorithm };
    let _space = super::object::reserve(s3, end - start)?;
    let writer = s3.store.begin_part(id, &context.bucket, &context.key, number, digests).await?;
    let writer = copy_bytes(file, start, end, writer).await?;
    let part = writer.commit_part(Default::default()).await?;
    let mut out = XmlWriter::new("CopyPartResult");
    out.element("LastModified", &timefmt::format_iso8601(part.last_modified))
        .element("ETag", &format!("\"{}\"", part.etag));
    if let Some(checksum) = &part.checksum {
        out.element(&checksum_element(checksum.algorithm), &checksum.to_base64());
    }
    let mut response = xml_response(out.finish("CopyPartResult"))?;
    if let Some(version) = source_version {
        response.headers_mut().insert("x-amz-copy-source-version-id", version);
    }
    Ok(response)
}

/// Reads the part list of a CompleteMultipartUpload document.
pub fn parse_completed_parts(document: &[u8]) -> Result<Vec<CompletedPart>, S3Error> {
    let root = xml::parse(document).map_err(|_| S3Error::malformed_xml())?;
    if root.name != "CompleteMultipartUpload" {
        return Err(S3Error::malformed_xml());
    }
    let mut parts = Vec::new();
    for part in root.children_named("Part") {
        let number = part
            .child("PartNumber")
            .and_then(|n| n.text.trim().parse::<u32>().ok())
            .ok_or_else(S3Error::malformed_xml)?;
        let etag = part.child("ETag").ok_or_else(S3Error::malformed_xml)?.text.trim();
        let etag = etag.strip_prefix("W/").unwrap_or(etag).trim_matches('"').to_string();
        let mut checksum = None;
        for algorithm in ChecksumAlgorithm::ALL {
            if let Some(element) = part.child(&checksum_element(algorithm)) {
                checksum = Some(Checksum::from_base64(algorithm, &element.text).ok_or_else(|| {
                    S3Error::invalid_request(format!("Value for {} is invalid.", checksum_element(algorithm)))
                })?);
            }
        }
        parts.push(CompletedPart { number, etag, checksum });
    }
    if parts.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    Ok(parts)
}

pub async fn complete_multipart_upload(s3: &S3, context: &mut RequestContext) -> S3Result {
    let id = upload_id(context)?;
    let condition = headers::write_condition(&context.headers)?;
    let document = context.body.read_to_end(MAX_COMPLETE_DOCUMENT_BYTES).await?;
    let parts = parse_completed_parts(&document)?;
    // A whole-object checksum the client computed, checked by the store.
    let expected = ChecksumAlgorithm::ALL.into_iter().find_map(|algorithm| {
        header(&context.headers, algorithm.header_name())
            .and_then(|value| Checksum::from_base64(algorithm, value.trim()))
    });
    let record =
        s3.store.complete_upload(id, &context.bucket, &context.key, parts, condition, expected).await.map_err(
            |error| match error {
                crate::store::StoreError::NoSuchUpload => S3Error::no_such_upload(&id.to_hex()),
                other => other.into(),
            },
        )?;
    let host = header(&context.headers, "host").unwrap_or("localhost");
    let mut out = XmlWriter::new("CompleteMultipartUploadResult");
    let path = crate::sigv4::uri_encode(format!("/{}/{}", context.bucket, context.key).as_bytes(), true);
    out.element("Location", &format!("http://{host}{path}"))
        .element("Bucket", &context.bucket)
        .element("Key", &context.key)
        .element("ETag", &format!("\"{}\"", record.etag));
    if let Some((algorithm, value, kind)) = headers::stored_checksum(&record) {
        out.element(&checksum_element(algorithm), &value).element("ChecksumType", kind);
    }
    super::object::with_version_header(xml_response(out.finish("CompleteMultipartUploadResult"))?, &record)
}

pub async fn abort_multipart_upload(s3: &S3, context: &mut RequestContext) -> S3Result {
    let id = upload_id(context)?;
    s3.store.abort_upload(id, &context.bucket, &context.key).await.map_err(|error| match error {
        crate::store::StoreError::NoSuchUpload => S3Error::no_such_upload(&id.to_hex()),
        other => other.into(),
    })?;
    empty_response(StatusCode::NO_CONTENT)
}

fn parse_limit(context: &RequestContext, name: &'static str) -> Result<usize, S3Error> {
    match context.query.get(name) {
        None => Ok(MAX_LISTED),
        Some(text) => match text.trim().parse::<i64>() {
            Ok(value) if value >= 0 => Ok(usize::try_from(value).unwrap_or(MAX_LISTED).min(MAX_LISTED)),
            _ => Err(S3Error::invalid_argument(format!("Provided {name} not an integer or within integer range"))
                .with("ArgumentName", name)
                .with("ArgumentValue", text)),
        },
    }
}

pub async fn list_parts(s3: &S3, context: &mut RequestContext) -> S3Result {
    let id = upload_id(context)?;
    let max_parts = parse_limit(context, "max-parts")?;
    let marker: u32 = match context.query.get("part-number-marker") {
        None | Some("") => 0,
        Some(text) => text.trim().parse().map_err(|_| S3Error::invalid_argument("Invalid part number marker"))?,
    };
    let (upload, mut parts) = s3
        .store
        .list_parts(id, &context.bucket, &context.key, marker, max_parts + 1)
        .await
        .map_err(|_| S3Error::no_such_upload(&id.to_hex()))?;
    let truncated = parts.len() > max_parts;
    parts.truncate(max_parts);
    let mut out = XmlWriter::new("ListPartsResult");
    out.element("Bucket", &context.bucket)
        .element("Key", &context.key)
        .element("UploadId", &id.to_hex())
        .element("PartNumberMarker", &marker.to_string());
    if let Some((last, _)) = parts.last() {
        out.element("NextPartNumberMarker", &last.to_string());
    }
    out.element("MaxParts", &max_parts.to_string()).element("IsTruncated", if truncated { "true" } else { "false" });
    for (number, part) in &parts {
        out.open("Part")
            .element("PartNumber", &number.to_string())
            .element("LastModified", &timefmt::format_iso8601(part.last_modified))
            .element("ETag", &format!("\"{}\"", part.etag))
            .element("Size", &part.size.to_string());
        if let Some(checksum) = &part.checksum {
            out.element(&checksum_element(checksum.algorithm), &checksum.to_base64());
        }
        out.close("Part");
    }
    out.open("Initiator")
        .element("ID", &super::bucket::owner_id(&context.principal))
        .element("DisplayName", "larder")
        .close("Initiator");
    write_owner(&mut out, &context.principal);
    out.element("StorageClass", "STANDARD");
    if let Some(algorithm) = upload.checksum_algorithm {
        out.element("ChecksumAlgorithm", algorithm.name());
    }
    xml_response(out.finish("ListPartsResult"))
}

pub async fn list_multipart_uploads(s3: &S3, context: &mut RequestContext) -> S3Result {
    let query = &context.query;
    let prefix = query.get("prefix").unwrap_or_default();
    let delimiter = query.get("delimiter").unwrap_or_default();
    let max_uploads = parse_limit(context, "max-uploads")?;
    let key_marker = query.get("key-marker").filter(|m| !m.is_empty()).map(str::to_string);
    let upload_id_marker = query.get("upload-id-marker").and_then(BlobId::from_hex);
    let url_encoded = query.get("encoding-type").is_some_and(|v| v.eq_ignore_ascii_case("url"));
    let encode =
        |text: &str| if url_encoded { crate::sigv4::uri_encode(text.as_bytes(), true) } else { text.to_string() };
    let found =
        s3.store.list_uploads(&context.bucket, prefix, key_marker.clone(), upload_id_marker, MAX_LISTED * 10).await?;

    let mut uploads = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    let mut truncated = false;
    let mut last: Option<(String, Option<BlobId>)> = None;
    for (id, upload) in found {
        let Some(rest) = upload.key.strip_prefix(prefix) else { continue };
        let rolled_up = (!delimiter.is_empty())
            .then(|| rest.find(delimiter))
            .flatten()
            .map(|at| upload.key[..prefix.len() + at + delimiter.len()].to_string());
        if let Some(common) = &rolled_up {
            if prefixes.last() == Some(common) || key_marker.as_deref().is_some_and(|m| common.as_str() <= m) {
                continue;
            }
        }
        if uploads.len() + prefixes.len() == max_uploads {
            truncated = true;
            break;
        }
        match rolled_up {
            Some(common) => {
                last = Some((common.clone(), None));
                prefixes.push(common);
            }
            None => {
                last = Some((upload.key.clone(), Some(id)));
                uploads.push((id, upload));
            }
        }
    }
    let mut out = XmlWriter::new("ListMultipartUploadsResult");
    out.element("Bucket", &context.bucket)
        .element("KeyMarker", &encode(key_marker.as_deref().unwrap_or_default()))
        .element("UploadIdMarker", query.get("upload-id-marker").unwrap_or_default());
    if truncated {
        if let Some((key, id)) = &last {
            out.element("NextKeyMarker", &encode(key))
                .element("NextUploadIdMarker", &id.map(|id| id.to_hex()).unwrap_or_default());
        }
    }
    out.element("Prefix", &encode(prefix));
    if !delimiter.is_empty() {
        out.element("Delimiter", &encode(delimiter));
    }
    out.element("MaxUploads", &max_uploads.to_string())
        .element("IsTruncated", if truncated { "true" } else { "false" });
    if url_encoded {
        out.element("EncodingType", "url");
    }
    for (id, upload) in &uploads {
        out.open("Upload").element("Key", &encode(&upload.key)).element("UploadId", &id.to_hex());
        out.open("Initiator")
            .element("ID", &super::bucket::owner_id(&context.principal))
            .element("DisplayName", "larder")
            .close("Initiator");
        write_owner(&mut out, &context.principal);
        out.element("StorageClass", "STANDARD").element("Initiated", &timefmt::format_iso8601(upload.created));
        if let Some(algorithm) = upload.checksum_algorithm {
            out.element("ChecksumAlgorithm", algorithm.name());
        }
        out.close("Upload");
    }
    for common in &prefixes {
        out.open("CommonPrefixes").element("Prefix", &encode(common)).close("CommonPrefixes");
    }
    xml_response(out.finish("ListMultipartUploadsResult"))
}

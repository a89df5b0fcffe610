//! GetObjectAttributes: an object's ETag, checksum, parts, storage class
//! and size in one call, without its bytes.

use http::HeaderValue;

use super::error::S3Error;
use super::headers::{header, stored_checksum};
use super::multipart::checksum_element;
use super::object::{selector, version_text};
use super::xml::XmlWriter;
use super::{xml_response, RequestContext, S3Result, S3};
use crate::store::StoreError;
use crate::timefmt;

const ATTRIBUTES: [&str; 5] = ["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"];
const MAX_PARTS: u32 = 1000;

/// A number from a header, or S3's InvalidArgument naming it.
fn number_header(context: &RequestContext, name: &'static str, default: u32) -> Result<u32, S3Error> {
    match header(&context.headers, name) {
        None => Ok(default),
        Some(text) => text.trim().parse().map_err(|_| {
            S3Error::invalid_argument(format!("Invalid {name} header"))
                .with("ArgumentName", name)
                .with("ArgumentValue", text)
        }),
    }
}

pub async fn get_object_attributes(s3: &S3, context: &mut RequestContext) -> S3Result {
    let which = selector(context.query.get("versionId"))?;
    let wanted: Vec<&str> = context
        .headers
        .get_all("x-amz-object-attributes")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .collect();
    if wanted.is_empty() || wanted.iter().any(|name| !ATTRIBUTES.contains(name)) {
        return Err(S3Error::invalid_argument("Invalid attribute name specified.")
            .with("ArgumentName", "x-amz-object-attributes")
            .with("ArgumentValue", wanted.join(",")));
    }
    let max_parts = number_header(context, "x-amz-max-parts", MAX_PARTS)?.min(MAX_PARTS);
    let marker = number_header(context, "x-amz-part-number-marker", 0)?;
    let record = s3.store.head_version(&context.bucket, &context.key, which).await.map_err(|error| match error {
        StoreError::NoSuchKey => S3Error::no_such_key().with("Key", context.key.clone()),
        other => other.into(),
    })?;

    let mut out = XmlWriter::new("GetObjectAttributesResponse");
    if wanted.contains(&"ETag") {
        out.element("ETag", &record.etag);
    }
    if let (true, Some((algorithm, value, kind))) = (wanted.contains(&"Checksum"), stored_checksum(&record)) {
        out.open("Checksum").element(&checksum_element(algorithm), &value).element("ChecksumType", kind);
        out.close("Checksum");
    }
    // Only an object uploaded in parts has parts to tell.
    if wanted.contains(&"ObjectParts") && !record.parts.is_empty() {
        let total = u32::try_from(record.parts.len()).unwrap_or(u32::MAX);
        let page: Vec<(u32, u64)> = (1..=total)
            .zip(record.parts.iter().map(|part| part.size))
            .skip_while(|(number, _)| *number <= marker)
            .take(usize::try_from(max_parts).unwrap_or(usize::MAX))
            .collect();
        let last = page.last().map_or(marker, |(number, _)| *number);
        out.open("ObjectParts")
            .element("PartsCount", &total.to_string())
            .element("PartNumberMarker", &marker.to_string())
            .element("NextPartNumberMarker", &last.to_string())
            .element("MaxParts", &max_parts.to_string())
            .element("IsTruncated", if last < total { "true" } else { "false" });
        // Each part's own checksum, when the upload asked for one.
        let first = usize::try_from(page.first().map_or(0, |(number, _)| *number)).unwrap_or(usize::MAX);
        let page_parts = record.parts.iter().skip(first.saturating_sub(1)).take(page.len()).cloned().collect();
        let checksums = if record.checksum.is_some() { s3.store.part_checksums(page_parts).await? } else { Vec::new() };
        for (index, (number, size)) in page.into_iter().enumerate() {
            out.open("Part");
            if let Some(Some(checksum)) = checksums.get(index) {
                out.element(&checksum_element(checksum.algorithm), &checksum.to_base64());
            }
            out.element("PartNumber", &number.to_string()).element("Size", &size.to_string()).close("Part");
        }
        out.close("ObjectParts");
    }
    if wanted.contains(&"StorageClass") {
        out.element("StorageClass", "STANDARD");
    }
    if wanted.contains(&"ObjectSize") {
        out.element("ObjectSize", &record.size.to_string());
    }
    let mut response = xml_response(out.finish("GetObjectAttributesResponse"))?;
    let headers = response.headers_mut();
    let last_modified = timefmt::format_http_date(record.last_modified);
    headers
        .insert(http::header::LAST_MODIFIED, HeaderValue::from_str(&last_modified).map_err(|_| S3Error::internal())?);
    if record.version.is_some() {
        let version = HeaderValue::from_str(&version_text(record.version)).map_err(|_| S3Error::internal())?;
        headers.insert("x-amz-version-id", version);
    }
    Ok(response)
}

//! Bucket operations: ListBuckets, CreateBucket, DeleteBucket, HeadBucket,
//! GetBucketLocation, and the CORS preflight.

use http::{Response, StatusCode};
use sha2::{Digest, Sha256};

use crate::iam::Principal;
use crate::timefmt;

use super::error::S3Error;
use super::xml::{self, XmlWriter};
use super::{body, empty_response, xml_response, RequestContext, S3Result, S3};

/// Largest CreateBucketConfiguration document accepted.
const MAX_CONFIGURATION_BYTES: usize = 64 * 1024;

/// S3's bucket naming rules (general purpose buckets).
pub fn check_bucket_name(name: &str) -> Result<(), S3Error> {
    let invalid = || {
        S3Error::new("InvalidBucketName", StatusCode::BAD_REQUEST, "The specified bucket is not valid.")
            .with("BucketName", name)
    };
    let bytes = name.as_bytes();
    let allowed = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-';
    let alphanumeric = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let looks_like_ip = name.split('.').count() == 4 && name.split('.').all(|part| part.parse::<u8>().is_ok());
    let reserved_prefix = ["xn--", "sthree-", "amzn-s3-demo-"].iter().any(|p| name.starts_with(p));
    let reserved_suffix = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"].iter().any(|s| name.ends_with(s));
    if !(3..=63).contains(&bytes.len())
        || !bytes.iter().all(allowed)
        || !alphanumeric(bytes.first())
        || !alphanumeric(bytes.last())
        || name.contains("..")
        // A dot next to a hyphen makes a DNS label start or end with '-'.
        || name.contains(".-")
        || name.contains("-.")
        || looks_like_ip
        || reserved_prefix
        || reserved_suffix
    {
        return Err(invalid());
    }
    Ok(())
}

/// The owner shown in listings: a stable 64-hex id derived from the key.
pub fn owner_id(principal: &Principal) -> String {
    let name = match principal {
        Principal::Key(key) => key.as_str(),
        Principal::Anonymous => "anonymous",
    };
    hex::encode(Sha256::digest(format!("larder-owner:{name}").as_bytes()))
}

pub fn write_owner(out: &mut XmlWriter, principal: &Principal) {
    out.open("Owner").element("ID", &owner_id(principal)).element("DisplayName", "larder").close("Owner");
}

/// ListBuckets, with the paging S3 added in 2024: `prefix`,
/// `max-buckets` (1 to 10,000) and `continuation-token` (opaque: the last
/// name of the previous page, base64). Without `max-buckets`, every bucket.
pub async fn list_buckets(s3: &S3, context: &mut RequestContext) -> S3Result {
    use base64::Engine;
    let base64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let prefix = context.query.get("prefix").unwrap_or_default().to_string();
    let max_buckets = match context.query.get("max-buckets") {
        None => None,
        Some(text) => match text.parse::<usize>() {
            Ok(count) if (1..=10_000).contains(&count) => Some(count),
            _ => return Err(S3Error::invalid_argument("Argument max-buckets must be an integer between 1 and 10000.")),
        },
    };
    let after = match context.query.get("continuation-token") {
        None => None,
        Some(token) => {
            let name = base64.decode(token).ok().and_then(|bytes| String::from_utf8(bytes).ok());
            Some(name.ok_or_else(|| S3Error::invalid_argument("The continuation token provided is incorrect"))?)
        }
    };
    let buckets = s3.store.list_buckets().await?;
    let visible: Vec<_> = buckets
        .into_iter()
        .filter(|(name, _)| name.starts_with(&prefix))
        .filter(|(name, _)| after.as_ref().is_none_or(|after| name > after))
        .filter(|(name, _)| s3.keyring.sees_bucket(&context.principal, name))
        .collect();
    let page = &visible[..max_buckets.unwrap_or(usize::MAX).min(visible.len())];
    let mut out = XmlWriter::new("ListAllMyBucketsResult");
    write_owner(&mut out, &context.principal);
    out.open("Buckets");
    for (name, record) in page {
        out.open("Bucket")
            .element("Name", name)
            .element("CreationDate", &timefmt::format_iso8601(record.created))
            .element("BucketRegion", &s3.config.region)
            .close("Bucket");
    }
    out.close("Buckets");
    if context.query.get("prefix").is_some() {
        out.element("Prefix", &prefix);
    }
    if let (true, Some((last, _))) = (page.len() < visible.len(), page.last()) {
        out.element("ContinuationToken", &base64.encode(last));
    }
    xml_response(out.finish("ListAllMyBucketsResult"))
}

pub async fn create_bucket(s3: &S3, context: &mut RequestContext) -> S3Result {
    check_bucket_name(&context.bucket)?;
    let configuration = context.body.read_to_end(MAX_CONFIGURATION_BYTES).await?;
    if !configuration.iter().all(u8::is_ascii_whitespace) {
        let root = xml::parse(&configuration).map_err(|_| S3Error::malformed_xml())?;
        if root.name != "CreateBucketConfiguration" {
            return Err(S3Error::malformed_xml());
        }
        if let Some(constraint) = root.child("LocationConstraint").map(|c| c.text.trim()) {
            if !constraint.is_empty() && constraint != s3.config.region {
                return Err(S3Error::new(
                    "IllegalLocationConstraintException",
                    StatusCode::BAD_REQUEST,
                    format!("The {constraint} location constraint is incompatible for the region specific endpoint this request was sent to."),
                ));
            }
        }
    }
    // Object Lock from the start: versioned for good.
    let object_lock = super::headers::header(&context.headers, "x-amz-bucket-object-lock-enabled")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    s3.store.create_bucket(&context.bucket, object_lock).await?;
    s3.forget_bucket_config(&context.bucket);
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::LOCATION, format!("/{}", context.bucket))
        .body(body::empty())
        .map_err(|_| S3Error::internal())
}

pub async fn delete_bucket(s3: &S3, context: &mut RequestContext) -> S3Result {
    s3.store.delete_bucket(&context.bucket).await?;
    // Its policy and CORS rules went with it; a new bucket of the same
    // name starts without them.
    s3.forget_bucket_config(&context.bucket);
    empty_response(StatusCode::NO_CONTENT)
}

pub async fn head_bucket(s3: &S3, context: &mut RequestContext) -> S3Result {
    s3.store.bucket(&context.bucket).await?;
    Response::builder()
        .status(StatusCode::OK)
        .header("x-amz-bucket-region", &s3.config.region)
        .body(body::empty())
        .map_err(|_| S3Error::internal())
}

pub async fn get_bucket_location(s3: &S3, context: &mut RequestContext) -> S3Result {
    s3.store.bucket(&context.bucket).await?;
    // us-east-1 is written as an empty constraint, as S3 does.
    let region = if s3.config.region == "us-east-1" { "" } else { s3.config.region.as_str() };
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{}\">{}</LocationConstraint>",
        xml::S3_NAMESPACE,
        xml::escape(region)
    );
    xml_response(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for good in ["abc", "my-bucket.example", "a1b", &"a".repeat(63)] {
            assert!(check_bucket_name(good).is_ok(), "{good}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "Abc",
            "-abc",
            "abc-",
            "a..b",
            "a.-b",
            "a-.b",
            "192.168.1.1",
            "xn--abc",
            "a_b",
            "abc-s3alias",
            "a b",
        ] {
            assert_eq!(check_bucket_name(bad).unwrap_err().code, "InvalidBucketName", "{bad}");
        }
    }
}

//! Object Lock: a bucket's configuration (its default retention), each
//! version's retention and legal hold, the `x-amz-object-lock-*` headers
//! of writes, and the check every delete by version id passes.
//!
//! Whether a retention is over is judged by `Clock::retention_now`, which
//! never runs ahead (see `clock.rs`): a lock is never released early.

use http::{HeaderValue, StatusCode};

use crate::iam::Action;
use crate::store::{BucketRecord, DeleteGuard, LockMode, ObjectLock, ObjectRecord, StoreError, Versioning};
use crate::timefmt;

use super::access::Permission;
use super::error::S3Error;
use super::headers::{expected_digests, header};
use super::object::selector;
use super::xml::{self, XmlWriter};
use super::{empty_response, xml_response, RequestContext, S3Result, S3};

/// The bucket configuration document's name in the store.
const CONFIG_NAME: &str = "object-lock";
const MAX_DOCUMENT_BYTES: usize = 16 * 1024;
const BYPASS: Permission = Permission { action: Action::BypassGovernance, name: "s3:BypassGovernanceRetention" };

fn mode_name(mode: LockMode) -> &'static str {
    match mode {
        LockMode::Governance => "GOVERNANCE",
        LockMode::Compliance => "COMPLIANCE",
    }
}

fn parse_mode(text: &str) -> Option<LockMode> {
    match text.trim() {
        "GOVERNANCE" => Some(LockMode::Governance),
        "COMPLIANCE" => Some(LockMode::Compliance),
        _ => None,
    }
}

/// An ISO 8601 date as clients write it: with or without a fraction of a
/// second (of any length: botocore sends microseconds), `Z` or `+00:00`.
fn parse_date(text: &str) -> Option<i64> {
    let text = text.trim();
    let text = text.strip_suffix("+00:00").map_or_else(|| text.to_string(), |rest| format!("{rest}Z"));
    let whole = match text.find('.') {
        Some(dot) => {
            let rest = &text[dot + 1..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            format!("{}{}", &text[..dot], &rest[digits..])
        }
        None => text,
    };
    timefmt::parse_iso8601(&whole)
}

fn missing_configuration() -> S3Error {
    S3Error::invalid_request("Bucket is missing Object Lock Configuration")
}

fn not_in_future() -> S3Error {
    S3Error::invalid_argument("The retain until date must be in the future!")
}

/// S3 asks for Content-MD5 or a checksum on Object Lock calls.
fn require_digest(context: &RequestContext) -> Result<(), S3Error> {
    let (expected, _) = expected_digests(&context.headers, context.auth.as_ref())?;
    if expected.md5.is_none() && expected.checksum.is_none() {
        return Err(S3Error::invalid_request(
            "Missing required header for this request: Content-MD5 OR x-amz-checksum-*",
        ));
    }
    Ok(())
}

/// A bucket's default retention: a mode and a number of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DefaultRetention {
    mode: LockMode,
    days: i64,
}

/// Reads an `ObjectLockConfiguration` document: its default retention, if
/// it has one.
fn parse_configuration(document: &[u8]) -> Result<Option<DefaultRetention>, S3Error> {
    let root = xml::parse(document).map_err(|_| S3Error::malformed_xml())?;
    if root.name != "ObjectLockConfiguration" {
        return Err(S3Error::malformed_xml());
    }
    if root.child("ObjectLockEnabled").map(|enabled| enabled.text.trim()) != Some("Enabled") {
        return Err(S3Error::malformed_xml());
    }
    let Some(rule) = root.child("Rule") else { return Ok(None) };
    let retention = rule.child("DefaultRetention").ok_or_else(S3Error::malformed_xml)?;
    let mode = retention.child("Mode").and_then(|mode| parse_mode(&mode.text)).ok_or_else(S3Error::malformed_xml)?;
    let number = |name: &str| retention.child(name).map(|value| value.text.trim().parse::<i64>());
    let days = match (number("Days"), number("Years")) {
        (Some(Ok(days)), None) => days,
        (None, Some(Ok(years))) => years.saturating_mul(365),
        (Some(Err(_)), _) | (_, Some(Err(_))) | (None, None) | (Some(_), Some(_)) => {
            return Err(S3Error::malformed_xml())
        }
    };
    if days <= 0 || days > 100 * 365 {
        return Err(S3Error::invalid_argument("Default retention period must be a positive integer value")
            .with("ArgumentName", "DefaultRetention"));
    }
    Ok(Some(DefaultRetention { mode, days }))
}

fn configuration_document(default: Option<DefaultRetention>) -> String {
    let mut out = XmlWriter::new("ObjectLockConfiguration");
    out.element("ObjectLockEnabled", "Enabled");
    if let Some(default) = default {
        out.open("Rule").open("DefaultRetention").element("Mode", mode_name(default.mode));
        out.element("Days", &default.days.to_string()).close("DefaultRetention").close("Rule");
    }
    out.finish("ObjectLockConfiguration")
}

pub async fn put_object_lock_configuration(s3: &S3, context: &mut RequestContext) -> S3Result {
    require_digest(context)?;
    let document = context.body.read_to_end(MAX_DOCUMENT_BYTES).await?;
    let default = parse_configuration(&document)?;
    let bucket = s3.store.bucket(&context.bucket).await?;
    if !bucket.object_lock {
        // S3 lets a versioned bucket take Object Lock later; not an
        // unversioned or suspended one.
        if bucket.versioning != Versioning::Enabled {
            return Err(S3Error::new(
                "InvalidBucketState",
                StatusCode::CONFLICT,
                "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
            ));
        }
        s3.store.enable_object_lock(&context.bucket).await?;
    }
    let document = configuration_document(default).into_bytes();
    s3.store.set_bucket_config(&context.bucket, CONFIG_NAME, Some(document)).await?;
    empty_response(StatusCode::OK)
}

pub async fn get_object_lock_configuration(s3: &S3, context: &mut RequestContext) -> S3Result {
    let bucket = s3.store.bucket(&context.bucket).await?;
    if !bucket.object_lock {
        return Err(S3Error::new(
            "ObjectLockConfigurationNotFoundError",
            StatusCode::NOT_FOUND,
            "Object Lock configuration does not exist for this bucket",
        )
        .with("BucketName", context.bucket.clone()));
    }
    let document = s3.store.bucket_config(&context.bucket, CONFIG_NAME).await?;
    xml_response(match document {
        Some(document) => String::from_utf8_lossy(&document).into_owned(),
        None => configuration_document(None),
    })
}

/// The lock a new version gets: what its `x-amz-object-lock-*` headers
/// ask, or else the bucket's default retention. Refuses lock headers on a
/// bucket without Object Lock, and dates that are not in the future.
pub async fn lock_for_write(s3: &S3, context: &RequestContext, bucket: &str) -> Result<ObjectLock, S3Error> {
    lock_from(s3, bucket, |name| header(&context.headers, name)).await
}

/// [`lock_for_write`] from any source of `x-amz-object-lock-*` values
/// (a POST form's fields).
pub async fn lock_from<'a>(
    s3: &S3,
    bucket: &str,
    field: impl Fn(&str) -> Option<&'a str>,
) -> Result<ObjectLock, S3Error> {
    let mode = field("x-amz-object-lock-mode");
    let until = field("x-amz-object-lock-retain-until-date");
    let hold = field("x-amz-object-lock-legal-hold");
    let asked = mode.is_some() || until.is_some() || hold.is_some();
    let record: Option<BucketRecord> = match s3.store.bucket(bucket).await {
        Ok(record) => Some(record),
        Err(StoreError::NoSuchBucket) => None,
        Err(error) => return Err(error.into()),
    };
    let locked_bucket = record.is_some_and(|record| record.object_lock);
    if asked && !locked_bucket {
        return Err(missing_configuration());
    }
    if !locked_bucket {
        return Ok(ObjectLock::default());
    }
    let legal_hold = match hold.map(str::trim) {
        None | Some("OFF") => false,
        Some("ON") => true,
        Some(_) => return Err(S3Error::invalid_argument("Legal Hold must be either of 'ON' or 'OFF'")),
    };
    let retention = match (mode, until) {
        (None, None) => {
            let document = s3.store.bucket_config(bucket, CONFIG_NAME).await?;
            let default = document.map(|document| parse_configuration(&document)).transpose()?.flatten();
            default.map(|default| (default.mode, s3.clock.now().saturating_add(default.days * 86_400)))
        }
        (Some(mode), Some(until)) => {
            let mode = parse_mode(mode).ok_or_else(|| S3Error::invalid_argument("Unknown wormMode directive."))?;
            let until = parse_date(until).ok_or_else(|| {
                S3Error::invalid_argument("The retain until date must be provided in ISO 8601 format")
            })?;
            if until <= s3.clock.now() {
                return Err(not_in_future());
            }
            Some((mode, until))
        }
        _ => {
            return Err(S3Error::invalid_argument(
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
            ))
        }
    };
    Ok(ObjectLock { retention, legal_hold })
}

/// May this request pass a GOVERNANCE retention? It must ask to, and its
/// key must hold the bypass-governance right.
async fn bypasses_governance(s3: &S3, context: &RequestContext, bucket: &str, key: &str) -> bool {
    let asked = header(&context.headers, "x-amz-bypass-governance-retention")
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
    asked && s3.authorize(context, BYPASS, bucket, key).await.is_ok()
}

/// Is `lock` still holding at `now`, for a request that may (`bypass`)
/// pass a GOVERNANCE retention?
pub(super) fn holds(lock: &ObjectLock, now: i64, bypass: bool) -> bool {
    match lock.retention {
        _ if lock.legal_hold => true,
        Some((LockMode::Compliance, until)) => until > now,
        Some((LockMode::Governance, until)) => until > now && !bypass,
        None => false,
    }
}

/// The check a delete of one version passes, inside the store's
/// transaction: a locked version stays, for every key, root included.
pub async fn delete_guard(s3: &S3, context: &RequestContext, bucket: &str, key: &str) -> Box<DeleteGuard> {
    let bypass = bypasses_governance(s3, context, bucket, key).await;
    let now = s3.clock.retention_now();
    Box::new(
        move |record: &ObjectRecord| {
            if holds(&record.lock, now, bypass) {
                Err(StoreError::ObjectLocked)
            } else {
                Ok(())
            }
        },
    )
}

/// Object Lock calls on objects need a bucket that has it.
async fn check_locked_bucket(s3: &S3, bucket: &str) -> Result<(), S3Error> {
    if s3.store.bucket(bucket).await?.object_lock {
        Ok(())
    } else {
        Err(missing_configuration())
    }
}

pub async fn put_object_retention(s3: &S3, context: &mut RequestContext) -> S3Result {
    require_digest(context)?;
    let which = selector(context.query.get("versionId"))?;
    let document = context.body.read_to_end(MAX_DOCUMENT_BYTES).await?;
    let root = xml::parse(&document).map_err(|_| S3Error::malformed_xml())?;
    if root.name != "Retention" {
        return Err(S3Error::malformed_xml());
    }
    let mode = root.child("Mode").map(|mode| parse_mode(&mode.text).ok_or_else(S3Error::malformed_xml)).transpose()?;
    let until = root
        .child("RetainUntilDate")
        .map(|date| parse_date(&date.text).ok_or_else(S3Error::malformed_xml))
        .transpose()?;
    let wanted = match (mode, until) {
        (Some(mode), Some(until)) if until > s3.clock.now() => Some((mode, until)),
        (Some(_), Some(_)) => return Err(not_in_future()),
        (None, None) => None,
        _ => return Err(S3Error::malformed_xml()),
    };
    check_locked_bucket(s3, &context.bucket).await?;
    let bypass = bypasses_governance(s3, context, &context.bucket, &context.key).await;
    let now = s3.clock.retention_now();
    s3.store
        .set_object_lock(&context.bucket, &context.key, which, move |record| {
            let current = record.lock.retention.filter(|(_, until)| *until > now);
            let allowed = match (current, wanted) {
                (None, _) => true,
                // Only ever extended.
                (Some((LockMode::Compliance, until)), Some((LockMode::Compliance, new))) => new >= until,
                (Some((LockMode::Compliance, _)), _) => false,
                // Extended, or made COMPLIANCE: stronger is always allowed.
                (Some((LockMode::Governance, until)), Some((_, new))) if new >= until => true,
                (Some((LockMode::Governance, _)), _) => bypass,
            };
            if !allowed {
                return Err(StoreError::ObjectLocked);
            }
            Ok(ObjectLock { retention: wanted, legal_hold: record.lock.legal_hold })
        })
        .await?;
    empty_response(StatusCode::OK)
}

pub async fn get_object_retention(s3: &S3, context: &mut RequestContext) -> S3Result {
    let which = selector(context.query.get("versionId"))?;
    check_locked_bucket(s3, &context.bucket).await?;
    let record = s3.store.head_version(&context.bucket, &context.key, which).await?;
    let Some((mode, until)) = record.lock.retention else {
        return Err(S3Error::new(
            "NoSuchObjectLockConfiguration",
            StatusCode::NOT_FOUND,
            "The specified object does not have a ObjectLock configuration",
        ));
    };
    let mut out = XmlWriter::new("Retention");
    out.element("Mode", mode_name(mode)).element("RetainUntilDate", &timefmt::format_iso8601(until));
    xml_response(out.finish("Retention"))
}

pub async fn put_object_legal_hold(s3: &S3, context: &mut RequestContext) -> S3Result {
    require_digest(context)?;
    let which = selector(context.query.get("versionId"))?;
    let document = context.body.read_to_end(MAX_DOCUMENT_BYTES).await?;
    let root = xml::parse(&document).map_err(|_| S3Error::malformed_xml())?;
    let legal_hold = match (root.name.as_str(), root.child("Status").map(|status| status.text.trim())) {
        ("LegalHold", Some("ON")) => true,
        ("LegalHold", Some("OFF")) => false,
        _ => return Err(S3Error::malformed_xml()),
    };
    check_locked_bucket(s3, &context.bucket).await?;
    s3.store
        .set_object_lock(&context.bucket, &context.key, which, move |record| {
            Ok(ObjectLock { retention: record.lock.retention, legal_hold })
        })
        .await?;
    empty_response(StatusCode::OK)
}

pub async fn get_object_legal_hold(s3: &S3, context: &mut RequestContext) -> S3Result {
    let which = selector(context.query.get("versionId"))?;
    check_locked_bucket(s3, &context.bucket).await?;
    let record = s3.store.head_version(&context.bucket, &context.key, which).await?;
    let mut out = XmlWriter::new("LegalHold");
    out.element("Status", if record.lock.legal_hold { "ON" } else { "OFF" });
    xml_response(out.finish("LegalHold"))
}

/// The `x-amz-object-lock-*` headers of GET and HEAD.
pub fn add_lock_headers(headers: &mut http::HeaderMap, lock: &ObjectLock) {
    if let Some((mode, until)) = lock.retention {
        headers.insert("x-amz-object-lock-mode", HeaderValue::from_static(mode_name(mode)));
        if let Ok(date) = HeaderValue::from_str(&timefmt::format_iso8601(until)) {
            headers.insert("x-amz-object-lock-retain-until-date", date);
        }
    }
    if lock.legal_hold {
        headers.insert("x-amz-object-lock-legal-hold", HeaderValue::from_static("ON"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_and_holds() {
        let document = b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Years>2</Years></DefaultRetention></Rule></ObjectLockConfiguration>";
        let parsed = parse_configuration(document).unwrap();
        assert_eq!(parsed, Some(DefaultRetention { mode: LockMode::Compliance, days: 730 }));
        assert_eq!(parse_configuration(configuration_document(parsed).as_bytes()).unwrap(), parsed);
        for bad in [
            &b"<ObjectLockConfiguration><ObjectLockEnabled>Disabled</ObjectLockEnabled></ObjectLockConfiguration>"[..],
            b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>1</Days><Years>1</Years></DefaultRetention></Rule></ObjectLockConfiguration>",
            b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>SOMETIMES</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>",
        ] {
            assert_eq!(parse_configuration(bad).unwrap_err().code, "MalformedXML");
        }
        let zero = b"<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>0</Days></DefaultRetention></Rule></ObjectLockConfiguration>";
        assert_eq!(parse_configuration(zero).unwrap_err().code, "InvalidArgument");

        let governance = ObjectLock { retention: Some((LockMode::Governance, 100)), legal_hold: false };
        assert!(holds(&governance, 99, false));
        assert!(!holds(&governance, 99, true), "a bypass passes GOVERNANCE");
        assert!(!holds(&governance, 100, false), "over at its date");
        let compliance = ObjectLock { retention: Some((LockMode::Compliance, 100)), legal_hold: false };
        assert!(holds(&compliance, 99, true), "nothing passes COMPLIANCE");
        let hold = ObjectLock { retention: None, legal_hold: true };
        for date in [
            "2030-01-02T03:04:05Z",
            "2030-01-02T03:04:05.123Z",
            "2030-01-02T03:04:05.123456Z",
            "2030-01-02T03:04:05+00:00",
        ] {
            assert_eq!(parse_date(date), timefmt::parse_iso8601("2030-01-02T03:04:05Z"), "{date}");
        }
        assert!(holds(&hold, i64::MAX, true), "a legal hold holds until it is taken off");
    }
}

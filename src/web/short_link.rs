//! Short links, `<public_url>/s/<id>`: what `larder share` prints and
//! draws as a QR code for people. A short link is a bearer secret (128
//! random bits) that stands for its share link: it answers with a redirect
//! to the full presigned URL, signed there and then with the link's own
//! key, so that the download (or the upload page) is checked exactly as
//! the full URL is: the key, its expiry, the byte budget, revocation.
//!
//! A link that does not work gets a plain page instead. One that never
//! existed gets the same page as an expired or revoked one, so that
//! guessing ids teaches nothing.

use http::{HeaderValue, Response, StatusCode};

use crate::iam::{Credentials, KeyRecord};
use crate::presign::{presign, PresignRequest};
use crate::sigv4::MAX_EXPIRES_SECS;

use crate::s3::body::{self, ResponseBody};
use crate::s3::xml::escape;
use crate::s3::{RequestContext, S3Error, S3Result, S3};

use super::upload_page::{document, page};

/// Where short links live: `s` cannot be a bucket (names have at least
/// three characters). Upper case too, as phones may open a QR code's text.
pub const PREFIXES: [&str; 2] = ["/s/", "/S/"];

pub fn is_short_link(path: &str) -> bool {
    PREFIXES.iter().any(|prefix| path.starts_with(prefix))
}

/// `GET` or `HEAD /s/<id>`.
pub async fn follow(s3: &S3, context: &RequestContext) -> S3Result {
    let id = context.path[PREFIXES[0].len()..].trim_end_matches('/');
    let now = s3.clock.now();
    let Some(key) = s3.keyring.find_short_link(id).filter(|key| !key.is_expired(now)) else {
        return Ok(gone());
    };
    let Some(share) = key.share.as_ref() else { return Ok(gone()) };
    let (bucket, object_key) = match &share.upload {
        Some(_) if share.uses.is_some_and(|uses| share.used >= uses) => return Ok(used_up()),
        Some(_) => ("_larder".to_string(), format!("upload/{}", key.access_key)),
        None => {
            let Ok(object) = s3.store.head_object(&share.bucket, &share.key).await else { return Ok(gone()) };
            let budget = share.uses.map(|uses| uses.saturating_mul(object.size));
            if budget.is_some_and(|budget| share.bytes_served >= budget && object.size > 0) {
                return Ok(used_up());
            }
            (share.bucket.clone(), share.key.clone())
        }
    };
    let url = full_url(s3, &key, &bucket, &object_key, now).map_err(|_| S3Error::internal())?;
    let mut response = Response::new(body::full(format!("<a href=\"{}\">Continue</a>\n", escape(&url))));
    *response.status_mut() = StatusCode::FOUND;
    let headers = response.headers_mut();
    headers.insert(http::header::LOCATION, HeaderValue::from_str(&url).map_err(|_| S3Error::internal())?);
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    Ok(response)
}

/// The full presigned URL the short link stands for, valid as long as
/// the link (at most the 7 days a presigned URL may last).
fn full_url(s3: &S3, key: &KeyRecord, bucket: &str, object_key: &str, now: i64) -> Result<String, String> {
    let lifetime = key.expires.map_or(MAX_EXPIRES_SECS, |expires| expires - now).clamp(1, MAX_EXPIRES_SECS);
    let request = PresignRequest {
        method: "GET",
        endpoint: &s3.config.public_url,
        bucket,
        key: object_key,
        region: &s3.config.region,
        expires_secs: lifetime,
        content_type: None,
        content_length: None,
    };
    let credentials = Credentials { access_key: key.access_key.clone(), secret_key: key.secret_key.clone() };
    presign(&request, &credentials, now)
}

fn gone() -> Response<ResponseBody> {
    page(
        StatusCode::NOT_FOUND,
        document(
            "Link expired",
            "<h1>This link does not work any more</h1><p>It has expired or was withdrawn. Ask the person who sent \
             it for a new one.</p>",
        ),
    )
}

fn used_up() -> Response<ResponseBody> {
    page(
        StatusCode::GONE,
        document(
            "Link used up",
            "<h1>This link has been used up</h1><p>It allowed a set number of downloads, and they have all been \
             made. Ask the person who sent it for a new one.</p>",
        ),
    )
}

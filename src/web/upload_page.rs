//! The upload page of `larder share --upload` links, and the pages a
//! browser sees for an expired or revoked link. Pages are small, work
//! offline and are served with a strict Content-Security-Policy: the
//! script and style are larder's own files, nothing is reflected from the
//! request, and nothing is listed.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use crate::iam::Principal;
use crate::sigv4::{Scope, SigningKey, ALGORITHM};
use crate::timefmt;

use crate::s3::body::{self, ResponseBody};
use crate::s3::xml::escape;
use crate::s3::{RequestContext, S3Error, S3Result, S3};

pub const PAGE_PREFIX: &str = "/_larder/upload/";
pub const ASSET_PREFIX: &str = "/_larder/static/";

const SCRIPT: &str = include_str!("../../assets/upload.js");
const STYLE: &str = include_str!("../../assets/upload.css");

fn harden(headers: &mut HeaderMap) {
    let csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
               form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
    headers.insert("content-security-policy", HeaderValue::from_static(csp));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

pub(super) fn page(status: StatusCode, html: String) -> Response<ResponseBody> {
    let mut response = Response::new(body::full(html));
    *response.status_mut() = status;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    harden(response.headers_mut());
    response
}

pub(super) fn document(title: &str, content: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"{ASSET_PREFIX}upload.css\"></head><body><main>{content}</main></body></html>"
    )
}

/// What a browser sees for a link that no longer works.
pub fn expired_page(status: StatusCode) -> Response<ResponseBody> {
    page(
        status,
        document("Link expired", "<h1>This link has expired</h1><p>Ask the person who sent it for a new one.</p>"),
    )
}

/// A size as people read it, in the binary units `--max-size` takes
/// (`200M` is 200 MiB): whole units where it divides, else one decimal.
fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut unit = 0;
    let mut scale = 1u64;
    while unit + 1 < UNITS.len() && bytes >= scale * 1024 {
        scale *= 1024;
        unit += 1;
    }
    if bytes % scale == 0 {
        format!("{} {}", bytes / scale, UNITS[unit])
    } else {
        format!("{:.1} {}", bytes as f64 / scale as f64, UNITS[unit])
    }
}

/// Does this request come from a browser (rather than an S3 client)?
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(http::header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/html"))
}

/// `/_larder/static/upload.js` and `upload.css`: no credentials needed.
pub fn asset(name: &str) -> S3Result {
    let (content_type, text) = match name {
        "upload.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "upload.css" => ("text/css; charset=utf-8", STYLE),
        _ => return Err(S3Error::no_such_key()),
    };
    let mut response = Response::new(body::full(text));
    let headers = response.headers_mut();
    headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    Ok(response)
}

/// The upload page of an upload link, reached through the link itself (a
/// presigned GET of `/_larder/upload/<id>` signed by the link's key). It
/// carries a POST policy signed for the link's prefix and limits.
pub async fn upload_page(s3: &S3, context: &mut RequestContext) -> S3Result {
    let id = context.path[PAGE_PREFIX.len()..].to_string();
    let Principal::Key(access_key) = &context.principal else { return Err(S3Error::access_denied()) };
    let key = s3.keyring.get(access_key).filter(|key| key.access_key == id).ok_or_else(S3Error::access_denied)?;
    let (Some(share), Some(expires)) = (key.share.clone(), key.expires) else { return Err(S3Error::access_denied()) };
    let Some(limits) = share.upload.clone() else { return Err(S3Error::access_denied()) };

    let now = s3.clock.now();
    let amz_date = timefmt::format_amz_date(now);
    let scope = Scope { date: amz_date[..8].to_string(), region: s3.config.region.clone(), service: "s3".into() };
    let credential = format!("{}/{}", key.access_key, scope.to_scope_string());
    let type_prefix = limits.content_type.clone().unwrap_or_default();
    let policy = serde_json::json!({
        "expiration": timefmt::format_iso8601(expires),
        "conditions": [
            {"bucket": share.bucket},
            ["starts-with", "$key", share.key],
            ["starts-with", "$Content-Type", type_prefix],
            ["content-length-range", 1, limits.max_size],
            {"success_action_status": "201"},
            {"x-amz-algorithm": ALGORITHM},
            {"x-amz-credential": credential},
            {"x-amz-date": amz_date},
        ]
    });
    let policy = BASE64.encode(policy.to_string());
    let signature = SigningKey::derive(&key.secret_key, &scope).sign(&policy);
    let fields = serde_json::json!({
        "key": format!("{}${{filename}}", share.key),
        "success_action_status": "201",
        "x-amz-algorithm": ALGORITHM,
        "x-amz-credential": credential,
        "x-amz-date": amz_date,
        "policy": policy,
        "x-amz-signature": signature,
    });
    let accept = limits.content_type.as_ref().map(|t| format!(" accept=\"{}*\"", escape(t))).unwrap_or_default();
    let kind = limits.content_type.as_ref().map(|t| format!(", {}* files only", escape(t))).unwrap_or_default();
    let content = format!(
        "<h1>Upload files</h1><p>Up to {} each{kind}. This link works until {} UTC.</p>\
         <div id=\"uploader\" data-action=\"/{}\" data-fields=\"{}\" data-max=\"{}\" data-type=\"{}\">\
         <label for=\"files\">Choose files, or drop them here</label><input id=\"files\" type=\"file\" multiple{accept}></div>\
         <ul id=\"list\" aria-live=\"polite\"></ul><script src=\"{ASSET_PREFIX}upload.js\"></script>",
        binary_size(limits.max_size),
        escape(&timefmt::format_iso8601(expires).replace('T', " ").replace(".000Z", "")),
        escape(&share.bucket),
        escape(&fields.to_string()),
        limits.max_size,
        escape(&type_prefix),
    );
    Ok(page(StatusCode::OK, document("Upload files", &content)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(super::binary_size(200 * 1024 * 1024), "200 MiB");
        assert_eq!(super::binary_size(500 * 1024), "500 KiB");
        assert_eq!(super::binary_size(1536 * 1024 * 1024), "1.5 GiB");
        assert_eq!(super::binary_size(10), "10 bytes");
    }
}

//! `larder presign`: a standard SigV4 presigned URL, made offline from a
//! key, in the same form boto3 makes them.

use http::{HeaderMap, HeaderValue};

use crate::iam::Credentials;
use crate::sigv4::{self, Scope, SigningKey};
use crate::timefmt;

/// What a presigned URL is for.
pub struct PresignRequest<'a> {
    /// GET, PUT, HEAD or DELETE.
    pub method: &'a str,
    /// `http://host:port`
    pub endpoint: &'a str,
    pub bucket: &'a str,
    pub key: &'a str,
    pub region: &'a str,
    pub expires_secs: i64,
    /// For PUT links: the upload must carry exactly these.
    pub content_type: Option<&'a str>,
    pub content_length: Option<u64>,
}

/// The key of an AWS shared-credentials profile (`~/.aws/credentials`, or
/// the file `AWS_SHARED_CREDENTIALS_FILE` names): `aws_access_key_id` and
/// `aws_secret_access_key` in section `[profile]`.
pub fn profile_credentials(text: &str, profile: &str) -> Option<Credentials> {
    let mut in_section = false;
    let (mut access_key, mut secret_key) = (None, None);
    for line in text.lines().map(str::trim) {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = section.trim() == profile;
            continue;
        }
        let Some((name, value)) = line.split_once('=') else { continue };
        if in_section {
            match name.trim() {
                "aws_access_key_id" => access_key = Some(value.trim().to_string()),
                "aws_secret_access_key" => secret_key = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    Some(Credentials { access_key: access_key?, secret_key: secret_key? })
}

/// Splits `s3://bucket/key`.
pub fn parse_target(target: &str) -> Result<(&str, &str), String> {
    let rest = target.strip_prefix("s3://").ok_or_else(|| format!("expected s3://BUCKET/KEY, not {target}"))?;
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok((bucket, key)),
        _ => Err(format!("expected s3://BUCKET/KEY, not {target}")),
    }
}

pub fn presign(request: &PresignRequest<'_>, credentials: &Credentials, now: i64) -> Result<String, String> {
    let method = request.method.to_ascii_uppercase();
    if !matches!(method.as_str(), "GET" | "PUT" | "HEAD" | "DELETE") {
        return Err(format!("presign makes GET, PUT, HEAD or DELETE links, not {method}"));
    }
    if !(1..=sigv4::MAX_EXPIRES_SECS).contains(&request.expires_secs) {
        return Err("a presigned URL lasts 1 second to 7 days".into());
    }
    let authority = request
        .endpoint
        .strip_prefix("http://")
        .or_else(|| request.endpoint.strip_prefix("https://"))
        .ok_or_else(|| format!("the endpoint must be http(s)://HOST:PORT, not {}", request.endpoint))?
        .trim_end_matches('/');
    let mut headers = HeaderMap::new();
    let value = |text: &str| HeaderValue::from_str(text).map_err(|error| error.to_string());
    headers.insert("host", value(authority)?);
    if let Some(content_type) = request.content_type {
        headers.insert("content-type", value(content_type)?);
    }
    if let Some(length) = request.content_length {
        headers.insert("content-length", value(&length.to_string())?);
    }
    let amz_date = timefmt::format_amz_date(now);
    let scope = Scope { date: amz_date[..8].to_string(), region: request.region.to_string(), service: "s3".into() };
    let key = SigningKey::derive(&credentials.secret_key, &scope);
    let path = format!("/{}/{}", request.bucket, request.key);
    let query = sigv4::presign_query(
        &method,
        path.as_bytes(),
        &[],
        &headers,
        &credentials.access_key,
        &key,
        &scope,
        &amz_date,
        request.expires_secs,
        None,
    );
    let scheme = if request.endpoint.starts_with("https://") { "https" } else { "http" };
    Ok(format!("{scheme}://{authority}{}?{query}", sigv4::uri_encode(path.as_bytes(), true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_have_boto3s_shape() {
        let credentials = Credentials { access_key: "AKIAIOSFODNN7EXAMPLE".into(), secret_key: "secret".into() };
        let request = PresignRequest {
            method: "get",
            endpoint: "http://nas.local:9000",
            bucket: "photos",
            key: "a b/ሴ.jpg",
            region: "us-east-1",
            expires_secs: 5400,
            content_type: None,
            content_length: None,
        };
        let url = presign(&request, &credentials, 1_369_353_600).unwrap();
        assert!(url.starts_with("http://nas.local:9000/photos/a%20b/%E1%88%B4.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=5400&X-Amz-SignedHeaders=host&X-Amz-Signature="), "{url}");
        assert_eq!(parse_target("s3://b/k/x").unwrap(), ("b", "k/x"));
        assert!(parse_target("b/k").is_err() && parse_target("s3://b").is_err());
        assert!(presign(&PresignRequest { expires_secs: 604_801, ..request }, &credentials, 0).is_err());
        let file = "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n[nas]\naws_access_key_id=LKNAS\naws_secret_access_key=secret\n";
        assert_eq!(
            profile_credentials(file, "nas"),
            Some(Credentials { access_key: "LKNAS".into(), secret_key: "secret".into() })
        );
        assert_eq!(profile_credentials(file, "missing"), None);
    }
}

//! AWS Signature Version 2, as older clients still sign: boto3's and the
//! AWS CLI's presigned URLs when the region is us-east-1 and the endpoint
//! is custom, NAS backup tools, browser upload libraries. Pure, like the
//! rest of `sigv4`: the request's parts and a time in, a verdict out.
//!
//! The string to sign (S3's "Signing and Authenticating REST Requests"):
//! the method, Content-MD5, Content-Type and the date (the `Expires` of a
//! presigned URL; empty when `x-amz-date` is sent), each on a line, then
//! the `x-amz-*` headers (lower case, sorted, values trimmed, repeats
//! joined with commas), then the resource: the path as sent and the
//! subresources S3 names, sorted. The signature is base64 of its
//! HMAC-SHA1 under the secret key.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha1::Sha1;

use super::{AuthKind, QueryParam, SigError, MAX_EXPIRES_SECS};

/// How far a header-signed request's date may be from the server's.
const MAX_SKEW_SECS: i64 = 15 * 60;

/// The query parameters that are part of the resource a V2 signature
/// covers; every other parameter is not signed.
const SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "delete",
    "encryption",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "retention",
    "legal-hold",
    "select",
    "select-type",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// A V2 signature, read from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2Auth {
    pub kind: AuthKind,
    pub access_key: String,
    /// The signature as sent (base64).
    pub signature: String,
    /// Presigned: the Unix second the URL stops working.
    pub expires: Option<i64>,
    pub security_token: Option<String>,
}

/// The request's V2 signature, if it carries one: `Authorization: AWS
/// KEY:SIGNATURE`, or `AWSAccessKeyId`, `Signature` and `Expires` in the
/// query.
pub fn parse(headers: &HeaderMap, query: &[QueryParam]) -> Option<Result<V2Auth, SigError>> {
    let param = |name: &str| query.iter().find(|p| p.name == name).map(|p| p.value.clone());
    let token = headers
        .get("x-amz-security-token")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
        .or_else(|| param("x-amz-security-token"));
    if let Some(header) = headers.get(http::header::AUTHORIZATION) {
        let header = header.to_str().ok()?.trim();
        let credentials = header.strip_prefix("AWS ")?;
        let parsed = match credentials.rsplit_once(':') {
            Some((access_key, signature)) if !access_key.is_empty() && !signature.is_empty() => Ok(V2Auth {
                kind: AuthKind::Header,
                access_key: access_key.trim().to_string(),
                signature: signature.trim().to_string(),
                expires: None,
                security_token: token,
            }),
            _ => Err(SigError::HeaderMalformed("The authorization header is malformed.".into())),
        };
        return Some(parsed);
    }
    let (access_key, signature) = (param("AWSAccessKeyId")?, param("Signature")?);
    let expires = param("Expires").and_then(|text| text.parse::<i64>().ok());
    let Some(expires) = expires else {
        return Some(Err(SigError::QueryMalformed(
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters".into(),
        )));
    };
    Some(Ok(V2Auth { kind: AuthKind::Query, access_key, signature, expires: Some(expires), security_token: token }))
}

/// Is the request in time? A header-signed one within 15 minutes of the
/// server's clock (`system_now`); a presigned one not expired by larder's
/// clock (`now`), and never made to last more than 7 days.
pub fn check_time(auth: &V2Auth, headers: &HeaderMap, now: i64, system_now: i64) -> Result<(), SigError> {
    match auth.expires {
        Some(expires) => {
            if expires <= now {
                return Err(SigError::Expired { expires_secs: 0, expired_at: expires, server_time: now });
            }
            if expires - now > MAX_EXPIRES_SECS {
                return Err(SigError::QueryMalformed(
                    "Signature Version 2 links may last at most 7 days (Expires is too far ahead)".into(),
                ));
            }
            Ok(())
        }
        None => {
            let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
            let date = match text("x-amz-date") {
                Some(date) => crate::timefmt::parse_http_date(date).or_else(|| crate::timefmt::parse_amz_date(date)),
                None => text("date").and_then(crate::timefmt::parse_http_date),
            }
            .ok_or(SigError::MissingDate)?;
            if (date - system_now).abs() > MAX_SKEW_SECS {
                return Err(SigError::TooSkewed { request_time: date, server_time: system_now });
            }
            Ok(())
        }
    }
}

/// The string a V2 signature signs. `raw_path` is the path exactly as
/// the request line sent it (still percent-encoded).
pub fn string_to_sign(
    method: &str,
    raw_path: &str,
    query: &[QueryParam],
    headers: &HeaderMap,
    expires: Option<i64>,
) -> String {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or("").trim();
    let date = match expires {
        Some(expires) => expires.to_string(),
        None if headers.contains_key("x-amz-date") => String::new(),
        None => text("date").to_string(),
    };
    let mut out = format!("{method}\n{}\n{}\n{date}\n", text("content-md5"), text("content-type"));
    let mut amz: Vec<(String, Vec<String>)> = Vec::new();
    for (name, value) in headers {
        let name = name.as_str();
        if !name.starts_with("x-amz-") {
            continue;
        }
        let value = value.to_str().unwrap_or("").trim().to_string();
        match amz.iter_mut().find(|(known, _)| known == name) {
            Some((_, values)) => values.push(value),
            None => amz.push((name.to_string(), vec![value])),
        }
    }
    amz.sort();
    for (name, values) in amz {
        out.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    out.push_str(raw_path);
    // A bucket's resource is `/bucket/`, however the path ends.
    if raw_path.len() > 1 && !raw_path[1..].contains('/') {
        out.push('/');
    }
    let mut subresources: Vec<&QueryParam> =
        query.iter().filter(|param| SUBRESOURCES.contains(&param.name.as_str())).collect();
    subresources.sort_by(|a, b| a.name.cmp(&b.name));
    for (i, param) in subresources.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(&param.name);
        if !param.value.is_empty() {
            out.push('=');
            out.push_str(&param.value);
        }
    }
    out
}

/// base64(HMAC-SHA1(secret, string to sign)).
pub fn sign(secret_key: &str, string_to_sign: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret_key.as_bytes()).expect("HMAC takes any key");
    mac.update(string_to_sign.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// Checks the signature in constant time.
pub fn verify(auth: &V2Auth, secret_key: &str, string_to_sign: &str) -> Result<(), SigError> {
    let mismatch = || SigError::SignatureDoesNotMatch {
        access_key: auth.access_key.clone(),
        string_to_sign: string_to_sign.to_string(),
        canonical_request: String::new(),
        signature_provided: auth.signature.clone(),
    };
    let provided = BASE64.decode(auth.signature.as_bytes()).map_err(|_| mismatch())?;
    let mut mac = Hmac::<Sha1>::new_from_slice(secret_key.as_bytes()).expect("HMAC takes any key");
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(&provided).map_err(|_| mismatch())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of S3's SigV2 documentation ("Object GET").
    #[test]
    fn the_documented_example_signs_as_documented() {
        let mut headers = HeaderMap::new();
        headers.insert("date", "Tue, 27 Mar 2007 19:36:42 +0000".parse().unwrap());
        let sts = string_to_sign("GET", "/awsexamplebucket1/photos/puppy.jpg", &[], &headers, None);
        assert_eq!(sts, "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/awsexamplebucket1/photos/puppy.jpg");
        let signature = sign("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &sts);
        assert_eq!(signature, "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=");
    }

    #[test]
    fn subresources_are_signed_and_other_parameters_are_not() {
        let query = vec![
            QueryParam { name: "uploadId".into(), value: "abc".into() },
            QueryParam { name: "partNumber".into(), value: "2".into() },
            QueryParam { name: "prefix".into(), value: "x".into() },
            QueryParam { name: "acl".into(), value: String::new() },
        ];
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-date", "Tue, 27 Mar 2007 19:36:42 +0000".parse().unwrap());
        headers.insert("x-amz-meta-b", "two".parse().unwrap());
        headers.append("x-amz-meta-a", " one ".parse().unwrap());
        headers.append("x-amz-meta-a", "uno".parse().unwrap());
        assert!(string_to_sign("GET", "/bucket", &[], &HeaderMap::new(), Some(1)).ends_with("\n1\n/bucket/"));
        let sts = string_to_sign("PUT", "/b/k", &query, &headers, None);
        assert_eq!(
            sts,
            "PUT\n\n\n\nx-amz-date:Tue, 27 Mar 2007 19:36:42 +0000\nx-amz-meta-a:one,uno\nx-amz-meta-b:two\n/b/k?acl&partNumber=2&uploadId=abc"
        );
    }
}

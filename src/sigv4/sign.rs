//! The client side: signing a request's headers and presigning a URL, for
//! `larder presign`, the benchmarks and the tests.

use http::HeaderMap;

use super::{canonical_request, string_to_sign, uri_encode, QueryParam, Request, Scope, SigningKey, ALGORITHM};

/// Every header in `headers`, lower case, sorted, `;`-separated.
fn signed_header_list(headers: &HeaderMap) -> String {
    let mut names: Vec<&str> = headers.keys().map(|name| name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names.join(";")
}

/// The `Authorization` header value for a request whose headers already
/// hold `host`, `x-amz-date` and `x-amz-content-sha256`. Every header in
/// `headers` is signed.
pub fn authorization_header(
    method: &str,
    path: &[u8],
    query: &[QueryParam],
    headers: &HeaderMap,
    access_key: &str,
    key: &SigningKey,
    scope: &Scope,
) -> String {
    let signed_headers = signed_header_list(headers);
    let amz_date = headers.get("x-amz-date").and_then(|value| value.to_str().ok()).unwrap_or_default();
    let payload =
        headers.get("x-amz-content-sha256").and_then(|value| value.to_str().ok()).unwrap_or(super::UNSIGNED_PAYLOAD);
    let request = Request { method, path, query, headers };
    let canonical = canonical_request(&request, &signed_headers, payload);
    let signature = key.sign(&string_to_sign(amz_date, scope, &canonical));
    format!(
        "{ALGORITHM} Credential={access_key}/{}, SignedHeaders={signed_headers}, Signature={signature}",
        scope.to_scope_string()
    )
}

/// The query string of a presigned URL (without `?`): `query` plus the
/// `X-Amz-*` parameters, signature last. `headers` must hold `host` and any
/// other header the URL should pin (Content-Type, Content-Length, ...).
#[allow(clippy::too_many_arguments)]
pub fn presign_query(
    method: &str,
    path: &[u8],
    query: &[QueryParam],
    headers: &HeaderMap,
    access_key: &str,
    key: &SigningKey,
    scope: &Scope,
    amz_date: &str,
    expires_secs: i64,
    security_token: Option<&str>,
) -> String {
    let signed_headers = signed_header_list(headers);
    let mut params: Vec<QueryParam> = query.to_vec();
    let mut add = |name: &str, value: String| params.push(QueryParam { name: name.to_string(), value });
    add("X-Amz-Algorithm", ALGORITHM.to_string());
    add("X-Amz-Credential", format!("{access_key}/{}", scope.to_scope_string()));
    add("X-Amz-Date", amz_date.to_string());
    add("X-Amz-Expires", expires_secs.to_string());
    if let Some(token) = security_token {
        add("X-Amz-Security-Token", token.to_string());
    }
    add("X-Amz-SignedHeaders", signed_headers.clone());
    let request = Request { method, path, query: &params, headers };
    let canonical = canonical_request(&request, &signed_headers, super::UNSIGNED_PAYLOAD);
    let signature = key.sign(&string_to_sign(amz_date, scope, &canonical));
    params.push(QueryParam { name: "X-Amz-Signature".into(), value: signature });
    params
        .iter()
        .map(|param| {
            format!("{}={}", uri_encode(param.name.as_bytes(), false), uri_encode(param.value.as_bytes(), false))
        })
        .collect::<Vec<_>>()
        .join("&")
}

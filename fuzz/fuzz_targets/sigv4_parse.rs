//! SigV4: the Authorization header and the presigned query form, parsed,
//! checked and verified with a fixed key; and what larder's own signer
//! makes of the same request must verify.
//!
//! Input: a request as text (see `larder_fuzz::text_request`), as in
//! tests/data/sigv4-suite/*/{header,query}-signed-request.txt.

#![no_main]

use http::HeaderValue;
use larder::sigv4::{self, Authentication, ParsedAuth, QueryParam, Request, Scope, SigningKey};
use libfuzzer_sys::fuzz_target;

/// The secret of AWS's suite, so that its requests verify.
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const AMZ_DATE: &str = "20240101T000000Z";

fuzz_target!(|data: &[u8]| {
    let Some(text) = larder_fuzz::text_request(data) else {
        return;
    };
    let (raw_path, raw_query) = (text.path(), text.query());
    // Decoding once and encoding again gives the bytes back.
    for plus_is_space in [false, true] {
        if let Ok(bytes) = sigv4::percent_decode(raw_path, plus_is_space) {
            let encoded = sigv4::uri_encode(&bytes, true);
            assert_eq!(sigv4::percent_decode(&encoded, false).as_deref(), Ok(&bytes[..]));
        }
    }
    let (Ok(path), Ok(query)) = (sigv4::percent_decode(raw_path, false), sigv4::parse_query(raw_query)) else {
        return;
    };
    let request = Request { method: text.method, path: &path, query: &query, headers: &text.headers };
    if let Ok(Authentication::V4(auth)) = sigv4::parse(&request) {
        exercise(&auth, &request);
    }
    sign_and_verify(&text, &path, &query);
});

/// Everything the server does with a parsed signature.
fn exercise(auth: &ParsedAuth, request: &Request<'_>) {
    let _ = auth.check_scope("us-east-1");
    let _ = auth.check_scope(&auth.scope.region);
    let _ = auth.check_scope_of(&auth.scope.region, "sts");
    for now in [auth.request_time, auth.request_time + 901, auth.request_time - 901, 1_700_000_000] {
        let _ = auth.check_time(now);
    }
    let key = SigningKey::derive(SECRET, &auth.scope);
    let _ = sigv4::verify(auth, request, &key);
    let _ = sigv4::verify_with_payload(auth, request, &key, sigv4::EMPTY_SHA256);
    let mut chain = sigv4::ChunkChain::new(auth, key);
    assert!(!chain.verify_chunk(&[0; 32], "00"));
}

/// Signs the request with larder's client-side signer, in both forms;
/// the verifier must accept what the signer made.
fn sign_and_verify(text: &larder_fuzz::TextRequest<'_>, path: &[u8], query: &[QueryParam]) {
    const AUTH_PARAMS: [&str; 7] = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-Date",
        "X-Amz-SignedHeaders",
        "X-Amz-Expires",
        "X-Amz-Security-Token",
    ];
    let scope = Scope { date: AMZ_DATE[..8].to_string(), region: "us-east-1".into(), service: "s3".into() };
    let key = SigningKey::derive(SECRET, &scope);
    let mut headers = text.headers.clone();
    headers.remove(http::header::AUTHORIZATION);
    if !headers.contains_key(http::header::HOST) {
        headers.insert(http::header::HOST, HeaderValue::from_static("localhost"));
    }
    let query: Vec<QueryParam> = query.iter().filter(|p| !AUTH_PARAMS.contains(&p.name.as_str())).cloned().collect();

    // Presigned.
    let presigned = sigv4::presign_query(text.method, path, &query, &headers, "AK", &key, &scope, AMZ_DATE, 60, None);
    let presigned_query = sigv4::parse_query(&presigned).expect("the signer's query decodes");
    let request = Request { method: text.method, path, query: &presigned_query, headers: &headers };
    let auth = match sigv4::parse(&request) {
        Ok(Authentication::V4(auth)) => auth,
        other => panic!("a presigned request parses: {other:?}"),
    };
    assert_eq!(auth.check_time(auth.request_time), Ok(()));
    assert_eq!(sigv4::verify(&auth, &request, &key), Ok(()), "presigned: {presigned}");

    // Authorization header.
    headers.insert("x-amz-date", HeaderValue::from_static(AMZ_DATE));
    let authorization = sigv4::authorization_header(text.method, path, &query, &headers, "AK", &key, &scope);
    let Ok(value) = HeaderValue::from_str(&authorization) else {
        panic!("the Authorization header is a header value: {authorization}");
    };
    headers.insert(http::header::AUTHORIZATION, value);
    let request = Request { method: text.method, path, query: &query, headers: &headers };
    let auth = match sigv4::parse(&request) {
        Ok(Authentication::V4(auth)) => auth,
        other => panic!("a header-signed request parses: {other:?}"),
    };
    assert_eq!(auth.check_time(auth.request_time), Ok(()));
    assert_eq!(sigv4::verify(&auth, &request, &key), Ok(()), "header: {authorization}");
}

//! Routing (s3/router.rs): the path and query decoded as `S3::prepare`
//! decodes them (sigv4's `percent_decode`, `parse_query`), split into
//! bucket and key, then method + bucket + key + query + headers to an
//! operation, and the permission it needs (s3/access.rs).
//!
//! Input: a request as text (see `larder_fuzz::text_request`).

#![no_main]

use http::Method;
use larder::fuzzing::{route, split_path, Query};
use larder::sigv4;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = larder_fuzz::text_request(data) else {
        return;
    };
    let Ok(method) = Method::from_bytes(text.method.as_bytes()) else {
        return;
    };
    let path = sigv4::percent_decode(text.path(), false).ok().and_then(|bytes| String::from_utf8(bytes).ok());
    let query = sigv4::parse_query(text.query());
    let (Some(path), Ok(query)) = (path, query) else {
        return;
    };
    let (bucket, key) = split_path(&path);
    // The path is put back together from its parts.
    let rest = path.strip_prefix('/').unwrap_or(&path);
    match (bucket, key) {
        (None, None) => assert!(rest.is_empty()),
        (Some(bucket), None) => assert!(rest == bucket || rest == format!("{bucket}/"), "{path:?}"),
        (Some(bucket), Some(key)) => assert!(rest == format!("{bucket}/{key}") && !key.is_empty(), "{path:?}"),
        (None, Some(_)) => panic!("a key without a bucket: {path:?}"),
    }
    assert!(!bucket.is_some_and(|bucket| bucket.contains('/')), "{path:?}");
    // As `S3::prepare`: a bucket that could not exist goes no further.
    if bucket.is_some_and(|bucket| bucket.len() > 255 || bucket.chars().any(char::is_control)) {
        return;
    }
    // As `S3::route_and_authenticate`: an empty bucket (`//key`) is none.
    let (bucket, key) = (bucket.filter(|b| !b.is_empty()), key.filter(|k| !k.is_empty()));
    let query = Query(query);
    if let Ok(operation) = route(&method, bucket, key, &query, &text.headers) {
        let _ = larder::s3::access::required(&operation);
    }
});

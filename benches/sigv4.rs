//! Cost of verifying SigV4: a presigned GET and a header-signed PUT head,
//! with the signing key cached as the server caches it. Two references run
//! in the same process so results can be read as ratios on any board:
//! one SHA-256 of 1 KiB, and a signing-key derivation (what the cache saves).
//!
//! Run: `cargo bench --bench sigv4`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderValue};
use larder::sigv4::{self, Authentication, QueryParam, Scope, SigningKey};
use larder::timefmt;
use sha2::{Digest, Sha256};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";

struct Signed {
    path: Vec<u8>,
    query: Vec<QueryParam>,
    headers: HeaderMap,
    method: &'static str,
}

fn scope(now: i64) -> Scope {
    Scope { date: timefmt::format_scope_date(now), region: "us-east-1".into(), service: "s3".into() }
}

fn presigned_get(now: i64) -> Signed {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("192.168.1.20:9000"));
    let path = b"/photos/2024/holiday/IMG_0042.jpg".to_vec();
    let key = SigningKey::derive(SECRET, &scope(now));
    let query = sigv4::presign_query(
        "GET",
        &path,
        &[],
        &headers,
        ACCESS_KEY,
        &key,
        &scope(now),
        &timefmt::format_amz_date(now),
        3600,
        None,
    );
    Signed { path, query: sigv4::parse_query(&query).unwrap(), headers, method: "GET" }
}

fn header_signed_put(now: i64) -> Signed {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("192.168.1.20:9000"));
    headers.insert("content-length", HeaderValue::from_static("5242880"));
    headers.insert("content-type", HeaderValue::from_static("application/octet-stream"));
    headers.insert("x-amz-checksum-crc32", HeaderValue::from_static("DUoRhQ=="));
    headers.insert("x-amz-sdk-checksum-algorithm", HeaderValue::from_static("CRC32"));
    headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static("ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7"),
    );
    headers.insert("x-amz-date", HeaderValue::from_str(&timefmt::format_amz_date(now)).unwrap());
    let path = b"/backups/restic/data/3f/3f9a0c.bin".to_vec();
    let key = SigningKey::derive(SECRET, &scope(now));
    let authorization = sigv4::authorization_header("PUT", &path, &[], &headers, ACCESS_KEY, &key, &scope(now));
    headers.insert("authorization", HeaderValue::from_str(&authorization).unwrap());
    Signed { path, query: Vec::new(), headers, method: "PUT" }
}

/// The server's path: parse, check scope, look up the cached key, check
/// the time, verify.
fn verify(signed: &Signed, key: &SigningKey, now: i64) {
    let request =
        sigv4::Request { method: signed.method, path: &signed.path, query: &signed.query, headers: &signed.headers };
    let Ok(Authentication::V4(auth)) = sigv4::parse(&request) else { panic!("not signed") };
    auth.check_scope("us-east-1").unwrap();
    auth.check_time(now).unwrap();
    sigv4::verify(&auth, &request, key).unwrap();
}

fn benchmarks(c: &mut Criterion) {
    let now = timefmt::now();
    let key = SigningKey::derive(SECRET, &scope(now));
    let get = presigned_get(now);
    let put = header_signed_put(now);
    verify(&get, &key, now);
    verify(&put, &key, now);

    let mut group = c.benchmark_group("sigv4");
    group.bench_function("verify presigned GET", |b| b.iter(|| verify(black_box(&get), &key, now)));
    group.bench_function("verify header-signed PUT head", |b| b.iter(|| verify(black_box(&put), &key, now)));
    let kib = vec![0x61u8; 1024];
    group.bench_function("reference: SHA-256 of 1 KiB", |b| b.iter(|| Sha256::digest(black_box(&kib))));
    group.bench_function("reference: derive a signing key", |b| {
        b.iter(|| SigningKey::derive(black_box(SECRET), &scope(now)))
    });
    group.finish();
}

criterion_group!(benches, benchmarks);
criterion_main!(benches);

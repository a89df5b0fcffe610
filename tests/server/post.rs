//! Browser form uploads (POST Object) with signed policy documents.

use base64::Engine;
use larder::sigv4::{Scope, SigningKey};
use larder::timefmt;

use crate::harness::*;

const BOUNDARY: &str = "----larderformboundary7MA4YWxkTrZu0gW";

/// A multipart/form-data body: the fields, then the file.
fn form_body(fields: &[(String, String)], file_name: &str, file: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// The fields boto3's generate_presigned_post makes: `conditions` plus
/// the signing ones, the policy and its signature.
fn signed_fields(
    client: &Client,
    bucket: &str,
    extra: &[(&str, &str)],
    conditions: serde_json::Value,
    expires_in: i64,
) -> Vec<(String, String)> {
    let now = timefmt::now();
    let amz_date = timefmt::format_amz_date(now);
    let scope = Scope { date: amz_date[..8].to_string(), region: client.region.clone(), service: "s3".into() };
    let credential = format!("{}/{}", client.credentials.access_key, scope.to_scope_string());
    let mut all = conditions.as_array().unwrap().clone();
    all.push(serde_json::json!({"bucket": bucket}));
    all.push(serde_json::json!({"x-amz-algorithm": "AWS4-HMAC-SHA256"}));
    all.push(serde_json::json!({"x-amz-credential": credential}));
    all.push(serde_json::json!({"x-amz-date": amz_date}));
    let policy = serde_json::json!({"expiration": timefmt::format_iso8601(now + expires_in), "conditions": all});
    let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let signature = SigningKey::derive(&client.credentials.secret_key, &scope).sign(&policy);
    let mut fields: Vec<(String, String)> = extra.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    fields.extend([
        ("x-amz-algorithm".to_string(), "AWS4-HMAC-SHA256".to_string()),
        ("x-amz-credential".to_string(), credential),
        ("x-amz-date".to_string(), amz_date),
        ("policy".to_string(), policy),
        ("x-amz-signature".to_string(), signature),
    ]);
    fields
}

fn post(client: &Client, bucket: &str, fields: &[(String, String)], file_name: &str, file: &[u8]) -> Response {
    let body = form_body(fields, file_name, file);
    let raw = format!(
        "POST /{bucket} HTTP/1.1\r\nhost: {}\r\ncontent-type: multipart/form-data; boundary={BOUNDARY}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        client.addr,
        body.len()
    );
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(&body);
    send_raw(client.addr, &bytes, false)
}

fn setup() -> (TestServer, Client) {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "drop");
    (server, client)
}

#[test]
fn a_signed_form_uploads_and_answers_as_asked() {
    let (_server, client) = setup();
    let conditions = serde_json::json!([["starts-with", "$key", "uploads/"], ["starts-with", "$Content-Type", "image/"], ["content-length-range", 1, 1000], {"success_action_status": "201"}, ["starts-with", "$x-amz-meta-camera", ""]]);
    let fields = signed_fields(
        &client,
        "drop",
        &[
            ("key", "uploads/${filename}"),
            ("Content-Type", "image/jpeg"),
            ("success_action_status", "201"),
            ("x-amz-meta-camera", "porch"),
        ],
        conditions,
        600,
    );
    let response = post(&client, "drop", &fields, "cat.jpg", b"jpeg bytes");
    response.assert_status(201);
    assert_eq!(response.xml("Key").as_deref(), Some("uploads/cat.jpg"));
    assert_eq!(response.xml("ETag").as_deref(), Some(format!("\"{}\"", md5_hex(b"jpeg bytes")).as_str()));
    let got = get(&client, "drop", "uploads/cat.jpg");
    assert_eq!(got.body, b"jpeg bytes");
    assert_eq!(got.header("content-type"), Some("image/jpeg"));
    assert_eq!(got.header("x-amz-meta-camera"), Some("porch"));

    let fields =
        signed_fields(&client, "drop", &[("key", "plain.txt")], serde_json::json!([{"key": "plain.txt"}]), 600);
    post(&client, "drop", &fields, "x.txt", b"plain").assert_status(204);
    let fields = signed_fields(
        &client,
        "drop",
        &[("key", "r.txt"), ("success_action_redirect", "http://example.test/done")],
        serde_json::json!([{"key": "r.txt"}, {"success_action_redirect": "http://example.test/done"}]),
        600,
    );
    let redirected = post(&client, "drop", &fields, "r.txt", b"r");
    redirected.assert_status(303);
    assert!(redirected.header("location").unwrap().starts_with("http://example.test/done?bucket=drop&key=r.txt&etag="));
}

#[test]
fn every_violated_condition_is_refused_and_nothing_stored() {
    let (server, client) = setup();
    let policy = serde_json::json!([{"key": "fixed.txt"}, ["content-length-range", 2, 10]]);
    // Fields, file, and the status, code and message text expected.
    type Case<'a> = (Vec<(String, String)>, &'a [u8], u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            signed_fields(&client, "drop", &[("key", "other.txt")], policy.clone(), 600),
            b"hello",
            403,
            "AccessDenied",
            "Policy Condition failed",
        ),
        (
            signed_fields(&client, "drop", &[("key", "fixed.txt")], policy.clone(), 600),
            b"much too long",
            400,
            "EntityTooLarge",
            "",
        ),
        (signed_fields(&client, "drop", &[("key", "fixed.txt")], policy.clone(), 600), b"x", 400, "EntityTooSmall", ""),
        (
            signed_fields(&client, "drop", &[("key", "fixed.txt"), ("x-amz-meta-sneaky", "1")], policy.clone(), 600),
            b"hello",
            403,
            "AccessDenied",
            "Extra input fields: x-amz-meta-sneaky",
        ),
        (
            signed_fields(&client, "drop", &[("key", "fixed.txt")], policy.clone(), -10),
            b"hello",
            403,
            "AccessDenied",
            "Policy expired",
        ),
    ];
    for (fields, file, status, code, text) in cases {
        let response = post(&client, "drop", &fields, "f", file);
        response.assert_error(status, code);
        assert!(response.text().contains(text), "{}", response.text());
    }
    let mut forged = signed_fields(&client, "drop", &[("key", "fixed.txt")], policy.clone(), 600);
    forged.last_mut().unwrap().1 = "0".repeat(64);
    post(&client, "drop", &forged, "f", b"hello").assert_error(403, "SignatureDoesNotMatch");
    // A policy that is signed but says nothing usable is a bad document.
    let mut bare = signed_fields(&client, "drop", &[("key", "fixed.txt")], policy.clone(), 600);
    let scope_date = timefmt::format_scope_date(timefmt::now());
    let scope = Scope { date: scope_date, region: client.region.clone(), service: "s3".into() };
    let document = base64::engine::general_purpose::STANDARD.encode(r#"{"conditions": []}"#);
    let signature = SigningKey::derive(&client.credentials.secret_key, &scope).sign(&document);
    bare.iter_mut().find(|(name, _)| name == "policy").unwrap().1 = document;
    bare.iter_mut().find(|(name, _)| name == "x-amz-signature").unwrap().1 = signature;
    post(&client, "drop", &bare, "f", b"hello").assert_error(400, "InvalidPolicyDocument");
    let anonymous = vec![("key".to_string(), "fixed.txt".to_string())];
    post(&client, "drop", &anonymous, "f", b"hello").assert_error(403, "AccessDenied");
    get(&client, "drop", "fixed.txt").assert_error(404, "NoSuchKey");
    get(&client, "drop", "other.txt").assert_error(404, "NoSuchKey");
    assert!(std::fs::read_dir(server.dir.join("tmp")).unwrap().next().is_none());
    let good = signed_fields(&client, "drop", &[("key", "fixed.txt")], policy, 600);
    post(&client, "drop", &good, "f", b"hello").assert_status(204);
}

/// A form signed with Signature Version 2 (`AWSAccessKeyId`, `signature`
/// over the policy), as older browser-upload libraries make it.
#[test]
fn a_form_signed_with_signature_version_2() {
    let (server, client) = setup();
    let now = timefmt::now();
    let policy = serde_json::json!({
        "expiration": timefmt::format_iso8601(now + 600),
        "conditions": [{"bucket": "drop"}, ["starts-with", "$key", "v2/"]],
    });
    let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
    let signature = larder::sigv4::v2::sign(&client.credentials.secret_key, &policy);
    let fields = |signature: &str| {
        vec![
            ("key".to_string(), "v2/${filename}".to_string()),
            ("AWSAccessKeyId".to_string(), client.credentials.access_key.clone()),
            ("policy".to_string(), policy.clone()),
            ("signature".to_string(), signature.to_string()),
        ]
    };
    post(&client, "drop", &fields(&signature), "old.txt", b"posted with v2").assert_status(204);
    assert_eq!(get(&client, "drop", "v2/old.txt").body, b"posted with v2");
    let tampered = larder::sigv4::v2::sign("not the secret", &policy);
    post(&client, "drop", &fields(&tampered), "bad.txt", b"x").assert_error(403, "SignatureDoesNotMatch");
    get(&client, "drop", "v2/bad.txt").assert_error(404, "NoSuchKey");

    let refusing = TestServer::start_with(|config| config.sigv2 = false);
    let refusing_client = refusing.client();
    create_bucket(&refusing_client, "drop");
    let signature = larder::sigv4::v2::sign(&refusing_client.credentials.secret_key, &policy);
    let mut fields = fields(&signature);
    fields[1].1 = refusing_client.credentials.access_key.clone();
    post(&refusing_client, "drop", &fields, "old.txt", b"x").assert_error(400, "InvalidRequest");
    drop(server);
}

/// POST Object's `x-amz-object-lock-*` fields lock the new version, as the
/// headers of a PUT do; on a bucket without Object Lock they are refused
/// and nothing is stored.
#[test]
fn a_form_can_lock_what_it_uploads() {
    let (_server, client) = setup();
    client
        .send(&Request::new("PUT", "vault", "").header("x-amz-bucket-object-lock-enabled", "true"))
        .assert_status(200);
    let until = timefmt::format_iso8601(timefmt::now() + 3600);
    let conditions = serde_json::json!([
        ["starts-with", "$key", ""],
        ["starts-with", "$x-amz-object-lock-mode", ""],
        ["starts-with", "$x-amz-object-lock-retain-until-date", ""]
    ]);
    let extra = [
        ("key", "camera.jpg"),
        ("x-amz-object-lock-mode", "COMPLIANCE"),
        ("x-amz-object-lock-retain-until-date", until.as_str()),
    ];
    let fields = signed_fields(&client, "vault", &extra, conditions.clone(), 600);
    let answer = post(&client, "vault", &fields, "camera.jpg", b"frame");
    assert!(answer.status / 100 == 2, "{} {}", answer.status, answer.text());
    let version = answer.header("x-amz-version-id").expect("a version").to_string();
    let head = client.send(&Request::new("HEAD", "vault", "camera.jpg"));
    assert_eq!(head.header("x-amz-object-lock-mode"), Some("COMPLIANCE"));
    client
        .send(&Request::new("DELETE", "vault", "camera.jpg").query("versionId", &version))
        .assert_error(403, "AccessDenied");
    let fields = signed_fields(&client, "drop", &extra, conditions, 600);
    post(&client, "drop", &fields, "camera.jpg", b"frame").assert_error(400, "InvalidRequest");
    get(&client, "drop", "camera.jpg").assert_error(404, "NoSuchKey");
}

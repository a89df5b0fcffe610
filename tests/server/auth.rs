//! SigV4 header auth and presigned URLs: every way to pass and to fail.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use larder::timefmt;

use crate::harness::*;

fn server_with_object() -> (TestServer, Client) {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "auth");
    put(&client, "auth", "object", b"secret bytes");
    (server, client)
}

#[test]
fn header_auth_round_trip_and_payload_modes() {
    let (_server, client) = server_with_object();
    let response = client.send(&Request::new("GET", "auth", "object"));
    response.assert_status(200);
    assert_eq!(response.body, b"secret bytes");
    let unsigned =
        client.send(&Request::new("PUT", "auth", "unsigned").body("u").auth(Auth::Header(Payload::Unsigned)));
    unsigned.assert_status(200);
}

#[test]
fn anonymous_requests_are_denied() {
    let (_server, client) = server_with_object();
    client.send(&Request::new("GET", "auth", "object").auth(Auth::None)).assert_error(403, "AccessDenied");
    client.send(&Request::new("GET", "", "").auth(Auth::None)).assert_error(403, "AccessDenied");
    // A bucket that does not exist says so, to anyone (as S3 does).
    client.send(&Request::new("GET", "no-such-bucket", "x").auth(Auth::None)).assert_error(404, "NoSuchBucket");
}

#[test]
fn wrong_secret_is_signature_does_not_match() {
    let (_server, client) = server_with_object();
    let mut request = Request::new("GET", "auth", "object");
    request.secret = Some("not the secret".into());
    let response = client.send(&request);
    response.assert_error(403, "SignatureDoesNotMatch");
    assert!(response.xml("StringToSign").unwrap().starts_with("AWS4-HMAC-SHA256\n"));
    assert!(response.xml("CanonicalRequest").unwrap().starts_with("GET\n/auth/object\n"));
    assert_eq!(response.xml("AWSAccessKeyId").unwrap(), client.credentials.access_key);
}

#[test]
fn tampering_after_signing_is_caught() {
    let (_server, client) = server_with_object();
    let bytes = client.encode(&Request::new("GET", "auth", "object").header("range", "bytes=0-1"));
    let tampered = String::from_utf8(bytes).unwrap().replace("bytes=0-1", "bytes=0-5");
    send_raw(client.addr, tampered.as_bytes(), false).assert_error(403, "SignatureDoesNotMatch");
}

#[test]
fn unknown_access_key() {
    let (_server, mut client) = server_with_object();
    client.credentials.access_key = "LKNOSUCHKEY000000000".into();
    let response = client.send(&Request::new("GET", "auth", "object"));
    response.assert_error(403, "InvalidAccessKeyId");
    assert_eq!(response.xml("AWSAccessKeyId").as_deref(), Some("LKNOSUCHKEY000000000"));
}

#[test]
fn clock_skew_beyond_fifteen_minutes() {
    let (_server, client) = server_with_object();
    let now = timefmt::now();
    client.send(&Request::new("GET", "auth", "object").at(now - 14 * 60)).assert_status(200);
    for time in [now - 16 * 60, now + 16 * 60] {
        let response = client.send(&Request::new("GET", "auth", "object").at(time));
        response.assert_error(403, "RequestTimeTooSkewed");
        assert_eq!(response.xml("MaxAllowedSkewMilliseconds").as_deref(), Some("900000"));
        assert!(response.xml("ServerTime").is_some() && response.xml("RequestTime").is_some());
    }
}

#[test]
fn wrong_region_names_the_right_one() {
    let (_server, client) = server_with_object();
    let mut request = Request::new("GET", "auth", "object");
    request.region = Some("eu-west-1".into());
    let response = client.send(&request);
    response.assert_error(400, "AuthorizationHeaderMalformed");
    assert_eq!(response.xml("Region").as_deref(), Some("us-east-1"));
    assert!(response.xml("Message").unwrap().contains("the region 'eu-west-1' is wrong; expecting 'us-east-1'"));

    let response = client.send(&Request {
        region: Some("eu-west-1".into()),
        ..Request::new("GET", "auth", "object").auth(Auth::Presigned(60))
    });
    response.assert_error(400, "AuthorizationQueryParametersError");
    assert_eq!(response.xml("Region").as_deref(), Some("us-east-1"));
}

#[test]
fn credential_date_must_be_the_request_day() {
    let (_server, client) = server_with_object();
    let bytes = client.encode(&Request::new("GET", "auth", "object"));
    let text = String::from_utf8(bytes).unwrap();
    let day = timefmt::format_scope_date(timefmt::now());
    let other_day = timefmt::format_scope_date(timefmt::now() - 2 * 86_400);
    let tampered = text.replacen(&format!("/{day}/"), &format!("/{other_day}/"), 1);
    let response = send_raw(client.addr, tampered.as_bytes(), false);
    response.assert_error(400, "AuthorizationHeaderMalformed");
    assert!(response.text().contains("Invalid credential date"));
}

#[test]
fn missing_or_invalid_content_sha256() {
    let (_server, client) = server_with_object();
    let bytes = client.encode(&Request::new("GET", "auth", "object"));
    let text = String::from_utf8(bytes).unwrap();
    let without =
        text.split("\r\n").filter(|line| !line.starts_with("x-amz-content-sha256")).collect::<Vec<_>>().join("\r\n");
    let response = send_raw(client.addr, without.as_bytes(), false);
    response.assert_error(400, "InvalidRequest");
    assert!(response.text().contains("x-amz-content-sha256"));
    client
        .send(&Request::new("GET", "auth", "object").header("x-amz-content-sha256", "nonsense"))
        .assert_error(400, "InvalidArgument");
}

#[test]
fn payload_hash_mismatch_stores_nothing() {
    let (_server, client) = server_with_object();
    let response = client.send(
        &Request::new("PUT", "auth", "mismatch").header("x-amz-content-sha256", &"0".repeat(64)).body("the body"),
    );
    response.assert_error(400, "XAmzContentSHA256Mismatch");
    get(&client, "auth", "mismatch").assert_error(404, "NoSuchKey");
}

/// With `sigv2 = false`, Signature Version 2 gets an answer that says
/// what to use instead; with it (the default), an unknown key is just that.
#[test]
fn sigv2_gets_a_clear_answer() {
    let (open, _) = server_with_object();
    let raw = format!(
        "GET /auth/object HTTP/1.1\r\nhost: {}\r\nauthorization: AWS LKX:c2lnbmF0dXJl\r\nconnection: close\r\n\r\n",
        open.addr
    );
    send_raw(open.addr, raw.as_bytes(), false).assert_error(403, "InvalidAccessKeyId");
    let server = TestServer::start_with(|config| config.sigv2 = false);
    let client = server.client();
    let raw = format!(
        "GET /auth/object HTTP/1.1\r\nhost: {}\r\nauthorization: AWS LKX:c2lnbmF0dXJl\r\nconnection: close\r\n\r\n",
        server.addr
    );
    let response = send_raw(client.addr, raw.as_bytes(), false);
    response.assert_error(400, "InvalidRequest");
    assert!(response.text().contains("AWS4-HMAC-SHA256") && response.text().contains("s3v4"));
    let raw = format!(
        "GET /auth/object?AWSAccessKeyId=LKX&Expires=9999999999&Signature=abc HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
        server.addr
    );
    send_raw(client.addr, raw.as_bytes(), false).assert_error(400, "InvalidRequest");
}

#[test]
fn presigned_get_put_and_every_operation() {
    let (_server, client) = server_with_object();
    let response = client.send(&Request::new("GET", "auth", "object").auth(Auth::Presigned(300)));
    response.assert_status(200);
    assert_eq!(response.body, b"secret bytes");
    client
        .send(&Request::new("PUT", "auth", "via-url").body("put by url").auth(Auth::Presigned(300)))
        .assert_status(200);
    assert_eq!(get(&client, "auth", "via-url").body, b"put by url");
    client.send(&Request::new("HEAD", "auth", "via-url").auth(Auth::Presigned(300))).assert_status(200);
    client.send(&Request::new("GET", "auth", "").query("list-type", "2").auth(Auth::Presigned(300))).assert_status(200);
    client.send(&Request::new("DELETE", "auth", "via-url").auth(Auth::Presigned(300))).assert_status(204);
    get(&client, "auth", "via-url").assert_error(404, "NoSuchKey");
    let overridden = client.send(
        &Request::new("GET", "auth", "object")
            .query("response-content-type", "text/x-larder")
            .auth(Auth::Presigned(300)),
    );
    assert_eq!(overridden.header("content-type"), Some("text/x-larder"));
}

#[test]
fn presigned_expiry_and_parameter_errors() {
    let (_server, client) = server_with_object();
    let now = timefmt::now();
    let expired = client.send(&Request::new("GET", "auth", "object").auth(Auth::Presigned(60)).at(now - 120));
    expired.assert_error(403, "AccessDenied");
    assert_eq!(expired.xml("Message").as_deref(), Some("Request has expired"));
    assert_eq!(expired.xml("X-Amz-Expires").as_deref(), Some("60"));
    assert!(expired.xml("Expires").is_some() && expired.xml("ServerTime").is_some());

    // Hours old but within X-Amz-Expires: still valid (no skew rule for URLs).
    client
        .send(&Request::new("GET", "auth", "object").auth(Auth::Presigned(604_800)).at(now - 3 * 3600))
        .assert_status(200);

    let future = client.send(&Request::new("GET", "auth", "object").auth(Auth::Presigned(60)).at(now + 3600));
    future.assert_error(403, "AccessDenied");
    assert!(future.text().contains("not valid yet"));

    for (expires, text) in [(604_801, "less than a week"), (-5, "non-negative")] {
        let response = client.send(&Request::new("GET", "auth", "object").auth(Auth::Presigned(expires)));
        response.assert_error(400, "AuthorizationQueryParametersError");
        assert!(response.text().contains(text), "{}", response.text());
    }
    let target = client.presigned_target(&Request::new("GET", "auth", "object").auth(Auth::Presigned(60)));
    for (from, to, text) in [
        ("X-Amz-Expires=60", "X-Amz-Expires=soon", "should be a number"),
        ("X-Amz-Date=", "X-Amz-Dat=", "requires the X-Amz-Algorithm"),
    ] {
        let raw =
            format!("GET {} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", target.replace(from, to), client.addr);
        let response = send_raw(client.addr, raw.as_bytes(), false);
        response.assert_error(400, "AuthorizationQueryParametersError");
        assert!(response.text().contains(text), "{}", response.text());
    }
}

#[test]
fn presigned_url_refuses_unsigned_amz_headers() {
    let (_server, client) = server_with_object();
    let response = client.send(
        &Request::new("PUT", "auth", "sneaky")
            .body("x")
            .auth(Auth::Presigned(60))
            .unsigned_header("x-amz-meta-extra", "1"),
    );
    response.assert_error(403, "AccessDenied");
    assert_eq!(response.xml("HeadersNotSigned").as_deref(), Some("x-amz-meta-extra"));
    get(&client, "auth", "sneaky").assert_error(404, "NoSuchKey");
    // Signed into the URL, the same header is fine.
    client
        .send(
            &Request::new("PUT", "auth", "signed-meta")
                .body("x")
                .auth(Auth::Presigned(60))
                .header("x-amz-meta-extra", "1"),
        )
        .assert_status(200);
}

/// Validity is checked when the request arrives: a download that started
/// before expiry runs to its end.
#[test]
fn presigned_download_started_in_time_finishes() {
    let (_server, client) = server_with_object();
    let body = pattern(6 * 1024 * 1024, 3);
    put(&client, "auth", "large", &body);
    let bytes = client.encode(&Request::new("GET", "auth", "large").auth(Auth::Presigned(2)));
    let mut stream = TcpStream::connect(client.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(&bytes).unwrap();
    let mut raw = vec![0u8; 64 * 1024];
    let first = stream.read(&mut raw).unwrap();
    raw.truncate(first);
    std::thread::sleep(Duration::from_millis(3000));
    stream.read_to_end(&mut raw).unwrap();
    let response = parse_response(&raw, false);
    response.assert_status(200);
    assert_eq!(response.body.len(), body.len());
    assert!(response.body == body);
    // A new request with the same URL is now refused.
    send_raw(client.addr, &bytes, false).assert_error(403, "AccessDenied");
}

/// An `x-amz-*` header the signer did not sign could have been added on
/// the way (turning a PUT into a copy, say): refused for header auth too.
#[test]
fn unsigned_amz_headers_are_refused_for_header_auth() {
    let (_server, client) = server_with_object();
    let response =
        client.send(&Request::new("PUT", "auth", "x").body("x").unsigned_header("x-amz-copy-source", "auth/object"));
    response.assert_error(403, "AccessDenied");
    assert_eq!(response.xml("HeadersNotSigned").as_deref(), Some("x-amz-copy-source"));
}

#[test]
fn bucket_names_no_bucket_can_have_are_refused_early() {
    let (server, client) = server_with_object();
    let raw = format!("GET /bad%01name/k HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", server.addr);
    send_raw(client.addr, raw.as_bytes(), false).assert_error(400, "InvalidBucketName");
    let long = "b".repeat(300);
    client.send(&Request::new("GET", &long, "k")).assert_error(400, "InvalidBucketName");
}

/// A Signature Version 2 presigned URL works, unless `sigv2 = false`,
/// which refuses it with the error that names SigV4.
#[test]
fn sigv2_presigned_urls_and_the_setting_that_refuses_them() {
    let url_for = |server: &TestServer| {
        let client = server.client();
        create_bucket(&client, "vtwo");
        put(&client, "vtwo", "file", b"v2");
        let expires = larder::timefmt::now() + 600;
        let string_to_sign = format!("GET\n\n\n{expires}\n/vtwo/file");
        let signature = larder::sigv4::v2::sign(&server.credentials.secret_key, &string_to_sign);
        let signature = larder::sigv4::uri_encode(signature.as_bytes(), false);
        format!("/vtwo/file?AWSAccessKeyId={}&Expires={expires}&Signature={signature}", server.credentials.access_key)
    };
    let fetch = |server: &TestServer, target: &str| {
        let raw = format!("GET {target} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", server.addr);
        send_raw(server.addr, raw.as_bytes(), false)
    };
    let server = TestServer::start();
    let target = url_for(&server);
    let answer = fetch(&server, &target);
    answer.assert_status(200);
    assert_eq!(answer.body, b"v2");
    fetch(&server, &target.replace("/vtwo/file", "/vtwo/other")).assert_error(403, "SignatureDoesNotMatch");

    let refusing = TestServer::start_with(|config| config.sigv2 = false);
    let answer = fetch(&refusing, &url_for(&refusing));
    answer.assert_error(400, "InvalidRequest");
    assert!(answer.text().contains("AWS4-HMAC-SHA256"), "{}", answer.text());
}

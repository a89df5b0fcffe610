//! `larder presign`: standard presigned URLs made offline.

use crate::harness::*;

fn presign(server: &TestServer, args: &[&str]) -> String {
    let mut all = vec!["presign"];
    all.extend_from_slice(args);
    let (ok, out, err) = larder_cli(server, &all);
    assert!(ok, "{err}");
    out.trim().to_string()
}

/// Sends a request to a URL made for this server.
fn send_to(server: &TestServer, method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let target = url.strip_prefix(&format!("http://{}", server.addr)).unwrap();
    let mut raw = format!(
        "{method} {target} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\nconnection: close\r\n",
        server.addr,
        body.len()
    );
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    send_raw(server.addr, &bytes, method == "HEAD")
}

#[test]
fn presigned_links_from_the_command_line() {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "links");
    put(&client, "links", "a file.txt", b"shared");

    let url = presign(&server, &["get", "s3://links/a file.txt", "--expires", "90m"]);
    assert!(
        url.contains("/links/a%20file.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&") && url.contains("X-Amz-Expires=5400"),
        "{url}"
    );
    assert_eq!(send_to(&server, "GET", &url, &[], b"").body, b"shared");

    let url = presign(&server, &["put", "s3://links/up.txt", "--content-type", "text/plain", "--content-length", "5"]);
    send_to(&server, "PUT", &url, &[("content-type", "text/plain")], b"12345!")
        .assert_error(403, "SignatureDoesNotMatch");
    send_to(&server, "PUT", &url, &[("content-type", "image/png")], b"12345")
        .assert_error(403, "SignatureDoesNotMatch");
    get(&client, "links", "up.txt").assert_error(404, "NoSuchKey");
    send_to(&server, "PUT", &url, &[("content-type", "text/plain")], b"12345").assert_status(200);
    assert_eq!(get(&client, "links", "up.txt").body, b"12345");

    let url = presign(&server, &["delete", "s3://links/up.txt"]);
    send_to(&server, "DELETE", &url, &[], b"").assert_status(204);
    get(&client, "links", "up.txt").assert_error(404, "NoSuchKey");
}

/// Behind a reverse proxy that rewrites `Host` (nginx's default
/// `proxy_pass`), a presigned URL made for the public name still works when
/// the proxy is trusted and reports the name in `X-Forwarded-Host` (or
/// `Forwarded: host=`); from anyone else the header changes nothing.
#[test]
fn presigned_urls_work_behind_a_proxy_that_rewrites_host() {
    let server = TestServer::start_with(|config| config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]);
    let client = server.client();
    create_bucket(&client, "proxied");
    put(&client, "proxied", "photo.jpg", b"behind a proxy");
    let request = larder::presign::PresignRequest {
        method: "GET",
        endpoint: "https://larder.example:8443",
        bucket: "proxied",
        key: "photo.jpg",
        region: "us-east-1",
        expires_secs: 600,
        content_type: None,
        content_length: None,
    };
    let url = larder::presign::presign(&request, &test_credentials(), larder::timefmt::now()).unwrap();
    let target = url.strip_prefix("https://larder.example:8443").unwrap();
    let through = |forwarded: &str| {
        let raw = format!("GET {target} HTTP/1.1\r\nhost: {}\r\n{forwarded}connection: close\r\n\r\n", server.addr);
        send_raw(server.addr, raw.as_bytes(), false)
    };
    let answer = through("x-forwarded-host: larder.example:8443\r\nx-forwarded-proto: https\r\n");
    answer.assert_status(200);
    assert_eq!(answer.body, b"behind a proxy");
    through("forwarded: for=192.0.2.7;host=larder.example:8443;proto=https\r\n").assert_status(200);
    through("").assert_error(403, "SignatureDoesNotMatch");

    // The same header from a client that is not a trusted proxy is ignored.
    let untrusting = TestServer::start();
    let client = untrusting.client();
    create_bucket(&client, "proxied");
    put(&client, "proxied", "photo.jpg", b"behind a proxy");
    let raw = format!(
        "GET {target} HTTP/1.1\r\nhost: {}\r\nx-forwarded-host: larder.example:8443\r\nconnection: close\r\n\r\n",
        untrusting.addr
    );
    send_raw(untrusting.addr, raw.as_bytes(), false).assert_error(403, "SignatureDoesNotMatch");
}

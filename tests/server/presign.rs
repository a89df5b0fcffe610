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

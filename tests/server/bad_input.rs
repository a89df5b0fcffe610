//! Malformed requests get S3 error documents, never a panic.

use crate::harness::*;

#[test]
fn oversized_head_is_refused_with_s3_xml() {
    let server = TestServer::start();
    let client = server.client();
    let response = client.send(&Request::new("GET", "", "").unsigned_header("x-padding", &"p".repeat(20 * 1024)));
    response.assert_error(400, "RequestHeaderSectionTooLarge");
}

#[test]
fn unknown_methods_and_operations() {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "bad");
    put(&client, "bad", "k", b"v");
    client.send(&Request::new("PATCH", "bad", "k")).assert_error(405, "MethodNotAllowed");
    client.send(&Request::new("POST", "", "")).assert_error(405, "MethodNotAllowed");
    for (method, key, sub) in
        [("GET", "", "analytics"), ("PUT", "", "replication"), ("PUT", "k", "tagging"), ("GET", "", "inventory")]
    {
        let response = client.send(&Request::new(method, "bad", key).query(sub, ""));
        response.assert_error(501, "NotImplemented");
    }
    // Unknown query parameters that are not subresources are ignored (SDKs add x-id).
    client.send(&Request::new("GET", "bad", "k").query("x-id", "GetObject")).assert_status(200);
}

#[test]
fn broken_paths_and_raw_garbage() {
    let server = TestServer::start();
    let client = server.client();
    let raw = format!("GET /bad/%zz HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", server.addr);
    send_raw(client.addr, raw.as_bytes(), false).assert_error(400, "InvalidURI");
    let raw = format!("GET /bad/%FF%FE HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", server.addr);
    send_raw(client.addr, raw.as_bytes(), false).assert_error(400, "InvalidURI");
    let raw = format!(
        "GET / HTTP/1.1\r\nhost: {}\r\nauthorization: AWS4-HMAC-SHA256 garbage\r\nconnection: close\r\n\r\n",
        server.addr
    );
    send_raw(client.addr, raw.as_bytes(), false).assert_error(400, "AuthorizationHeaderMalformed");
    let raw =
        format!("GET / HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer xyz\r\nconnection: close\r\n\r\n", server.addr);
    send_raw(client.addr, raw.as_bytes(), false).assert_error(400, "InvalidArgument");
    // The server still answers after all of that.
    client.send(&Request::new("GET", "", "")).assert_status(200);
}

#[test]
fn cors_preflight_without_rules() {
    let server = TestServer::start();
    let raw = format!("OPTIONS /b/k HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", server.addr);
    send_raw(server.addr, raw.as_bytes(), false).assert_error(400, "BadRequest");
    let raw = format!(
        "OPTIONS /b/k HTTP/1.1\r\nhost: {}\r\norigin: http://example.test\r\naccess-control-request-method: PUT\r\nconnection: close\r\n\r\n",
        server.addr
    );
    send_raw(server.addr, raw.as_bytes(), false).assert_error(403, "AccessForbidden");
}

#[test]
fn metadata_too_large() {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "meta");
    client
        .send(&Request::new("PUT", "meta", "k").header("x-amz-meta-big", &"v".repeat(2100)).body("x"))
        .assert_error(400, "MetadataTooLarge");
    client
        .send(&Request::new("PUT", "meta", "k").header("x-amz-meta-fits", &"v".repeat(1900)).body("x"))
        .assert_status(200);
}

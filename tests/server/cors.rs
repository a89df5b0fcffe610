//! CORS rules: configuration round trip, preflights, headers on answers.

use crate::harness::*;

const RULES: &str = r#"<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <CORSRule>
    <ID>uploads</ID>
    <AllowedOrigin>http://127.0.0.2:8080</AllowedOrigin>
    <AllowedMethod>PUT</AllowedMethod>
    <AllowedMethod>GET</AllowedMethod>
    <AllowedHeader>*</AllowedHeader>
    <ExposeHeader>ETag</ExposeHeader>
    <MaxAgeSeconds>300</MaxAgeSeconds>
  </CORSRule>
  <CORSRule>
    <AllowedOrigin>*</AllowedOrigin>
    <AllowedMethod>GET</AllowedMethod>
  </CORSRule>
</CORSConfiguration>"#;

fn preflight(server: &TestServer, origin: Option<&str>, method: Option<&str>, headers: Option<&str>) -> Response {
    let mut raw = format!("OPTIONS /web/upload.txt HTTP/1.1\r\nhost: {}\r\n", server.addr);
    if let Some(origin) = origin {
        raw.push_str(&format!("origin: {origin}\r\n"));
    }
    if let Some(method) = method {
        raw.push_str(&format!("access-control-request-method: {method}\r\n"));
    }
    if let Some(headers) = headers {
        raw.push_str(&format!("access-control-request-headers: {headers}\r\n"));
    }
    raw.push_str("connection: close\r\n\r\n");
    send_raw(server.addr, raw.as_bytes(), false)
}

#[test]
fn rules_answer_preflights_and_decorate_answers() {
    let server = TestServer::start();
    let root = server.client();
    create_bucket(&root, "web");
    preflight(&server, Some("http://127.0.0.2:8080"), Some("PUT"), None).assert_error(403, "AccessForbidden");
    root.send(&Request::new("GET", "web", "").query("cors", "")).assert_error(404, "NoSuchCORSConfiguration");
    root.send(&Request::new("PUT", "web", "").query("cors", "").body(RULES)).assert_status(200);
    let stored = root.send(&Request::new("GET", "web", "").query("cors", ""));
    stored.assert_status(200);
    assert_eq!(stored.xml_all("AllowedMethod"), ["PUT", "GET", "GET"]);

    let allowed = preflight(&server, Some("http://127.0.0.2:8080"), Some("PUT"), Some("content-type, x-amz-meta-a"));
    allowed.assert_status(200);
    assert_eq!(allowed.header("access-control-allow-origin"), Some("http://127.0.0.2:8080"));
    assert_eq!(allowed.header("access-control-allow-methods"), Some("PUT, GET"));
    assert_eq!(allowed.header("access-control-allow-headers"), Some("content-type, x-amz-meta-a"));
    assert_eq!(allowed.header("access-control-max-age"), Some("300"));
    assert_eq!(allowed.header("access-control-expose-headers"), Some("ETag"));
    let anyone = preflight(&server, Some("http://elsewhere.test"), Some("GET"), None);
    anyone.assert_status(200);
    assert_eq!(anyone.header("access-control-allow-origin"), Some("*"));
    preflight(&server, Some("http://elsewhere.test"), Some("PUT"), None).assert_error(403, "AccessForbidden");
    preflight(&server, None, Some("PUT"), None).assert_error(400, "BadRequest");
    preflight(&server, Some("http://127.0.0.2:8080"), None, None).assert_error(400, "BadRequest");

    let put = root
        .send(&Request::new("PUT", "web", "upload.txt").unsigned_header("origin", "http://127.0.0.2:8080").body("hi"));
    put.assert_status(200);
    assert_eq!(put.header("access-control-allow-origin"), Some("http://127.0.0.2:8080"));
    assert_eq!(put.header("access-control-expose-headers"), Some("ETag"));
    let plain = root.send(&Request::new("GET", "web", "upload.txt"));
    assert_eq!(plain.header("access-control-allow-origin"), None);

    let bad = "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>";
    root.send(&Request::new("PUT", "web", "").query("cors", "").body(bad)).assert_error(400, "InvalidRequest");
    root.send(&Request::new("PUT", "web", "").query("cors", "").body("<CORSConfiguration>"))
        .assert_error(400, "MalformedXML");
    root.send(&Request::new("DELETE", "web", "").query("cors", "")).assert_status(204);
    preflight(&server, Some("http://127.0.0.2:8080"), Some("PUT"), None).assert_error(403, "AccessForbidden");
}

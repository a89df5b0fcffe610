//! Upload links: the page, uploads through it, its limits, and what a
//! browser sees once the link is dead.

use crate::harness::*;

fn share_upload(server: &TestServer, args: &[&str]) -> (String, String) {
    let mut all = vec!["share", "--upload"];
    all.extend_from_slice(args);
    let (ok, out, err) = larder_cli(server, &all);
    assert!(ok, "{err}");
    let field = |name: &str| out.lines().find_map(|l| l.trim().strip_prefix(name)).unwrap().trim().to_string();
    (field("full:"), field("id:"))
}

fn open(server: &TestServer, url: &str, accept: &str) -> Response {
    let target = url.strip_prefix(&format!("http://{}", server.addr)).unwrap();
    let raw =
        format!("GET {target} HTTP/1.1\r\nhost: {}\r\naccept: {accept}\r\nconnection: close\r\n\r\n", server.addr);
    send_raw(server.addr, raw.as_bytes(), false)
}

/// The form fields the page carries, decoded from its data attribute.
fn page_fields(page: &Response) -> Vec<(String, String)> {
    let html = page.text();
    let start = html.find("data-fields=\"").unwrap() + "data-fields=\"".len();
    let end = html[start..].find('"').unwrap() + start;
    let json = html[start..end]
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&apos;", "'");
    let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json).unwrap();
    fields.into_iter().map(|(k, v)| (k, v.as_str().unwrap().to_string())).collect()
}

fn post_file(
    server: &TestServer,
    bucket: &str,
    fields: &[(String, String)],
    content_type: &str,
    name: &str,
    file: &[u8],
) -> Response {
    const BOUNDARY: &str = "----larderpage";
    let mut body = Vec::new();
    for (field, value) in fields.iter().map(|(f, v)| (f.as_str(), v.as_str())).chain([("Content-Type", content_type)]) {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let mut raw = format!(
        "POST /{bucket} HTTP/1.1\r\nhost: {}\r\ncontent-type: multipart/form-data; boundary={BOUNDARY}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        server.addr,
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    send_raw(server.addr, &raw, false)
}

#[test]
fn an_upload_page_collects_files_within_its_limits() {
    let server = TestServer::start();
    let client = server.client();
    let (link, id) =
        share_upload(&server, &["s3://inbox/cam1/", "--max-size", "1K", "--type", "image/*", "--uses", "3"]);
    let page = open(&server, &link, "text/html");
    page.assert_status(200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(page.header("content-security-policy").unwrap().contains("default-src 'none'"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(page.text().contains("accept=\"image/*\"") && page.text().contains("/_larder/static/upload.js"));
    let script = open(&server, &format!("http://{}/_larder/static/upload.js", server.addr), "*/*");
    script.assert_status(200);
    assert!(script.text().contains("XMLHttpRequest"));

    let fields = page_fields(&page);
    post_file(&server, "inbox", &fields, "image/jpeg", "../../porch cam.jpg", b"jpeg").assert_status(201);
    post_file(&server, "inbox", &fields, "image/jpeg", "porch cam.jpg", b"jpeg two").assert_status(201);
    assert_eq!(get(&client, "inbox", "cam1/porch cam.jpg").body, b"jpeg");
    assert_eq!(get(&client, "inbox", "cam1/porch cam (1).jpg").body, b"jpeg two", "no upload replaces another");
    post_file(&server, "inbox", &fields, "image/png", "big.png", &[0u8; 2048]).assert_error(400, "EntityTooLarge");
    post_file(&server, "inbox", &fields, "text/plain", "note.txt", b"text").assert_error(403, "AccessDenied");
    post_file(&server, "inbox", &fields, "image/gif", "third.gif", b"gif").assert_status(201);
    let spent = post_file(&server, "inbox", &fields, "image/gif", "fourth.gif", b"gif");
    spent.assert_error(403, "AccessDenied");
    assert!(spent.text().contains("used up"));

    // Once revoked, a browser sees a plain page and an S3 client the XML.
    let (ok, _, err) = larder_cli(&server, &["share", "revoke", &id]);
    assert!(ok, "{err}");
    let dead = open(&server, &link, "text/html,application/xhtml+xml");
    assert_eq!(dead.status, 403);
    assert!(dead.text().contains("This link has expired") && !dead.text().contains("<Error>"));
    assert!(dead.header("content-security-policy").is_some());
    open(&server, &link, "*/*").assert_error(403, "InvalidAccessKeyId");
}

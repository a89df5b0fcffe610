//! Object operations against the real server: PUT, GET (ranges,
//! conditions, overrides), HEAD, DELETE, CopyObject, DeleteObjects,
//! digests and checksums.

use larder::timefmt;

use crate::harness::*;

fn setup() -> (TestServer, Client) {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "objects");
    (server, client)
}

#[test]
fn put_get_head_delete_with_metadata() {
    let (_server, client) = setup();
    let body = pattern(100_000, 1);
    let response = client.send(
        &Request::new("PUT", "objects", "dir/file.bin")
            .header("content-type", "application/x-test")
            .header("content-encoding", "identity")
            .header("content-disposition", "attachment; filename=\"f.bin\"")
            .header("content-language", "en")
            .header("cache-control", "max-age=60")
            .header("expires", "Thu, 01 Dec 2094 16:00:00 GMT")
            .header("x-amz-meta-colour", "blue")
            .header("x-amz-meta-Mixed-Case", "Value  With  Spaces")
            .header("x-amz-acl", "private")
            .body(body.clone()),
    );
    response.assert_status(200);
    let etag = format!("\"{}\"", md5_hex(&body));
    assert_eq!(response.header("etag"), Some(etag.as_str()));

    let got = get(&client, "objects", "dir/file.bin");
    got.assert_status(200);
    assert!(got.body == body);
    for (name, value) in [
        ("content-type", "application/x-test"),
        ("content-encoding", "identity"),
        ("content-disposition", "attachment; filename=\"f.bin\""),
        ("content-language", "en"),
        ("cache-control", "max-age=60"),
        ("expires", "Thu, 01 Dec 2094 16:00:00 GMT"),
        ("x-amz-meta-colour", "blue"),
        ("x-amz-meta-mixed-case", "Value  With  Spaces"),
        ("etag", etag.as_str()),
        ("content-length", "100000"),
        ("accept-ranges", "bytes"),
    ] {
        assert_eq!(got.header(name), Some(value), "{name}");
    }
    let last_modified = timefmt::parse_http_date(got.header("last-modified").unwrap()).unwrap();
    assert!((timefmt::now() - last_modified).abs() < 60);

    let head = client.send(&Request::new("HEAD", "objects", "dir/file.bin"));
    head.assert_status(200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-length"), Some("100000"));
    assert_eq!(head.header("x-amz-meta-colour"), Some("blue"));

    client.send(&Request::new("DELETE", "objects", "dir/file.bin")).assert_status(204);
    let missing = get(&client, "objects", "dir/file.bin");
    missing.assert_error(404, "NoSuchKey");
    assert_eq!(missing.xml("Key").as_deref(), Some("dir/file.bin"));
    let head = client.send(&Request::new("HEAD", "objects", "dir/file.bin"));
    assert_eq!((head.status, head.body.len()), (404, 0));
    // Deleting what is not there is still a success, as in S3.
    client.send(&Request::new("DELETE", "objects", "dir/file.bin")).assert_status(204);
    client.send(&Request::new("DELETE", "no-bucket", "k")).assert_error(404, "NoSuchBucket");
}

#[test]
fn default_content_type_and_empty_objects() {
    let (_server, client) = setup();
    put(&client, "objects", "empty", b"");
    let got = get(&client, "objects", "empty");
    got.assert_status(200);
    assert_eq!(got.body.len(), 0);
    assert_eq!(got.header("content-type"), Some("binary/octet-stream"));
    assert_eq!(got.header("etag"), Some("\"d41d8cd98f00b204e9800998ecf8427e\""));
}

#[test]
fn overwrite_replaces_bytes_and_metadata() {
    let (_server, client) = setup();
    client.send(&Request::new("PUT", "objects", "k").header("x-amz-meta-a", "1").body("first")).assert_status(200);
    client.send(&Request::new("PUT", "objects", "k").header("x-amz-meta-b", "2").body("second!")).assert_status(200);
    let got = get(&client, "objects", "k");
    assert_eq!(got.body, b"second!");
    assert_eq!(got.header("x-amz-meta-a"), None);
    assert_eq!(got.header("x-amz-meta-b"), Some("2"));
}

#[test]
fn keys_of_any_utf8() {
    let (_server, client) = setup();
    let long = "k".repeat(1024);
    let keys = [
        "with space",
        "plus+sign",
        "per%cent",
        "../dots/../x",
        "a//b",
        "ሴ unicode/ü/😀",
        "trailing/",
        "q?uestion#hash",
        "tab\there",
        long.as_str(),
    ];
    for (i, key) in keys.iter().enumerate() {
        let body = format!("body {i}");
        put(&client, "objects", key, body.as_bytes());
        let got = get(&client, "objects", key);
        got.assert_status(200);
        assert_eq!(got.body, body.as_bytes(), "{key}");
    }
    let listing = client.send(&Request::new("GET", "objects", "").query("list-type", "2"));
    assert_eq!(listing.xml_all("Key").len(), keys.len());
    let too_long = "k".repeat(1025);
    client.send(&Request::new("PUT", "objects", &too_long).body("x")).assert_error(400, "KeyTooLongError");
}

#[test]
fn ranges() {
    let (_server, client) = setup();
    let body = pattern(1000, 7);
    put(&client, "objects", "r", &body);
    for (range, start, end) in
        [("bytes=0-9", 0, 9), ("bytes=990-", 990, 999), ("bytes=-10", 990, 999), ("bytes=500-5000", 500, 999)]
    {
        let response = client.send(&Request::new("GET", "objects", "r").header("range", range));
        response.assert_status(206);
        assert_eq!(response.body, &body[start..=end], "{range}");
        assert_eq!(response.header("content-range"), Some(format!("bytes {start}-{end}/1000").as_str()));
        assert_eq!(response.header("content-length"), Some((end - start + 1).to_string().as_str()));
    }
    let response = client.send(&Request::new("GET", "objects", "r").header("range", "bytes=1000-"));
    response.assert_error(416, "InvalidRange");
    assert_eq!(response.xml("ActualObjectSize").as_deref(), Some("1000"));
    // Syntax S3 does not understand is ignored: the whole object.
    let response = client.send(&Request::new("GET", "objects", "r").header("range", "bytes=9-2"));
    response.assert_status(200);
    assert_eq!(response.body.len(), 1000);
    let head = client.send(&Request::new("HEAD", "objects", "r").header("range", "bytes=0-99"));
    head.assert_status(206);
    assert_eq!(head.header("content-length"), Some("100"));
}

#[test]
fn conditional_requests() {
    let (_server, client) = setup();
    let etag = put(&client, "objects", "c", b"conditional").header("etag").unwrap().to_string();
    let modified = timefmt::now();
    let past = timefmt::format_http_date(modified - 3600);
    let future = timefmt::format_http_date(modified + 3600);
    let cases: &[(&str, &str, u16)] = &[
        ("if-match", &etag, 200),
        ("if-match", "\"0000\"", 412),
        ("if-match", "*", 200),
        ("if-none-match", &etag, 304),
        ("if-none-match", "\"0000\"", 200),
        ("if-modified-since", &past, 200),
        ("if-modified-since", &future, 304),
        ("if-unmodified-since", &future, 200),
        ("if-unmodified-since", &past, 412),
    ];
    for (name, value, status) in cases {
        for method in ["GET", "HEAD"] {
            let response = client.send(&Request::new(method, "objects", "c").header(name, value));
            assert_eq!(response.status, *status, "{method} {name}: {value}");
            if *status == 412 && method == "GET" {
                response.assert_error(412, "PreconditionFailed");
            }
            if *status == 304 {
                assert!(response.body.is_empty());
                assert_eq!(response.header("etag"), Some(etag.as_str()));
            }
        }
    }
    // If-Match that holds wins over a failing If-Unmodified-Since (RFC 7232).
    let response = client
        .send(&Request::new("GET", "objects", "c").header("if-match", &etag).header("if-unmodified-since", &past));
    response.assert_status(200);
    // If-None-Match that fails wins over If-Modified-Since.
    let response = client.send(
        &Request::new("GET", "objects", "c").header("if-none-match", "\"x\"").header("if-modified-since", &future),
    );
    response.assert_status(200);
}

#[test]
fn response_header_overrides() {
    let (_server, client) = setup();
    put(&client, "objects", "o", b"override me");
    let response = client.send(
        &Request::new("GET", "objects", "o")
            .query("response-content-type", "text/plain")
            .query("response-content-disposition", "attachment; filename=\"x.txt\"")
            .query("response-cache-control", "no-store")
            .query("response-content-language", "fr")
            .query("response-expires", "Thu, 01 Dec 2094 16:00:00 GMT")
            .query("response-content-encoding", "gzip"),
    );
    response.assert_status(200);
    assert_eq!(response.header("content-type"), Some("text/plain"));
    assert_eq!(response.header("content-disposition"), Some("attachment; filename=\"x.txt\""));
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(response.header("content-language"), Some("fr"));
    assert_eq!(response.header("expires"), Some("Thu, 01 Dec 2094 16:00:00 GMT"));
    assert_eq!(response.header("content-encoding"), Some("gzip"));
}

#[test]
fn content_md5_checked_and_nothing_stored_on_mismatch() {
    let (_server, client) = setup();
    let body = b"md5 checked body".to_vec();
    client
        .send(&Request::new("PUT", "objects", "good").header("content-md5", &md5_base64(&body)).body(body.clone()))
        .assert_status(200);
    client
        .send(&Request::new("PUT", "objects", "bad").header("content-md5", &md5_base64(b"other")).body(body.clone()))
        .assert_error(400, "BadDigest");
    client
        .send(&Request::new("PUT", "objects", "bad").header("content-md5", "not-base64!").body(body.clone()))
        .assert_error(400, "InvalidDigest");
    client
        .send(&Request::new("PUT", "objects", "bad").header("content-md5", "AAAA").body(body))
        .assert_error(400, "InvalidDigest");
    get(&client, "objects", "bad").assert_error(404, "NoSuchKey");
}

#[test]
fn checksum_headers_verified_stored_and_returned() {
    use larder::checksum::{ChecksumAlgorithm, ChecksumHasher};
    let (server, client) = setup();
    let body = pattern(300_000, 9);
    for algorithm in ChecksumAlgorithm::ALL {
        let mut hasher = ChecksumHasher::new(algorithm);
        hasher.update(&body);
        let value = hasher.finish().to_base64();
        let key = format!("sum-{}", algorithm.name());
        let response = client.send(
            &Request::new("PUT", "objects", &key)
                .header(algorithm.header_name(), &value)
                .header("x-amz-sdk-checksum-algorithm", algorithm.name())
                .body(body.clone()),
        );
        response.assert_status(200);
        assert_eq!(response.header(algorithm.header_name()), Some(value.as_str()));
        let plain = get(&client, "objects", &key);
        assert_eq!(plain.header(algorithm.header_name()), None, "only with checksum mode");
        let with_mode = client.send(&Request::new("GET", "objects", &key).header("x-amz-checksum-mode", "ENABLED"));
        assert_eq!(with_mode.header(algorithm.header_name()), Some(value.as_str()));
        let head = client.send(&Request::new("HEAD", "objects", &key).header("x-amz-checksum-mode", "ENABLED"));
        assert_eq!(head.header(algorithm.header_name()), Some(value.as_str()));

        // A wrong value of the right shape: BadDigest, nothing stored.
        let mut wrong = hasher_of(algorithm, b"something else");
        if wrong == value {
            wrong = hasher_of(algorithm, b"yet another");
        }
        let bad_key = format!("bad-{}", algorithm.name());
        let response = client
            .send(&Request::new("PUT", "objects", &bad_key).header(algorithm.header_name(), &wrong).body(body.clone()));
        response.assert_error(400, "BadDigest");
        assert!(response.text().contains(algorithm.name()));
        get(&client, "objects", &bad_key).assert_error(404, "NoSuchKey");
    }
    client
        .send(&Request::new("PUT", "objects", "bad").header("x-amz-checksum-crc32", "!!").body("x"))
        .assert_error(400, "InvalidRequest");
    client
        .send(
            &Request::new("PUT", "objects", "bad")
                .header("x-amz-checksum-crc32", "AAAAAA==")
                .header("x-amz-checksum-sha1", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                .body("x"),
        )
        .assert_error(400, "InvalidRequest");
    assert!(std::fs::read_dir(server.dir.join("tmp")).unwrap().next().is_none(), "no temp file left");
}

fn hasher_of(algorithm: larder::checksum::ChecksumAlgorithm, data: &[u8]) -> String {
    let mut hasher = larder::checksum::ChecksumHasher::new(algorithm);
    hasher.update(data);
    hasher.finish().to_base64()
}

#[test]
fn copy_object_copy_and_replace() {
    let (_server, client) = setup();
    client
        .send(
            &Request::new("PUT", "objects", "src key")
                .header("content-type", "text/plain")
                .header("x-amz-meta-a", "1")
                .body("copy me"),
        )
        .assert_status(200);
    create_bucket(&client, "other");
    let response =
        client.send(&Request::new("PUT", "other", "copied").header("x-amz-copy-source", "/objects/src%20key"));
    response.assert_status(200);
    assert_eq!(response.xml("ETag").as_deref(), Some(format!("\"{}\"", md5_hex(b"copy me")).as_str()));
    let got = get(&client, "other", "copied");
    assert_eq!(got.body, b"copy me");
    assert_eq!(got.header("x-amz-meta-a"), Some("1"));
    assert_eq!(got.header("content-type"), Some("text/plain"));

    client
        .send(
            &Request::new("PUT", "objects", "replaced")
                .header("x-amz-copy-source", "objects/src%20key")
                .header("x-amz-metadata-directive", "REPLACE")
                .header("content-type", "application/json")
                .header("x-amz-meta-b", "2"),
        )
        .assert_status(200);
    let got = get(&client, "objects", "replaced");
    assert_eq!(got.body, b"copy me");
    assert_eq!((got.header("x-amz-meta-a"), got.header("x-amz-meta-b")), (None, Some("2")));
    assert_eq!(got.header("content-type"), Some("application/json"));

    client
        .send(&Request::new("PUT", "objects", "src key").header("x-amz-copy-source", "objects/src%20key"))
        .assert_error(400, "InvalidRequest");
    client
        .send(
            &Request::new("PUT", "objects", "src key")
                .header("x-amz-copy-source", "objects/src%20key")
                .header("x-amz-metadata-directive", "REPLACE"),
        )
        .assert_status(200);
    client
        .send(&Request::new("PUT", "objects", "x").header("x-amz-copy-source", "objects/missing"))
        .assert_error(404, "NoSuchKey");
    client
        .send(&Request::new("PUT", "objects", "x").header("x-amz-copy-source", "nobucket"))
        .assert_error(400, "InvalidArgument");
    client
        .send(
            &Request::new("PUT", "objects", "x")
                .header("x-amz-copy-source", "objects/src%20key")
                .header("x-amz-copy-source-if-match", "\"nope\""),
        )
        .assert_error(412, "PreconditionFailed");
    client
        .send(
            &Request::new("PUT", "objects", "x")
                .header("x-amz-copy-source", "objects/src%20key")
                .header("x-amz-metadata-directive", "MOVE"),
        )
        .assert_error(400, "InvalidArgument");
}

fn delete_document(keys: &[String], quiet: bool) -> String {
    let mut doc = String::from("<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    if quiet {
        doc.push_str("<Quiet>true</Quiet>");
    }
    for key in keys {
        doc.push_str(&format!("<Object><Key>{}</Key></Object>", key.replace('&', "&amp;").replace('<', "&lt;")));
    }
    doc.push_str("</Delete>");
    doc
}

fn delete_objects(client: &Client, bucket: &str, doc: &str) -> Response {
    client.send(
        &Request::new("POST", bucket, "")
            .query("delete", "")
            .header("content-md5", &md5_base64(doc.as_bytes()))
            .body(doc.as_bytes().to_vec()),
    )
}

#[test]
fn delete_objects_quiet_verbose_and_limits() {
    let (_server, client) = setup();
    let keys: Vec<String> = (0..1000).map(|i| format!("many/{i:04} & <x>")).collect();
    for key in keys.iter().take(20) {
        put(&client, "objects", key, b"x");
    }
    let verbose = delete_objects(&client, "objects", &delete_document(&keys[..10], false));
    verbose.assert_status(200);
    assert_eq!(verbose.xml_all("Deleted").len(), 10);
    assert!(verbose.text().contains("<Key>many/0000 &amp; &lt;x&gt;</Key>"));
    assert_eq!(verbose.xml("Key").as_deref(), Some("many/0000 & <x>"));
    let quiet = delete_objects(&client, "objects", &delete_document(&keys, true));
    quiet.assert_status(200);
    assert_eq!(quiet.xml_all("Deleted").len(), 0);
    assert_eq!(quiet.xml_all("Error").len(), 0);
    let listing = client.send(&Request::new("GET", "objects", "").query("list-type", "2"));
    assert_eq!(listing.xml("KeyCount").as_deref(), Some("0"));

    let too_many: Vec<String> = (0..1001).map(|i| format!("k{i}")).collect();
    delete_objects(&client, "objects", &delete_document(&too_many, true)).assert_error(400, "MalformedXML");
    delete_objects(&client, "objects", "<Delete><Object><Key>a</Key></Object>").assert_error(400, "MalformedXML");
    delete_objects(&client, "objects", "<Delete></Delete>").assert_error(400, "MalformedXML");
    let doc = delete_document(&keys[..1], false);
    client
        .send(&Request::new("POST", "objects", "").query("delete", "").body(doc.as_bytes().to_vec()))
        .assert_error(400, "InvalidRequest");
    client
        .send(
            &Request::new("POST", "objects", "")
                .query("delete", "")
                .header("content-md5", &md5_base64(b"x"))
                .body(doc.as_bytes().to_vec()),
        )
        .assert_error(400, "BadDigest");
    // boto3 >= 1.36 sends a CRC32 instead of Content-MD5.
    let crc = hasher_of(larder::checksum::ChecksumAlgorithm::Crc32, doc.as_bytes());
    client
        .send(
            &Request::new("POST", "objects", "")
                .query("delete", "")
                .header("x-amz-checksum-crc32", &crc)
                .body(doc.as_bytes().to_vec()),
        )
        .assert_status(200);
    delete_objects(&client, "no-such-bucket", &doc).assert_error(404, "NoSuchBucket");
}

#[test]
fn put_without_length_or_too_large() {
    let (server, client) = setup();
    // A pipe has no length: HTTP's own chunks say where the body ends.
    let response = client.send(
        &Request::new("PUT", "objects", "chunked")
            .auth(Auth::Header(Payload::Unsigned))
            .unsigned_header("transfer-encoding", "chunked")
            .body(b"5\r\nhello\r\n0\r\n\r\n".to_vec()),
    );
    response.assert_status(200);
    assert_eq!(get(&client, "objects", "chunked").body, b"hello");
    // `curl -T -` on a presigned URL, from an edge device: many chunks.
    let chunks: Vec<Vec<u8>> = (0..40u8).map(|n| pattern(1000 + usize::from(n) * 997, n)).collect();
    let mut body = Vec::new();
    for chunk in &chunks {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let response = client.send(
        &Request::new("PUT", "objects", "piped")
            .auth(Auth::Presigned(300))
            .unsigned_header("transfer-encoding", "chunked")
            .body(body),
    );
    response.assert_status(200);
    let whole = chunks.concat();
    assert_eq!(response.header("etag"), Some(format!("\"{}\"", md5_hex(&whole)).as_str()));
    assert!(get(&client, "objects", "piped").body == whole);
    // Neither a length nor chunks: S3's 411.
    let presigned = client.presigned_target(&Request::new("PUT", "objects", "unknown").auth(Auth::Presigned(300)));
    let head = format!("PUT {presigned} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", server.addr);
    send_raw(server.addr, head.as_bytes(), false).assert_error(411, "MissingContentLength");
    // Refused from the head alone: the client never has to send 6 GiB.
    let response = client.send(
        &Request::new("PUT", "objects", "huge")
            .auth(Auth::Header(Payload::Unsigned))
            .header("content-length", &(6u64 << 30).to_string())
            .unsigned_header("expect", "100-continue"),
    );
    response.assert_error(400, "EntityTooLarge");
    get(&client, "objects", "huge").assert_error(404, "NoSuchKey");
    put(&client, "objects", "still-works", b"ok");
    drop(server);
}

#[test]
fn version_id_null_is_the_object() {
    let (_server, client) = setup();
    put(&client, "objects", "v", b"versioned?");
    let response = client.send(&Request::new("GET", "objects", "v").query("versionId", "null"));
    response.assert_status(200);
    assert!(response.header("x-amz-version-id").is_none());
    client
        .send(&Request::new("GET", "objects", "v").query("versionId", "3HL4kqtJlcpXroDTDmJ"))
        .assert_error(400, "InvalidArgument");
}

/// User metadata that is not ASCII comes back byte for byte: UTF-8 from
/// a signed request, and a Latin-1 byte (invalid UTF-8) from a presigned
/// one, which signs no metadata.
#[test]
fn non_ascii_metadata_comes_back_byte_for_byte() {
    let (server, client) = setup();
    let utf8 = "café ☕ 日本語";
    client.send(&Request::new("PUT", "objects", "utf8").header("x-amz-meta-note", utf8).body("x")).assert_status(200);
    let got = get(&client, "objects", "utf8");
    assert_eq!(got.header("x-amz-meta-note").map(str::as_bytes), Some(utf8.as_bytes()));

    // Signed by hand: the header's value is not a string.
    let latin1 = http::HeaderValue::from_bytes(b"caf\xe9").unwrap();
    let mut signed = http::HeaderMap::new();
    signed.insert("host", http::HeaderValue::from_str(&server.addr.to_string()).unwrap());
    signed.insert("x-amz-meta-name", latin1);
    let now = timefmt::now();
    let amz_date = timefmt::format_amz_date(now);
    let scope =
        larder::sigv4::Scope { date: amz_date[..8].to_string(), region: client.region.clone(), service: "s3".into() };
    let key = larder::sigv4::SigningKey::derive(&client.credentials.secret_key, &scope);
    let query = larder::sigv4::presign_query(
        "PUT",
        b"/objects/latin1",
        &[],
        &signed,
        &client.credentials.access_key,
        &key,
        &scope,
        &amz_date,
        300,
        None,
    );
    let mut raw = format!(
        "PUT /objects/latin1?{query} HTTP/1.1\r\nhost: {}\r\ncontent-length: 1\r\nx-amz-meta-name: caf",
        server.addr
    )
    .into_bytes();
    raw.extend_from_slice(b"\xe9\r\nconnection: close\r\n\r\nx");
    send_raw(server.addr, &raw, false).assert_status(200);
    let head = client.encode(&Request::new("GET", "objects", "latin1"));
    let mut stream = connect_from(None, server.addr);
    std::io::Write::write_all(&mut stream, &head).unwrap();
    let mut answer = Vec::new();
    std::io::Read::read_to_end(&mut stream, &mut answer).unwrap();
    let needle = b"x-amz-meta-name: caf\xe9\r\n";
    assert!(answer.windows(needle.len()).any(|window| window == needle), "{}", String::from_utf8_lossy(&answer));
}

/// `partNumber=1` on an object that was not uploaded in parts is the
/// whole object; any other part number is not satisfiable.
#[test]
fn part_number_one_of_a_single_put_is_the_whole_object() {
    let (_server, client) = setup();
    let body = pattern(10_000, 4);
    put(&client, "objects", "single", &body).assert_status(200);
    let whole = client.send(&Request::new("GET", "objects", "single").query("partNumber", "1"));
    assert!(whole.status == 200 || whole.status == 206, "{}", whole.status);
    assert!(whole.body == body);
    assert_eq!(whole.header("content-length"), Some("10000"));
    let head = client.send(&Request::new("HEAD", "objects", "single").query("partNumber", "1"));
    assert_eq!(head.header("content-length"), Some("10000"));
    client
        .send(&Request::new("GET", "objects", "single").query("partNumber", "2"))
        .assert_error(416, "InvalidPartNumber");
}

/// GetObjectAttributes from raw HTTP: the attributes asked for, and S3's
/// refusals for a bad or missing list.
#[test]
fn get_object_attributes_raw() {
    let (_server, client) = setup();
    put(&client, "objects", "attrs", b"0123456789").assert_status(200);
    let attributes = |value: Option<&str>| {
        let request = Request::new("GET", "objects", "attrs").query("attributes", "");
        client.send(&match value {
            Some(value) => request.header("x-amz-object-attributes", value),
            None => request,
        })
    };
    let got = attributes(Some("ObjectSize,ETag"));
    got.assert_status(200);
    assert_eq!(got.xml("ObjectSize").as_deref(), Some("10"));
    assert_eq!(got.xml("ETag"), Some(md5_hex(b"0123456789")), "the ETag without quotes");
    assert_eq!(got.xml("StorageClass"), None, "only what was asked");
    assert!(got.header("last-modified").is_some());
    attributes(Some("ETag,Colour")).assert_error(400, "InvalidArgument");
    attributes(None).assert_error(400, "InvalidArgument");
}

/// The index keeps a key apart from its versions with a NUL byte: a key
/// holding one is refused, in a path or a copy source, and nothing is
/// stored.
#[test]
fn keys_with_a_nul_byte_are_refused() {
    let (_server, client) = setup();
    put(&client, "objects", "a", b"a").assert_status(200);
    client.send(&Request::new("PUT", "objects", "a\u{0}b").body("x")).assert_error(400, "InvalidArgument");
    get(&client, "objects", "a\u{0}b").assert_error(400, "InvalidArgument");
    client
        .send(&Request::new("PUT", "objects", "copy").header("x-amz-copy-source", "objects/a%00b"))
        .assert_error(400, "InvalidArgument");
    let listed = client.send(&Request::new("GET", "objects", "").query("list-type", "2"));
    assert_eq!(listed.xml_all("Key"), ["a"]);
}

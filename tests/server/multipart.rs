//! Multipart uploads against the real server.

use larder::checksum::{ChecksumAlgorithm, ChecksumHasher};

use crate::harness::*;

const MIB: usize = 1024 * 1024;

fn setup() -> (TestServer, Client) {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "mpu");
    (server, client)
}

fn create(client: &Client, key: &str, headers: &[(&str, &str)]) -> String {
    let mut request = Request::new("POST", "mpu", key).query("uploads", "");
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = client.send(&request);
    response.assert_status(200);
    assert_eq!(response.xml("Key").as_deref(), Some(key));
    response.xml("UploadId").unwrap()
}

fn upload_part(client: &Client, key: &str, id: &str, number: u32, body: &[u8]) -> Response {
    client.send(
        &Request::new("PUT", "mpu", key)
            .query("partNumber", &number.to_string())
            .query("uploadId", id)
            .body(body.to_vec()),
    )
}

fn complete(client: &Client, key: &str, id: &str, parts: &[(u32, &str)]) -> Response {
    client.send(&Request::new("POST", "mpu", key).query("uploadId", id).body(complete_document(parts)))
}

fn multipart_etag(parts: &[&[u8]]) -> String {
    use md5::Digest;
    let mut all = Vec::new();
    for part in parts {
        all.extend_from_slice(&md5::Md5::digest(part));
    }
    format!("\"{}-{}\"", hex::encode(md5::Md5::digest(&all)), parts.len())
}

#[test]
fn upload_complete_and_read_through_parts() {
    let (_server, client) = setup();
    let parts = [pattern(5 * MIB, 1), pattern(5 * MIB + 3, 2), pattern(1000, 3)];
    let id = create(&client, "big", &[("content-type", "video/mp4"), ("x-amz-meta-origin", "camera")]);
    let mut etags = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let response = upload_part(&client, "big", &id, i as u32 + 1, part);
        response.assert_status(200);
        assert_eq!(response.header("etag"), Some(format!("\"{}\"", md5_hex(part)).as_str()));
        etags.push(response.header("etag").unwrap().to_string());
    }
    let listed = client.send(&Request::new("GET", "mpu", "big").query("uploadId", &id));
    listed.assert_status(200);
    assert_eq!(listed.xml_all("PartNumber"), ["1", "2", "3"]);
    assert_eq!(listed.xml_all("Size"), [parts[0].len().to_string(), parts[1].len().to_string(), "1000".into()]);
    let listed = client.send(&Request::new("GET", "mpu", "big").query("uploadId", &id).query("max-parts", "2"));
    assert_eq!(listed.xml("IsTruncated").as_deref(), Some("true"));
    assert_eq!(listed.xml("NextPartNumberMarker").as_deref(), Some("2"));
    let rest = client.send(&Request::new("GET", "mpu", "big").query("uploadId", &id).query("part-number-marker", "2"));
    assert_eq!(rest.xml_all("PartNumber"), ["3"]);

    let numbered: Vec<(u32, &str)> = etags.iter().enumerate().map(|(i, e)| (i as u32 + 1, e.as_str())).collect();
    let response = complete(&client, "big", &id, &numbered);
    response.assert_status(200);
    let expected_etag = multipart_etag(&[&parts[0], &parts[1], &parts[2]]);
    assert_eq!(response.xml("ETag").as_deref(), Some(expected_etag.as_str()));
    // Completing again with the same parts succeeds with the same answer.
    let again = complete(&client, "big", &id, &numbered);
    again.assert_status(200);
    assert_eq!(again.xml("ETag"), response.xml("ETag"));

    let whole: Vec<u8> = parts.concat();
    let got = get(&client, "mpu", "big");
    got.assert_status(200);
    assert_eq!(got.header("etag"), Some(expected_etag.as_str()));
    assert_eq!(got.header("content-type"), Some("video/mp4"));
    assert_eq!(got.header("x-amz-meta-origin"), Some("camera"));
    assert!(got.body == whole);
    // Ranges across the part boundaries.
    let boundary = parts[0].len();
    for (first, last) in [(boundary - 10, boundary + 10), (0, whole.len() - 1), (2 * boundary, whole.len() - 1)] {
        let response =
            client.send(&Request::new("GET", "mpu", "big").header("range", &format!("bytes={first}-{last}")));
        response.assert_status(206);
        assert!(response.body == whole[first..=last], "{first}-{last}");
    }
    let part_two = client.send(&Request::new("GET", "mpu", "big").query("partNumber", "2"));
    part_two.assert_status(206);
    assert_eq!(part_two.header("x-amz-mp-parts-count"), Some("3"));
    assert!(part_two.body == parts[1]);
    client.send(&Request::new("GET", "mpu", "big").query("partNumber", "4")).assert_error(416, "InvalidPartNumber");
    let head = client.send(&Request::new("HEAD", "mpu", "big").query("partNumber", "3"));
    head.assert_status(206);
    assert_eq!(head.header("content-length"), Some("1000"));
    // The upload is gone; a copy reads through the parts.
    client.send(&Request::new("GET", "mpu", "big").query("uploadId", &id)).assert_error(404, "NoSuchUpload");
    client.send(&Request::new("PUT", "mpu", "copy").header("x-amz-copy-source", "mpu/big")).assert_status(200);
    assert!(get(&client, "mpu", "copy").body == whole);
}

#[test]
fn complete_refuses_bad_part_lists() {
    let (_server, client) = setup();
    let id = create(&client, "k", &[]);
    let small = pattern(1024, 1);
    let big = pattern(5 * MIB, 2);
    let e1 = upload_part(&client, "k", &id, 1, &small).header("etag").unwrap().to_string();
    let e2 = upload_part(&client, "k", &id, 2, &big).header("etag").unwrap().to_string();
    complete(&client, "k", &id, &[(2, &e2), (1, &e1)]).assert_error(400, "InvalidPartOrder");
    complete(&client, "k", &id, &[(1, &e1), (3, &e2)]).assert_error(400, "InvalidPart");
    complete(&client, "k", &id, &[(1, "\"00000000000000000000000000000000\""), (2, &e2)])
        .assert_error(400, "InvalidPart");
    complete(&client, "k", &id, &[(1, &e1), (2, &e2)]).assert_error(400, "EntityTooSmall");
    client
        .send(
            &Request::new("POST", "mpu", "k")
                .query("uploadId", &id)
                .body("<CompleteMultipartUpload></CompleteMultipartUpload>"),
        )
        .assert_error(400, "MalformedXML");
    client
        .send(&Request::new("POST", "mpu", "k").query("uploadId", &id).body("<nope"))
        .assert_error(400, "MalformedXML");
    // Replacing part 1 with a large one makes the list valid.
    let e1 = upload_part(&client, "k", &id, 1, &big).header("etag").unwrap().to_string();
    complete(&client, "k", &id, &[(1, &e1), (2, &e2)]).assert_status(200);
    assert_eq!(get(&client, "mpu", "k").body.len(), 10 * MIB);
    get(&client, "mpu", "nothing").assert_error(404, "NoSuchKey");
}

#[test]
fn part_numbers_and_unknown_uploads() {
    let (_server, client) = setup();
    let id = create(&client, "k", &[]);
    for number in ["0", "10001", "x"] {
        client
            .send(&Request::new("PUT", "mpu", "k").query("partNumber", number).query("uploadId", &id).body("x"))
            .assert_error(400, "InvalidArgument");
    }
    upload_part(&client, "k", "00112233445566778899aabbccddeeff", 1, b"x").assert_error(404, "NoSuchUpload");
    upload_part(&client, "other-key", &id, 1, b"x").assert_error(404, "NoSuchUpload");
    upload_part(&client, "k", "not-hex", 1, b"x").assert_error(404, "NoSuchUpload");
    complete(&client, "k", "00112233445566778899aabbccddeeff", &[(1, "\"x\"")]).assert_error(404, "NoSuchUpload");
    client.send(&Request::new("POST", "nobucket", "k").query("uploads", "")).assert_error(404, "NoSuchBucket");
}

#[test]
fn abort_removes_the_upload_and_its_parts() {
    let (server, client) = setup();
    let id = create(&client, "gone", &[]);
    upload_part(&client, "gone", &id, 1, &pattern(1000, 1)).assert_status(200);
    let before = crate::storage::count_blobs(&server.dir);
    client.send(&Request::new("DELETE", "mpu", "gone").query("uploadId", &id)).assert_status(204);
    assert_eq!(crate::storage::count_blobs(&server.dir), before - 1);
    client.send(&Request::new("DELETE", "mpu", "gone").query("uploadId", &id)).assert_error(404, "NoSuchUpload");
    upload_part(&client, "gone", &id, 2, b"x").assert_error(404, "NoSuchUpload");
}

#[test]
fn list_multipart_uploads_with_prefix_and_delimiter() {
    let (_server, client) = setup();
    let ids: Vec<String> = ["a/1", "a/2", "b", "c/x/y"].iter().map(|key| create(&client, key, &[])).collect();
    let second = create(&client, "b", &[]);
    let all = client.send(&Request::new("GET", "mpu", "").query("uploads", ""));
    all.assert_status(200);
    assert_eq!(all.xml_all("Key"), ["a/1", "a/2", "b", "b", "c/x/y"]);
    assert!(all.xml_all("UploadId").contains(&ids[2]) && all.xml_all("UploadId").contains(&second));
    let grouped = client.send(&Request::new("GET", "mpu", "").query("uploads", "").query("delimiter", "/"));
    assert_eq!(grouped.xml_all("Key"), ["b", "b"]);
    assert_eq!(grouped.xml_all("Prefix")[1..], ["a/", "c/"]);
    let prefixed = client.send(&Request::new("GET", "mpu", "").query("uploads", "").query("prefix", "a/"));
    assert_eq!(prefixed.xml_all("Key"), ["a/1", "a/2"]);
    let page = client.send(&Request::new("GET", "mpu", "").query("uploads", "").query("max-uploads", "2"));
    assert_eq!(page.xml("IsTruncated").as_deref(), Some("true"));
    assert_eq!(page.xml("NextKeyMarker").as_deref(), Some("a/2"));
    let next = client.send(&Request::new("GET", "mpu", "").query("uploads", "").query("key-marker", "a/2"));
    assert_eq!(next.xml_all("Key"), ["b", "b", "c/x/y"]);
}

#[test]
fn upload_part_copy_with_ranges() {
    let (_server, client) = setup();
    let source = pattern(12 * MIB, 9);
    put(&client, "mpu", "source", &source);
    let id = create(&client, "assembled", &[]);
    let response = client.send(
        &Request::new("PUT", "mpu", "assembled")
            .query("partNumber", "1")
            .query("uploadId", &id)
            .header("x-amz-copy-source", "/mpu/source")
            .header("x-amz-copy-source-range", &format!("bytes=0-{}", 6 * MIB - 1)),
    );
    response.assert_status(200);
    let e1 = response.xml("ETag").unwrap();
    let response = client.send(
        &Request::new("PUT", "mpu", "assembled")
            .query("partNumber", "2")
            .query("uploadId", &id)
            .header("x-amz-copy-source", "mpu/source")
            .header("x-amz-copy-source-range", &format!("bytes={}-{}", 6 * MIB, 12 * MIB - 1)),
    );
    let e2 = response.xml("ETag").unwrap();
    client
        .send(
            &Request::new("PUT", "mpu", "assembled")
                .query("partNumber", "3")
                .query("uploadId", &id)
                .header("x-amz-copy-source", "mpu/source")
                .header("x-amz-copy-source-range", &format!("bytes=0-{}", 12 * MIB)),
        )
        .assert_error(400, "InvalidArgument");
    complete(&client, "assembled", &id, &[(1, &e1), (2, &e2)]).assert_status(200);
    assert!(get(&client, "mpu", "assembled").body == source);
}

#[test]
fn composite_checksums() {
    let (_server, client) = setup();
    let id = create(&client, "summed", &[("x-amz-checksum-algorithm", "CRC32")]);
    let parts = [pattern(5 * MIB, 4), pattern(777, 5)];
    let mut digests = Vec::new();
    let mut etags = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let mut hasher = ChecksumHasher::new(ChecksumAlgorithm::Crc32);
        hasher.update(part);
        let checksum = hasher.finish();
        let response = client.send(
            &Request::new("PUT", "mpu", "summed")
                .query("partNumber", &(i + 1).to_string())
                .query("uploadId", &id)
                .header("x-amz-checksum-crc32", &checksum.to_base64())
                .body(part.clone()),
        );
        response.assert_status(200);
        assert_eq!(response.header("x-amz-checksum-crc32"), Some(checksum.to_base64().as_str()));
        etags.push(response.header("etag").unwrap().to_string());
        digests.push(checksum);
    }
    // A wrong part checksum is refused.
    let wrong = client.send(
        &Request::new("PUT", "mpu", "summed")
            .query("partNumber", "3")
            .query("uploadId", &id)
            .header("x-amz-checksum-crc32", &digests[0].to_base64())
            .body(b"not that".to_vec()),
    );
    wrong.assert_error(400, "BadDigest");
    let listed = client.send(&Request::new("GET", "mpu", "summed").query("uploadId", &id));
    assert_eq!(listed.xml_all("ChecksumCRC32"), [digests[0].to_base64(), digests[1].to_base64()]);
    assert_eq!(listed.xml_all("PartNumber"), ["1", "2"]);

    let mut doc = String::from("<CompleteMultipartUpload>");
    for (i, (etag, digest)) in etags.iter().zip(&digests).enumerate() {
        doc.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag><ChecksumCRC32>{}</ChecksumCRC32></Part>",
            i + 1,
            digest.to_base64()
        ));
    }
    doc.push_str("</CompleteMultipartUpload>");
    let response = client.send(&Request::new("POST", "mpu", "summed").query("uploadId", &id).body(doc));
    response.assert_status(200);
    let mut composite = ChecksumHasher::new(ChecksumAlgorithm::Crc32);
    for digest in &digests {
        composite.update(&digest.digest);
    }
    let expected = format!("{}-2", composite.finish().to_base64());
    assert_eq!(response.xml("ChecksumCRC32").as_deref(), Some(expected.as_str()));
    let got = client.send(&Request::new("GET", "mpu", "summed").header("x-amz-checksum-mode", "ENABLED"));
    assert_eq!(got.header("x-amz-checksum-crc32"), Some(expected.as_str()));
    assert_eq!(got.header("x-amz-checksum-type"), Some("COMPOSITE"));
}

#[test]
fn conditional_complete() {
    let (_server, client) = setup();
    put(&client, "mpu", "taken", b"already here");
    let id = create(&client, "taken", &[]);
    let etag = upload_part(&client, "taken", &id, 1, b"tiny").header("etag").unwrap().to_string();
    let response = client.send(
        &Request::new("POST", "mpu", "taken")
            .query("uploadId", &id)
            .header("if-none-match", "*")
            .body(complete_document(&[(1, &etag)])),
    );
    response.assert_error(412, "PreconditionFailed");
    assert_eq!(get(&client, "mpu", "taken").body, b"already here");
}

#[test]
fn stale_uploads_expire() {
    let server = TestServer::start_with(|config| config.multipart_expiry_secs = 1);
    let client = server.client();
    create_bucket(&client, "mpu");
    let id = create(&client, "stale", &[]);
    upload_part(&client, "stale", &id, 1, b"x").assert_status(200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let response = client.send(&Request::new("GET", "mpu", "stale").query("uploadId", &id));
        if response.status == 404 {
            response.assert_error(404, "NoSuchUpload");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the upload never expired");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(crate::storage::count_blobs(&server.dir), 0);
}

/// A part sent again under the same number (a retry after a timeout):
/// the last one is the part; Complete with its ETag uses it, and the
/// first one's ETag no longer completes.
#[test]
fn a_part_uploaded_twice_counts_once_the_last_time() {
    let (_server, client) = setup();
    let id = create(&client, "retried", &[]);
    let first = pattern(5 * MIB, 7);
    let again = pattern(5 * MIB, 8);
    let last = pattern(100, 9);
    let first_etag = upload_part(&client, "retried", &id, 1, &first).header("etag").unwrap().to_string();
    let again_etag = upload_part(&client, "retried", &id, 1, &again).header("etag").unwrap().to_string();
    let last_etag = upload_part(&client, "retried", &id, 2, &last).header("etag").unwrap().to_string();
    let listed = client.send(&Request::new("GET", "mpu", "retried").query("uploadId", &id));
    listed.assert_status(200);
    assert_eq!(listed.xml_all("PartNumber"), ["1", "2"]);
    assert_eq!(listed.xml_all("ETag")[0], again_etag);
    complete(&client, "retried", &id, &[(1, &first_etag), (2, &last_etag)]).assert_error(400, "InvalidPart");
    let done = complete(&client, "retried", &id, &[(1, &again_etag), (2, &last_etag)]);
    done.assert_status(200);
    let body = get(&client, "mpu", "retried").body;
    assert!(
        body.len() == again.len() + last.len() && body[..again.len()] == again[..] && body[again.len()..] == last[..]
    );
    assert_eq!(done.xml("ETag").as_deref(), Some(multipart_etag(&[&again, &last]).as_str()));
}

fn checksum_b64(algorithm: ChecksumAlgorithm, data: &[u8]) -> String {
    let mut hasher = ChecksumHasher::new(algorithm);
    hasher.update(data);
    hasher.finish().to_base64()
}

/// `x-amz-checksum-type: FULL_OBJECT` (and CRC64NVME, which is always
/// whole-object): the completed object carries the checksum of all its
/// bytes, made from the parts' checksums; a whole-object checksum sent on
/// Complete is checked; the type's rules are S3's.
#[test]
fn full_object_checksums_for_multipart_uploads() {
    let (_server, client) = setup();
    let parts: Vec<Vec<u8>> = vec![pattern(5 * MIB, 1), pattern(5 * MIB + 17, 2), pattern(1000, 3)];
    let whole = parts.concat();
    for (algorithm, asked) in [
        (ChecksumAlgorithm::Crc32, Some("FULL_OBJECT")),
        (ChecksumAlgorithm::Crc32c, Some("FULL_OBJECT")),
        (ChecksumAlgorithm::Crc64Nvme, None),
    ] {
        let key = format!("full-{}", algorithm.name());
        let mut headers = vec![("x-amz-checksum-algorithm", algorithm.name())];
        if let Some(kind) = asked {
            headers.push(("x-amz-checksum-type", kind));
        }
        let id = create(&client, &key, &headers);
        let mut etags = Vec::new();
        for (number, body) in parts.iter().enumerate() {
            let answer = client.send(
                &Request::new("PUT", "mpu", &key)
                    .query("partNumber", &(number + 1).to_string())
                    .query("uploadId", &id)
                    .header(algorithm.header_name(), &checksum_b64(algorithm, body))
                    .body(body.clone()),
            );
            answer.assert_status(200);
            etags.push(answer.header("etag").unwrap().to_string());
        }
        let numbered: Vec<(u32, &str)> =
            etags.iter().enumerate().map(|(i, etag)| (i as u32 + 1, etag.as_str())).collect();
        let expected = checksum_b64(algorithm, &whole);
        // A wrong whole-object checksum fails the Complete; the upload stays.
        let wrong = client.send(
            &Request::new("POST", "mpu", &key)
                .query("uploadId", &id)
                .header(algorithm.header_name(), &checksum_b64(algorithm, b"something else"))
                .body(complete_document(&numbered)),
        );
        wrong.assert_error(400, "BadDigest");
        let done = client.send(
            &Request::new("POST", "mpu", &key)
                .query("uploadId", &id)
                .header(algorithm.header_name(), &expected)
                .body(complete_document(&numbered)),
        );
        done.assert_status(200);
        let element = format!("Checksum{}", algorithm.name());
        assert_eq!(done.xml(&element).as_deref(), Some(expected.as_str()), "{}", algorithm.name());
        assert_eq!(done.xml("ChecksumType").as_deref(), Some("FULL_OBJECT"));
        let head = client.send(&Request::new("HEAD", "mpu", &key).header("x-amz-checksum-mode", "ENABLED"));
        assert_eq!(head.header(algorithm.header_name()), Some(expected.as_str()));
        assert_eq!(head.header("x-amz-checksum-type"), Some("FULL_OBJECT"));
    }
    // COMPOSITE stays the default for the others, marked -<parts>.
    let id = create(&client, "composite", &[("x-amz-checksum-algorithm", "CRC32")]);
    let answer = client.send(
        &Request::new("PUT", "mpu", "composite")
            .query("partNumber", "1")
            .query("uploadId", &id)
            .header("x-amz-checksum-crc32", &checksum_b64(ChecksumAlgorithm::Crc32, b"one part"))
            .body("one part"),
    );
    let etag = answer.header("etag").unwrap().to_string();
    let done = complete(&client, "composite", &id, &[(1, &etag)]);
    assert_eq!(done.xml("ChecksumType").as_deref(), Some("COMPOSITE"));
    assert!(done.xml("ChecksumCRC32").unwrap().ends_with("-1"));
    // The type's rules.
    let refused = |headers: &[(&str, &str)]| {
        let mut request = Request::new("POST", "mpu", "k").query("uploads", "");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        client.send(&request).assert_error(400, "InvalidRequest");
    };
    refused(&[("x-amz-checksum-algorithm", "SHA256"), ("x-amz-checksum-type", "FULL_OBJECT")]);
    refused(&[("x-amz-checksum-algorithm", "CRC64NVME"), ("x-amz-checksum-type", "COMPOSITE")]);
    refused(&[("x-amz-checksum-type", "FULL_OBJECT")]);
}

//! Object versioning against the real server: the bucket's state, version
//! ids on writes, reads and deletes by version, delete markers, the null
//! version, ListObjectVersions (order, paging, prefixes), copies from a
//! version, DeleteObjects with versions, and `larder repair` rebuilding
//! all of it from the blobs.

use std::path::Path;

use crate::harness::*;

fn set_versioning(client: &Client, bucket: &str, status: &str) -> Response {
    let document = format!("<VersioningConfiguration><Status>{status}</Status></VersioningConfiguration>");
    client.send(&Request::new("PUT", bucket, "").query("versioning", "").body(document))
}

fn versioned_bucket(client: &Client, bucket: &str) {
    create_bucket(client, bucket);
    set_versioning(client, bucket, "Enabled").assert_status(200);
}

fn put_version(client: &Client, bucket: &str, key: &str, body: &[u8]) -> String {
    let answer = put(client, bucket, key, body);
    answer.assert_status(200);
    answer.header("x-amz-version-id").expect("a version id").to_string()
}

fn get_version(client: &Client, bucket: &str, key: &str, version: &str) -> Response {
    client.send(&Request::new("GET", bucket, key).query("versionId", version))
}

/// (element, key, version id, is latest) for each entry of a listing page,
/// in document order.
fn entries(listing: &Response) -> Vec<(String, String, String, bool)> {
    let text = listing.text();
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find(['<']) {
        rest = &rest[at..];
        let element = if rest.starts_with("<Version>") {
            "Version"
        } else if rest.starts_with("<DeleteMarker>") {
            "DeleteMarker"
        } else {
            rest = &rest[1..];
            continue;
        };
        let end = rest.find(&format!("</{element}>")).unwrap();
        let body = &rest[..end];
        let field = |name: &str| {
            let start = body.find(&format!("<{name}>")).unwrap() + name.len() + 2;
            body[start..start + body[start..].find('<').unwrap()].to_string()
        };
        out.push((element.to_string(), field("Key"), field("VersionId"), field("IsLatest") == "true"));
        rest = &rest[end..];
    }
    out
}

fn list_versions(client: &Client, bucket: &str, query: &[(&str, &str)]) -> Response {
    let mut request = Request::new("GET", bucket, "").query("versions", "");
    for (name, value) in query {
        request = request.query(name, value);
    }
    let answer = client.send(&request);
    answer.assert_status(200);
    answer
}

#[test]
fn versions_deletes_and_delete_markers() {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "history");
    let state = client.send(&Request::new("GET", "history", "").query("versioning", ""));
    state.assert_status(200);
    assert_eq!(state.xml("Status"), None, "never versioned: an empty configuration");
    set_versioning(&client, "history", "Enabled").assert_status(200);
    let state = client.send(&Request::new("GET", "history", "").query("versioning", ""));
    assert_eq!(state.xml("Status").as_deref(), Some("Enabled"));

    let v1 = put_version(&client, "history", "doc", b"first");
    let v2 = put_version(&client, "history", "doc", b"second");
    let v3 = put_version(&client, "history", "doc", b"third");
    assert!(v1 != v2 && v2 != v3 && v1 != v3);
    let current = get(&client, "history", "doc");
    assert_eq!(current.body, b"third");
    assert_eq!(current.header("x-amz-version-id"), Some(v3.as_str()));
    for (version, body) in [(&v1, "first"), (&v2, "second"), (&v3, "third")] {
        let answer = get_version(&client, "history", "doc", version);
        answer.assert_status(200);
        assert_eq!(answer.body, body.as_bytes());
        assert_eq!(answer.header("x-amz-version-id"), Some(version.as_str()));
        let head = client.send(&Request::new("HEAD", "history", "doc").query("versionId", version));
        assert_eq!(head.header("content-length"), Some(body.len().to_string().as_str()));
    }
    let listing = list_versions(&client, "history", &[]);
    assert_eq!(
        entries(&listing),
        [
            ("Version".into(), "doc".into(), v3.clone(), true),
            ("Version".into(), "doc".into(), v2.clone(), false),
            ("Version".into(), "doc".into(), v1.clone(), false),
        ],
        "newest first"
    );

    // A DELETE without a version id adds a delete marker: the key looks gone.
    let deleted = client.send(&Request::new("DELETE", "history", "doc"));
    deleted.assert_status(204);
    assert_eq!(deleted.header("x-amz-delete-marker"), Some("true"));
    let marker = deleted.header("x-amz-version-id").expect("the marker's version").to_string();
    let gone = get(&client, "history", "doc");
    gone.assert_error(404, "NoSuchKey");
    assert_eq!(gone.header("x-amz-delete-marker"), Some("true"));
    assert_eq!(gone.header("x-amz-version-id"), Some(marker.as_str()));
    let head = client.send(&Request::new("HEAD", "history", "doc"));
    head.assert_status(404);
    assert_eq!(head.header("x-amz-delete-marker"), Some("true"));
    let at_marker = get_version(&client, "history", "doc", &marker);
    at_marker.assert_error(405, "MethodNotAllowed");
    assert_eq!(at_marker.header("x-amz-delete-marker"), Some("true"));
    assert!(at_marker.header("last-modified").is_some());
    assert_eq!(get_version(&client, "history", "doc", &v2).body, b"second", "older versions stay readable");
    let listed = client.send(&Request::new("GET", "history", "").query("list-type", "2"));
    assert_eq!(listed.xml("KeyCount").as_deref(), Some("0"), "a deleted key is not listed");
    let listing = entries(&list_versions(&client, "history", &[]));
    assert_eq!(listing[0], ("DeleteMarker".into(), "doc".into(), marker.clone(), true));
    assert_eq!(listing.len(), 4);

    // Deleting the marker brings the object back.
    let undeleted = client.send(&Request::new("DELETE", "history", "doc").query("versionId", &marker));
    undeleted.assert_status(204);
    assert_eq!(undeleted.header("x-amz-delete-marker"), Some("true"));
    assert_eq!(undeleted.header("x-amz-version-id"), Some(marker.as_str()));
    assert_eq!(get(&client, "history", "doc").body, b"third");

    // Deleting the current version makes the one before it current.
    client.send(&Request::new("DELETE", "history", "doc").query("versionId", &v3)).assert_status(204);
    assert_eq!(get(&client, "history", "doc").body, b"second");
    get_version(&client, "history", "doc", &v3).assert_error(404, "NoSuchVersion");
    // A noncurrent one goes without touching the current one.
    client.send(&Request::new("DELETE", "history", "doc").query("versionId", &v1)).assert_status(204);
    assert_eq!(get(&client, "history", "doc").body, b"second");
    assert_eq!(entries(&list_versions(&client, "history", &[])).len(), 1);

    // Version ids are checked.
    get_version(&client, "history", "doc", "not-a-version").assert_error(400, "InvalidArgument");
    get_version(&client, "history", "doc", "").assert_error(400, "InvalidArgument");
    client
        .send(&Request::new("DELETE", "history", "doc").query("versionId", "nonsense"))
        .assert_error(400, "InvalidArgument");

    // A bucket with versions or markers is not empty.
    client.send(&Request::new("DELETE", "history", "doc")).assert_status(204);
    client.send(&Request::new("DELETE", "history", "")).assert_error(409, "BucketNotEmpty");
    for (_, key, version, _) in entries(&list_versions(&client, "history", &[])) {
        client.send(&Request::new("DELETE", "history", &key).query("versionId", &version)).assert_status(204);
    }
    client.send(&Request::new("DELETE", "history", "")).assert_status(204);
}

#[test]
fn the_null_version_in_versioned_and_suspended_buckets() {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "nulls");
    let before = put(&client, "nulls", "k", b"from before");
    assert_eq!(before.header("x-amz-version-id"), None, "an unversioned bucket names no versions");
    set_versioning(&client, "nulls", "Enabled").assert_status(200);
    let v1 = put_version(&client, "nulls", "k", b"versioned");
    let listing = entries(&list_versions(&client, "nulls", &[]));
    assert_eq!(
        listing,
        [("Version".into(), "k".into(), v1.clone(), true), ("Version".into(), "k".into(), "null".into(), false)]
    );
    let null = get_version(&client, "nulls", "k", "null");
    assert_eq!(null.body, b"from before");
    assert_eq!(null.header("x-amz-version-id"), Some("null"));

    // Suspended: a write is the null version again, replacing the old one.
    set_versioning(&client, "nulls", "Suspended").assert_status(200);
    let state = client.send(&Request::new("GET", "nulls", "").query("versioning", ""));
    assert_eq!(state.xml("Status").as_deref(), Some("Suspended"));
    put(&client, "nulls", "k", b"suspended write").assert_status(200);
    let listing = entries(&list_versions(&client, "nulls", &[]));
    assert_eq!(
        listing,
        [("Version".into(), "k".into(), "null".into(), true), ("Version".into(), "k".into(), v1.clone(), false)],
        "one null version, newest"
    );
    assert_eq!(get_version(&client, "nulls", "k", "null").body, b"suspended write");
    // A delete adds a null delete marker, which replaces the null version.
    let deleted = client.send(&Request::new("DELETE", "nulls", "k"));
    assert_eq!(deleted.header("x-amz-delete-marker"), Some("true"));
    assert_eq!(deleted.header("x-amz-version-id"), Some("null"));
    let listing = entries(&list_versions(&client, "nulls", &[]));
    assert_eq!(
        listing,
        [("DeleteMarker".into(), "k".into(), "null".into(), true), ("Version".into(), "k".into(), v1.clone(), false)]
    );
    assert_eq!(get_version(&client, "nulls", "k", &v1).body, b"versioned");
    // A bucket never goes back to unversioned; the status is checked.
    set_versioning(&client, "nulls", "Disabled").assert_error(400, "MalformedXML");
}

#[test]
fn list_object_versions_pages_and_prefixes() {
    let server = TestServer::start();
    let client = server.client();
    versioned_bucket(&client, "pages");
    let mut expected = Vec::new();
    for key in ["a", "dir/x", "dir/y", "z"] {
        let mut versions = Vec::new();
        for round in 0..3 {
            versions.push(put_version(&client, "pages", key, format!("{key} {round}").as_bytes()));
        }
        if key == "z" {
            let marker = client.send(&Request::new("DELETE", "pages", key));
            versions.push(marker.header("x-amz-version-id").unwrap().to_string());
        }
        for (at, version) in versions.iter().rev().enumerate() {
            let element = if key == "z" && at == 0 { "DeleteMarker" } else { "Version" };
            expected.push((element.to_string(), key.to_string(), version.clone(), at == 0));
        }
    }
    let whole = list_versions(&client, "pages", &[]);
    assert_eq!(entries(&whole), expected);
    assert_eq!(whole.xml("IsTruncated").as_deref(), Some("false"));

    // Page by page, one or five at a time: the same entries, in order.
    for page_size in ["1", "5"] {
        let mut walked = Vec::new();
        let (mut key_marker, mut version_marker) = (String::new(), String::new());
        for _ in 0..20 {
            let page = list_versions(
                &client,
                "pages",
                &[("max-keys", page_size), ("key-marker", &key_marker), ("version-id-marker", &version_marker)],
            );
            walked.extend(entries(&page));
            if page.xml("IsTruncated").as_deref() != Some("true") {
                break;
            }
            key_marker = page.xml("NextKeyMarker").unwrap();
            version_marker = page.xml("NextVersionIdMarker").unwrap();
        }
        assert_eq!(walked, expected, "pages of {page_size}");
    }
    // A key marker alone starts after every version of that key.
    let after = entries(&list_versions(&client, "pages", &[("key-marker", "dir/x")]));
    assert_eq!(after, expected[6..]);

    // A delimiter rolls keys up into common prefixes, once each.
    let rolled = list_versions(&client, "pages", &[("delimiter", "/")]);
    assert_eq!(rolled.xml_all("Prefix"), ["", "dir/"]);
    assert!(entries(&rolled).iter().all(|(_, key, _, _)| !key.starts_with("dir/")));
    assert_eq!(entries(&rolled).len(), 7);
    let prefixed = list_versions(&client, "pages", &[("prefix", "dir/"), ("max-keys", "2")]);
    assert_eq!(entries(&prefixed), expected[3..5]);
    assert_eq!(prefixed.xml("NextKeyMarker").as_deref(), Some("dir/x"));

    // encoding-type=url encodes keys (and prefixes) in the answer.
    put_version(&client, "pages", "with space/é", b"x");
    let encoded = list_versions(&client, "pages", &[("prefix", "with"), ("encoding-type", "url")]);
    assert_eq!(encoded.xml("EncodingType").as_deref(), Some("url"));
    assert_eq!(encoded.xml_all("Key"), ["with%20space/%C3%A9"]);

    // A version marker needs a key marker.
    client
        .send(&Request::new("GET", "pages", "").query("versions", "").query("version-id-marker", &expected[0].2))
        .assert_error(400, "InvalidArgument");
}

#[test]
fn copies_and_multi_deletes_by_version() {
    let server = TestServer::start();
    let client = server.client();
    versioned_bucket(&client, "copies");
    let old = put_version(&client, "copies", "src", b"old bytes");
    put_version(&client, "copies", "src", b"new bytes");
    let copied = client.send(
        &Request::new("PUT", "copies", "dst").header("x-amz-copy-source", &format!("/copies/src?versionId={old}")),
    );
    copied.assert_status(200);
    assert_eq!(copied.header("x-amz-copy-source-version-id"), Some(old.as_str()));
    let dst_version = copied.header("x-amz-version-id").expect("the copy is a new version").to_string();
    assert_eq!(get(&client, "copies", "dst").body, b"old bytes");
    // Copying an old version over its own key restores it as the newest.
    client
        .send(
            &Request::new("PUT", "copies", "src").header("x-amz-copy-source", &format!("/copies/src?versionId={old}")),
        )
        .assert_status(200);
    assert_eq!(get(&client, "copies", "src").body, b"old bytes");
    assert_eq!(entries(&list_versions(&client, "copies", &[("prefix", "src")])).len(), 3);
    // UploadPartCopy from a version.
    let created = client.send(&Request::new("POST", "copies", "assembled").query("uploads", ""));
    let upload_id = created.xml("UploadId").unwrap();
    let part = client.send(
        &Request::new("PUT", "copies", "assembled")
            .query("partNumber", "1")
            .query("uploadId", &upload_id)
            .header("x-amz-copy-source", &format!("/copies/src?versionId={old}")),
    );
    part.assert_status(200);
    assert_eq!(part.header("x-amz-copy-source-version-id"), Some(old.as_str()));
    let etag = part.xml("ETag").unwrap();
    client
        .send(
            &Request::new("POST", "copies", "assembled")
                .query("uploadId", &upload_id)
                .body(complete_document(&[(1, &etag)])),
        )
        .assert_status(200);
    assert_eq!(get(&client, "copies", "assembled").body, b"old bytes");

    // DeleteObjects: one version by id, one key without (a marker).
    let document = format!(
        "<Delete><Object><Key>dst</Key><VersionId>{dst_version}</VersionId></Object><Object><Key>src</Key></Object></Delete>"
    );
    let answer = client.send(
        &Request::new("POST", "copies", "")
            .query("delete", "")
            .header("content-md5", &md5_base64(document.as_bytes()))
            .body(document),
    );
    answer.assert_status(200);
    let text = answer.text();
    assert!(text.contains(&format!("<Key>dst</Key><VersionId>{dst_version}</VersionId></Deleted>")), "{text}");
    assert!(text.contains("<Key>src</Key><DeleteMarker>true</DeleteMarker><DeleteMarkerVersionId>"), "{text}");
    get(&client, "copies", "dst").assert_error(404, "NoSuchKey");
    get(&client, "copies", "src").assert_error(404, "NoSuchKey");
    assert_eq!(get_version(&client, "copies", "src", &old).body, b"old bytes");
}

/// `rm -rf index` then `larder repair`: versions, delete markers, their
/// order, the null version and each bucket's versioning state come back
/// from the blobs and marker files alone; new writes sort after them.
#[test]
fn repair_rebuilds_versions_and_delete_markers() {
    let dir = unique_dir("repair-versions");
    let (child, addr) = spawn_server(&dir);
    let client = client_of(addr);
    create_bucket(&client, "kept");
    put(&client, "kept", "doc", b"null version").assert_status(200);
    set_versioning(&client, "kept", "Enabled").assert_status(200);
    put_version(&client, "kept", "doc", b"one");
    put_version(&client, "kept", "doc", b"two");
    client.send(&Request::new("DELETE", "kept", "doc")).assert_status(204);
    put_version(&client, "kept", "other", b"other");
    create_bucket(&client, "paused");
    set_versioning(&client, "paused", "Suspended").assert_status(200);
    let before = list_versions(&client, "kept", &[]).text();
    stop(child, libc::SIGTERM);

    std::fs::remove_dir_all(dir.join("index")).unwrap();
    let (ok, report) = repair(&dir, &[]);
    assert!(ok, "{report}");
    let (clean, report) = repair(&dir, &["--check"]);
    assert!(clean, "after a repair: {report}");

    let (child, addr) = spawn_server(&dir);
    let client = client_of(addr);
    assert_eq!(list_versions(&client, "kept", &[]).text(), before, "the same versions, markers and order");
    get(&client, "kept", "doc").assert_error(404, "NoSuchKey");
    assert_eq!(get_version(&client, "kept", "doc", "null").body, b"null version");
    let state = client.send(&Request::new("GET", "kept", "").query("versioning", ""));
    assert_eq!(state.xml("Status").as_deref(), Some("Enabled"));
    let state = client.send(&Request::new("GET", "paused", "").query("versioning", ""));
    assert_eq!(state.xml("Status").as_deref(), Some("Suspended"));
    // A write after the rebuild is the newest version, not an old one.
    let newest = put_version(&client, "kept", "doc", b"three");
    let listing = entries(&list_versions(&client, "kept", &[("prefix", "doc")]));
    assert_eq!(listing[0], ("Version".into(), "doc".into(), newest, true));
    assert_eq!(get(&client, "kept", "doc").body, b"three");
    stop(child, libc::SIGTERM);
    let _ = std::fs::remove_dir_all(&dir);
}

fn repair(dir: &Path, args: &[&str]) -> (bool, String) {
    let output = larder_command().arg("repair").args(args).arg("--data-dir").arg(dir).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
    )
}

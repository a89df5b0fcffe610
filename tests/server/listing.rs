//! ListObjectsV2, ListObjects and ListObjectVersions.

use crate::harness::*;

fn setup(keys: &[&str]) -> (TestServer, Client) {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "list");
    for key in keys {
        put(&client, "list", key, key.as_bytes());
    }
    (server, client)
}

fn list_v2(client: &Client, params: &[(&str, &str)]) -> Response {
    let mut request = Request::new("GET", "list", "").query("list-type", "2");
    for (name, value) in params {
        request = request.query(name, value);
    }
    let response = client.send(&request);
    response.assert_status(200);
    response
}

const TREE: &[&str] = &["a/1", "a/2", "a/b/3", "b/1", "c", "d/e/f", "d/g", "z z/1"];

#[test]
fn delimiter_and_prefix() {
    let (_server, client) = setup(TREE);
    let response = list_v2(&client, &[("delimiter", "/")]);
    assert_eq!(response.xml_all("Key"), ["c"]);
    assert_eq!(response.xml_all("Prefix")[1..], ["a/", "b/", "d/", "z z/"]);
    assert_eq!(response.xml("KeyCount").as_deref(), Some("5"));
    let response = list_v2(&client, &[("delimiter", "/"), ("prefix", "a/")]);
    assert_eq!(response.xml_all("Key"), ["a/1", "a/2"]);
    assert_eq!(response.xml_all("Prefix"), ["a/", "a/b/"]);
    let response = list_v2(&client, &[("prefix", "d/")]);
    assert_eq!(response.xml_all("Key"), ["d/e/f", "d/g"]);
    assert!(response.text().contains("<StorageClass>STANDARD</StorageClass>"));
    assert!(!response.text().contains("<Owner>"), "v2 lists owners only with fetch-owner");
    assert!(list_v2(&client, &[("fetch-owner", "true")]).text().contains("<Owner>"));
}

#[test]
fn v2_pages_through_keys_and_prefixes() {
    let keys: Vec<String> =
        (0..60).map(|i| if i % 3 == 0 { format!("dir{i:02}/x") } else { format!("key{i:02}") }).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let (_server, client) = setup(&refs);
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = vec![("delimiter", "/"), ("max-keys", "7")];
        if let Some(token) = &token {
            params.push(("continuation-token", token.as_str()));
        }
        let response = list_v2(&client, &params);
        pages += 1;
        let count: usize = response.xml("KeyCount").unwrap().parse().unwrap();
        let mut page: Vec<String> = response.xml_all("Key");
        page.extend(response.xml_all("Prefix").into_iter().filter(|p| !p.is_empty()));
        assert_eq!(page.len(), count);
        seen.extend(page);
        if response.xml("IsTruncated").as_deref() == Some("true") {
            token = response.xml("NextContinuationToken");
            assert!(token.is_some());
        } else {
            break;
        }
    }
    seen.sort();
    let mut expected: Vec<String> =
        keys.iter().map(|k| if k.starts_with("dir") { k.replace("x", "") } else { k.clone() }).collect();
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(pages, 9);
}

#[test]
fn v1_markers_and_start_after() {
    let (_server, client) = setup(TREE);
    let response = client.send(&Request::new("GET", "list", "").query("max-keys", "2").query("delimiter", "/"));
    response.assert_status(200);
    assert_eq!(response.xml("IsTruncated").as_deref(), Some("true"));
    assert_eq!(response.xml("Marker").as_deref(), Some(""));
    assert_eq!(response.xml("NextMarker").as_deref(), Some("b/"));
    assert!(response.text().contains("<Owner>") || response.xml_all("Key").is_empty());
    let response = client.send(&Request::new("GET", "list", "").query("marker", "b/").query("delimiter", "/"));
    assert_eq!(response.xml_all("Key"), ["c"]);
    assert_eq!(response.xml_all("Prefix")[1..], ["d/", "z z/"]);
    let response = client.send(&Request::new("GET", "list", "").query("marker", "c"));
    assert_eq!(response.xml_all("Key"), ["d/e/f", "d/g", "z z/1"]);
    assert_eq!(response.xml("NextMarker"), None);
    let response = list_v2(&client, &[("start-after", "d/e/f")]);
    assert_eq!(response.xml_all("Key"), ["d/g", "z z/1"]);
    assert_eq!(response.xml("StartAfter").as_deref(), Some("d/e/f"));
}

#[test]
fn max_keys_rules() {
    let (_server, client) = setup(TREE);
    let response = list_v2(&client, &[("max-keys", "0")]);
    assert_eq!(response.xml("KeyCount").as_deref(), Some("0"));
    assert_eq!(response.xml("IsTruncated").as_deref(), Some("false"));
    let response = list_v2(&client, &[("max-keys", "100000")]);
    assert_eq!(response.xml("MaxKeys").as_deref(), Some("1000"));
    for bad in ["blah", "-1"] {
        client
            .send(&Request::new("GET", "list", "").query("list-type", "2").query("max-keys", bad))
            .assert_error(400, "InvalidArgument");
    }
    client
        .send(&Request::new("GET", "list", "").query("list-type", "2").query("continuation-token", "!!!"))
        .assert_error(400, "InvalidArgument");
    client.send(&Request::new("GET", "list", "").query("encoding-type", "base64")).assert_error(400, "InvalidArgument");
}

#[test]
fn url_encoding_type() {
    let (_server, client) = setup(&["a b/c+d", "é/x"]);
    let response = list_v2(&client, &[("encoding-type", "url"), ("delimiter", "/")]);
    assert_eq!(response.xml("EncodingType").as_deref(), Some("url"));
    assert_eq!(response.xml_all("Prefix")[1..], ["a%20b/", "%C3%A9/"]);
    let response = list_v2(&client, &[("encoding-type", "url")]);
    assert_eq!(response.xml_all("Key"), ["a%20b/c%2Bd", "%C3%A9/x"]);
}

#[test]
fn object_versions_are_null_versions() {
    let (_server, client) = setup(&["x", "y"]);
    let response = client.send(&Request::new("GET", "list", "").query("versions", ""));
    response.assert_status(200);
    assert!(response.text().contains("<ListVersionsResult"));
    assert_eq!(response.xml_all("Key"), ["x", "y"]);
    assert_eq!(response.xml_all("VersionId"), ["null", "null"]);
    assert_eq!(response.xml_all("IsLatest"), ["true", "true"]);
    client.send(&Request::new("GET", "nolist", "").query("versions", "")).assert_error(404, "NoSuchBucket");
}

//! Bucket operations.

use crate::harness::*;

#[test]
fn create_list_head_locate_delete() {
    let server = TestServer::start();
    let client = server.client();
    let response = client.send(&Request::new("PUT", "alpha", "").header("x-amz-acl", "private"));
    response.assert_status(200);
    assert_eq!(response.header("location"), Some("/alpha"));
    let body = "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>";
    client.send(&Request::new("PUT", "beta.example", "").body(body)).assert_status(200);

    let list = client.send(&Request::new("GET", "", ""));
    list.assert_status(200);
    assert_eq!(list.xml_all("Name"), ["alpha", "beta.example"]);
    assert_eq!(list.xml("ID").map(|id| id.len()), Some(64));
    assert!(list.xml("CreationDate").unwrap().ends_with(".000Z"));

    let head = client.send(&Request::new("HEAD", "alpha", ""));
    head.assert_status(200);
    assert_eq!(head.header("x-amz-bucket-region"), Some("us-east-1"));
    let missing = client.send(&Request::new("HEAD", "gamma", ""));
    assert_eq!((missing.status, missing.body.len()), (404, 0));

    let location = client.send(&Request::new("GET", "alpha", "").query("location", ""));
    location.assert_status(200);
    assert!(location
        .text()
        .contains("<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></LocationConstraint>"));
    let versioning = client.send(&Request::new("GET", "alpha", "").query("versioning", ""));
    versioning.assert_status(200);
    assert!(versioning.text().contains("VersioningConfiguration"));
    assert!(!versioning.text().contains("<Status>"));

    put(&client, "alpha", "k", b"v");
    let response = client.send(&Request::new("DELETE", "alpha", ""));
    response.assert_error(409, "BucketNotEmpty");
    client.send(&Request::new("DELETE", "alpha", "k")).assert_status(204);
    client.send(&Request::new("DELETE", "alpha", "")).assert_status(204);
    let response = client.send(&Request::new("DELETE", "alpha", ""));
    response.assert_error(404, "NoSuchBucket");
    assert_eq!(response.xml("BucketName").as_deref(), Some("alpha"));
    client.send(&Request::new("GET", "alpha", "")).assert_error(404, "NoSuchBucket");
    client.send(&Request::new("PUT", "alpha", "k").body("v")).assert_error(404, "NoSuchBucket");
    client.send(&Request::new("GET", "alpha", "k")).assert_error(404, "NoSuchBucket");
}

#[test]
fn create_errors() {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "taken");
    client.send(&Request::new("PUT", "taken", "")).assert_error(409, "BucketAlreadyOwnedByYou");
    for bad in ["ab", "UPPER", "under_score", "-dash", "dash-", "a..b", "a.-b", "a-.b", "10.0.0.1", "xn--punycode"] {
        let response = client.send(&Request::new("PUT", bad, ""));
        response.assert_error(400, "InvalidBucketName");
    }
    let long = "a".repeat(64);
    client.send(&Request::new("PUT", &long, "")).assert_error(400, "InvalidBucketName");
    client
        .send(&Request::new("PUT", "xmlbad", "").body("<CreateBucketConfiguration>"))
        .assert_error(400, "MalformedXML");
    let other_region =
        "<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>";
    client
        .send(&Request::new("PUT", "elsewhere", "").body(other_region))
        .assert_error(400, "IllegalLocationConstraintException");
    let list = client.send(&Request::new("GET", "", ""));
    assert_eq!(list.xml_all("Name"), ["taken"]);
}

#[test]
fn a_configured_region_is_reported() {
    let server = TestServer::start_with(|config| config.region = "eu-central-1".into());
    let client = server.client();
    create_bucket(&client, "regional");
    let location = client.send(&Request::new("GET", "regional", "").query("location", ""));
    assert!(location.text().contains(">eu-central-1</LocationConstraint>"));
}

#[test]
fn unconfigured_subresources_and_acls_answer_as_s3_does() {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "probe");
    put(&client, "probe", "k", b"v");
    for (sub, code) in [
        ("lifecycle", "NoSuchLifecycleConfiguration"),
        ("encryption", "ServerSideEncryptionConfigurationNotFoundError"),
        ("tagging", "NoSuchTagSet"),
        ("website", "NoSuchWebsiteConfiguration"),
        ("object-lock", "ObjectLockConfigurationNotFoundError"),
    ] {
        client.send(&Request::new("GET", "probe", "").query(sub, "")).assert_error(404, code);
    }
    let logging = client.send(&Request::new("GET", "probe", "").query("logging", ""));
    logging.assert_status(200);
    assert!(logging.text().contains("<BucketLoggingStatus"));
    client.send(&Request::new("GET", "nothere", "").query("lifecycle", "")).assert_error(404, "NoSuchBucket");

    for key in ["", "k"] {
        let acl = client.send(&Request::new("GET", "probe", key).query("acl", ""));
        acl.assert_status(200);
        assert_eq!(acl.xml("Permission").as_deref(), Some("FULL_CONTROL"));
        client
            .send(&Request::new("PUT", "probe", key).query("acl", "").header("x-amz-acl", "private"))
            .assert_status(200);
        client
            .send(&Request::new("PUT", "probe", key).query("acl", "").header("x-amz-acl", "public-read"))
            .assert_error(501, "NotImplemented");
    }
    let tags = client.send(&Request::new("GET", "probe", "k").query("tagging", ""));
    tags.assert_status(200);
    assert!(tags.text().contains("<TagSet></TagSet>"));
    client.send(&Request::new("GET", "probe", "missing").query("tagging", "")).assert_error(404, "NoSuchKey");
}

/// ListBuckets pages as S3 has since 2024: `max-buckets`, an opaque
/// `continuation-token`, `prefix`; without them, every bucket.
#[test]
fn list_buckets_pages_with_prefix_and_continuation() {
    let server = TestServer::start();
    let client = server.client();
    for name in ["backup-a", "backup-b", "backup-c", "media", "backup-d"] {
        create_bucket(&client, name);
    }
    let all = client.send(&Request::new("GET", "", ""));
    all.assert_status(200);
    assert_eq!(all.xml_all("Name"), ["backup-a", "backup-b", "backup-c", "backup-d", "media"]);
    assert_eq!(all.xml("ContinuationToken"), None);

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut request = Request::new("GET", "", "").query("max-buckets", "2").query("prefix", "backup-");
        if let Some(token) = &token {
            request = request.query("continuation-token", token);
        }
        let page = client.send(&request);
        page.assert_status(200);
        assert_eq!(page.xml("Prefix").as_deref(), Some("backup-"));
        let names = page.xml_all("Name");
        assert!(names.len() <= 2, "{names:?}");
        seen.extend(names);
        token = page.xml("ContinuationToken");
        if token.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["backup-a", "backup-b", "backup-c", "backup-d"]);

    for bad in ["0", "10001", "many"] {
        client.send(&Request::new("GET", "", "").query("max-buckets", bad)).assert_error(400, "InvalidArgument");
    }
    client.send(&Request::new("GET", "", "").query("continuation-token", "%%%")).assert_error(400, "InvalidArgument");
}

/// A bucket that does not exist is `NoSuchBucket` (404) to anyone, as in
/// S3; an existing bucket's refusals stay `AccessDenied`.
#[test]
fn a_missing_bucket_is_no_such_bucket_to_anyone() {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "private");
    let stranger = create_key(&client, serde_json::json!({"name": "stranger", "grants": []}));
    for anonymous in [true, false] {
        let as_who =
            |request: Request| if anonymous { client.send(&request.auth(Auth::None)) } else { stranger.send(&request) };
        for (method, key) in [("GET", ""), ("GET", "some/key"), ("PUT", "some/key"), ("DELETE", "some/key")] {
            let answer = as_who(Request::new(method, "no-such-bucket", key));
            answer.assert_error(404, "NoSuchBucket");
            assert_eq!(answer.xml("BucketName").as_deref(), Some("no-such-bucket"));
            as_who(Request::new(method, "private", key)).assert_error(403, "AccessDenied");
        }
        as_who(Request::new("HEAD", "no-such-bucket", "k")).assert_status(404);
    }
}

//! Bucket policies: public buckets, source-address rules, Deny over
//! Allow, grants through policies, and every refusal of the unsupported.

use crate::harness::*;

fn put_policy(root: &Client, bucket: &str, policy: serde_json::Value) -> Response {
    root.send(&Request::new("PUT", bucket, "").query("policy", "").body(policy.to_string()))
}

fn setup() -> (TestServer, Client) {
    let server = TestServer::start_with(|config| config.trusted_proxies = vec!["127.0.0.9".parse().unwrap()]);
    let root = server.client();
    create_bucket(&root, "site");
    put(&root, "site", "index.html", b"<h1>hello</h1>");
    (server, root)
}

#[test]
fn a_public_bucket_through_a_policy() {
    let (_server, root) = setup();
    let anonymous = Request::new("GET", "site", "index.html").auth(Auth::None);
    root.send(&anonymous).assert_error(403, "AccessDenied");
    put_policy(&root, "site", serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::site/*"}]
    }))
    .assert_status(204);
    let response = root.send(&anonymous);
    response.assert_status(200);
    assert_eq!(response.body, b"<h1>hello</h1>");
    root.send(&Request::new("HEAD", "site", "index.html").auth(Auth::None)).assert_status(200);
    // Only signed requests may rewrite answer headers (no serving it as HTML).
    root.send(&Request::new("GET", "site", "index.html").query("response-content-type", "text/html").auth(Auth::None))
        .assert_error(400, "InvalidRequest");
    root.send(&Request::new("PUT", "site", "defaced.html").body("x").auth(Auth::None))
        .assert_error(403, "AccessDenied");
    root.send(&Request::new("DELETE", "site", "index.html").auth(Auth::None)).assert_error(403, "AccessDenied");
    let list = Request::new("GET", "site", "").query("list-type", "2").auth(Auth::None);
    root.send(&list).assert_error(403, "AccessDenied");
    root.send(&Request::new("GET", "", "").auth(Auth::None)).assert_error(403, "AccessDenied");

    put_policy(&root, "site", serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::site", "arn:aws:s3:::site/*"]}
        ]
    }))
    .assert_status(204);
    let listing = root.send(&list);
    listing.assert_status(200);
    assert_eq!(listing.xml_all("Key"), ["index.html"]);

    let stored = root.send(&Request::new("GET", "site", "").query("policy", ""));
    stored.assert_status(200);
    assert!(stored.text().contains("s3:ListBucket"));
    root.send(&Request::new("DELETE", "site", "").query("policy", "")).assert_status(204);
    root.send(&anonymous).assert_error(403, "AccessDenied");
    root.send(&Request::new("GET", "site", "").query("policy", "")).assert_error(404, "NoSuchBucketPolicy");
}

/// The statement from S3's documentation that limits presigned URLs to a
/// network, as written there.
#[test]
fn deny_outside_a_network_applies_to_presigned_urls() {
    let (server, root) = setup();
    let user = create_key(&root, serde_json::json!({"name": "phone", "grants": ["site:read,list"]}));
    put_policy(
        &root,
        "site",
        serde_json::json!({
            "Version": "2012-10-17",
            "Id": "S3PolicyId1",
            "Statement": [{
                "Sid": "IPAllow",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "s3:*",
                "Resource": ["arn:aws:s3:::site", "arn:aws:s3:::site/*"],
                "Condition": {
                "NotIpAddressIfExists": {"aws:SourceIp": ["127.0.0.2/32", "127.0.0.9/32"]},
                "BoolIfExists": {"aws:ViaAWSService": "false"}
            }
            }]
        }),
    )
    .assert_status(204);
    let url = user.encode(&Request::new("GET", "site", "index.html").auth(Auth::Presigned(600)));
    send_raw_from(Some("127.0.0.2".parse().unwrap()), server.addr, &url, false).assert_status(200);
    send_raw_from(Some("127.0.0.3".parse().unwrap()), server.addr, &url, false).assert_error(403, "AccessDenied");
    get(&user.sending_from("127.0.0.3"), "site", "index.html").assert_error(403, "AccessDenied");
    // The owner is denied too, except for mending the policy itself.
    get(&root.sending_from("127.0.0.3"), "site", "index.html").assert_error(403, "AccessDenied");
    root.sending_from("127.0.0.3").send(&Request::new("DELETE", "site", "").query("policy", "")).assert_status(204);
    get(&user.sending_from("127.0.0.3"), "site", "index.html").assert_status(200);
}

#[test]
fn deny_wins_and_policies_can_grant() {
    let (_server, root) = setup();
    create_bucket(&root, "inbox");
    let cleaner = create_key(&root, serde_json::json!({"name": "cleaner", "grants": ["site:all"]}));
    let camera = create_key(&root, serde_json::json!({"name": "camera", "grants": ["other:read"]}));
    put_policy(&root, "site", serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": {"AWS": ["arn:aws:iam::000000000000:user/cleaner"]}, "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::site/*"}]
    }))
    .assert_status(204);
    cleaner.send(&Request::new("DELETE", "site", "index.html")).assert_error(403, "AccessDenied");
    cleaner.send(&Request::new("PUT", "site", "new.html").body("x")).assert_status(200);

    camera.send(&Request::new("PUT", "inbox", "shot.jpg").body("jpg")).assert_error(403, "AccessDenied");
    put_policy(&root, "inbox", serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": camera.credentials.access_key}, "Action": "s3:PutObject", "Resource": "arn:aws:s3:::inbox/*"}]
    }))
    .assert_status(204);
    camera.send(&Request::new("PUT", "inbox", "shot.jpg").body("jpg")).assert_status(200);
    camera.send(&Request::new("GET", "inbox", "shot.jpg")).assert_error(403, "AccessDenied");
    // Only an owner may set a policy.
    put_policy(&camera, "inbox", serde_json::json!({"Statement": []})).assert_error(403, "AccessDenied");
}

#[test]
fn secure_transport_is_what_a_trusted_proxy_says() {
    let (_server, root) = setup();
    let user = create_key(&root, serde_json::json!({"name": "web", "grants": ["site:read"]}));
    put_policy(&root, "site", serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::site/*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]
    }))
    .assert_status(204);
    get(&user, "site", "index.html").assert_error(403, "AccessDenied");
    let via_tls_proxy = Request::new("GET", "site", "index.html").unsigned_header("x-forwarded-proto", "https");
    user.sending_from("127.0.0.9").send(&via_tls_proxy).assert_status(200);
    user.sending_from("127.0.0.4").send(&via_tls_proxy).assert_error(403, "AccessDenied");
}

#[test]
fn malformed_policies_name_what_is_unsupported() {
    let (_server, root) = setup();
    let statement = |extra: (&str, serde_json::Value)| {
        let mut statement = serde_json::json!({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"});
        statement[extra.0] = extra.1;
        serde_json::json!({"Version": "2012-10-17", "Statement": [statement]})
    };
    for (policy, named) in [
        (statement(("NotAction", serde_json::json!("s3:PutObject"))), "NotAction"),
        (statement(("Condition", serde_json::json!({"StringEquals": {"s3:prefix": "a"}}))), "StringEquals"),
        (statement(("Condition", serde_json::json!({"IpAddress": {"aws:UserAgent": "x"}}))), "aws:UserAgent"),
        (statement(("Resource", serde_json::json!("arn:aws:s3:::elsewhere/*"))), "elsewhere"),
        (statement(("Principal", serde_json::json!({"Federated": "x"}))), "Federated"),
    ] {
        let response = put_policy(&root, "site", policy);
        response.assert_error(400, "MalformedPolicy");
        assert!(response.text().contains(named), "{named}: {}", response.text());
    }
    root.send(&Request::new("PUT", "site", "").query("policy", "").body("{not json"))
        .assert_error(400, "MalformedPolicy");
    root.send(&Request::new("GET", "site", "").query("policy", "")).assert_error(404, "NoSuchBucketPolicy");
    let for_missing = statement(("Resource", serde_json::json!("arn:aws:s3:::missing/*")));
    put_policy(&root, "missing", for_missing).assert_error(404, "NoSuchBucket");
}

#[test]
fn missing_keys_are_only_admitted_to_those_who_may_list() {
    let (_server, root) = setup();
    let read_only = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"}]
    });
    put_policy(&root, "site", read_only).assert_status(204);
    root.send(&Request::new("GET", "site", "absent.html").auth(Auth::None)).assert_error(403, "AccessDenied");
    get(&root, "site", "absent.html").assert_error(404, "NoSuchKey");
    let reader = create_key(&root, serde_json::json!({"name": "reader", "grants": ["site:read"]}));
    get(&reader, "site", "absent.html").assert_error(403, "AccessDenied");
    let lister = create_key(&root, serde_json::json!({"name": "lister", "grants": ["site:read,list"]}));
    get(&lister, "site", "absent.html").assert_error(404, "NoSuchKey");

    // A deleted bucket takes its policy along: a new one of the same name is private.
    root.send(&Request::new("DELETE", "site", "index.html")).assert_status(204);
    root.send(&Request::new("DELETE", "site", "")).assert_status(204);
    create_bucket(&root, "site");
    put(&root, "site", "index.html", b"second life");
    root.send(&Request::new("GET", "site", "index.html").auth(Auth::None)).assert_error(403, "AccessDenied");
}

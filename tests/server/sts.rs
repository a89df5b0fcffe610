//! Temporary credentials: AssumeRole and GetSessionToken, the session
//! token on requests and presigned URLs, narrowing by session policy, and
//! expiry with the issuing key.

use larder::timefmt;

use crate::harness::*;

fn sts(client: &Client, form: &str) -> Response {
    let mut request =
        Request::new("POST", "", "").header("content-type", "application/x-www-form-urlencoded").body(form);
    request.service = Some("sts".into());
    client.send(&request)
}

fn session(client: &Client, form: &str) -> Client {
    let response = sts(client, form);
    response.assert_status(200);
    client.with_session(
        &response.xml("AccessKeyId").unwrap(),
        &response.xml("SecretAccessKey").unwrap(),
        &response.xml("SessionToken").unwrap(),
    )
}

fn setup() -> (TestServer, Client) {
    let server = TestServer::start();
    let root = server.client();
    create_bucket(&root, "temp");
    put(&root, "temp", "a/doc", b"first");
    put(&root, "temp", "b/doc", b"second");
    (server, root)
}

#[test]
fn temporary_credentials_work_with_their_token_only() {
    let (server, root) = setup();
    let user = create_key(&root, serde_json::json!({"name": "worker", "grants": ["temp:read,write,list"]}));
    let temp = session(&user, "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900");
    assert!(temp.credentials.access_key.starts_with("LT"));
    assert_eq!(get(&temp, "temp", "a/doc").body, b"first");
    temp.send(&Request::new("PUT", "temp", "a/new").body("x")).assert_status(200);
    temp.send(&Request::new("DELETE", "temp", "a/doc")).assert_error(403, "AccessDenied");
    let url = temp.encode(&Request::new("GET", "temp", "b/doc").auth(Auth::Presigned(3600)));
    assert!(String::from_utf8_lossy(&url).contains("X-Amz-Security-Token="));
    send_raw(server.addr, &url, false).assert_status(200);

    let without_token = Client { token: None, ..temp.clone() };
    get(&without_token, "temp", "a/doc").assert_error(403, "InvalidAccessKeyId");
    let wrong_token = Client { token: Some("bm90IHRoZSB0b2tlbg==".into()), ..temp.clone() };
    get(&wrong_token, "temp", "a/doc").assert_error(400, "InvalidToken");
    sts(&temp, "Action=GetSessionToken&Version=2011-06-15").assert_error(403, "AccessDenied");

    // Revoking the issuing key ends its sessions and their URLs.
    root.send(&Request::new("DELETE", "_larder", &format!("admin/keys/{}", user.credentials.access_key)))
        .assert_status(204);
    send_raw(server.addr, &url, false).assert_error(403, "InvalidAccessKeyId");
}

#[test]
fn assume_role_with_a_narrowing_policy() {
    let (_server, root) = setup();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::temp/a/*"}]
    });
    let form = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A000000000000%3Arole%2Freader&RoleSessionName=job-1&DurationSeconds=900&Policy={}",
        larder::sigv4::uri_encode(policy.to_string().as_bytes(), false)
    );
    let response = sts(&root, &form);
    response.assert_status(200);
    assert!(response.text().contains("<AssumeRoleResponse"));
    assert_eq!(response.xml("Arn").as_deref(), Some("arn:aws:sts::000000000000:assumed-role/reader/job-1"));
    let temp = root.with_session(
        &response.xml("AccessKeyId").unwrap(),
        &response.xml("SecretAccessKey").unwrap(),
        &response.xml("SessionToken").unwrap(),
    );
    assert_eq!(get(&temp, "temp", "a/doc").body, b"first");
    get(&temp, "temp", "b/doc").assert_error(403, "AccessDenied");
    temp.send(&Request::new("PUT", "temp", "a/x").body("x")).assert_error(403, "AccessDenied");
}

#[test]
fn sts_errors_in_the_sts_shape() {
    let (_server, root) = setup();
    for (form, code) in [
        ("Action=GetSessionToken&Version=2011-06-15&DurationSeconds=899", "ValidationError"),
        ("Action=GetSessionToken&Version=2011-06-15&DurationSeconds=129601", "ValidationError"),
        ("Action=AssumeRole&Version=2011-06-15&RoleSessionName=x", "ValidationError"),
        ("Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A0%3Arole%2Fr&RoleSessionName=x&Policy=%7B%7D", "MalformedPolicyDocument"),
        ("Action=GetFederationToken&Version=2011-06-15", "InvalidAction"),
    ] {
        let response = sts(&root, form);
        assert_eq!(response.status, 400, "{form}: {}", response.text());
        assert!(response.text().contains("<ErrorResponse"), "{}", response.text());
        assert_eq!(response.code().as_deref(), Some(code), "{form}");
    }
    let stranger = root.with_credentials("LKNOSUCHKEY000000000", "nothing-secret-here0");
    let response = sts(&stranger, "Action=GetSessionToken&Version=2011-06-15");
    assert_eq!((response.status, response.code().as_deref()), (403, Some("InvalidClientTokenId")));
}

/// Temporary credentials never outlive the key that asked for them, and a
/// presigned URL made with them dies when they do, whatever its X-Amz-Expires.
#[test]
fn sessions_end_with_their_issuing_key() {
    let (server, root) = setup();
    let expires = timefmt::now() + 3;
    let user = create_key(&root, serde_json::json!({"name": "brief", "grants": ["temp:read"], "expires": expires}));
    let response = sts(&user, "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=3600");
    response.assert_status(200);
    assert_eq!(timefmt::parse_iso8601(&response.xml("Expiration").unwrap()), Some(expires));
    let temp = user.with_session(
        &response.xml("AccessKeyId").unwrap(),
        &response.xml("SecretAccessKey").unwrap(),
        &response.xml("SessionToken").unwrap(),
    );
    let url = temp.encode(&Request::new("GET", "temp", "a/doc").auth(Auth::Presigned(604_800)));
    send_raw(server.addr, &url, false).assert_status(200);
    while timefmt::now() <= expires {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    send_raw(server.addr, &url, false).assert_error(400, "ExpiredToken");
}

/// A bucket policy that denies a key denies its temporary credentials too,
/// and they see the buckets their issuer sees.
#[test]
fn sessions_cannot_dodge_a_deny_on_their_issuer() {
    let (_server, root) = setup();
    let alice = create_key(&root, serde_json::json!({"name": "alice", "grants": ["*:all"]}));
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::000000000000:user/alice"}, "Action": "s3:*", "Resource": ["arn:aws:s3:::temp", "arn:aws:s3:::temp/*"]}]
    });
    root.send(&Request::new("PUT", "temp", "").query("policy", "").body(policy.to_string())).assert_status(204);
    get(&alice, "temp", "a/doc").assert_error(403, "AccessDenied");
    let temp = session(&alice, "Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900");
    get(&temp, "temp", "a/doc").assert_error(403, "AccessDenied");
    let listing = temp.send(&Request::new("GET", "", ""));
    listing.assert_status(200);
    assert_eq!(listing.xml_all("Name"), ["temp"]);
}

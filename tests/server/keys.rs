//! Access keys: rights, source addresses, trusted proxies, revocation and
//! expiry (presigned URLs included), the admin API and `larder key`.

use larder::timefmt;

use crate::harness::*;

fn setup() -> (TestServer, Client) {
    let server = TestServer::start();
    let root = server.client();
    for bucket in ["keys", "other"] {
        create_bucket(&root, bucket);
    }
    put(&root, "keys", "doc", b"readable");
    put(&root, "other", "doc", b"private");
    (server, root)
}

#[test]
fn rights_per_bucket_and_prefix() {
    let (_server, root) = setup();
    let user = create_key(&root, serde_json::json!({"name": "camera", "grants": ["keys:read,list", "keys/up/:write"]}));
    assert_eq!(get(&user, "keys", "doc").body, b"readable");
    user.send(&Request::new("GET", "keys", "").query("list-type", "2")).assert_status(200);
    user.send(&Request::new("PUT", "keys", "up/photo.jpg").body("jpeg")).assert_status(200);
    user.send(&Request::new("PUT", "keys", "elsewhere").body("x")).assert_error(403, "AccessDenied");
    user.send(&Request::new("DELETE", "keys", "doc")).assert_error(403, "AccessDenied");
    get(&user, "other", "doc").assert_error(403, "AccessDenied");
    user.send(&Request::new("PUT", "newbucket", "")).assert_error(403, "AccessDenied");
    user.send(&Request::new("DELETE", "keys", "")).assert_error(403, "AccessDenied");
    // Copying needs read on the source as well as write on the target.
    user.send(&Request::new("PUT", "keys", "up/copy").header("x-amz-copy-source", "other/doc"))
        .assert_error(403, "AccessDenied");
    user.send(&Request::new("PUT", "keys", "up/copy").header("x-amz-copy-source", "keys/doc")).assert_status(200);
    let listing = user.send(&Request::new("GET", "", ""));
    assert_eq!(listing.xml_all("Name"), ["keys"]);
    // The admin API is for the root key only.
    user.send(&Request::new("GET", "_larder", "admin/keys")).assert_error(403, "AccessDenied");
    root.send(&Request::new("GET", "_larder", "admin/keys").auth(Auth::None)).assert_error(403, "AccessDenied");

    let deleter = create_key(&root, serde_json::json!({"name": "cleaner", "grants": ["keys/up/:delete,list"]}));
    let doc = "<Delete><Object><Key>up/photo.jpg</Key></Object><Object><Key>doc</Key></Object></Delete>";
    let response = deleter.send(
        &Request::new("POST", "keys", "")
            .query("delete", "")
            .header("content-md5", &md5_base64(doc.as_bytes()))
            .body(doc),
    );
    response.assert_status(200);
    assert_eq!(response.xml_all("Key"), ["up/photo.jpg", "doc"]);
    assert!(response.text().contains("<Error><Key>doc</Key><Code>AccessDenied</Code>"));
    get(&root, "keys", "up/photo.jpg").assert_error(404, "NoSuchKey");
    assert_eq!(get(&root, "keys", "doc").body, b"readable");
}

#[test]
fn source_addresses_and_trusted_proxies() {
    let server = TestServer::start_with(|config| config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]);
    let root = server.client();
    create_bucket(&root, "keys");
    put(&root, "keys", "doc", b"x");
    let lan = create_key(
        &root,
        serde_json::json!({"name": "lan", "grants": ["keys:read"], "source_cidrs": ["127.0.0.2/32"]}),
    );
    get(&lan.sending_from("127.0.0.2"), "keys", "doc").assert_status(200);
    get(&lan.sending_from("127.0.0.3"), "keys", "doc").assert_error(403, "AccessDenied");

    let remote = create_key(
        &root,
        serde_json::json!({"name": "remote", "grants": ["keys:read"], "source_cidrs": ["10.9.9.0/24"]}),
    );
    // Through the trusted proxy at 127.0.0.1, X-Forwarded-For is believed ...
    let via_proxy = Request::new("GET", "keys", "doc").unsigned_header("x-forwarded-for", "10.9.9.9");
    remote.sending_from("127.0.0.1").send(&via_proxy).assert_status(200);
    // ... from anywhere else it is not.
    remote.sending_from("127.0.0.4").send(&via_proxy).assert_error(403, "AccessDenied");
    remote.sending_from("127.0.0.1").send(&Request::new("GET", "keys", "doc")).assert_error(403, "AccessDenied");
}

#[test]
fn revocation_kills_presigned_urls_at_once() {
    let (server, root) = setup();
    let user = create_key(&root, serde_json::json!({"name": "share", "grants": ["keys:read"]}));
    let url = user.encode(&Request::new("GET", "keys", "doc").auth(Auth::Presigned(3600)));
    send_raw(server.addr, &url, false).assert_status(200);
    let shown = root.send(&Request::new("GET", "_larder", &format!("admin/keys/{}", user.credentials.access_key)));
    shown.assert_status(200);
    assert!(!shown.text().contains(&user.credentials.secret_key), "secrets are shown only at creation");
    root.send(&Request::new("DELETE", "_larder", &format!("admin/keys/{}", user.credentials.access_key)))
        .assert_status(204);
    send_raw(server.addr, &url, false).assert_error(403, "InvalidAccessKeyId");
    get(&user, "keys", "doc").assert_error(403, "InvalidAccessKeyId");
    root.send(&Request::new("DELETE", "_larder", &format!("admin/keys/{}", user.credentials.access_key)))
        .assert_error(404, "NoSuchAccessKey");
}

#[test]
fn expiry_kills_presigned_urls_even_when_the_url_is_longer() {
    let (server, root) = setup();
    let expires = timefmt::now() + 2;
    let user = create_key(&root, serde_json::json!({"name": "brief", "grants": ["keys:read"], "expires": expires}));
    let url = user.encode(&Request::new("GET", "keys", "doc").auth(Auth::Presigned(3600)));
    send_raw(server.addr, &url, false).assert_status(200);
    while timefmt::now() <= expires {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let response = send_raw(server.addr, &url, false);
    response.assert_error(403, "InvalidAccessKeyId");
    assert!(response.text().contains("expired"));
}

#[test]
fn keys_survive_a_restart_and_bad_requests_are_refused() {
    let (server, root) = setup();
    let user = create_key(
        &root,
        serde_json::json!({"name": "fixed", "grants": ["keys:read"], "access_key": "LKFIXEDACCESSKEY0001", "secret_key": "fixed-secret-for-automation"}),
    );
    assert_eq!(user.credentials.access_key, "LKFIXEDACCESSKEY0001");
    let again = root.send(&Request::new("POST", "_larder", "admin/keys").body(
        serde_json::json!({"name": "dup", "grants": ["keys:read"], "access_key": "LKFIXEDACCESSKEY0001", "secret_key": "another-secret-0000"}).to_string(),
    ));
    again.assert_error(409, "KeyAlreadyExists");
    for bad in [
        serde_json::json!({"name": "x", "grants": ["keys:fly"]}),
        serde_json::json!({"name": "", "grants": ["keys:read"]}),
        serde_json::json!({"name": "x", "grants": ["keys:read"], "source_cidrs": ["nonsense"]}),
        serde_json::json!({"name": "x", "grants": ["keys:read"], "expires": 1}),
    ] {
        root.send(&Request::new("POST", "_larder", "admin/keys").body(bad.to_string()))
            .assert_error(400, "InvalidArgument");
    }
    let dir = server.stop();
    let server = TestServer::start_in(dir, |_| {});
    let user = server.client().with_credentials("LKFIXEDACCESSKEY0001", "fixed-secret-for-automation");
    assert_eq!(get(&user, "keys", "doc").body, b"readable");
}

#[test]
fn the_key_command_line() {
    let (server, root) = setup();
    let larder = |args: &[&str]| {
        let mut all = vec!["key"];
        all.extend_from_slice(args);
        larder_cli(&server, &all)
    };
    let (ok, out, err) =
        larder(&["create", "phone", "--grant", "keys:read,list", "--expires", "1h", "--allow-from", "127.0.0.0/8"]);
    assert!(ok, "{err}");
    let field = |name: &str| out.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim().to_string();
    let user = root.with_credentials(&field("access key:"), &field("secret key:"));
    assert_eq!(get(&user, "keys", "doc").body, b"readable");
    let (ok, out, _) = larder(&["list"]);
    assert!(
        ok && out.contains(&user.credentials.access_key) && out.contains("phone") && out.contains("keys:read,list")
    );
    assert!(!out.contains(&user.credentials.secret_key));
    let (ok, out, _) = larder(&["show", &user.credentials.access_key]);
    assert!(ok && out.contains("allow from: 127.0.0.0/8") && out.contains("expires:"));
    let (ok, _, err) = larder(&["create", "bad", "--grant", "keys:fly"]);
    assert!(!ok && err.contains("unknown right"), "{err}");
    let url = user.encode(&Request::new("GET", "keys", "doc").auth(Auth::Presigned(3600)));
    send_raw(server.addr, &url, false).assert_status(200);
    let (ok, _, _) = larder(&["revoke", &user.credentials.access_key]);
    assert!(ok);
    get(&user, "keys", "doc").assert_error(403, "InvalidAccessKeyId");
    send_raw(server.addr, &url, false).assert_error(403, "InvalidAccessKeyId");
}

/// `larder status`, and `--json` on `status`, `key list|show` and
/// `share list`; empty lists say so.
#[test]
fn status_and_json_listings() {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "status");
    put(&client, "status", "one", b"12345");
    let (ok, out, err) = larder_cli(&server, &["status"]);
    assert!(ok, "{err}");
    for expected in [
        "larder 0.",
        "listening on",
        &server.addr.to_string(),
        "stored         1 objects",
        "clock          ok",
        "index          ok",
    ] {
        assert!(out.contains(expected), "{expected:?} not in:\n{out}");
    }
    let (ok, out, _) = larder_cli(&server, &["status", "--json"]);
    assert!(ok);
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((status["objects"].as_u64(), status["bytes"].as_u64()), (Some(1), Some(5)));
    assert_eq!(status["public_url"], format!("http://{}", server.addr));
    assert!(status["uptime_secs"].is_u64() && status["disk_free_bytes"].as_u64().unwrap() > 0);

    let (ok, out, _) = larder_cli(&server, &["key", "list"]);
    assert!(ok && out.contains("no keys yet"), "{out}");
    let (ok, out, _) = larder_cli(&server, &["share", "list"]);
    assert!(ok && out.contains("no live links"), "{out}");
    let (ok, out, _) = larder_cli(&server, &["share", "list", "--json"]);
    assert!(ok && serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap().is_empty(), "{out}");
    let (ok, _, err) = larder_cli(&server, &["key", "create", "reader", "--grant", "status:read"]);
    assert!(ok, "{err}");
    let (ok, out, _) = larder_cli(&server, &["key", "list", "--json"]);
    let keys: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert!(ok && keys.len() == 1 && keys[0]["name"] == "reader", "{out}");
    let access_key = keys[0]["access_key"].as_str().unwrap().to_string();
    let (ok, out, _) = larder_cli(&server, &["key", "show", &access_key, "--json"]);
    assert!(ok && serde_json::from_str::<serde_json::Value>(&out).unwrap()["grants"][0] == "status:read", "{out}");
}

//! Lifecycle rules against the real server, with a day shortened to two
//! seconds (`lifecycle_day_secs`): the configuration calls and S3's
//! refusals, `x-amz-expiration`, and `larder lifecycle run` expiring
//! objects, removing noncurrent versions (keeping the newest few, and any
//! that Object Lock keeps), lone delete markers and stale uploads.

use std::time::Duration;

use crate::harness::*;

const DAY: u64 = 2;

fn put_rules(client: &Client, bucket: &str, rules: &str) -> Response {
    let document = format!("<LifecycleConfiguration>{rules}</LifecycleConfiguration>");
    client.send(
        &Request::new("PUT", bucket, "")
            .query("lifecycle", "")
            .header("content-md5", &md5_base64(document.as_bytes()))
            .body(document),
    )
}

fn run(server: &TestServer) -> serde_json::Value {
    let (ok, stdout, stderr) = larder_cli(server, &["lifecycle", "run", "--json"]);
    assert!(ok, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn versions(client: &Client, bucket: &str) -> Vec<String> {
    client.send(&Request::new("GET", bucket, "").query("versions", "")).xml_all("VersionId")
}

#[test]
fn configuration_calls_and_refusals() {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "rules");
    client
        .send(&Request::new("GET", "rules", "").query("lifecycle", ""))
        .assert_error(404, "NoSuchLifecycleConfiguration");
    let rule = "<Rule><ID>tmp</ID><Filter><Prefix>tmp/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>3</Days></Expiration></Rule>";
    put_rules(&client, "rules", rule).assert_status(200);
    let got = client.send(&Request::new("GET", "rules", "").query("lifecycle", ""));
    assert_eq!(got.xml("ID").as_deref(), Some("tmp"));
    assert_eq!(got.xml("Days").as_deref(), Some("3"));
    put_rules(&client, "rules", &(rule.to_string() + rule)).assert_error(400, "InvalidArgument");
    put_rules(&client, "rules", &rule.replace("tmp</ID>", &format!("{}</ID>", "x".repeat(256))))
        .assert_error(400, "InvalidArgument");
    put_rules(&client, "rules", &rule.replace("Enabled", "Maybe")).assert_error(400, "MalformedXML");
    put_rules(&client, "rules", &rule.replace("<Days>3</Days>", "<Date>2030-01-01T10:00:00Z</Date>"))
        .assert_error(400, "InvalidArgument");
    let document = format!("<LifecycleConfiguration>{rule}</LifecycleConfiguration>");
    client
        .send(&Request::new("PUT", "rules", "").query("lifecycle", "").body(document))
        .assert_error(400, "InvalidRequest");
    client.send(&Request::new("DELETE", "rules", "").query("lifecycle", "")).assert_status(204);
    client
        .send(&Request::new("GET", "rules", "").query("lifecycle", ""))
        .assert_error(404, "NoSuchLifecycleConfiguration");
}

#[test]
fn a_run_applies_every_kind_of_rule() {
    let server = TestServer::start_with(|config| config.lifecycle_day_secs = DAY);
    let client = server.client();
    let enable = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";

    // Expiration of current objects, by prefix.
    create_bucket(&client, "plain");
    put_rules(&client, "plain", "<Rule><ID>tmp</ID><Filter><Prefix>tmp/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule><Rule><ID>uploads</ID><Filter/><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>").assert_status(200);
    put(&client, "plain", "tmp/scratch", b"x").assert_status(200);
    put(&client, "plain", "keep/me", b"y").assert_status(200);
    let expiring = client.send(&Request::new("HEAD", "plain", "tmp/scratch"));
    let header = expiring.header("x-amz-expiration").expect("x-amz-expiration").to_string();
    assert!(header.starts_with("expiry-date=\"") && header.ends_with("rule-id=\"tmp\""), "{header}");
    assert_eq!(client.send(&Request::new("HEAD", "plain", "keep/me")).header("x-amz-expiration"), None);
    client.send(&Request::new("POST", "plain", "stale").query("uploads", "")).assert_status(200);

    // Noncurrent versions: the newest noncurrent one is kept.
    create_bucket(&client, "history");
    client.send(&Request::new("PUT", "history", "").query("versioning", "").body(enable)).assert_status(200);
    put_rules(&client, "history", "<Rule><ID>old</ID><Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>1</NewerNoncurrentVersions></NoncurrentVersionExpiration><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration></Rule>").assert_status(200);
    let ids: Vec<String> = (0..4)
        .map(|n| {
            put(&client, "history", "doc", format!("v{n}").as_bytes()).header("x-amz-version-id").unwrap().to_string()
        })
        .collect();
    // A key left with only a delete marker.
    let lone = put(&client, "history", "gone", b"z").header("x-amz-version-id").unwrap().to_string();
    client.send(&Request::new("DELETE", "history", "gone")).assert_status(204);
    client.send(&Request::new("DELETE", "history", "gone").query("versionId", &lone)).assert_status(204);

    // Object Lock keeps what a rule would remove.
    client
        .send(&Request::new("PUT", "vault", "").header("x-amz-bucket-object-lock-enabled", "true"))
        .assert_status(200);
    put_rules(&client, "vault", "<Rule><ID>old</ID><Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration></Rule>").assert_status(200);
    let until = larder::timefmt::format_iso8601(larder::timefmt::now() + 3600);
    let locked = client.send(
        &Request::new("PUT", "vault", "doc")
            .header("x-amz-object-lock-mode", "COMPLIANCE")
            .header("x-amz-object-lock-retain-until-date", &until)
            .body("locked"),
    );
    let locked = locked.header("x-amz-version-id").unwrap().to_string();
    put(&client, "vault", "doc", b"newer").assert_status(200);

    // The server runs the rules every (short) day by itself; a run asked
    // for now makes sure one ran after everything was due.
    std::thread::sleep(Duration::from_secs(DAY + 1));
    let summary = run(&server);
    assert_eq!(summary["errors"], 0, "{summary}");

    get(&client, "plain", "tmp/scratch").assert_error(404, "NoSuchKey");
    assert_eq!(get(&client, "plain", "keep/me").body, b"y");
    let uploads = client.send(&Request::new("GET", "plain", "").query("uploads", ""));
    assert_eq!(uploads.xml("UploadId"), None, "the stale upload was aborted");

    let left = versions(&client, "history");
    assert!(left.contains(&ids[3]) && left.contains(&ids[2]), "{left:?}");
    assert!(!left.contains(&ids[1]) && !left.contains(&ids[0]), "{left:?}");
    assert_eq!(left.len(), 2, "the lone delete marker went too: {left:?}");
    assert_eq!(get(&client, "history", "doc").body, b"v3");

    let kept = client.send(&Request::new("GET", "vault", "doc").query("versionId", &locked));
    assert_eq!(kept.body, b"locked", "Object Lock kept the noncurrent version");
    let status = client.send(&Request::new("GET", "_larder", "admin/status"));
    let status: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert!(status["lifecycle"]["kept_by_object_lock"].as_u64().unwrap() >= 1, "{status}");
    let (ok, text, _) = larder_cli(&server, &["status"]);
    assert!(ok && text.contains("lifecycle      last run"), "{text}");

    // The last run is remembered across a restart.
    let server = TestServer::start_in(server.stop(), |config| config.lifecycle_day_secs = 3600);
    let status = server.client().send(&Request::new("GET", "_larder", "admin/status"));
    let status: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert!(status["lifecycle"]["kept_by_object_lock"].as_u64().unwrap() >= 1, "{status}");
}

/// The worker waits while the server is busy (more than a handful of open
/// connections): a run with work to do does not end before they go.
#[test]
fn a_run_waits_while_the_server_is_busy() {
    let server = TestServer::start_with(|config| config.lifecycle_day_secs = 3600);
    let client = server.client();
    create_bucket(&client, "busy");
    put_rules(&client, "busy", "<Rule><ID>all</ID><Filter/><Status>Enabled</Status><Expiration><Date>2020-01-01T00:00:00Z</Date></Expiration></Rule>").assert_status(200);
    put(&client, "busy", "old", b"x").assert_status(200);
    let held: Vec<_> = (0..12).map(|_| connect_from(None, server.addr)).collect();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        drop(held);
    });
    let started = std::time::Instant::now();
    let summary = run(&server);
    assert!(started.elapsed() >= Duration::from_millis(1500), "the run did not wait: {:?}", started.elapsed());
    assert_eq!(summary["expired"], 1, "{summary}");
    release.join().unwrap();
}

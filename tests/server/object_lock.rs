//! Object Lock against the real server: buckets made with it, default
//! retention, COMPLIANCE and GOVERNANCE retentions, legal holds, the
//! bypass right, the clock rule (a board whose clock says 1970 or 2099
//! releases nothing early), and `larder repair` keeping later changes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::harness::*;
use crate::hostile::ShiftedClock;

fn iso(unix: i64) -> String {
    larder::timefmt::format_iso8601(unix)
}

fn locked_bucket(client: &Client, bucket: &str) {
    client.send(&Request::new("PUT", bucket, "").header("x-amz-bucket-object-lock-enabled", "true")).assert_status(200);
}

/// PUTs `key` with a retention; returns its version id.
fn put_locked(client: &Client, bucket: &str, key: &str, mode: &str, until: i64) -> String {
    let answer = client.send(
        &Request::new("PUT", bucket, key)
            .header("x-amz-object-lock-mode", mode)
            .header("x-amz-object-lock-retain-until-date", &iso(until))
            .body("kept"),
    );
    answer.assert_status(200);
    answer.header("x-amz-version-id").unwrap().to_string()
}

fn delete_version(client: &Client, bucket: &str, key: &str, version: &str, bypass: bool) -> Response {
    let request = Request::new("DELETE", bucket, key).query("versionId", version);
    client.send(&if bypass { request.header("x-amz-bypass-governance-retention", "true") } else { request })
}

/// An XML body with its Content-MD5, as Object Lock calls need.
fn with_md5(request: Request, document: &str) -> Request {
    request.header("content-md5", &md5_base64(document.as_bytes())).body(document)
}

#[test]
fn compliance_governance_and_legal_holds() {
    let server = TestServer::start();
    let root = server.client();
    locked_bucket(&root, "vault");
    let state = root.send(&Request::new("GET", "vault", "").query("versioning", ""));
    assert_eq!(state.xml("Status").as_deref(), Some("Enabled"), "Object Lock turns versioning on");
    let config = root.send(&Request::new("GET", "vault", "").query("object-lock", ""));
    assert_eq!(config.xml("ObjectLockEnabled").as_deref(), Some("Enabled"));
    let suspend = "<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>";
    root.send(&Request::new("PUT", "vault", "").query("versioning", "").body(suspend))
        .assert_error(409, "InvalidBucketState");
    let now = larder::timefmt::now();

    // COMPLIANCE: nobody deletes the version, root and bypass included.
    let kept = put_locked(&root, "vault", "backup", "COMPLIANCE", now + 3600);
    let head = root.send(&Request::new("HEAD", "vault", "backup"));
    assert_eq!(head.header("x-amz-object-lock-mode"), Some("COMPLIANCE"));
    assert_eq!(head.header("x-amz-object-lock-retain-until-date"), Some(iso(now + 3600).as_str()));
    delete_version(&root, "vault", "backup", &kept, false).assert_error(403, "AccessDenied");
    delete_version(&root, "vault", "backup", &kept, true).assert_error(403, "AccessDenied");
    let document = format!("<Delete><Object><Key>backup</Key><VersionId>{kept}</VersionId></Object></Delete>");
    let multi = root.send(&with_md5(Request::new("POST", "vault", "").query("delete", ""), &document));
    assert!(multi.text().contains("<Code>AccessDenied</Code>"), "{}", multi.text());
    // A delete marker hides it, but the version stays.
    root.send(&Request::new("DELETE", "vault", "backup")).assert_status(204);
    let old = root.send(&Request::new("GET", "vault", "backup").query("versionId", &kept));
    assert_eq!(old.body, b"kept");
    // Extended, never shortened or weakened.
    let version_retention = |mode, until, bypass| {
        let document =
            format!("<Retention><Mode>{mode}</Mode><RetainUntilDate>{}</RetainUntilDate></Retention>", iso(until));
        let request = with_md5(
            Request::new("PUT", "vault", "backup").query("retention", "").query("versionId", &kept),
            &document,
        );
        root.send(&if bypass { request.header("x-amz-bypass-governance-retention", "true") } else { request })
    };
    version_retention("COMPLIANCE", now + 60, true).assert_error(403, "AccessDenied");
    version_retention("GOVERNANCE", now + 7200, true).assert_error(403, "AccessDenied");
    version_retention("COMPLIANCE", now + 7200, false).assert_status(200);
    let got = root.send(&Request::new("GET", "vault", "backup").query("retention", "").query("versionId", &kept));
    assert_eq!(got.xml("Mode").as_deref(), Some("COMPLIANCE"));
    assert_eq!(got.xml("RetainUntilDate"), Some(iso(now + 7200)));

    // GOVERNANCE: only a request that asks to bypass, from a key that may.
    let governed = put_locked(&root, "vault", "governed", "GOVERNANCE", now + 3600);
    let deleter =
        create_key(&root, serde_json::json!({"name": "deleter", "grants": ["vault:read,write,delete,owner"]}));
    let bypasser =
        create_key(&root, serde_json::json!({"name": "bypasser", "grants": ["vault:delete,bypass-governance"]}));
    delete_version(&root, "vault", "governed", &governed, false).assert_error(403, "AccessDenied");
    delete_version(&deleter, "vault", "governed", &governed, true).assert_error(403, "AccessDenied");
    delete_version(&bypasser, "vault", "governed", &governed, false).assert_error(403, "AccessDenied");
    delete_version(&bypasser, "vault", "governed", &governed, true).assert_status(204);

    // A legal hold keeps a version without any retention, until it is off.
    let held = put(&root, "vault", "held", b"evidence").header("x-amz-version-id").unwrap().to_string();
    let hold = |status: &str| {
        let document = format!("<LegalHold><Status>{status}</Status></LegalHold>");
        root.send(&with_md5(
            Request::new("PUT", "vault", "held").query("legal-hold", "").query("versionId", &held),
            &document,
        ))
    };
    hold("ON").assert_status(200);
    let status = root.send(&Request::new("GET", "vault", "held").query("legal-hold", ""));
    assert_eq!(status.xml("Status").as_deref(), Some("ON"));
    delete_version(&root, "vault", "held", &held, true).assert_error(403, "AccessDenied");
    hold("OFF").assert_status(200);
    delete_version(&root, "vault", "held", &held, false).assert_status(204);

    // Refusals.
    let lacking = with_md5(
        Request::new("PUT", "vault", "x").query("legal-hold", ""),
        "<LegalHold><Status>ON</Status></LegalHold>",
    );
    let mut unsigned = lacking.clone();
    unsigned.headers.retain(|(name, _)| name != "content-md5");
    root.send(&unsigned).assert_error(400, "InvalidRequest");
    let past = root.send(
        &Request::new("PUT", "vault", "late")
            .header("x-amz-object-lock-mode", "COMPLIANCE")
            .header("x-amz-object-lock-retain-until-date", &iso(now - 10))
            .body("x"),
    );
    past.assert_error(400, "InvalidArgument");
    let half =
        root.send(&Request::new("PUT", "vault", "half").header("x-amz-object-lock-mode", "COMPLIANCE").body("x"));
    half.assert_error(400, "InvalidArgument");
    create_bucket(&root, "plain");
    let unlocked = root.send(
        &Request::new("PUT", "plain", "k")
            .header("x-amz-object-lock-mode", "GOVERNANCE")
            .header("x-amz-object-lock-retain-until-date", &iso(now + 60))
            .body("x"),
    );
    unlocked.assert_error(400, "InvalidRequest");
    root.send(&Request::new("GET", "plain", "").query("object-lock", ""))
        .assert_error(404, "ObjectLockConfigurationNotFoundError");
    put(&root, "vault", "free", b"no lock").assert_status(200);
    root.send(&Request::new("GET", "vault", "free").query("retention", ""))
        .assert_error(404, "NoSuchObjectLockConfiguration");
}

#[test]
fn default_retention_applies_to_new_versions() {
    let server = TestServer::start();
    let root = server.client();
    create_bucket(&root, "later");
    let config = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>2</Days></DefaultRetention></Rule></ObjectLockConfiguration>";
    // Only a versioned bucket takes Object Lock later.
    root.send(&with_md5(Request::new("PUT", "later", "").query("object-lock", ""), config))
        .assert_error(409, "InvalidBucketState");
    let enable = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    root.send(&Request::new("PUT", "later", "").query("versioning", "").body(enable)).assert_status(200);
    root.send(&with_md5(Request::new("PUT", "later", "").query("object-lock", ""), config)).assert_status(200);
    let got = root.send(&Request::new("GET", "later", "").query("object-lock", ""));
    assert_eq!(got.xml("Days").as_deref(), Some("2"));
    let before = larder::timefmt::now();
    let version = put(&root, "later", "auto", b"x").header("x-amz-version-id").unwrap().to_string();
    let retention = root.send(&Request::new("GET", "later", "auto").query("retention", ""));
    assert_eq!(retention.xml("Mode").as_deref(), Some("GOVERNANCE"));
    let until = larder::timefmt::parse_iso8601(&retention.xml("RetainUntilDate").unwrap()).unwrap();
    assert!((until - before - 2 * 86_400).abs() < 60, "{until}");
    delete_version(&root, "later", "auto", &version, false).assert_error(403, "AccessDenied");
}

/// Retention is judged by a clock that never runs ahead: a board whose
/// clock says 2099 (before and after a restart) or 1970 releases nothing;
/// once the real time has passed the date, the version may go.
#[test]
fn a_wrong_clock_never_releases_a_lock_early() {
    let shifted = Arc::new(ShiftedClock::default());
    let time = larder::clock::TimeOverride(shifted.clone());
    let start = |dir: std::path::PathBuf| {
        let time = time.clone();
        TestServer::start_in(dir, move |config| config.time = Some(time))
    };
    let server = start(unique_dir("lock-clock"));
    let root = server.client();
    locked_bucket(&root, "vault");
    let until = larder::timefmt::now() + 3;
    let version = put_locked(&root, "vault", "k", "COMPLIANCE", until);

    let years = 75 * 365 * 86_400;
    shifted.offset.store(years, Ordering::SeqCst);
    // (Header signatures are checked against the machine's own clock.)
    let request = Request::new("DELETE", "vault", "k").query("versionId", &version);
    root.send(&request).assert_error(403, "AccessDenied");
    let dir = server.stop();
    let server = start(dir);
    let root = Client { addr: server.addr, ..root };
    root.send(&request).assert_error(403, "AccessDenied");
    let health = root.send(&Request::new("GET", "_larder", "health"));
    assert!(health.text().contains("ahead"), "the test's clock is not in 2099: {}", health.text());

    // In 1970 larder keeps the time it can vouch for (requests are judged
    // by it), and Object Lock does not run ahead of the system clock.
    shifted.offset.store(-larder::timefmt::now(), Ordering::SeqCst);
    delete_version(&root, "vault", "k", &version, false).assert_error(403, "AccessDenied");
    std::thread::sleep(Duration::from_secs(4));
    delete_version(&root, "vault", "k", &version, false).assert_error(403, "AccessDenied");

    // Once the date has passed by larder's count (which the restart set
    // back by the moments it was down), the version may go.
    shifted.offset.store(0, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let answer = delete_version(&root, "vault", "k", &version, false);
        if answer.status == 204 {
            break;
        }
        answer.assert_error(403, "AccessDenied");
        assert!(std::time::Instant::now() < deadline, "the lock outlived its date by far");
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(larder::timefmt::now() >= until, "released before its date");
}

/// `rm -rf index` then `larder repair`: the bucket keeps Object Lock, and
/// a version keeps both the lock it was written with and one set later.
#[test]
fn repair_keeps_object_lock() {
    let dir = unique_dir("repair-lock");
    let (child, addr) = spawn_server(&dir);
    let root = client_of(addr);
    locked_bucket(&root, "vault");
    let now = larder::timefmt::now();
    let written = put_locked(&root, "vault", "written", "COMPLIANCE", now + 3600);
    let later = put(&root, "vault", "later", b"x").header("x-amz-version-id").unwrap().to_string();
    let document =
        format!("<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>{}</RetainUntilDate></Retention>", iso(now + 7200));
    root.send(&with_md5(Request::new("PUT", "vault", "later").query("retention", ""), &document)).assert_status(200);
    stop(child, libc::SIGTERM);

    std::fs::remove_dir_all(dir.join("index")).unwrap();
    let output = larder_command().args(["repair", "--data-dir"]).arg(&dir).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let (child, addr) = spawn_server(&dir);
    let root = client_of(addr);
    let config = root.send(&Request::new("GET", "vault", "").query("object-lock", ""));
    assert_eq!(config.xml("ObjectLockEnabled").as_deref(), Some("Enabled"));
    delete_version(&root, "vault", "written", &written, true).assert_error(403, "AccessDenied");
    let got = root.send(&Request::new("GET", "vault", "later").query("retention", ""));
    assert_eq!(got.xml("Mode").as_deref(), Some("GOVERNANCE"));
    assert_eq!(got.xml("RetainUntilDate"), Some(iso(now + 7200)));
    delete_version(&root, "vault", "later", &later, false).assert_error(403, "AccessDenied");
    stop(child, libc::SIGTERM);
    let _ = std::fs::remove_dir_all(&dir);
}

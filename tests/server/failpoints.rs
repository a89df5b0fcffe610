//! Crash injection: the server built with the `failpoints` feature aborts
//! at a named step of a write (see `src/store/failpoint.rs`). For every
//! step and every kind of write: restart, then what was acknowledged is
//! there with the right bytes, what was not is absent or whole, `tmp/` is
//! empty, and after one more clean start no blob is left that nothing
//! refers to and `larder repair --check` finds nothing.
//!
//! `cargo test --features failpoints --test server failpoints`

use std::path::Path;
use std::time::Duration;

use crate::durability::blob_files;
use crate::harness::stop;
use crate::harness::*;

const POINTS: [&str; 5] =
    ["after-blob-fsync", "after-rename", "before-index-flush", "after-index-commit", "after-garbage-unlink"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    PutNew,
    Overwrite,
    Delete,
    Complete,
    DeleteObjects,
    CreateKey,
    /// In a versioned bucket: a third version of `doc`.
    VersionedPut,
    /// In a versioned bucket: a delete marker over `doc`.
    VersionedDelete,
    /// In a versioned bucket: the first version of `doc` removed.
    DeleteVersion,
}

const WRITES: [Write; 9] = [
    Write::PutNew,
    Write::Overwrite,
    Write::Delete,
    Write::Complete,
    Write::DeleteObjects,
    Write::CreateKey,
    Write::VersionedPut,
    Write::VersionedDelete,
    Write::DeleteVersion,
];

/// What the setup made: the multipart upload, and the two versions of
/// `doc` in the versioned bucket.
struct Setup {
    upload_id: String,
    versions: [String; 2],
}

/// A version of `failpoint-v/doc`; None when absent.
fn version_state(client: &Client, version: &str) -> Option<Vec<u8>> {
    let answer = client.send(&Request::new("GET", "failpoint-v", "doc").query("versionId", version));
    match answer.status {
        200 => Some(answer.body),
        404 => None,
        other => panic!("GET doc?versionId={version}: {other} {}", answer.text()),
    }
}

/// What the objects hold: None when absent.
fn state(client: &Client, key: &str) -> Option<Vec<u8>> {
    let answer = get(client, "failpoint", key);
    match answer.status {
        200 => Some(answer.body),
        404 => None,
        other => panic!("GET {key}: {other} {}", answer.text()),
    }
}

/// Sets up the data folder, runs `write` on a server armed at `point`;
/// returns whether the write was acknowledged, and the upload id.
fn crash_at(dir: &Path, point: &str, write: Write, part: &[u8]) -> (bool, Setup) {
    let (child, addr) = spawn_server(dir);
    let client = client_of(addr);
    create_bucket(&client, "failpoint");
    put(&client, "failpoint", "old", b"old bytes").assert_status(200);
    put(&client, "failpoint", "victim", b"victim bytes").assert_status(200);
    let created = client.send(&Request::new("POST", "failpoint", "mp").query("uploads", ""));
    let upload_id = created.xml("UploadId").unwrap();
    let uploaded = client.send(
        &Request::new("PUT", "failpoint", "mp")
            .query("partNumber", "1")
            .query("uploadId", &upload_id)
            .body(part.to_vec()),
    );
    let etag = uploaded.header("etag").unwrap().to_string();
    create_bucket(&client, "failpoint-v");
    let versioning = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    client.send(&Request::new("PUT", "failpoint-v", "").query("versioning", "").body(versioning)).assert_status(200);
    let versions = ["v1 bytes", "v2 bytes"].map(|body| {
        put(&client, "failpoint-v", "doc", body.as_bytes()).header("x-amz-version-id").unwrap().to_string()
    });
    stop(child, libc::SIGTERM);

    let (child, addr) = spawn_server_with(dir, &[("LARDER_FAILPOINTS", point)]);
    let client = client_of(addr);
    let request = match write {
        Write::PutNew => Request::new("PUT", "failpoint", "new").body("new bytes"),
        Write::Overwrite => Request::new("PUT", "failpoint", "old").body("newer bytes"),
        Write::Delete => Request::new("DELETE", "failpoint", "victim"),
        Write::Complete => {
            Request::new("POST", "failpoint", "mp").query("uploadId", &upload_id).body(complete_document(&[(1, &etag)]))
        }
        Write::DeleteObjects => {
            let document = "<Delete><Object><Key>victim</Key></Object><Object><Key>old</Key></Object></Delete>";
            Request::new("POST", "failpoint", "").query("delete", "").header("content-md5", &md5_base64(document.as_bytes())).body(document)
        }
        Write::CreateKey => Request::new("POST", "_larder", "admin/keys")
            .body(r#"{"name":"failpoint","grants":["failpoint:read"],"access_key":"LKFAILPOINT000000001","secret_key":"failpoint-secret-failpoint-secret-000000"}"#),
        Write::VersionedPut => Request::new("PUT", "failpoint-v", "doc").body("v3 bytes"),
        Write::VersionedDelete => Request::new("DELETE", "failpoint-v", "doc"),
        Write::DeleteVersion => Request::new("DELETE", "failpoint-v", "doc").query("versionId", &versions[0]),
    };
    let raw = client.encode(&request);
    let answer = std::panic::catch_unwind(|| send_raw(addr, &raw, false)).ok();
    let acknowledged = answer.as_ref().is_some_and(|answer| answer.status / 100 == 2);
    // Whether it aborted or not, this server is done.
    stop(child, libc::SIGKILL);
    (acknowledged, Setup { upload_id, versions })
}

#[test]
fn every_write_survives_a_crash_at_every_step() {
    let part = pattern(1000, 3);
    for point in POINTS {
        let mut crashed = 0;
        for write in WRITES {
            let dir = unique_dir("failpoint");
            let (acknowledged, Setup { upload_id, versions }) = crash_at(&dir, point, write, &part);
            let what = format!("{write:?} crashed at {point} (acknowledged: {acknowledged})");
            crashed += usize::from(!acknowledged);

            let (child, addr) = spawn_server(&dir);
            let client = client_of(addr);
            wait_for_recovery(&client);
            assert_eq!(std::fs::read_dir(dir.join("tmp")).unwrap().count(), 0, "{what}: tmp/ not empty");
            let either = |key: &str, before: Option<&[u8]>, after: Option<&[u8]>| {
                let found = state(&client, key);
                let allowed: Vec<Option<&[u8]>> = if acknowledged { vec![after] } else { vec![before, after] };
                assert!(allowed.contains(&found.as_deref()), "{what}: {key} holds {found:?}");
            };
            match write {
                Write::PutNew => either("new", None, Some(b"new bytes")),
                Write::Overwrite => either("old", Some(b"old bytes"), Some(b"newer bytes")),
                Write::Delete => either("victim", Some(b"victim bytes"), None),
                Write::Complete => either("mp", None, Some(&part)),
                Write::DeleteObjects => {
                    either("victim", Some(b"victim bytes"), None);
                    either("old", Some(b"old bytes"), None);
                }
                Write::CreateKey => {
                    let keys = client.send(&Request::new("GET", "_larder", "admin/keys"));
                    let present = keys.text().contains("LKFAILPOINT000000001");
                    assert!(present || !acknowledged, "{what}: the key is gone");
                    if present {
                        let key =
                            client.with_credentials("LKFAILPOINT000000001", "failpoint-secret-failpoint-secret-000000");
                        assert_eq!(
                            key.send(&Request::new("GET", "failpoint", "victim")).status,
                            200,
                            "{what}: a half key"
                        );
                    }
                }
                Write::VersionedPut => {
                    let current = get(&client, "failpoint-v", "doc").body;
                    let allowed: &[&[u8]] = if acknowledged { &[b"v3 bytes"] } else { &[b"v2 bytes", b"v3 bytes"] };
                    assert!(allowed.contains(&current.as_slice()), "{what}: doc holds {current:?}");
                }
                Write::VersionedDelete => {
                    let current = get(&client, "failpoint-v", "doc");
                    let marked = current.status == 404 && current.header("x-amz-delete-marker") == Some("true");
                    assert!(marked || (!acknowledged && current.body == b"v2 bytes"), "{what}: {}", current.status);
                }
                Write::DeleteVersion => {
                    let first = version_state(&client, &versions[0]);
                    assert!(first.is_none() || !acknowledged, "{what}: a deleted version came back");
                    assert_eq!(get(&client, "failpoint-v", "doc").body, b"v2 bytes", "{what}");
                }
            }
            // No version is lost but the one deleted by id.
            if write != Write::DeleteVersion {
                assert_eq!(version_state(&client, &versions[0]).as_deref(), Some(&b"v1 bytes"[..]), "{what}");
            }
            assert_eq!(version_state(&client, &versions[1]).as_deref(), Some(&b"v2 bytes"[..]), "{what}");
            // Untouched objects are untouched.
            if !matches!(write, Write::Overwrite | Write::DeleteObjects) {
                assert_eq!(state(&client, "old").as_deref(), Some(&b"old bytes"[..]), "{what}");
            }
            // What was never completed is given up; then a clean stop and
            // start, and every blob left is one an object refers to.
            if state(&client, "mp").is_none() {
                client.send(&Request::new("DELETE", "failpoint", "mp").query("uploadId", &upload_id));
            }
            let listing = client.send(&Request::new("GET", "failpoint", "").query("list-type", "2"));
            let keys = listing.xml_all("Key");
            let versioned = client.send(&Request::new("GET", "failpoint-v", "").query("versions", ""));
            let expected: usize = keys.iter().map(|key| if key == "mp" { 2 } else { 1 }).sum::<usize>()
                + versioned.xml_all("VersionId").len();
            stop(child, libc::SIGTERM);
            let (child, _) = spawn_server(&dir);
            stop(child, libc::SIGTERM);
            assert_eq!(blob_files(&dir).len(), expected, "{what}: orphans among {keys:?}");
            let check =
                crate::harness::larder_command().args(["repair", "--check", "--data-dir"]).arg(&dir).output().unwrap();
            assert!(
                check.status.success(),
                "{what}: larder repair --check: {}",
                String::from_utf8_lossy(&check.stdout)
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
        // The point is on the way of some writes: it must have fired.
        assert!(crashed > 0, "no write crashed at {point}");
    }
}

/// The check of the blobs after an unclean stop runs while the server
/// serves. A key deleted meanwhile stays deleted, though the sweep finds a
/// newer blob of it that the crash kept out of the index; a stop before
/// the check ends leaves it to run again.
#[test]
fn the_server_serves_while_the_sweep_runs() {
    let dir = unique_dir("sweep-serving");
    let (child, addr) = spawn_server(&dir);
    let client = client_of(addr);
    create_bucket(&client, "failpoint");
    put(&client, "failpoint", "kept", b"kept bytes").assert_status(200);
    put(&client, "failpoint", "gone", b"first").assert_status(200);
    stop(child, libc::SIGTERM);
    // Renamed into blobs/, never indexed, never acknowledged.
    let (child, addr) = spawn_server_with(&dir, &[("LARDER_FAILPOINTS", "after-rename")]);
    let raw = client_of(addr).encode(&Request::new("PUT", "failpoint", "gone").body("second"));
    assert!(std::panic::catch_unwind(|| send_raw(addr, &raw, false)).is_err(), "the write was not cut off");
    stop(child, libc::SIGKILL);

    let slow_sweep = [("LARDER_PAUSEPOINTS", "sweep-each-blob")];
    let checking = |client: &Client| {
        let health = client.send(&Request::new("GET", "_larder", "health"));
        health.text().contains("checking blobs")
    };
    // Stopped before the check ends: the next start checks again.
    let (child, addr) = spawn_server_with(&dir, &slow_sweep);
    assert!(checking(&client_of(addr)));
    stop(child, libc::SIGTERM);
    let (child, addr) = spawn_server_with(&dir, &slow_sweep);
    let client = client_of(addr);
    assert!(checking(&client), "a stop during the check was taken for a clean one");
    assert_eq!(state(&client, "kept").as_deref(), Some(&b"kept bytes"[..]), "served while checking");
    client.send(&Request::new("DELETE", "failpoint", "gone")).assert_status(204);
    assert!(checking(&client), "the check ended before the delete: the test proves nothing");
    wait_for_recovery(&client);
    assert_eq!(state(&client, "gone"), None, "the sweep brought a deleted key back");
    stop(child, libc::SIGTERM);
    let (child, addr) = spawn_server(&dir);
    assert_eq!(state(&client_of(addr), "gone"), None);
    stop(child, libc::SIGTERM);
    assert_eq!(blob_files(&dir).len(), 1, "only kept's blob is left");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A lifecycle run cut off by a crash, at each step of a version's
/// removal, resumes on the next run: the versions the rule keeps are all
/// there with their bytes, the ones it removes are gone, and nothing is
/// left half-removed.
#[test]
fn a_lifecycle_run_resumes_after_a_crash() {
    const DAY_SECS: u64 = 2;
    for point in ["before-index-flush", "after-index-commit", "after-garbage-unlink"] {
        let dir = unique_dir("failpoint-lifecycle");
        let config = dir.with_extension("toml");
        std::fs::write(&config, format!("lifecycle_day_secs = {DAY_SECS}\n")).unwrap();
        let config = config.to_str().unwrap();
        let (child, addr) = spawn_server_with(&dir, &[("LARDER_CONFIG", config)]);
        let client = client_of(addr);
        create_bucket(&client, "aging");
        let versioning = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
        client.send(&Request::new("PUT", "aging", "").query("versioning", "").body(versioning)).assert_status(200);
        // Noncurrent for a day, and not among the newest noncurrent one.
        let rules = "<LifecycleConfiguration><Rule><ID>old</ID><Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>1</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule></LifecycleConfiguration>";
        client
            .send(
                &Request::new("PUT", "aging", "")
                    .query("lifecycle", "")
                    .header("content-md5", &md5_base64(rules.as_bytes()))
                    .body(rules),
            )
            .assert_status(200);
        let mut written = Vec::new();
        for key in ["doc", "notes"] {
            for n in 0..4 {
                let body = format!("{key} v{n}");
                let answer = put(&client, "aging", key, body.as_bytes());
                written.push((key, answer.header("x-amz-version-id").unwrap().to_string(), body, n >= 2));
            }
        }
        stop(child, libc::SIGTERM);
        std::thread::sleep(Duration::from_secs(DAY_SECS + 1));

        // The daily run (due at once) or the one asked for reaches the point.
        let (mut child, addr) = spawn_server_with(&dir, &[("LARDER_FAILPOINTS", point), ("LARDER_CONFIG", config)]);
        let run = client_of(addr).encode(&Request::new("POST", "_larder", "admin/lifecycle"));
        let _ = std::panic::catch_unwind(|| send_raw(addr, &run, false));
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let crashed = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(std::time::Instant::now() < deadline, "the run never reached {point}");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(!crashed.success(), "{point}: the server did not crash");

        let (child, addr) = spawn_server_with(&dir, &[("LARDER_CONFIG", config)]);
        let client = client_of(addr);
        wait_for_recovery(&client);
        let summary = client.send(&Request::new("POST", "_larder", "admin/lifecycle"));
        assert_eq!(summary.status, 200, "{}", summary.text());
        for (key, version, body, kept) in &written {
            let answer = client.send(&Request::new("GET", "aging", key).query("versionId", version));
            if *kept {
                assert_eq!(answer.status, 200, "{point}: {key} {body} lost");
                assert_eq!(answer.text(), *body, "{point}");
            } else {
                answer.assert_error(404, "NoSuchVersion");
            }
        }
        let listed = client.send(&Request::new("GET", "aging", "").query("versions", ""));
        assert_eq!(listed.xml_all("VersionId").len(), 4, "{point}: {}", listed.text());
        stop(child, libc::SIGTERM);
        let check =
            crate::harness::larder_command().args(["repair", "--check", "--data-dir"]).arg(&dir).output().unwrap();
        assert!(check.status.success(), "{point}: larder repair --check: {}", String::from_utf8_lossy(&check.stdout));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! What the startup sweep does after an unclean stop: nothing is deleted
//! on the index's word alone. Uploads whose index records were lost are
//! rolled forward from their blobs' footers; damaged blobs are put aside.

use std::path::{Path, PathBuf};

use crate::harness::*;
use crate::storage::unsafe_kill;

pub fn blob_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.join("blobs")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn a_lost_index_is_rolled_forward_from_the_blobs() {
    let dir = unique_dir("lost-index");
    let (mut child, addr) = spawn_server(&dir);
    let client = client_of(addr);
    create_bucket(&client, "kept");
    let bodies: Vec<Vec<u8>> = (0..5).map(|i| pattern(10_000 + i * 777, i as u8)).collect();
    for (i, body) in bodies.iter().enumerate() {
        put(&client, "kept", &format!("object-{i}"), body).assert_status(200);
    }
    put(&client, "kept", "object-0", b"the newer version").assert_status(200);
    unsafe_kill(child.id(), libc::SIGKILL);
    child.wait().unwrap();

    std::fs::remove_dir_all(dir.join("index")).unwrap();
    let (mut child, addr) = spawn_server(&dir);
    let client = client_of(addr);
    assert_eq!(get(&client, "kept", "object-0").body, b"the newer version");
    for (i, body) in bodies.iter().enumerate().skip(1) {
        assert!(get(&client, "kept", &format!("object-{i}")).body == *body, "object-{i}");
    }
    let listing = client.send(&Request::new("GET", "kept", "").query("list-type", "2"));
    assert_eq!(listing.xml_all("Key").len(), 5);
    unsafe_kill(child.id(), libc::SIGKILL);
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_damaged_blob_is_put_aside_and_the_rest_served() {
    let dir = unique_dir("damaged-blob");
    let (mut child, addr) = spawn_server(&dir);
    let client = client_of(addr);
    create_bucket(&client, "damage");
    put(&client, "damage", "whole", b"intact bytes").assert_status(200);
    unsafe_kill(child.id(), libc::SIGKILL);
    child.wait().unwrap();
    // A torn file of the kind a crash mid-write leaves, where a blob goes.
    let torn = dir.join("blobs/00/00/000000000000000000000000000000ff");
    std::fs::create_dir_all(torn.parent().unwrap()).unwrap();
    std::fs::write(&torn, b"half a blob, no footer").unwrap();
    let blobs_before = blob_files(&dir).len();

    let (mut child, addr) = spawn_server(&dir);
    let client = client_of(addr);
    assert_eq!(get(&client, "damage", "whole").body, b"intact bytes");
    wait_for_recovery(&client);
    assert!(!torn.exists());
    let aside = dir.join("lost+found/000000000000000000000000000000ff");
    assert_eq!(std::fs::read(&aside).unwrap(), b"half a blob, no footer");
    assert_eq!(blob_files(&dir).len(), blobs_before - 1);
    unsafe_kill(child.id(), libc::SIGKILL);
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A download of a multipart object keeps every part it will read: an
/// overwrite meanwhile does not cut it short, and the old parts go when
/// it ends.
#[test]
fn an_overwrite_never_cuts_a_multipart_download_short() {
    use std::io::{Read, Write};
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "reads");
    let created = client.send(&Request::new("POST", "reads", "big").query("uploads", ""));
    let upload_id = created.xml("UploadId").unwrap();
    let parts: Vec<Vec<u8>> = (0..3).map(|i| pattern(if i < 2 { 5 << 20 } else { 1000 }, 40 + i as u8)).collect();
    let mut document = String::from("<CompleteMultipartUpload>");
    for (i, part) in parts.iter().enumerate() {
        let number = (i + 1).to_string();
        let answer = client.send(
            &Request::new("PUT", "reads", "big")
                .query("partNumber", &number)
                .query("uploadId", &upload_id)
                .body(part.clone()),
        );
        let etag = answer.header("etag").unwrap().to_string();
        document.push_str(&format!("<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>"));
    }
    document.push_str("</CompleteMultipartUpload>");
    client.send(&Request::new("POST", "reads", "big").query("uploadId", &upload_id).body(document)).assert_status(200);
    let blobs_with_parts = blob_files(&server.dir).len();

    // Start a download, read a little of it, then overwrite the object.
    let mut stream = connect_from(None, server.addr);
    stream.write_all(&client.encode(&Request::new("GET", "reads", "big"))).unwrap();
    let mut received = vec![0u8; 64 * 1024];
    stream.read_exact(&mut received).unwrap();
    put(&client, "reads", "big", b"small and new").assert_status(200);
    stream.read_to_end(&mut received).unwrap();
    let answer = parse_response(&received, false);
    answer.assert_status(200);
    assert!(answer.body == parts.concat(), "the download was cut short or mixed");
    assert_eq!(get(&client, "reads", "big").body, b"small and new");
    // The old parts and manifest went once the download let go of them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while blob_files(&server.dir).len() != blobs_with_parts - 3 {
        assert!(std::time::Instant::now() < deadline, "old parts left behind");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn larder(args: &[&str], dir: &Path) -> (bool, String) {
    let output = crate::harness::larder_command().args(args).arg("--data-dir").arg(dir).output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
    )
}

/// `rm -rf index` then `larder repair`: every bucket, object (multipart
/// too), key, link and policy comes back.
#[test]
fn repair_rebuilds_the_whole_index() {
    let dir = unique_dir("repair");
    let (child, addr) = spawn_server(&dir);
    let client = client_of(addr);
    create_bucket(&client, "rebuilt");
    create_bucket(&client, "empty");
    put(&client, "rebuilt", "plain", b"plain bytes").assert_status(200);
    let created = client.send(&Request::new("POST", "rebuilt", "multi").query("uploads", ""));
    let upload_id = created.xml("UploadId").unwrap();
    let first = pattern(5 << 20, 1);
    let mut etags = Vec::new();
    for (number, body) in [("1", first.clone()), ("2", b"tail".to_vec())] {
        let answer = client.send(
            &Request::new("PUT", "rebuilt", "multi")
                .query("partNumber", number)
                .query("uploadId", &upload_id)
                .body(body),
        );
        etags.push(answer.header("etag").unwrap().to_string());
    }
    let document = complete_document(&[(1, &etags[0]), (2, &etags[1])]);
    client
        .send(&Request::new("POST", "rebuilt", "multi").query("uploadId", &upload_id).body(document))
        .assert_status(200);
    let key = create_key(&client, serde_json::json!({"name": "reader", "grants": ["rebuilt:read"]}));
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::rebuilt/plain"}]}"#;
    client.send(&Request::new("PUT", "rebuilt", "").query("policy", "").body(policy)).assert_status(204);
    stop(child, libc::SIGTERM);

    let (clean, report) = larder(&["repair", "--check"], &dir);
    assert!(clean, "a healthy folder differs: {report}");
    std::fs::remove_dir_all(dir.join("index")).unwrap();
    let (clean, report) = larder(&["repair", "--check"], &dir);
    assert!(!clean && report.contains("there is no index"), "{report}");
    let (ok, report) = larder(&["repair"], &dir);
    assert!(ok, "{report}");
    let (clean, report) = larder(&["repair", "--check"], &dir);
    assert!(clean, "after a repair: {report}");

    let (child, addr) = spawn_server(&dir);
    let client = client_of(addr);
    assert_eq!(get(&client, "rebuilt", "plain").body, b"plain bytes");
    assert!(get(&client, "rebuilt", "multi").body == [first, b"tail".to_vec()].concat());
    client.send(&Request::new("HEAD", "empty", "")).assert_status(200);
    let key = Client { addr, ..key };
    assert_eq!(get(&key, "rebuilt", "plain").body, b"plain bytes");
    client.send(&Request::new("GET", "rebuilt", "plain").auth(Auth::None)).assert_status(200);
    stop(child, libc::SIGTERM);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A size-limited file system: uploads in flight reserve what they
/// declared, so a second one that would not fit is refused from its head
/// at once (S3's `InsufficientStorage`, 507), DELETE gives the space back.
/// Needs root (to mount a tmpfs); says so and passes otherwise.
#[test]
fn uploads_reserve_the_space_they_declare() {
    use std::io::Write;
    let mount = unique_dir("small-disk");
    if !mount_tmpfs(&mount, "200m") {
        return;
    }
    let server = TestServer::start_in(mount.join("data"), |_| {});
    let client = server.client();
    create_bucket(&client, "small");
    let size = 100u64 << 20;
    let head = |key: &str| {
        client.encode(
            &Request::new("PUT", "small", key)
                .auth(Auth::Header(Payload::Unsigned))
                .header("content-length", &size.to_string())
                .header("expect", "100-continue"),
        )
    };
    // The first upload is under way (its head accepted, its body coming).
    let mut first = connect_from(None, server.addr);
    first.write_all(&head("first")).unwrap();
    let mut continued = [0u8; 25];
    std::io::Read::read_exact(&mut first, &mut continued).unwrap();
    assert!(continued.starts_with(b"HTTP/1.1 100"), "{}", String::from_utf8_lossy(&continued));
    // A second that would not fit beside it is refused before its body.
    let refused = send_raw(server.addr, &head("second"), false);
    refused.assert_error(507, "InsufficientStorage");
    // The first finishes; then it is deleted and the space comes back.
    let block = vec![7u8; 1 << 20];
    for _ in 0..100 {
        first.write_all(&block).unwrap();
    }
    let mut answer = Vec::new();
    std::io::Read::read_to_end(&mut first, &mut answer).unwrap();
    parse_response(&answer, false).assert_status(200);
    client.send(&Request::new("DELETE", "small", "first")).assert_status(204);
    let body = pattern(size as usize, 1);
    put(&client, "small", "second", &body).assert_status(200);
    // A copy sets the source's size aside too.
    client
        .send(&Request::new("PUT", "small", "copy").header("x-amz-copy-source", "small/second"))
        .assert_error(507, "InsufficientStorage");
    drop(server);
    unmount(&mount);
    let _ = std::fs::remove_dir_all(&mount);
}

/// A streamed upload (`Transfer-Encoding: chunked`, no length) cannot
/// promise a size: larder checks the free space as the bytes come, and
/// refuses once the margin the index needs would go, leaving nothing
/// behind. Needs root (to mount a tmpfs).
#[test]
fn a_streamed_upload_stops_at_the_free_space() {
    use std::io::{Read, Write};
    let mount = unique_dir("streamed-disk");
    if !mount_tmpfs(&mount, "200m") {
        return;
    }
    let server = TestServer::start_in(mount.join("data"), |_| {});
    let client = server.client();
    create_bucket(&client, "small");
    let head = client.encode(
        &Request::new("PUT", "small", "pipe")
            .auth(Auth::Header(Payload::Unsigned))
            .unsigned_header("transfer-encoding", "chunked"),
    );
    let mut stream = connect_from(None, server.addr);
    stream.write_all(&head).unwrap();
    let block = vec![9u8; 1 << 20];
    let mut sent = 0;
    // 300 MiB offered to a 200 MiB disk: the server must stop it.
    while sent < 300 {
        let chunk = [format!("{:x}\r\n", block.len()).as_bytes(), &block, b"\r\n"].concat();
        if stream.write_all(&chunk).is_err() {
            break;
        }
        sent += 1;
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    parse_response(&answer, false).assert_error(507, "InsufficientStorage");
    // Stopped near 136 MiB (200 less the 64 MiB margin), not at the disk's end.
    assert!(sent < 170, "{sent} MiB were taken: the margin for the index was not kept");
    get(&client, "small", "pipe").assert_error(404, "NoSuchKey");
    assert_eq!(std::fs::read_dir(mount.join("data/tmp")).unwrap().count(), 0, "the partial upload is gone");
    put(&client, "small", "after", b"still works").assert_status(200);
    drop(server);
    unmount(&mount);
    let _ = std::fs::remove_dir_all(&mount);
}

/// Fills the file system holding `dir` to the last byte with `name`.
fn fill_disk(dir: &Path, name: &str) {
    use std::io::Write;
    let mut filler = std::fs::File::create(dir.join(name)).unwrap();
    for chunk in [1 << 20, 4096, 1] {
        let block = vec![0u8; chunk];
        while filler.write_all(&block).is_ok() {}
    }
}

/// Mounts a tmpfs of `size` at `dir`; false (the test then says it is
/// skipped) without root.
fn mount_tmpfs(dir: &Path, size: &str) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|status| status.success());
    if !mounted {
        eprintln!("skipped: mounting a tmpfs needs root");
    }
    mounted
}

fn unmount(dir: &Path) {
    let _ = std::process::Command::new("umount").arg(dir).status();
}

/// A disk filled to the last byte by someone else: uploads are refused
/// with `InsufficientStorage`, DELETE still works (larder keeps room for
/// its index) and gives the space back. Needs root (to mount a tmpfs).
#[test]
fn a_full_disk_refuses_uploads_and_still_deletes() {
    let mount = unique_dir("full-disk");
    if !mount_tmpfs(&mount, "150m") {
        return;
    }
    let server = TestServer::start_in(mount.join("data"), |_| {});
    let client = server.client();
    create_bucket(&client, "full");
    put(&client, "full", "big", &pattern(20 << 20, 1));
    for i in 0..20 {
        put(&client, "full", &format!("small-{i}"), b"small bytes");
    }
    fill_disk(&mount, "filler");
    let health: serde_json::Value =
        serde_json::from_slice(&client.send(&Request::new("GET", "_larder", "health")).body).unwrap();
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(health["reasons"][0].as_str().unwrap().contains("nearly full"), "{health}");
    let free = || fs2::available_space(&mount).unwrap();
    let before = free();
    client.send(&Request::new("PUT", "full", "more").body("more bytes")).assert_error(507, "InsufficientStorage");
    for i in 0..20 {
        client.send(&Request::new("DELETE", "full", &format!("small-{i}"))).assert_status(204);
    }
    client.send(&Request::new("DELETE", "full", "big")).assert_status(204);
    assert!(free() >= before + (20 << 20), "the space did not come back");
    assert!(!mount.join("data/index-reserve").exists(), "the room kept for the index was not let go");
    let dir = server.stop();
    let check = larder(&["repair", "--check"], &dir);
    assert!(check.0, "larder repair --check: {}", check.1);
    unmount(&mount);
    let _ = std::fs::remove_dir_all(&mount);
}

/// The index on a file system of its own that fills up: the write sled
/// cannot make is refused (503 ServiceUnavailable), the server stays up
/// for reads, `/health` says `degraded` and why, and writes resume by
/// themselves once there is room (the index is opened again).
#[test]
fn an_index_that_cannot_write_degrades_then_heals() {
    let data = unique_dir("index-full");
    let index = data.join("index");
    if !mount_tmpfs(&index, "2m") {
        return;
    }
    let server = TestServer::start_in(data.clone(), |_| {});
    let client = server.client();
    create_bucket(&client, "degraded");
    let health = || -> serde_json::Value {
        serde_json::from_slice(&client.send(&Request::new("GET", "_larder", "health")).body).unwrap()
    };
    assert_eq!(health()["status"], "ok");
    // Long keys fill the index's 2 MiB in a few thousand writes at most.
    let name = |i: usize| format!("{i:05}-{}", "k".repeat(1000));
    let mut acknowledged = 0;
    let refused = (0..20_000).find_map(|i| {
        let answer = client.send(&Request::new("PUT", "degraded", &name(i)).body("bytes"));
        if answer.status == 200 {
            acknowledged = i + 1;
            return None;
        }
        Some(answer)
    });
    let refused = refused.expect("the index never filled up");
    refused.assert_error(503, "ServiceUnavailable");
    let refused_key = name(acknowledged);
    let state = health();
    assert_eq!(state["status"], "degraded", "{state}");
    assert!(state["degraded_reason"].as_str().unwrap().contains("space"), "{state}");
    // What sled has in its pages reads on (a read that would make sled
    // tidy a page is refused with 503 like a write).
    assert_eq!(get(&client, "degraded", &name(0)).body, b"bytes", "reads go on");
    client.send(&Request::new("PUT", "degraded", "refused").body("bytes")).assert_error(503, "ServiceUnavailable");

    let grown = std::process::Command::new("mount").args(["-o", "remount,size=64m"]).arg(&index).status().unwrap();
    assert!(grown.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while health()["status"] != "ok" {
        assert!(std::time::Instant::now() < deadline, "writes did not resume: {}", health());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    put(&client, "degraded", "after", b"after bytes");
    client.send(&Request::new("DELETE", "degraded", &name(0))).assert_status(204);
    for i in 1..acknowledged {
        assert_eq!(get(&client, "degraded", &name(i)).status, 200, "acknowledged PUT {i} lost");
    }
    wait_for_recovery(&client);
    // The refused upload's index change may have been taken before its
    // flush failed: then its blob stayed, and the object is whole.
    let refused = get(&client, "degraded", &refused_key);
    assert!(
        refused.status == 404 || (refused.status == 200 && refused.body == b"bytes"),
        "the refused upload is half there: {} {:?}",
        refused.status,
        String::from_utf8_lossy(&refused.body)
    );
    let dir = server.stop();
    let check = larder(&["repair", "--check"], &dir);
    assert!(check.0, "larder repair --check: {}", check.1);
    unmount(&index);
    let _ = std::fs::remove_dir_all(&data);
}

/// A data folder from before keys were kept as files gets them at the
/// next start, so that a later repair can restore them.
#[test]
fn key_files_are_written_for_a_folder_that_lacks_them() {
    let dir = unique_dir("key-files");
    let (child, addr) = spawn_server(&dir);
    let client = client_of(addr);
    create_key(&client, serde_json::json!({"name": "older", "grants": ["*:read"]}));
    stop(child, libc::SIGTERM);
    std::fs::remove_dir_all(dir.join("config")).unwrap();
    let (clean, report) = larder(&["repair", "--check"], &dir);
    assert!(!clean && report.contains("key document"), "{report}");
    let (child, _) = spawn_server(&dir);
    stop(child, libc::SIGTERM);
    let (clean, report) = larder(&["repair", "--check"], &dir);
    assert!(clean, "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

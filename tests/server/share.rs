//! `larder share`: links that expire, stop after N downloads, can be
//! revoked, and download under the file's name.

use crate::harness::*;

/// Shares a file; returns (full link, id).
fn share(server: &TestServer, path: &std::path::Path, extra: &[&str]) -> (String, String) {
    let (_, full, id) = share_short(server, path, extra);
    (full, id)
}

fn fetch(server: &TestServer, url: &str, range: Option<&str>) -> Response {
    let target = url.strip_prefix(&format!("http://{}", server.addr)).unwrap();
    let range = range.map(|r| format!("range: {r}\r\n")).unwrap_or_default();
    let raw = format!("GET {target} HTTP/1.1\r\nhost: {}\r\n{range}connection: close\r\n\r\n", server.addr);
    send_raw(server.addr, raw.as_bytes(), false)
}

#[test]
fn links_download_under_their_name_and_stop_after_n_uses() {
    let server = TestServer::start();
    let dir = unique_dir("share-files");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("holiday photo.jpg");
    let bytes = pattern(300_000, 4);
    std::fs::write(&path, &bytes).unwrap();

    let (link, id) = share(&server, &path, &["--uses", "2", "--expires", "2h"]);
    let first = fetch(&server, &link, None);
    first.assert_status(200);
    assert!(first.body == bytes);
    assert_eq!(
        first.header("content-disposition"),
        Some("attachment; filename=\"holiday photo.jpg\"; filename*=UTF-8''holiday%20photo.jpg")
    );
    // Two uses are twice the object's bytes, however they are asked for:
    // a second download taken in two ranges fits, a third does not.
    fetch(&server, &link, Some("bytes=1000-")).assert_status(206);
    fetch(&server, &link, Some("bytes=0-999")).assert_status(206);
    let spent = fetch(&server, &link, None);
    spent.assert_error(403, "AccessDenied");
    assert!(spent.text().contains("used up"));
    fetch(&server, &link, Some("bytes=-1")).assert_error(403, "AccessDenied");

    let (ok, out, _) = larder_cli(&server, &["share", "list"]);
    assert!(
        ok && out.contains(&id) && out.contains("uses left none (used up)") && out.contains("from 127.0.0.1"),
        "{out}"
    );
    // The link's key reads that one object and nothing else.
    let key_in_link = link.split("/shared/").nth(1).unwrap().split('?').next().unwrap();
    assert!(key_in_link.ends_with("holiday%20photo.jpg"));

    let (other, other_id) = share(&server, &path, &[]);
    fetch(&server, &other, None).assert_status(200);
    let (ok, _, _) = larder_cli(&server, &["share", "revoke", &other_id]);
    assert!(ok);
    fetch(&server, &other, None).assert_error(403, "InvalidAccessKeyId");
    let (ok, _, err) = larder_cli(&server, &["share", "revoke", &other_id]);
    assert!(!ok && err.contains("NoSuchShare"), "{err}");

    // Share links are not listed among keys.
    let (_, keys, _) = larder_cli(&server, &["key", "list"]);
    assert!(!keys.contains(&id));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn links_expire() {
    let server = TestServer::start();
    let dir = unique_dir("share-expiry");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("note.txt");
    std::fs::write(&path, b"brief").unwrap();
    let (link, _) = share(&server, &path, &["--expires", "4s"]);
    fetch(&server, &link, None).assert_status(200);
    std::thread::sleep(std::time::Duration::from_millis(5200));
    // The link's own key expires with it.
    let expired = fetch(&server, &link, None);
    expired.assert_error(403, "InvalidAccessKeyId");
    assert!(expired.text().contains("expired"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Shares a file; returns (short link, full URL, id).
fn share_short(server: &TestServer, path: &std::path::Path, extra: &[&str]) -> (String, String, String) {
    let mut args = vec!["share", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (ok, out, err) = larder_cli(server, &args);
    assert!(ok, "{err}");
    let field = |name: &str| out.lines().find_map(|l| l.trim().strip_prefix(name)).unwrap().trim().to_string();
    assert!(out.contains('█') || out.contains('▀') || out.contains('▄'), "a QR code is drawn");
    (field("link:"), field("full:"), field("id:"))
}

#[test]
fn short_links_stand_for_the_full_link_and_die_with_it() {
    let server = TestServer::start();
    let dir = unique_dir("short-links");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("notes.txt");
    let bytes = pattern(50_000, 9);
    std::fs::write(&path, &bytes).unwrap();
    let base = format!("http://{}", server.addr);

    let (short, full, id) = share_short(&server, &path, &["--uses", "1"]);
    let short_id = short.strip_prefix(&format!("{base}/s/")).unwrap_or_else(|| panic!("{short}"));
    assert_eq!(short_id.len(), 26, "128 bits in base32");
    assert!(short_id.bytes().all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)), "{short_id}");
    // The short link sends to a full presigned URL of the same link (the
    // same key), signed just now; it works in capitals too.
    for link in [short.clone(), short.replace("/s/", "/S/").to_uppercase().replace("HTTP://", "http://")] {
        let answer = fetch(&server, &link, None);
        answer.assert_status(302);
        let location = answer.header("location").unwrap().to_string();
        assert!(location.starts_with(&format!("{base}/shared/")), "{location}");
        assert!(location.contains(&format!("X-Amz-Credential={id}%2F")), "{location}");
        assert_eq!(full.split('?').next(), location.split('?').next());
    }
    let location = fetch(&server, &short, None).header("location").unwrap().to_string();
    let download = fetch(&server, &location, None);
    download.assert_status(200);
    assert!(download.body == bytes);
    assert!(download.header("content-disposition").unwrap().starts_with("attachment; filename=\"notes.txt\""));
    // The one use is spent: the short link says so, and the full one too.
    let spent = fetch(&server, &short, None);
    assert_eq!(spent.status, 410);
    assert!(spent.text().contains("used up"), "{}", spent.text());
    fetch(&server, &full, None).assert_error(403, "AccessDenied");

    // Revoked, expired and never made look the same.
    let never = fetch(&server, &format!("{base}/s/aaaaaaaaaaaaaaaaaaaaaaaaaa"), None);
    assert_eq!(never.status, 404);
    let (revoked, _, revoked_id) = share_short(&server, &path, &[]);
    assert_eq!(fetch(&server, &revoked, None).status, 302);
    assert!(larder_cli(&server, &["share", "revoke", &revoked_id]).0);
    let after_revoke = fetch(&server, &revoked, None);
    assert_eq!((after_revoke.status, after_revoke.body.clone()), (404, never.body.clone()));
    // Long enough to be in the future when the server gets it, even under
    // emulation.
    let (expiring, _, _) = share_short(&server, &path, &["--expires", "4s"]);
    std::thread::sleep(std::time::Duration::from_millis(5100));
    let expired = fetch(&server, &expiring, None);
    assert_eq!((expired.status, expired.body.clone()), (404, never.body));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file above 64 MiB goes up as a multipart upload (parts in parallel);
/// at a terminal a progress bar with rate and ETA shows, and nowhere else.
#[test]
fn large_shares_go_up_in_parts_with_a_progress_bar_at_a_terminal() {
    let server = TestServer::start();
    let dir = unique_dir("share-large");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("video.mp4");
    let bytes = pattern(100 << 20, 7);
    std::fs::write(&path, &bytes).unwrap();

    let (ok, out, err) = larder_cli(&server, &["share", path.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(!err.contains("ETA"), "no bar when stderr is not a terminal: {err}");
    let full = out.lines().find_map(|l| l.trim().strip_prefix("full:")).unwrap().trim().to_string();
    let download = fetch(&server, &full, None);
    download.assert_status(200);
    assert!(download.body == bytes, "the parts came back whole and in order");
    assert!(download.header("etag").unwrap().ends_with("-7\""), "7 parts of 16 MiB: {:?}", download.header("etag"));

    // At a terminal (`script` gives the command one), the bar.
    let credentials = test_credentials();
    let command =
        format!("{} share {} --endpoint http://{}", crate::harness::larder_shell_words(), path.display(), server.addr);
    let output = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("LARDER_ROOT_ACCESS_KEY", &credentials.access_key)
        .env("LARDER_ROOT_SECRET_KEY", &credentials.secret_key)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{shown}");
    assert!(shown.contains("100%") && shown.contains("MiB/s") && shown.contains("ETA"), "{shown}");
    let _ = std::fs::remove_dir_all(&dir);
}

//! The data folder: persistence across restarts, the LOCK, startup repair.

use std::process::Stdio;

use crate::harness::*;

#[test]
fn objects_survive_a_restart() {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "persist");
    let body = pattern(200_000, 5);
    client
        .send(&Request::new("PUT", "persist", "kept").header("x-amz-meta-m", "v").body(body.clone()))
        .assert_status(200);
    put(&client, "persist", "replaced", b"old");
    put(&client, "persist", "replaced", b"new");
    let dir = server.stop();
    assert!(dir.join("clean-shutdown").exists(), "a clean stop is marked");
    std::fs::write(dir.join("tmp").join("left-over-upload"), b"partial").unwrap();

    let server = TestServer::start_in(dir, |_| {});
    let client = server.client();
    let got = get(&client, "persist", "kept");
    got.assert_status(200);
    assert!(got.body == body);
    assert_eq!(got.header("x-amz-meta-m"), Some("v"));
    assert_eq!(get(&client, "persist", "replaced").body, b"new");
    assert!(std::fs::read_dir(server.dir.join("tmp")).unwrap().next().is_none(), "tmp/ is emptied at startup");
    assert!(!server.dir.join("clean-shutdown").exists(), "the marker is consumed at startup");
    assert_eq!(count_blobs(&server.dir), 2, "the replaced blob is gone");
}

pub fn count_blobs(dir: &std::path::Path) -> usize {
    let mut count = 0;
    for first in std::fs::read_dir(dir.join("blobs")).unwrap() {
        for second in std::fs::read_dir(first.unwrap().path()).unwrap() {
            count += std::fs::read_dir(second.unwrap().path()).unwrap().count();
        }
    }
    count
}

#[test]
fn a_second_server_cannot_share_the_data_folder() {
    let server = TestServer::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = larder::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: server.dir.clone(),
        root_credentials: Some(test_credentials()),
        ..larder::config::Config::default()
    };
    let error = runtime.block_on(larder::server::start(config)).err().expect("the second server must not start");
    assert!(error.to_string().contains("LOCK"), "{error}");

    let output = crate::harness::larder_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&server.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("another larder server is using"), "{stderr}");
    // The first server is unharmed.
    server.client().send(&Request::new("GET", "", "")).assert_status(200);
}

pub fn unsafe_kill(pid: u32, signal: i32) {
    // SAFETY: kill(2) takes any pid and signal and only returns an error
    // code; the pid is that of a child this test spawned and still owns.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// After a reboot without a real-time clock the system time can lag: the
/// saved clock floor keeps expired links expired, and health says so.
#[test]
fn a_clock_behind_the_floor_keeps_links_expired_and_is_reported() {
    let dir = unique_dir("clock");
    std::fs::create_dir_all(&dir).unwrap();
    let floor = larder::timefmt::now() + 3600;
    std::fs::write(dir.join("clock-floor"), floor.to_string()).unwrap();
    let server = TestServer::start_in(dir, |_| {});
    let client = server.client();
    let health = send_raw(
        server.addr,
        format!("GET /_larder/health HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", server.addr).as_bytes(),
        false,
    );
    health.assert_status(200);
    let report: serde_json::Value = serde_json::from_slice(&health.body).unwrap();
    assert_eq!(report["clock"], "behind");
    assert_eq!(report["status"], "degraded");
    assert!(report["reasons"][0].as_str().unwrap().contains("clock is behind"), "{report}");
    assert!(report["clock_behind_secs"].as_i64().unwrap() > 3500);
    // A link signed now for 30 minutes is already past its end by larder's time.
    let url = client.encode(&Request::new("GET", "", "").auth(Auth::Presigned(1800)));
    send_raw(server.addr, &url, false).assert_error(403, "AccessDenied");
}

#[test]
fn health_needs_no_credentials() {
    let server = TestServer::start();
    let raw = format!("GET /_larder/health HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", server.addr);
    let health = send_raw(server.addr, raw.as_bytes(), false);
    health.assert_status(200);
    let report: serde_json::Value = serde_json::from_slice(&health.body).unwrap();
    assert_eq!((report["status"].as_str(), report["clock"].as_str()), (Some("ok"), Some("ok")));
    assert_eq!(report["version"], env!("CARGO_PKG_VERSION"));
    assert!(report["disk_free_bytes"].as_u64().unwrap() > 0);
}

/// Relaxed durability skips the fsyncs, but a replaced blob goes only
/// after the index that replaced it is flushed.
#[test]
fn relaxed_durability_collects_replaced_blobs_after_a_flush() {
    let server = TestServer::start_with(|config| config.durability = larder::config::DurabilitySetting::Relaxed);
    let client = server.client();
    create_bucket(&client, "relaxed");
    put(&client, "relaxed", "k", b"one");
    put(&client, "relaxed", "k", b"two");
    assert_eq!(get(&client, "relaxed", "k").body, b"two");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while count_blobs(&server.dir) != 1 {
        assert!(std::time::Instant::now() < deadline, "the replaced blob was never collected");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(get(&client, "relaxed", "k").body, b"two");
}

/// `GET /metrics` answers only where `metrics_from` allows, without
/// credentials; with S3 credentials the path is a bucket named `metrics`.
#[test]
fn metrics_answer_only_where_allowed() {
    let server = TestServer::start();
    let scrape = |server: &TestServer, path: &str| {
        let raw = format!("GET {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", server.addr);
        send_raw(server.addr, raw.as_bytes(), false)
    };
    let answer = scrape(&server, "/metrics");
    answer.assert_status(200);
    assert!(answer.text().contains("# TYPE larder_requests_total counter"), "{}", answer.text());
    let client = server.client();
    create_bucket(&client, "metrics");
    client.send(&Request::new("GET", "metrics", "")).assert_status(200);

    let closed = TestServer::start_with(|config| config.metrics_from = Vec::new());
    scrape(&closed, "/metrics").assert_error(403, "AccessDenied");
    scrape(&closed, "/_larder/metrics").assert_error(403, "AccessDenied");
}

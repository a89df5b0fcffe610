//! Whether reads stay flat as one bucket grows: ListObjectsV2 pages per
//! second (the first page and one from the middle) and HEAD latency of
//! random keys at 10,000, 100,000 and 1,000,000 keys, each against the
//! same figures at the first size, measured in the same run. Also the
//! index's size on disk and how long the server takes to answer after a
//! clean stop and after SIGKILL (whose sweep of every blob runs while it
//! serves: its end is timed too).
//!
//! The keys are written through the store itself, with relaxed
//! durability, as the fill is not what is measured.
//!
//! `cargo bench --bench scale` (`LARDER_BENCH_KEYS=10000,100000` for other
//! sizes; the fill of a million keys takes minutes); under `cargo test`
//! two small sizes as a smoke test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use bytes::Bytes;
use larder::checksum::DigestSet;
use larder::store::{Durability, ExpectedDigests, ObjectMeta, Store, StoreConfig};

mod common;
use common::{signed_head, start};

const BUCKET: &str = "scale";

fn key(n: u64) -> String {
    format!("photos/2026/img-{n:08}.jpg")
}

/// Writes keys `from..to` into the bucket, creating it first if `from` is 0.
fn fill(dir: &Path, from: u64, to: u64) {
    let config = StoreConfig {
        data_dir: dir.to_path_buf(),
        durability: Durability::Relaxed,
        index_cache_bytes: 64 << 20,
        group_access: false,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let store = Store::open(&config).unwrap();
        if from == 0 {
            store.create_bucket(BUCKET, false).await.unwrap();
        }
        let body = Bytes::from_static(b"0123456789abcdef");
        for n in from..to {
            let mut upload = store.begin_upload(BUCKET, &key(n), DigestSet::default()).await.unwrap();
            upload.write(body.clone()).await.unwrap();
            upload.commit(ObjectMeta::default(), ExpectedDigests::default()).await.unwrap();
        }
        store.close(true).unwrap();
    });
}

/// Sends one signed request and returns status line and body.
fn request(addr: SocketAddr, method: &str, path_and_query: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(signed_head(addr, method, path_and_query, 0).as_bytes()).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n").map_or(answer.len(), |at| at + 4);
    let status = String::from_utf8_lossy(&answer[..head_end]).lines().next().unwrap_or_default().to_string();
    (status, answer[head_end..].to_vec())
}

/// Requests per second over `time`, each checked to answer 200.
fn rate(time: Duration, mut one: impl FnMut(u64)) -> f64 {
    let started = Instant::now();
    let mut count = 0;
    while started.elapsed() < time {
        one(count);
        count += 1;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn bytes_under(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                bytes_under(&entry.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

fn health(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(b"GET /_larder/health HTTP/1.1\r\nhost: larder\r\nconnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

fn stop(child: &mut Child, clean: bool) {
    if clean {
        // SAFETY: `kill` only sends a signal to the pid of a child this
        // process started and has not yet waited for, so it cannot reach
        // an unrelated process.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    } else {
        child.kill().unwrap();
    }
    child.wait().unwrap();
}

struct Figures {
    keys: u64,
    first_pages: f64,
    middle_pages: f64,
    head_mean: Duration,
    head_p99: Duration,
}

fn main() {
    let bench = std::env::args().any(|arg| arg == "--bench");
    let sizes: Vec<u64> = match std::env::var("LARDER_BENCH_KEYS") {
        Ok(list) => list.split(',').map(|n| n.trim().parse().expect("LARDER_BENCH_KEYS: numbers")).collect(),
        Err(_) if bench => vec![10_000, 100_000, 1_000_000],
        Err(_) => vec![300, 1_000],
    };
    let (time, heads) = if bench { (Duration::from_secs(3), 2_000) } else { (Duration::from_millis(200), 50) };
    let dir = std::env::temp_dir().join(format!("larder-scale-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut written = 0;
    let mut all = Vec::new();
    for &keys in &sizes {
        let started = Instant::now();
        fill(&dir, written, keys);
        eprintln!("scale: {keys} keys written in {:.1} s", started.elapsed().as_secs_f64());
        written = keys;

        let started = Instant::now();
        let (mut server, addr) = start(&dir, &[]);
        let clean_start = started.elapsed();

        let middle = format!("/{BUCKET}?list-type=2&start-after={}", key(keys / 2).replace('/', "%2F"));
        let (status, body) = request(addr, "GET", &middle);
        assert!(status.contains("200"), "{status}");
        let listed = String::from_utf8_lossy(&body).matches("<Key>").count();
        assert_eq!(listed as u64, 1_000.min(keys - keys / 2 - 1), "a middle page lists what follows");
        let list = |path: &str| {
            rate(time, |_| {
                let (status, _) = request(addr, "GET", path);
                assert!(status.contains("200"), "{status}");
            })
        };
        let first_pages = list(&format!("/{BUCKET}?list-type=2"));
        let middle_pages = list(&middle);

        let mut latencies: Vec<Duration> = (0..heads)
            .map(|i: u64| {
                // Spread over the whole bucket, the same way at every size.
                let n = i.wrapping_mul(2_654_435_761) % keys;
                let started = Instant::now();
                let (status, _) = request(addr, "HEAD", &format!("/{BUCKET}/{}", key(n)));
                assert!(status.contains("200"), "{status}");
                started.elapsed()
            })
            .collect();
        latencies.sort();
        let head_mean = latencies.iter().sum::<Duration>() / heads as u32;
        let head_p99 = latencies[latencies.len() * 99 / 100];

        // After a clean stop, then after SIGKILL (and its sweep).
        stop(&mut server, true);
        let started = Instant::now();
        let (mut server, addr) = start(&dir, &[]);
        let restart_clean = started.elapsed();
        stop(&mut server, false);
        let started = Instant::now();
        let (mut server, addr_after_kill) = start(&dir, &[]);
        let restart_unclean = started.elapsed();
        let _ = addr;
        while health(addr_after_kill).contains("checking blobs") {
            std::thread::sleep(Duration::from_millis(20));
        }
        let sweep = started.elapsed();
        stop(&mut server, true);

        println!(
            "scale: {keys} keys: index {:.1} MiB on disk; first start {:.0} ms, after a clean stop {:.0} ms, \
             after SIGKILL {:.0} ms to answer and {:.1} s until every blob was checked",
            bytes_under(&dir.join("index")) as f64 / (1 << 20) as f64,
            clean_start.as_secs_f64() * 1e3,
            restart_clean.as_secs_f64() * 1e3,
            restart_unclean.as_secs_f64() * 1e3,
            sweep.as_secs_f64(),
        );
        all.push(Figures { keys, first_pages, middle_pages, head_mean, head_p99 });
        let base = &all[0];
        let last = all.last().unwrap();
        println!(
            "scale: {keys} keys: LIST first page {:.0}/s ({:.2}x of {} keys), middle page {:.0}/s ({:.2}x); \
             HEAD mean {:.3} ms ({:.2}x), p99 {:.3} ms",
            last.first_pages,
            last.first_pages / base.first_pages,
            base.keys,
            last.middle_pages,
            last.middle_pages / base.middle_pages,
            last.head_mean.as_secs_f64() * 1e3,
            last.head_mean.as_secs_f64() / base.head_mean.as_secs_f64(),
            last.head_p99.as_secs_f64() * 1e3,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

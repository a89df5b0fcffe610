//! What durability costs a PUT: sequential 4 KiB and 1 MiB PUTs with the
//! index fsynced before every answer (the default), against the same
//! server leaving that fsync to sled's background thread (as larder did
//! before; `LARDER_BENCH_WITHOUT_INDEX_FSYNC`, for this measurement only)
//! and against `durability = "relaxed"` (no fsync at all), all measured in
//! the same run on the same disk. The figures that matter are the ratios.
//!
//! `cargo bench --bench put_latency`; under `cargo test` a few PUTs each
//! as a smoke test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

mod common;
use common::{put, signed_head, start};

struct Mode {
    name: &'static str,
    env: &'static [(&'static str, &'static str)],
    relaxed: bool,
}

const MODES: [Mode; 3] = [
    Mode { name: "full (index fsynced before the answer)", env: &[], relaxed: false },
    Mode { name: "full without the index fsync", env: &[("LARDER_BENCH_WITHOUT_INDEX_FSYNC", "1")], relaxed: false },
    Mode { name: "relaxed (no fsync)", env: &[], relaxed: true },
];

/// Mean time of `count` sequential PUTs of `size` bytes.
fn measure(mode: &Mode, size: u64, count: u32) -> Duration {
    let dir = std::env::temp_dir().join(format!("larder-put-latency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("larder.toml");
    std::fs::write(&config, if mode.relaxed { "durability = \"relaxed\"\n" } else { "" }).unwrap();
    let mut env = mode.env.to_vec();
    let config_path = config.to_str().unwrap().to_string();
    env.push(("LARDER_CONFIG", &config_path));
    let (mut child, addr) = start(&dir.join("data"), &env);
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(signed_head(addr, "PUT", "/latency", 0).as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // One PUT first, so that no figure includes creating the folders.
    put(addr, "/latency/warm-up", size);
    let started = Instant::now();
    for i in 0..count {
        let status = put(addr, &format!("/latency/object-{}", i % 16), size);
        assert!(status.contains("200"), "{status}");
    }
    let mean = started.elapsed() / count;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    mean
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    for (size, label, count) in
        [(4 * 1024, "4 KiB", if full { 300 } else { 5 }), (1 << 20, "1 MiB", if full { 60 } else { 3 })]
    {
        let means: Vec<Duration> = MODES.iter().map(|mode| measure(mode, size, count)).collect();
        let reference = means[1].as_secs_f64();
        for (mode, mean) in MODES.iter().zip(&means) {
            println!(
                "put_latency: {label} PUT, {}: {:.2} ms ({:.2}x without the index fsync)",
                mode.name,
                mean.as_secs_f64() * 1000.0,
                mean.as_secs_f64() / reference
            );
        }
    }
}

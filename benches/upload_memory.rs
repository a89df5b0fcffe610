//! Resident memory of the server while it takes large uploads: one 1 GiB
//! PUT, then 32 concurrent 64 MiB PUTs. The reference is the same
//! server's resident memory when idle, measured in the same run; the
//! figure that matters is the peak above it, which must not grow with the
//! bytes uploaded (no body is ever held whole).
//!
//! `cargo bench --bench upload_memory` runs the full sizes; under
//! `cargo test` it runs a small version as a smoke test. Both fail if the
//! peak above idle exceeds the bound.

use std::io::{Read, Write};
use std::net::TcpStream;

mod common;
use common::{put, signed_head, start, MIB};

/// Peak resident memory above idle that the server may use.
const BOUND_MIB: u64 = 160;

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn main() {
    let full = std::env::args().any(|arg| arg == "--bench");
    let (single, concurrent, each) = if full { (1024 * MIB, 32, 64 * MIB) } else { (32 * MIB, 8, 4 * MIB) };
    let dir = std::env::temp_dir().join(format!("larder-upload-memory-{}", std::process::id()));
    let (mut child, addr) = start(&dir, &[]);
    let pid = child.id();
    let create = signed_head(addr, "PUT", "/memory", 0);
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(create.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let idle = status_kib(pid, "VmRSS:");
    let status = put(addr, "/memory/single", single);
    assert!(status.contains("200"), "{status}");
    let after_single = status_kib(pid, "VmHWM:");
    let workers: Vec<_> = (0..concurrent)
        .map(|i| std::thread::spawn(move || put(addr, &format!("/memory/concurrent-{i}"), each)))
        .collect();
    for worker in workers {
        let status = worker.join().unwrap();
        assert!(status.contains("200"), "{status}");
    }
    let after_concurrent = status_kib(pid, "VmHWM:");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let peak_above_idle = after_concurrent.saturating_sub(idle) / 1024;
    println!("upload_memory: idle resident memory (reference): {} MiB", idle / 1024);
    println!(
        "upload_memory: peak after one {} MiB PUT: {} MiB ({:.2}x idle)",
        single / MIB,
        after_single / 1024,
        after_single as f64 / idle as f64
    );
    println!(
        "upload_memory: peak after {concurrent} concurrent {} MiB PUTs: {} MiB ({:.2}x idle); {} MiB uploaded in all",
        each / MIB,
        after_concurrent / 1024,
        after_concurrent as f64 / idle as f64,
        (single + concurrent * each) / MIB
    );
    assert!(peak_above_idle < BOUND_MIB, "peak {peak_above_idle} MiB above idle exceeds {BOUND_MIB} MiB");
}

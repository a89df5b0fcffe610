//! How long `larder repair` takes to rebuild the index of a large data
//! folder: N one-KiB objects (written through the store, with relaxed
//! durability, as the fill is not what is measured), the index removed,
//! then `larder repair` timed as a user runs it, against `find` listing
//! the same blobs folder in the same run (the floor any rebuild pays).
//!
//! `cargo bench --bench repair` (100,000 objects; `LARDER_BENCH_OBJECTS`
//! to change); under `cargo test` 300 objects as a smoke test.

use std::time::Instant;

use bytes::Bytes;
use larder::checksum::DigestSet;
use larder::store::{Durability, ExpectedDigests, ObjectMeta, Store, StoreConfig};

fn main() {
    let bench = std::env::args().any(|arg| arg == "--bench");
    let objects: u64 = std::env::var("LARDER_BENCH_OBJECTS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(if bench { 100_000 } else { 300 });
    let dir = std::env::temp_dir().join(format!("larder-repair-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = StoreConfig {
        data_dir: dir.clone(),
        durability: Durability::Relaxed,
        index_cache_bytes: 64 << 20,
        group_access: false,
    };

    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let store = Store::open(&config).unwrap();
        store.create_bucket("bench", false).await.unwrap();
        let body = Bytes::from(vec![7u8; 1024]);
        for i in 0..objects {
            let key = format!("folder-{:03}/object-{i:07}", i % 997);
            let mut upload = store.begin_upload("bench", &key, DigestSet::default()).await.unwrap();
            upload.write(body.clone()).await.unwrap();
            upload.commit(ObjectMeta::default(), ExpectedDigests::default()).await.unwrap();
            if bench && (i + 1) % 20_000 == 0 {
                eprintln!("  written {} objects", i + 1);
            }
        }
        store.close(true).unwrap();
    });
    drop(runtime);
    let fill = started.elapsed();
    std::fs::remove_dir_all(dir.join("index")).unwrap();

    // The floor: listing every blob, cold where the OS allows.
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
    let started = Instant::now();
    let listed = std::process::Command::new("find").arg(dir.join("blobs")).args(["-type", "f"]).output().unwrap();
    let find = started.elapsed();
    let blobs = listed.stdout.iter().filter(|&&byte| byte == b'\n').count() as u64;
    assert_eq!(blobs, objects);

    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
    let started = Instant::now();
    let repair = std::process::Command::new(env!("CARGO_BIN_EXE_larder"))
        .args(["repair", "--data-dir"])
        .arg(&dir)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(repair.status.success(), "{}", String::from_utf8_lossy(&repair.stderr));

    // Every object is back.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_larder"))
        .args(["repair", "--check", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{report}");
    let _ = std::fs::remove_dir_all(&dir);

    println!("repair of {objects} objects (filled in {:.1} s):", fill.as_secs_f64());
    println!(
        "  larder repair   {:>8.1} s  {:>8.0} objects/s",
        elapsed.as_secs_f64(),
        objects as f64 / elapsed.as_secs_f64()
    );
    println!("  find blobs/     {:>8.1} s", find.as_secs_f64());
    println!("  ratio repair / find: {:.1}", elapsed.as_secs_f64() / find.as_secs_f64().max(1e-6));
}

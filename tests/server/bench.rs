//! `larder bench`: every figure measured, JSON that reads, nothing left behind.

use crate::harness::{larder_command, unique_dir};

#[test]
fn bench_measures_everything_and_cleans_up() {
    let dir = unique_dir("bench");
    std::fs::create_dir_all(&dir).unwrap();
    let output = larder_command()
        .args(["bench", "--json", "--seconds", "0.3", "--data-dir"])
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .env_remove("LARDER_CONFIG")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for (section, fields) in [
        (
            "cpu",
            &[
                "sigv4_presigned_verifications_per_sec",
                "md5_mb_per_sec",
                "sha256_mb_per_sec",
                "crc32c_mb_per_sec",
                "crc64nvme_mb_per_sec",
            ][..],
        ),
        ("disk", &["fsync_median_ms", "fsync_p99_ms", "write_mb_per_sec", "read_mb_per_sec"][..]),
        ("server", &["put_4kib_per_sec", "get_4kib_per_sec", "put_1mib_mb_per_sec", "get_1mib_mb_per_sec"][..]),
    ] {
        for field in fields {
            let value = report[section][field].as_f64().unwrap_or_else(|| panic!("{section}.{field} in {report}"));
            assert!(value > 0.0, "{section}.{field} = {value}");
        }
    }
    assert!(["disk", "cpu"].contains(&report["limit"].as_str().unwrap()), "{report}");
    assert!(report["summary"].as_str().unwrap().contains("uploads of 1 MiB per second"), "{report}");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "the bench left files behind");
    std::fs::remove_dir_all(&dir).unwrap();
}

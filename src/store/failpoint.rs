//! Named crash points in the write paths, for the crash-injection tests:
//! with the `failpoints` feature, `LARDER_FAILPOINTS=after-rename,...`
//! makes the process abort (no unwinding, no flushing, as a crash) the
//! first time it reaches one of the named points. Without the feature
//! every point compiles to nothing.
//!
//! The points, in the order a write reaches them:
//! `after-blob-fsync` (data and footer synced, not yet renamed),
//! `after-rename` (in `blobs/`, directory synced, index untouched),
//! `before-index-flush` (index changed, not yet flushed),
//! `after-index-commit` (index durable, no answer yet, garbage not removed),
//! `after-garbage-unlink` (a replaced blob removed, still on the garbage list).

#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    use std::sync::OnceLock;
    static ARMED: OnceLock<Vec<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| {
        std::env::var("LARDER_FAILPOINTS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .collect()
    });
    if armed.iter().any(|armed| armed == name) {
        eprintln!("larder: fail point {name} reached; aborting");
        std::process::abort();
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

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
//!
//! Pause points (`LARDER_PAUSEPOINTS=...`) wait a second instead:
//! `sweep-each-blob` (before the startup sweep judges each blob).

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

/// A point where the process waits a moment instead (for tests that must
/// act while something slow, like the startup sweep, is under way).
#[cfg(feature = "failpoints")]
pub fn pause(name: &str) {
    let armed = std::env::var("LARDER_PAUSEPOINTS").unwrap_or_default();
    if armed.split(',').any(|armed| armed.trim() == name) {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn pause(_name: &str) {}

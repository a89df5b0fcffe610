//! `larder lifecycle run`: the buckets' lifecycle rules, applied now.

use super::{print_json, ServerArgs};

/// One line for a lifecycle run's summary.
pub fn describe_run(run: &serde_json::Value) -> String {
    let number = |name: &str| run[name].as_u64().unwrap_or(0);
    let started = run["started"].as_i64().map(larder::timefmt::format_iso8601).unwrap_or_default();
    format!(
        "{started}: {} buckets, {} expired, {} noncurrent versions and {} delete markers removed, {} uploads aborted, {} kept by Object Lock, {} errors",
        number("buckets"),
        number("expired"),
        number("noncurrent_removed"),
        number("delete_markers_removed"),
        number("uploads_aborted"),
        number("kept_by_object_lock"),
        number("errors"),
    )
}

/// `larder lifecycle run`.
pub fn lifecycle_run_command(json: bool, server: ServerArgs) -> Result<(), String> {
    let server = server.resolve()?;
    let summary = server.admin()?.run_lifecycle()?;
    if json {
        return print_json(&summary);
    }
    println!("lifecycle run {}", describe_run(&summary));
    Ok(())
}

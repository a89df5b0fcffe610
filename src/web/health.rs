//! What watches larder: `GET /_larder/health` (JSON, no credentials) and
//! `GET /metrics` (Prometheus' text format, from `metrics_from`).

use http::{Method, Response, StatusCode};

use crate::clock::ClockState;
use crate::s3::body;
use crate::s3::{RequestContext, S3Error, S3Result, S3};
use crate::store::Recovery;

use super::json_response;

pub const HEALTH_PATH: &str = "/_larder/health";

/// `GET /_larder/health`: is larder up, and is its clock sane?
pub fn health(s3: &S3) -> S3Result {
    let (clock, behind, ahead, advice) = match s3.clock.state() {
        ClockState::Ok => ("ok", 0, 0, None),
        ClockState::Behind(secs) => (
            "behind",
            secs,
            0,
            Some("The system clock is behind the last time larder saw; larder keeps that time. Set the clock or start NTP."),
        ),
        ClockState::Ahead(secs) => (
            "ahead",
            0,
            secs,
            Some("The system clock is ahead of the time larder can vouch for. If it is wrong, correct it; if it is right, larder adopts it after 30 minutes."),
        ),
    };
    let (recovery, blobs_checked) = match s3.store.recovery() {
        Recovery::Done => ("done", None),
        Recovery::Checking { blobs } => ("checking blobs after an unclean stop", Some(blobs)),
    };
    let mut reasons = Vec::new();
    if let Some(failure) = s3.store.degraded() {
        reasons.push(failure);
    }
    if s3.store.nearly_full() {
        reasons.push("the disk is nearly full: uploads are refused until space is freed".to_string());
    }
    if clock == "behind" {
        reasons.push("the system clock is behind the time larder last saw".to_string());
    }
    json_response(
        StatusCode::OK,
        &serde_json::json!({
            "status": if reasons.is_empty() { "ok" } else { "degraded" },
            "reasons": reasons,
            "degraded_reason": s3.store.degraded(),
            "version": env!("CARGO_PKG_VERSION"),
            "disk_free_bytes": s3.store.free_space(),
            "recovery": recovery,
            "recovery_blobs_checked": blobs_checked,
            "clock": clock,
            "clock_behind_secs": behind,
            "clock_ahead_secs": ahead,
            "clock_advice": advice,
        }),
    )
}

/// Is this a Prometheus scrape? `GET /metrics` without S3 credentials
/// (with them, it is a listing of a bucket named `metrics`), or
/// `GET /_larder/metrics`.
pub fn is_metrics_scrape(context: &RequestContext) -> bool {
    if context.method != Method::GET {
        return false;
    }
    let signed = context.headers.contains_key(http::header::AUTHORIZATION)
        || context.query.get("X-Amz-Signature").is_some()
        || context.query.get("Signature").is_some();
    context.path == METRICS_PATH || (context.path == "/metrics" && !signed)
}

pub const METRICS_PATH: &str = "/_larder/metrics";

/// Objects and bytes stored, over every bucket.
pub(super) async fn stored(s3: &S3) -> Result<(u64, u64), S3Error> {
    let buckets = s3.store.list_buckets().await?;
    Ok(buckets.iter().fold((0, 0), |(objects, bytes), (_, bucket)| (objects + bucket.objects, bytes + bucket.bytes)))
}

/// Share links not yet expired.
pub(super) fn live_links(s3: &S3) -> u64 {
    let now = s3.clock.now();
    s3.keyring.list().iter().filter(|key| key.share.is_some() && !key.is_expired(now)).count() as u64
}

/// `GET /metrics`: the counters, and what the store and clock say now.
pub async fn metrics(s3: &S3, context: &RequestContext) -> S3Result {
    if !s3.config.metrics_from.iter().any(|cidr| cidr.contains(context.client)) {
        return Err(S3Error::access_denied());
    }
    let (objects, bytes_stored) = stored(s3).await?;
    let (clock_behind_secs, clock_ahead_secs) = match s3.clock.state() {
        ClockState::Ok => (0, 0),
        ClockState::Behind(secs) => (secs, 0),
        ClockState::Ahead(secs) => (0, secs),
    };
    let gauges = crate::metrics::Gauges {
        objects,
        bytes_stored,
        disk_free_bytes: s3.store.free_space(),
        clock_behind_secs,
        clock_ahead_secs,
        live_links: live_links(s3),
        degraded: s3.store.degraded().is_some(),
    };
    let text = crate::metrics::global().render(&gauges);
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")
        .body(body::full(text))
        .map_err(|_| S3Error::internal())
}

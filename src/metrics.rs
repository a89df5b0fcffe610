//! What `GET /metrics` reports, in Prometheus' text format: counters and
//! histograms kept by the parts that see the events (the HTTP edge, the
//! accept loop, the store's syncs), gathered in one place per process.
//!
//! A process runs one server, so the figures are process-wide. Counting is
//! a few atomic adds per request; the per-operation table takes a short
//! lock.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BOUNDS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

pub struct Histogram {
    /// Observations at or below each bound (not cumulative), then above all.
    buckets: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    const fn new() -> Histogram {
        Histogram { buckets: [const { AtomicU64::new(0) }; LATENCY_BOUNDS.len() + 1], sum_micros: AtomicU64::new(0) }
    }

    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let bucket = LATENCY_BOUNDS.iter().position(|bound| secs <= *bound).unwrap_or(LATENCY_BOUNDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BOUNDS.iter().zip(&self.buckets) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.buckets[LATENCY_BOUNDS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

pub struct Metrics {
    /// (operation, status) -> requests answered.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub request_latency: Histogram,
    /// fsync/fdatasync of blobs and of the index.
    pub fsync_latency: Histogram,
    pub open_connections: AtomicI64,
    pub refused_connections: AtomicU64,
    /// Downloads started and uploads made through share links.
    pub link_uses: AtomicU64,
}

/// The process' metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics {
        requests: Mutex::new(BTreeMap::new()),
        bytes_in: AtomicU64::new(0),
        bytes_out: AtomicU64::new(0),
        request_latency: Histogram::new(),
        fsync_latency: Histogram::new(),
        open_connections: AtomicI64::new(0),
        refused_connections: AtomicU64::new(0),
        link_uses: AtomicU64::new(0),
    })
}

/// Runs `sync` (an fsync) and records how long it took.
pub fn timed_sync<T>(sync: impl FnOnce() -> T) -> T {
    let started = std::time::Instant::now();
    let result = sync();
    global().fsync_latency.observe(started.elapsed());
    result
}

/// What the server knows at scrape time, beside the counters.
pub struct Gauges {
    pub objects: u64,
    pub bytes_stored: u64,
    pub disk_free_bytes: u64,
    pub clock_behind_secs: i64,
    pub clock_ahead_secs: i64,
    pub live_links: u64,
    pub degraded: bool,
}

impl Metrics {
    pub fn count_request(&self, operation: &'static str, status: u16, latency: Duration) {
        let mut requests = self.requests.lock().unwrap_or_else(|poison| poison.into_inner());
        *requests.entry((operation, status)).or_insert(0) += 1;
        drop(requests);
        self.request_latency.observe(latency);
    }

    /// The text a Prometheus scrape reads.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed).to_string();
        metric("larder_received_bytes_total", "counter", "Request body bytes read.", load(&self.bytes_in));
        metric("larder_sent_bytes_total", "counter", "Response body bytes sent.", load(&self.bytes_out));
        metric(
            "larder_open_connections",
            "gauge",
            "Connections being served.",
            self.open_connections.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "larder_refused_connections_total",
            "counter",
            "Connections answered 503 SlowDown for lack of room.",
            load(&self.refused_connections),
        );
        metric(
            "larder_link_uses_total",
            "counter",
            "Share link downloads started and uploads made.",
            load(&self.link_uses),
        );
        metric("larder_objects", "gauge", "Objects stored.", gauges.objects.to_string());
        metric("larder_stored_bytes", "gauge", "Bytes of objects stored.", gauges.bytes_stored.to_string());
        metric(
            "larder_disk_free_bytes",
            "gauge",
            "Bytes free on the data folder's disk.",
            gauges.disk_free_bytes.to_string(),
        );
        metric(
            "larder_clock_behind_seconds",
            "gauge",
            "How far the system clock is behind the time larder last saw.",
            gauges.clock_behind_secs.to_string(),
        );
        metric(
            "larder_clock_ahead_seconds",
            "gauge",
            "How far the system clock is ahead of the time larder can vouch for.",
            gauges.clock_ahead_secs.to_string(),
        );
        metric("larder_live_links", "gauge", "Share links not yet expired.", gauges.live_links.to_string());
        metric(
            "larder_degraded",
            "gauge",
            "1 while the index cannot write (reads only).",
            u8::from(gauges.degraded).to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP larder_requests_total Requests answered, by S3 operation and status.\n# TYPE larder_requests_total counter"
        );
        for ((operation, status), count) in self.requests.lock().unwrap_or_else(|poison| poison.into_inner()).iter() {
            let _ = writeln!(out, "larder_requests_total{{operation=\"{operation}\",status=\"{status}\"}} {count}");
        }
        self.request_latency.render(
            &mut out,
            "larder_request_duration_seconds",
            "Time from a request's head to its answer's head.",
        );
        self.fsync_latency.render(&mut out, "larder_fsync_duration_seconds", "Time of each fsync of data or index.");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let histogram = Histogram::new();
        histogram.observe(Duration::from_micros(300));
        histogram.observe(Duration::from_millis(3));
        histogram.observe(Duration::from_secs(9));
        let mut out = String::new();
        histogram.render(&mut out, "h", "test");
        assert!(out.contains("h_bucket{le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"5\"} 2\n"), "{out}");
        assert!(out.contains("h_bucket{le=\"+Inf\"} 3\nh_sum 9.0033\nh_count 3\n"), "{out}");
    }
}

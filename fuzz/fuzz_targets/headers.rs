//! Request headers (s3/headers.rs): Range against objects of several
//! sizes, the conditional headers (If-Match, If-None-Match,
//! If-Modified-Since, If-Unmodified-Since, also of a copy source), write
//! conditions, digests, metadata and the object headers written back; and
//! the time formats (timefmt.rs), which must read back what they write.
//!
//! Input: a request as text (see `larder_fuzz::text_request`); its query
//! gives `response-*` overrides and `partNumber`.

#![no_main]

use http::HeaderMap;
use larder::fuzzing::{
    evaluate_conditions, expected_digests, object_headers, object_meta, parse_range, part_number, write_condition,
    Query, RangeRequest,
};
use larder::store::{BlobId, ObjectRecord};
use larder::timefmt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = larder_fuzz::text_request(data) else {
        return;
    };
    let headers = &text.headers;
    let query = Query(larder::sigv4::parse_query(text.query()).unwrap_or_default());

    for value in headers.get_all(http::header::RANGE) {
        let Ok(value) = value.to_str() else { continue };
        for size in [0, 1, 2, 10, 1000, 5 << 32, u64::MAX - 1, u64::MAX] {
            match parse_range(value, size) {
                RangeRequest::Bytes(first, last) => assert!(first <= last && last < size, "{value} of {size}"),
                RangeRequest::Whole | RangeRequest::Unsatisfiable => {}
            }
        }
    }

    let mut record = ObjectRecord {
        blob: BlobId([7; 16]),
        size: 10,
        etag: "0123456789abcdef0123456789abcdef".into(),
        last_modified: 1_369_353_600,
        sequence: 1,
        version: None,
        delete_marker: false,
        lock: Default::default(),
        full_object_checksum: false,
        checksum: None,
        meta: Default::default(),
        parts: Vec::new(),
    };
    for prefix in ["", "x-amz-copy-source-"] {
        let _ = evaluate_conditions(headers, prefix, &record);
    }
    let _ = write_condition(headers);
    let _ = expected_digests(headers, None);
    let _ = part_number(query.get("partNumber"));
    if let Ok(meta) = object_meta(headers) {
        record.meta = meta;
        let mut out = HeaderMap::new();
        object_headers(&mut out, &record, &query, true);
    }

    for (_, value) in headers {
        if let Ok(value) = value.to_str() {
            times(value);
        }
    }
});

/// Each format reads back the time it writes of what it read.
fn times(text: &str) {
    if let Some(t) = timefmt::parse_http_date(text) {
        assert_eq!(timefmt::parse_http_date(&timefmt::format_http_date(t)), Some(t), "{text}");
    }
    if let Some(t) = timefmt::parse_amz_date(text) {
        assert_eq!(timefmt::parse_amz_date(&timefmt::format_amz_date(t)), Some(t), "{text}");
        assert_eq!(timefmt::format_scope_date(t).len(), 8);
    }
    if let Some(t) = timefmt::parse_iso8601(text) {
        assert_eq!(timefmt::parse_iso8601(&timefmt::format_iso8601(t)), Some(t), "{text}");
    }
    if let Ok(seconds) = timefmt::parse_duration(text) {
        assert!(seconds >= 0, "{text}");
    }
}

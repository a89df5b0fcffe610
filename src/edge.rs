//! The HTTP edge, where every request starts and ends: it gets its id, its
//! client address (believing only trusted proxies) and its decoded path,
//! goes to one of larder's own endpoints ([`crate::web`]) or to the S3 API
//! ([`crate::s3`]), and leaves with its refusal written as S3's error
//! document (or, for a browser on a dead link, a page), its CORS headers
//! and its place in the metrics.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use http::{HeaderValue, Method, Request, Response};
use hyper::body::Incoming;

use crate::s3::body::{self, RequestBody, ResponseBody};
use crate::s3::{client, error_response, new_request_id, router, RequestContext, S3Result, S3};
use crate::web;

/// Bytes of an unread upload body read and dropped before an error answer,
/// and the time allowed for it.
const DRAIN_LIMIT: u64 = 8 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(5);

const X_AMZ_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-amz-request-id");

/// Answers one request; never fails and never panics on input.
/// `over_tls`: the connection itself is HTTPS.
pub async fn handle(s3: &S3, request: Request<Incoming>, peer: SocketAddr, over_tls: bool) -> Response<ResponseBody> {
    let request_id = new_request_id();
    let (mut parts, incoming) = request.into_parts();
    let config = &s3.config;
    // Behind a reverse proxy that rewrites Host, the host the client
    // signed is the one the proxy reports.
    if let Some(host) = client::forwarded_host(peer.ip(), &parts.headers, &config.trusted_proxies) {
        parts.headers.insert(http::header::HOST, host);
    }
    let body = RequestBody::new(incoming, config.body_pace);
    let method = parts.method.clone();
    let resource = parts.uri.path().to_string();
    let expects_continue = parts
        .headers
        .get(http::header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut origin = client::Origin::of(peer.ip(), &parts.headers, &config.trusted_proxies);
    origin.secure |= over_tls;
    let cors_origin = parts.headers.get(http::header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_string);
    let refuse_with_page = web::is_browser_on_upload_link(&resource, &parts.headers);
    let client = origin.address;
    let started = Instant::now();

    let (result, mut body, operation) = match s3.prepare(parts, body, &request_id, origin) {
        Ok(mut context) => {
            let result = dispatch(s3, &mut context).await;
            (result, context.body, context.operation)
        }
        Err((error, body)) => (Err(error), body, "Unknown"),
    };
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(code = error.code, %resource, %client, request_id, "request refused");
            if !body.touched() && !expects_continue {
                let _ = tokio::time::timeout(DRAIN_TIME, body.drain(DRAIN_LIMIT)).await;
            }
            if refuse_with_page {
                web::dead_link_page(error.status)
            } else {
                error_response(&error, &method, &resource, &request_id)
            }
        }
    };
    if let Some(origin) = cors_origin {
        if method != Method::OPTIONS {
            let (bucket, _) = router::split_path(&resource);
            s3.add_cors_headers(bucket.unwrap_or_default(), &origin, &method, &mut response).await;
        }
    }
    let headers = response.headers_mut();
    if !body.is_complete() {
        // Unread body bytes would be taken for the next request: the
        // client must not reuse this connection, and hyper closes it.
        headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    if let Ok(value) = HeaderValue::try_from(request_id) {
        headers.insert(X_AMZ_REQUEST_ID, value);
    }
    headers.insert(http::header::SERVER, HeaderValue::from_static("larder"));
    count(response, operation, body.received, started)
}

/// larder's own endpoints first, then the S3 API.
async fn dispatch(s3: &S3, context: &mut RequestContext) -> S3Result {
    match web::route(context) {
        Some(endpoint) => {
            context.operation = endpoint.name();
            web::serve(s3, endpoint, context).await
        }
        None => s3.serve(context).await,
    }
}

/// Counts the request in the metrics: its operation and status, the
/// bytes it read and (as the body goes out) sent, its time to answer.
fn count(
    response: Response<ResponseBody>,
    operation: &'static str,
    received: u64,
    started: Instant,
) -> Response<ResponseBody> {
    let metrics = crate::metrics::global();
    metrics.count_request(operation, response.status().as_u16(), started.elapsed());
    metrics.bytes_in.fetch_add(received, Ordering::Relaxed);
    match http_body::Body::size_hint(response.body()).exact() {
        Some(length) => {
            metrics.bytes_out.fetch_add(length, Ordering::Relaxed);
            response
        }
        None => response.map(|body| {
            body::metered(body, |sent| {
                crate::metrics::global().bytes_out.fetch_add(sent, Ordering::Relaxed);
            })
        }),
    }
}

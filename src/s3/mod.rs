//! The S3 API over HTTP: routing, authentication, one handler per
//! operation, XML in and out, and the one place where errors from every
//! layer become S3 error documents. Never touches sled or file paths:
//! objects go through [`crate::store::Store`].

pub mod access;
pub mod admin;
mod auth;
mod body;
mod bucket;
pub(crate) mod chunked;
mod client;
mod config_cache;
pub(crate) mod cors;
mod delete_objects;
mod error;
pub(crate) mod form_data;
pub(crate) mod headers;
mod list;
pub(crate) mod multipart;
mod object;
mod payload;
mod policy;
pub(crate) mod post;
pub(crate) mod router;
pub mod share;
mod short_link;
mod sts;
mod subresource;
mod upload_page;
pub(crate) mod xml;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::clock::Clock;
use crate::iam::{Action, Cidr, Keyring, Principal};
use crate::sigv4::{self, ParsedAuth, SigningKey};
use crate::store::Store;

use body::RequestBody;
pub use body::{Pace, ResponseBody};
pub use error::S3Error;
use router::{Operation, Query};

/// Largest request head accepted, in bytes of header names and values.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Longest bucket name looked up (S3 creates up to 63; legacy names reach 255).
const MAX_BUCKET_NAME_BYTES: usize = 255;
/// Longest object key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Bytes of an unread upload body read and dropped before an error answer,
/// and the time allowed for it.
const DRAIN_LIMIT: u64 = 8 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct S3Config {
    pub region: String,
    /// How slowly a request body may arrive.
    pub body_pace: body::Pace,
    /// Reverse proxies whose X-Forwarded-For / Forwarded is believed.
    pub trusted_proxies: Vec<Cidr>,
    /// Where the admin API answers from.
    pub admin_from: Vec<Cidr>,
    /// The base of the links larder makes (checked, no trailing slash).
    pub public_url: String,
    /// Where `GET /metrics` answers.
    pub metrics_from: Vec<Cidr>,
    /// Accept Signature Version 2.
    pub sigv2: bool,
    /// For `larder status`: where the server listens and keeps its data.
    pub listen: SocketAddr,
    pub data_dir: std::path::PathBuf,
}

/// The S3 front end: shared by every connection.
pub struct S3 {
    store: Store,
    keyring: Arc<Keyring>,
    config: S3Config,
    clock: Arc<Clock>,
    /// Parsed bucket policies and CORS rules by bucket.
    policies: config_cache::ConfigCache<crate::iam::Policy>,
    cors: config_cache::ConfigCache<cors::CorsConfig>,
    started: std::time::Instant,
}

/// One request on its way through a handler.
pub struct RequestContext {
    pub request_id: String,
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Query,
    /// The path decoded once, as signed.
    pub path: String,
    /// The path exactly as the request line sent it (SigV2 signs it so).
    pub raw_path: String,
    pub bucket: String,
    pub key: String,
    pub body: RequestBody,
    pub principal: Principal,
    /// Where the request comes from (see `client.rs`).
    pub client: IpAddr,
    /// The address of the connection itself (a proxy's, if one is between).
    pub peer: IpAddr,
    /// Did it reach us over TLS (through a trusted proxy that says so)?
    pub secure: bool,
    /// The verified signature, when the request carried one, and the key
    /// that checked it (aws-chunked bodies go on signing with it).
    pub auth: Option<ParsedAuth>,
    pub signing_key: Option<SigningKey>,
    /// The operation, once routed (for metrics and logs).
    pub operation: &'static str,
}

pub type S3Result = Result<Response<ResponseBody>, S3Error>;

impl S3 {
    pub fn new(store: Store, keyring: Arc<Keyring>, config: S3Config, clock: Arc<Clock>) -> S3 {
        S3 {
            store,
            keyring,
            config,
            clock,
            policies: Default::default(),
            cors: Default::default(),
            started: std::time::Instant::now(),
        }
    }

    /// Answers one request; never fails and never panics on input.
    /// `over_tls`: the connection itself is HTTPS.
    pub async fn handle(&self, request: Request<Incoming>, peer: SocketAddr, over_tls: bool) -> Response<ResponseBody> {
        let request_id = new_request_id();
        let (mut parts, incoming) = request.into_parts();
        // Behind a reverse proxy that rewrites Host, the host the client
        // signed is the one the proxy reports.
        if let Some(host) = client::forwarded_host(peer.ip(), &parts.headers, &self.config.trusted_proxies) {
            parts.headers.insert(http::header::HOST, host);
        }
        let body = RequestBody::new(incoming, self.config.body_pace);
        let method = parts.method.clone();
        let resource = parts.uri.path().to_string();
        let expects_continue = parts
            .headers
            .get(http::header::EXPECT)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let mut origin = client::Origin::of(peer.ip(), &parts.headers, &self.config.trusted_proxies);
        origin.secure |= over_tls;
        let cors_origin = parts.headers.get(http::header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_string);
        let wants_html = upload_page::wants_html(&parts.headers);
        let client = origin.address;
        let started = std::time::Instant::now();
        let (result, mut body, operation) = self.dispatch(parts, body, &request_id, origin).await;
        let mut response = match result {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(code = error.code, %resource, %client, request_id, "request refused");
                if !body.touched() && !expects_continue {
                    let _ = tokio::time::timeout(DRAIN_TIME, body.drain(DRAIN_LIMIT)).await;
                }
                // A browser following a dead link gets a page, not XML.
                if resource.starts_with(upload_page::PAGE_PREFIX) && wants_html {
                    upload_page::expired_page(error.status)
                } else {
                    error_response(&error, &method, &resource, &request_id)
                }
            }
        };
        if let Some(origin) = cors_origin {
            if method != Method::OPTIONS {
                let (bucket, _) = router::split_path(&resource);
                self.add_cors_headers(bucket.unwrap_or_default(), &origin, &method, &mut response).await;
            }
        }
        let headers = response.headers_mut();
        if !body.is_complete() {
            // Unread body bytes would be taken for the next request: the
            // client must not reuse this connection, and hyper closes it.
            headers.insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            headers.insert("x-amz-request-id", value);
        }
        headers.insert(http::header::SERVER, HeaderValue::from_static("larder"));
        count(response, operation, body.received, started)
    }

    async fn dispatch(
        &self,
        parts: http::request::Parts,
        body: RequestBody,
        request_id: &str,
        origin: client::Origin,
    ) -> (S3Result, RequestBody, &'static str) {
        let mut context = match self.prepare(parts, body, request_id, origin) {
            Ok(context) => context,
            Err((error, body)) => return (Err(error), body, "Unknown"),
        };
        let result = match self.route_and_authenticate(&mut context).await {
            Ok(operation) => match bind_body(&mut context, &operation) {
                Ok(()) => self.run(operation, &mut context).await,
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        (result, context.body, context.operation)
    }

    /// Decodes path and query and checks the head's size.
    #[allow(clippy::result_large_err)]
    fn prepare(
        &self,
        parts: http::request::Parts,
        body: RequestBody,
        request_id: &str,
        origin: client::Origin,
    ) -> Result<RequestContext, (S3Error, RequestBody)> {
        let header_bytes: usize = parts.headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
        if header_bytes > MAX_HEADER_BYTES {
            let error = S3Error::new(
                "RequestHeaderSectionTooLarge",
                StatusCode::BAD_REQUEST,
                "Your request header section exceeds the maximum allowed size.",
            )
            .with("MaxSizeAllowed", MAX_HEADER_BYTES.to_string());
            return Err((error, body));
        }
        let path = sigv4::percent_decode(parts.uri.path(), false).ok().and_then(|bytes| String::from_utf8(bytes).ok());
        let query = sigv4::parse_query(parts.uri.query().unwrap_or_default());
        let (Some(path), Ok(query)) = (path, query) else {
            return Err((S3Error::invalid_uri(), body));
        };
        let (bucket, key) = router::split_path(&path);
        let (bucket, key) = (bucket.unwrap_or_default().to_string(), key.unwrap_or_default().to_string());
        // No bucket is named this way, and such names must not reach the
        // index (whose keys are `bucket \0 key`) or any cache.
        if bucket.len() > MAX_BUCKET_NAME_BYTES || bucket.chars().any(char::is_control) {
            let error =
                S3Error::new("InvalidBucketName", StatusCode::BAD_REQUEST, "The specified bucket is not valid.");
            return Err((error, body));
        }
        Ok(RequestContext {
            request_id: request_id.to_string(),
            method: parts.method,
            headers: parts.headers,
            query: Query(query),
            raw_path: parts.uri.path().to_string(),
            path,
            bucket,
            key,
            body,
            principal: Principal::Anonymous,
            client: origin.address,
            peer: origin.peer,
            secure: origin.secure,
            auth: None,
            signing_key: None,
            operation: "Unknown",
        })
    }

    async fn route_and_authenticate(&self, context: &mut RequestContext) -> Result<Operation, S3Error> {
        let bucket = Some(context.bucket.as_str()).filter(|b| !b.is_empty());
        let key = Some(context.key.as_str()).filter(|k| !k.is_empty());
        let operation = if context.path == admin::HEALTH_PATH {
            Ok(Operation::Health)
        } else if admin::is_metrics_scrape(context) {
            Ok(Operation::Metrics)
        } else if context.path.starts_with(upload_page::ASSET_PREFIX) && context.method == Method::GET {
            Ok(Operation::Asset)
        } else if short_link::is_short_link(&context.path) && matches!(context.method, Method::GET | Method::HEAD) {
            Ok(Operation::ShortLink)
        } else if context.path.starts_with(upload_page::PAGE_PREFIX) && context.method == Method::GET {
            Ok(Operation::UploadPage)
        } else if context.path.starts_with(admin::PATH_PREFIX) {
            Ok(Operation::Admin)
        } else {
            router::route(&context.method, bucket, key, &context.query, &context.headers)
        };
        if let Ok(operation) = &operation {
            context.operation = operation.name();
        }
        // Elsewhere the admin API does not exist: a stranger learns neither
        // whether a key is valid nor whether a signature would pass.
        if matches!(operation, Ok(Operation::Admin)) && !self.admin_allowed(context) {
            return Err(S3Error::access_denied());
        }
        // Preflights carry no credentials; STS authenticates once it has
        // read the body it signs.
        if matches!(
            operation,
            Ok(Operation::Options
                | Operation::Sts
                | Operation::Health
                | Operation::Metrics
                | Operation::Asset
                | Operation::ShortLink
                | Operation::PostObject)
        ) {
            return operation;
        }
        let service = auth::Service::S3 { sigv2: self.config.sigv2 };
        let authenticated = auth::authenticate(&self.keyring, &self.config.region, self.clock.now(), context, service)?;
        context.principal = authenticated.principal;
        context.auth = authenticated.auth;
        context.signing_key = authenticated.signing_key;
        let operation = match operation {
            Ok(operation) => operation,
            // Strangers learn nothing about what larder would do.
            Err(_) if context.principal == Principal::Anonymous => return Err(S3Error::access_denied()),
            Err(error) => return Err(error),
        };
        match access::required(&operation) {
            Some(permission) => {
                let target = match permission.action {
                    Action::List => context.query.get("prefix").unwrap_or_default().to_string(),
                    _ => context.key.clone(),
                };
                let bucket = context.bucket.clone();
                self.authorize(context, permission, &bucket, &target).await?;
            }
            None if operation == Operation::Admin && !self.keyring.is_root(&context.principal) => {
                return Err(S3Error::access_denied());
            }
            None if operation == Operation::Admin => require_signed_payload(context)?,
            None if context.principal == Principal::Anonymous => return Err(S3Error::access_denied()),
            None => {}
        }
        if context.key.len() > MAX_KEY_BYTES {
            return Err(S3Error::new("KeyTooLongError", StatusCode::BAD_REQUEST, "Your key is too long")
                .with("MaxSizeAllowed", MAX_KEY_BYTES.to_string())
                .with("Size", context.key.len().to_string()));
        }
        Ok(operation)
    }

    /// May the admin API answer this request? Only from `admin_from`, and
    /// never through a proxy larder does not trust: a reverse proxy on the
    /// board itself would otherwise make every client look local.
    fn admin_allowed(&self, context: &RequestContext) -> bool {
        let forwarded = ["forwarded", "x-forwarded-for"].iter().any(|name| context.headers.contains_key(*name));
        if forwarded && !self.config.trusted_proxies.iter().any(|cidr| cidr.contains(context.peer)) {
            return false;
        }
        self.config.admin_from.iter().any(|cidr| cidr.contains(context.client))
    }

    async fn run(&self, operation: Operation, context: &mut RequestContext) -> S3Result {
        use router::Operation::*;
        let result = match operation {
            ListBuckets => bucket::list_buckets(self, context).await,
            CreateBucket => bucket::create_bucket(self, context).await,
            DeleteBucket => bucket::delete_bucket(self, context).await,
            HeadBucket => bucket::head_bucket(self, context).await,
            GetBucketLocation => bucket::get_bucket_location(self, context).await,
            GetBucketVersioning => bucket::get_bucket_versioning(self, context).await,
            PutBucketPolicy => policy::put_bucket_policy(self, context).await,
            GetBucketPolicy => policy::get_bucket_policy(self, context).await,
            DeleteBucketPolicy => policy::delete_bucket_policy(self, context).await,
            ListObjects(version) => list::list_objects(self, context, version).await,
            DeleteObjects => delete_objects::delete_objects(self, context).await,
            ListMultipartUploads => multipart::list_multipart_uploads(self, context).await,
            CreateMultipartUpload => multipart::create_multipart_upload(self, context).await,
            UploadPart => multipart::upload_part(self, context).await,
            UploadPartCopy => multipart::upload_part_copy(self, context).await,
            CompleteMultipartUpload => multipart::complete_multipart_upload(self, context).await,
            AbortMultipartUpload => multipart::abort_multipart_upload(self, context).await,
            ListParts => multipart::list_parts(self, context).await,
            PutObject => object::put_object(self, context).await,
            CopyObject => object::copy_object(self, context).await,
            GetObject => object::get_object(self, context, true).await,
            HeadObject => object::get_object(self, context, false).await,
            DeleteObject => object::delete_object(self, context).await,
            Options => cors::preflight(self, context).await,
            PutBucketCors => cors::put_bucket_cors(self, context).await,
            GetBucketCors => cors::get_bucket_cors(self, context).await,
            DeleteBucketCors => cors::delete_bucket_cors(self, context).await,
            Admin => admin::handle(self, context).await,
            Health => admin::health(self),
            Metrics => admin::metrics(self, context).await,
            Sts => sts::handle(self, context).await,
            PostObject => post::post_object(self, context).await,
            UploadPage => upload_page::upload_page(self, context).await,
            ShortLink => short_link::follow(self, context).await,
            Asset => upload_page::asset(&context.path[upload_page::ASSET_PREFIX.len()..]),
            GetAcl => subresource::get_acl(self, context).await,
            PutAcl => subresource::put_acl(self, context).await,
            GetBucketSubresource(name) => subresource::get_bucket_subresource(self, context, name).await,
            GetObjectTagging => subresource::get_object_tagging(self, context).await,
            NotImplemented(what) => Err(S3Error::not_implemented().with("Operation", what.to_string())),
        };
        result.map_err(|error| with_names(error, context))
    }
}

/// Binds the body to what the head declares: from here on every byte a
/// handler reads is hashed and checked against the signed payload hash,
/// Content-MD5 and an `x-amz-checksum-*` header, and a mismatch fails the
/// read at the body's end, before the handler can act on it. Once, here,
/// so that no operation can forget it.
fn bind_body(context: &mut RequestContext, operation: &Operation) -> Result<(), S3Error> {
    // GET, HEAD and preflights take no body; POST Object's form carries
    // its own signed policy and checksums.
    if matches!(context.method, Method::GET | Method::HEAD | Method::OPTIONS) || *operation == Operation::PostObject {
        return Ok(());
    }
    let (mut expected, _) = headers::expected_digests(&context.headers, context.auth.as_ref())?;
    // CompleteMultipartUpload's `x-amz-checksum-*` is the whole object's
    // checksum (the store checks it), not its XML body's.
    if *operation == Operation::CompleteMultipartUpload {
        expected.checksum = None;
    }
    let aws_chunked = context
        .auth
        .as_ref()
        .and_then(|auth| auth.content_sha256.as_deref())
        .is_some_and(|value| value.starts_with("STREAMING-"));
    if aws_chunked {
        context.body.expect_aws_chunked(expected);
    } else {
        context.body.expect(expected);
    }
    Ok(())
}

/// The admin API changes who may do what: its requests must be signed in
/// the header with the payload's hash, never presigned or unsigned, so a
/// captured request cannot be replayed with another body.
fn require_signed_payload(context: &RequestContext) -> Result<(), S3Error> {
    let signed = context.auth.as_ref().is_some_and(|auth| {
        auth.kind == sigv4::AuthKind::Header && auth.content_sha256.as_deref().is_some_and(sigv4::is_hex_sha256)
    });
    if signed {
        Ok(())
    } else {
        Err(S3Error::access_denied().with(
            "Detail",
            "The admin API takes only header-signed requests whose x-amz-content-sha256 is the payload's hash.",
        ))
    }
}

/// The whole HTTP answer to a connection refused before any request was
/// read (too many connections): S3's 503 SlowDown.
pub fn slow_down_answer() -> Vec<u8> {
    let error = S3Error::new("SlowDown", StatusCode::SERVICE_UNAVAILABLE, "Please reduce your request rate.");
    let request_id = new_request_id();
    let body = error.to_xml("/", &request_id);
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\
         x-amz-request-id: {request_id}\r\nretry-after: 1\r\nserver: larder\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// NoSuchBucket and NoSuchKey name what was missing, as S3 does.
fn with_names(error: S3Error, context: &RequestContext) -> S3Error {
    match error.code {
        "NoSuchBucket" if !error.has("BucketName") => error.with("BucketName", context.bucket.clone()),
        "NoSuchKey" if !error.has("Key") => error.with("Key", context.key.clone()),
        _ => error,
    }
}

/// Counts the request in the metrics: its operation and status, the
/// bytes it read and (as the body goes out) sent, its time to answer.
fn count(
    response: Response<ResponseBody>,
    operation: &'static str,
    received: u64,
    started: std::time::Instant,
) -> Response<ResponseBody> {
    use std::sync::atomic::Ordering;
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

fn new_request_id() -> String {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).expect("the OS random source works");
    hex::encode_upper(bytes)
}

fn error_response(error: &S3Error, method: &Method, resource: &str, request_id: &str) -> Response<ResponseBody> {
    let builder = Response::builder().status(error.status);
    let response = if *method == Method::HEAD {
        builder.body(body::empty())
    } else {
        builder
            .header(http::header::CONTENT_TYPE, "application/xml")
            .body(body::full(error.to_xml(resource, request_id)))
    };
    response.unwrap_or_else(|_| Response::new(body::empty()))
}

/// A 200 answer with an XML document.
fn xml_response(document: String) -> S3Result {
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(body::full(document))
        .map_err(|_| S3Error::internal())
}

/// An answer with no body.
fn empty_response(status: StatusCode) -> S3Result {
    Response::builder().status(status).body(body::empty()).map_err(|_| S3Error::internal())
}

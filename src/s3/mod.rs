//! The S3 API over HTTP: routing, authentication, one handler per
//! operation, XML in and out, and the one place where errors from every
//! layer become S3 error documents. Never touches sled or file paths:
//! objects go through [`crate::store::Store`]. The request context, bodies
//! and error documents defined here serve larder's own endpoints too
//! (`web/`), which the HTTP edge (`edge.rs`) routes to before this API.

pub mod access;
mod attributes;
mod auth;
pub(crate) mod body;
mod bucket;
pub(crate) mod chunked;
pub(crate) mod client;
mod config_cache;
pub(crate) mod cors;
mod delete_objects;
mod error;
pub(crate) mod form_data;
pub(crate) mod headers;
pub(crate) mod lifecycle;
mod list;
pub(crate) mod multipart;
mod object;
mod object_lock;
mod payload;
mod policy;
pub(crate) mod post;
pub(crate) mod router;
pub mod share;
mod sts;
mod subresource;
mod versions;
pub mod xml;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::{HeaderMap, Method, Response, StatusCode};

use crate::clock::Clock;
use crate::iam::{Action, Cidr, Keyring, Principal};
use crate::sigv4::{self, ParsedAuth, SigningKey};
use crate::store::{Store, StoreError};

pub(crate) use body::RequestBody;
pub use body::{Pace, ResponseBody};
pub use error::S3Error;
use router::{ListVersion, Operation, Query};

/// Largest request head accepted, in bytes of header names and values.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Longest bucket name looked up (S3 creates up to 63; legacy names reach 255).
const MAX_BUCKET_NAME_BYTES: usize = 255;
/// Longest object key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// The index separates a key from its versions with a NUL byte, so no key
/// may hold one.
pub(crate) fn nul_in_key() -> S3Error {
    S3Error::invalid_argument("Object keys must not contain the NUL character.")
}

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
    /// How long a lifecycle rule's day is, in seconds (86400; tests shorten it).
    pub lifecycle_day_secs: i64,
}

/// The S3 front end: shared by every connection.
pub struct S3 {
    pub(crate) store: Store,
    pub(crate) keyring: Arc<Keyring>,
    pub(crate) config: S3Config,
    pub(crate) clock: Arc<Clock>,
    /// Parsed bucket policies and CORS rules by bucket.
    policies: config_cache::ConfigCache<crate::iam::Policy>,
    cors: config_cache::ConfigCache<cors::CorsConfig>,
    /// Parsed lifecycle rules by bucket, and the worker that applies them.
    lifecycles: config_cache::ConfigCache<Vec<lifecycle::Rule>>,
    pub(crate) lifecycle: lifecycle::Worker,
    pub(crate) started: std::time::Instant,
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
            lifecycle: lifecycle::Worker::new(&store),
            store,
            keyring,
            config,
            clock,
            policies: Default::default(),
            cors: Default::default(),
            lifecycles: Default::default(),
            started: std::time::Instant::now(),
        }
    }

    /// An S3 API request, from routing to the handler's answer.
    pub(crate) async fn serve(&self, context: &mut RequestContext) -> S3Result {
        let operation = self.route_and_authenticate(context).await?;
        bind_body(context, &operation)?;
        self.run(operation, context).await
    }

    /// Decodes path and query and checks the head's size.
    #[allow(clippy::result_large_err)]
    pub(crate) fn prepare(
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
        let operation = router::route(&context.method, bucket, key, &context.query, &context.headers);
        if let Ok(operation) = &operation {
            context.operation = operation.name();
        }
        // Preflights carry no credentials; STS authenticates once it has
        // read the body it signs.
        if matches!(operation, Ok(Operation::Options | Operation::Sts | Operation::PostObject)) {
            return operation;
        }
        self.authenticate(context)?;
        let operation = match operation {
            Ok(operation) => operation,
            // Strangers learn nothing about what larder would do.
            Err(_) if context.principal == Principal::Anonymous => return Err(S3Error::access_denied()),
            Err(error) => return Err(error),
        };
        let allowed = match access::required(&operation) {
            Some(permission) => {
                let target = match permission.action {
                    Action::List => context.query.get("prefix").unwrap_or_default().to_string(),
                    _ => context.key.clone(),
                };
                let bucket = context.bucket.clone();
                self.authorize(context, permission, &bucket, &target).await
            }
            None if context.principal == Principal::Anonymous => Err(S3Error::access_denied()),
            None => Ok(()),
        };
        if let Err(denied) = allowed {
            // A bucket that does not exist is named as such to anyone, as S3 does.
            let names_a_bucket = !context.bucket.is_empty() && operation != Operation::CreateBucket;
            if names_a_bucket && matches!(self.store.bucket(&context.bucket).await, Err(StoreError::NoSuchBucket)) {
                return Err(S3Error::no_such_bucket().with("BucketName", context.bucket.clone()));
            }
            return Err(denied);
        }
        if context.key.len() > MAX_KEY_BYTES {
            return Err(S3Error::new("KeyTooLongError", StatusCode::BAD_REQUEST, "Your key is too long")
                .with("MaxSizeAllowed", MAX_KEY_BYTES.to_string())
                .with("Size", context.key.len().to_string()));
        }
        if context.key.contains('\0') {
            return Err(nul_in_key());
        }
        Ok(operation)
    }

    /// Checks the request's signature, if it has one, and notes who made
    /// it. Unsigned requests are anonymous; whether that is enough is
    /// for authorization to say.
    pub(crate) fn authenticate(&self, context: &mut RequestContext) -> Result<(), S3Error> {
        let service = auth::Service::S3 { sigv2: self.config.sigv2 };
        let authenticated = auth::authenticate(&self.keyring, &self.config.region, self.clock.now(), context, service)?;
        context.principal = authenticated.principal;
        context.auth = authenticated.auth;
        context.signing_key = authenticated.signing_key;
        Ok(())
    }

    async fn run(&self, operation: Operation, context: &mut RequestContext) -> S3Result {
        use router::Operation::*;
        let result = match operation {
            ListBuckets => bucket::list_buckets(self, context).await,
            CreateBucket => bucket::create_bucket(self, context).await,
            DeleteBucket => bucket::delete_bucket(self, context).await,
            HeadBucket => bucket::head_bucket(self, context).await,
            GetBucketLocation => bucket::get_bucket_location(self, context).await,
            GetBucketVersioning => versions::get_bucket_versioning(self, context).await,
            PutBucketVersioning => versions::put_bucket_versioning(self, context).await,
            PutBucketPolicy => policy::put_bucket_policy(self, context).await,
            GetBucketPolicy => policy::get_bucket_policy(self, context).await,
            DeleteBucketPolicy => policy::delete_bucket_policy(self, context).await,
            ListObjects(ListVersion::Versions) => versions::list_object_versions(self, context).await,
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
            Sts => sts::handle(self, context).await,
            PostObject => post::post_object(self, context).await,
            GetAcl => subresource::get_acl(self, context).await,
            PutAcl => subresource::put_acl(self, context).await,
            GetBucketSubresource(name) => subresource::get_bucket_subresource(self, context, name).await,
            GetObjectTagging => subresource::get_object_tagging(self, context).await,
            GetObjectAttributes => attributes::get_object_attributes(self, context).await,
            PutBucketLifecycle => lifecycle::put_bucket_lifecycle(self, context).await,
            GetBucketLifecycle => lifecycle::get_bucket_lifecycle(self, context).await,
            DeleteBucketLifecycle => lifecycle::delete_bucket_lifecycle(self, context).await,
            PutObjectLockConfiguration => object_lock::put_object_lock_configuration(self, context).await,
            GetObjectLockConfiguration => object_lock::get_object_lock_configuration(self, context).await,
            PutObjectRetention => object_lock::put_object_retention(self, context).await,
            GetObjectRetention => object_lock::get_object_retention(self, context).await,
            PutObjectLegalHold => object_lock::put_object_legal_hold(self, context).await,
            GetObjectLegalHold => object_lock::get_object_legal_hold(self, context).await,
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
    // POST Object's form carries its own signed policy and checksums.
    if *operation == Operation::PostObject {
        return Ok(());
    }
    // CompleteMultipartUpload's `x-amz-checksum-*` is the whole object's
    // checksum (the store checks it), not its XML body's.
    bind_declared_digests(context, *operation != Operation::CompleteMultipartUpload)
}

/// `bind_body` for any request with a body, larder's own endpoints too.
/// `checksum_is_the_bodys`: an `x-amz-checksum-*` header covers the body.
pub(crate) fn bind_declared_digests(context: &mut RequestContext, checksum_is_the_bodys: bool) -> Result<(), S3Error> {
    // GET, HEAD and preflights take no body.
    if matches!(context.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let (mut expected, _) = headers::expected_digests(&context.headers, context.auth.as_ref())?;
    if !checksum_is_the_bodys {
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

/// A request id unique within this run: a random start drawn once, then
/// counted up, since ids need only tell requests apart in logs and a
/// `getrandom` call per request was a measurable share of a small GET.
pub(crate) fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static START: OnceLock<u64> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let start = *START.get_or_init(|| {
        let mut bytes = [0u8; 8];
        getrandom::getrandom(&mut bytes).expect("the OS random source works");
        u64::from_le_bytes(bytes)
    });
    let id = start.wrapping_add(COUNT.fetch_add(1, Ordering::Relaxed));
    hex::encode_upper(id.to_be_bytes())
}

pub(crate) fn error_response(
    error: &S3Error,
    method: &Method,
    resource: &str,
    request_id: &str,
) -> Response<ResponseBody> {
    let mut builder = Response::builder().status(error.status);
    for (name, value) in &error.headers {
        builder = builder.header(*name, value);
    }
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
pub(crate) fn empty_response(status: StatusCode) -> S3Result {
    Response::builder().status(status).body(body::empty()).map_err(|_| S3Error::internal())
}

//! The command line's HTTP client: the administration API and the few S3
//! calls `larder share` makes, each signed with SigV4 by the root key.
//! hyper's HTTP/1.1 client on a small runtime of its own, over TCP or TLS
//! (trusting exactly the server's own certificate); one connection per
//! call, as the command line makes few.

use std::io::{Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use larder::iam::Credentials;
use larder::s3::share::{NewShare, ShareView};
use larder::sigv4::{self, Scope, SigningKey, UNSIGNED_PAYLOAD};
use larder::timefmt;
use larder::web::admin::{KeyView, NewKey};

/// Files above this go up in parts, several at a time.
pub const MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
/// Parts in flight at once, each streamed from the file (bounded memory).
const PARTS_IN_FLIGHT: usize = 4;
/// How long connecting to one address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call may go without progress: no body bytes taken by the
/// connection, or no answer once the body is sent.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer read (the admin API's and S3's are small).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
/// Bytes read from a file per body frame.
const FILE_CHUNK: u64 = 256 * 1024;

type RequestBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// Where the server is, read from `http(s)://host[:port]`.
#[derive(Debug, PartialEq, Eq)]
struct Endpoint {
    https: bool,
    /// `host[:port]` as written: the Host header, and what is signed.
    authority: String,
    /// The host without brackets, for TLS's server name.
    host: String,
    port: u16,
}

impl Endpoint {
    fn parse(endpoint: &str) -> Result<Endpoint, String> {
        let (https, rest) = match (endpoint.strip_prefix("http://"), endpoint.strip_prefix("https://")) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => return Err(format!("the endpoint must be http://HOST[:PORT] or https://HOST[:PORT], not {endpoint}")),
        };
        let authority = rest.trim_end_matches('/').to_string();
        if authority.is_empty() || authority.contains('/') {
            return Err(format!("the endpoint must be http(s)://HOST[:PORT], not {endpoint}"));
        }
        // `host` alone means the scheme's port; `[v6]` has colons of its own.
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
                let port = port.parse().map_err(|_| format!("{endpoint}: the port is not a number"))?;
                (host, port)
            }
            _ => (authority.as_str(), if https { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        Ok(Endpoint { https, authority, host, port })
    }
}

pub struct AdminClient {
    endpoint: Endpoint,
    credentials: Credentials,
    region: String,
    /// For an `https://` endpoint: TLS trusting exactly the server's own
    /// certificate (see [`AdminClient::trusting`]).
    tls: Option<tokio_rustls::TlsConnector>,
    idle_timeout: Duration,
    runtime: tokio::runtime::Runtime,
}

/// A connection to the server, plain or TLS.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

/// A whole answer.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    /// The body if the status is `ok`, else the error as a line.
    fn expect(self, ok: StatusCode) -> Result<Bytes, String> {
        if self.status == ok {
            Ok(self.body)
        } else {
            Err(describe_error(self.status, &self.body))
        }
    }
}

/// When a call last made progress, for [`IDLE_TIMEOUT`].
#[derive(Clone)]
struct Progress(Arc<Mutex<Instant>>);

impl Progress {
    fn new() -> Progress {
        Progress(Arc::new(Mutex::new(Instant::now())))
    }

    fn touch(&self) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Instant::now();
    }

    fn idle(&self) -> Duration {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).elapsed()
    }
}

impl AdminClient {
    /// `endpoint` is `http(s)://host[:port]`.
    pub fn new(endpoint: &str, credentials: Credentials, region: &str) -> Result<AdminClient, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| format!("cannot start the HTTP client: {error}"))?;
        Ok(AdminClient {
            endpoint: Endpoint::parse(endpoint)?,
            credentials,
            region: region.to_string(),
            tls: None,
            idle_timeout: IDLE_TIMEOUT,
            runtime,
        })
    }

    /// Over HTTPS, trusts the certificate in `file` (the server's own,
    /// self-signed or not) and nothing else: the command line talks to
    /// its own server.
    pub fn trusting(mut self, file: &Path) -> Result<AdminClient, String> {
        let pem = std::fs::read(file).map_err(|error| larder::config::cannot_read(file, &error))?;
        let pinned = rustls_pemfile::certs(&mut pem.as_slice())
            .next()
            .ok_or_else(|| format!("{}: no certificate in it", file.display()))?
            .map_err(|error| format!("{}: {error}", file.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned { certificate: pinned.to_vec(), provider }))
            .with_no_client_auth();
        self.tls = Some(tokio_rustls::TlsConnector::from(Arc::new(config)));
        Ok(self)
    }

    fn unreachable(&self, error: &dyn std::fmt::Display) -> String {
        format!(
            "cannot reach larder at {}:{}: {error} (is it running? --endpoint, LARDER_ENDPOINT or the \
             configuration's listen say where)",
            self.endpoint.host, self.endpoint.port
        )
    }

    async fn connect(&self) -> Result<Box<dyn Connection>, String> {
        let lookup = tokio::net::lookup_host((self.endpoint.host.as_str(), self.endpoint.port));
        let addresses = tokio::time::timeout(CONNECT_TIMEOUT, lookup)
            .await
            .map_err(|_| self.unreachable(&"the name did not resolve in time"))?
            .map_err(|error| self.unreachable(&error))?;
        let mut last_error = "the name has no address".to_string();
        let mut connected = None;
        for address in addresses {
            match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(address)).await {
                Ok(Ok(stream)) => {
                    connected = Some(stream);
                    break;
                }
                Ok(Err(error)) => last_error = error.to_string(),
                Err(_) => last_error = format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            }
        }
        let tcp = connected.ok_or_else(|| self.unreachable(&last_error))?;
        let _ = tcp.set_nodelay(true);
        if !self.endpoint.https {
            return Ok(Box::new(tcp));
        }
        let connector = self.tls.clone().ok_or_else(|| {
            format!(
                "{} speaks HTTPS: larder needs its certificate (tls_cert, or tls = \"self-signed\" in the configuration)",
                self.endpoint.authority
            )
        })?;
        let name = ServerName::try_from(self.endpoint.host.clone()).map_err(|error| error.to_string())?;
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
            .await
            .map_err(|_| self.unreachable(&"the TLS handshake did not finish"))?
            .map_err(|error| self.unreachable(&error))?;
        Ok(Box::new(tls))
    }

    /// Makes one signed request and reads the whole answer. `body` is
    /// `length` bytes whose SHA-256 is `payload_hash`; `progress` is
    /// touched as the body goes out.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        content_type: &str,
        payload_hash: &str,
        length: u64,
        body: RequestBody,
        progress: Progress,
    ) -> Result<Answer, String> {
        let now = timefmt::now();
        let amz_date = timefmt::format_amz_date(now);
        let scope = Scope { date: amz_date[..8].to_string(), region: self.region.clone(), service: "s3".into() };
        let key = SigningKey::derive(&self.credentials.secret_key, &scope);
        let value = |text: &str| HeaderValue::from_str(text).map_err(|error| error.to_string());
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, value(&self.endpoint.authority)?);
        headers.insert("x-amz-content-sha256", value(payload_hash)?);
        headers.insert("x-amz-date", value(&amz_date)?);
        let params: Vec<sigv4::QueryParam> = query
            .iter()
            .map(|(name, value)| sigv4::QueryParam { name: name.to_string(), value: value.to_string() })
            .collect();
        let authorization = sigv4::authorization_header(
            method.as_str(),
            path.as_bytes(),
            &params,
            &headers,
            &self.credentials.access_key,
            &key,
            &scope,
        );
        headers.insert(http::header::AUTHORIZATION, value(&authorization)?);
        headers.insert(http::header::CONTENT_TYPE, value(content_type)?);
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(length));
        let mut target = sigv4::uri_encode(path.as_bytes(), true);
        for (i, (name, value)) in query.iter().enumerate() {
            target.push(if i == 0 { '?' } else { '&' });
            target.push_str(&sigv4::uri_encode(name.as_bytes(), false));
            target.push('=');
            target.push_str(&sigv4::uri_encode(value.as_bytes(), false));
        }
        let mut request = Request::builder().method(method).uri(target).body(body).map_err(|e| e.to_string())?;
        *request.headers_mut() = headers;

        let connection = self.connect().await?;
        let (mut sender, driver) =
            hyper::client::conn::http1::handshake(TokioIo::new(connection)).await.map_err(|e| e.to_string())?;
        tokio::spawn(driver);
        progress.touch();
        let exchange = async {
            let answer = sender.send_request(request).await.map_err(|error| describe_hyper_error(&error))?;
            let (parts, body) = answer.into_parts();
            let body = Limited::new(body, MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|error| format!("reading the answer: {error}"))?
                .to_bytes();
            Ok(Answer { status: parts.status, headers: parts.headers, body })
        };
        tokio::pin!(exchange);
        // Time out on silence, not on length: a large upload may take
        // hours, but never a minute without a byte going either way.
        loop {
            tokio::select! {
                answer = &mut exchange => return answer,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    if progress.idle() > self.idle_timeout {
                        return Err(format!(
                            "{} stopped answering ({} s without progress)",
                            self.endpoint.authority,
                            self.idle_timeout.as_secs()
                        ));
                    }
                }
            }
        }
    }

    /// A signed request with the whole body in memory.
    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        content_type: &str,
        body: &[u8],
    ) -> Result<Answer, String> {
        let hash = hex::encode(Sha256::digest(body));
        let full = Full::new(Bytes::copy_from_slice(body)).map_err(|never| match never {}).boxed_unsync();
        self.send(method, path, query, content_type, &hash, body.len() as u64, full, Progress::new()).await
    }

    /// A JSON call to the admin API; the answer's body when its status is `ok`.
    fn admin(&self, method: Method, path: &str, body: &[u8], ok: StatusCode) -> Result<Bytes, String> {
        self.runtime.block_on(self.call(method, path, &[], "application/json", body))?.expect(ok)
    }

    fn admin_json<T: serde::de::DeserializeOwned>(&self, method: Method, path: &str, body: &[u8]) -> Result<T, String> {
        let answer = self.admin(method, path, body, StatusCode::OK)?;
        serde_json::from_slice(&answer).map_err(|error| format!("the server's answer does not read: {error}"))
    }

    pub fn create(&self, key: &NewKey) -> Result<KeyView, String> {
        let body = serde_json::to_vec(key).map_err(|e| e.to_string())?;
        self.admin_json(Method::POST, "/_larder/admin/keys", &body)
    }

    /// Applies the buckets' lifecycle rules now; what the run did.
    pub fn run_lifecycle(&self) -> Result<serde_json::Value, String> {
        self.admin_json(Method::POST, "/_larder/admin/lifecycle", b"")
    }

    /// The server's state, as `larder status` shows it.
    pub fn status(&self) -> Result<serde_json::Value, String> {
        self.admin_json(Method::GET, "/_larder/admin/status", b"")
    }

    pub fn list(&self) -> Result<Vec<KeyView>, String> {
        self.admin_json(Method::GET, "/_larder/admin/keys", b"")
    }

    pub fn show(&self, access_key: &str) -> Result<KeyView, String> {
        self.admin_json(Method::GET, &format!("/_larder/admin/keys/{access_key}"), b"")
    }

    pub fn revoke(&self, access_key: &str) -> Result<(), String> {
        self.admin(Method::DELETE, &format!("/_larder/admin/keys/{access_key}"), b"", StatusCode::NO_CONTENT).map(drop)
    }

    pub fn create_share(&self, share: &NewShare) -> Result<ShareView, String> {
        let body = serde_json::to_vec(share).map_err(|e| e.to_string())?;
        self.admin_json(Method::POST, "/_larder/admin/shares", &body)
    }

    pub fn list_shares(&self) -> Result<Vec<ShareView>, String> {
        self.admin_json(Method::GET, "/_larder/admin/shares", b"")
    }

    pub fn revoke_share(&self, id: &str) -> Result<(), String> {
        self.admin(Method::DELETE, &format!("/_larder/admin/shares/{id}"), b"", StatusCode::NO_CONTENT).map(drop)
    }

    /// Creates a bucket unless it is already there.
    pub fn ensure_bucket(&self, bucket: &str) -> Result<(), String> {
        let answer =
            self.runtime.block_on(self.call(Method::PUT, &format!("/{bucket}"), &[], "application/xml", b""))?;
        match answer.expect(StatusCode::OK) {
            Err(message) if message.starts_with("BucketAlreadyOwnedByYou") => Ok(()),
            other => other.map(drop),
        }
    }

    /// Uploads a file to `bucket/key`, in one PUT up to
    /// [`MULTIPART_THRESHOLD`] and as a multipart upload above it.
    /// `sent` counts the bytes sent so far.
    pub fn put_file(&self, bucket: &str, key: &str, path: &Path, sent: Arc<AtomicU64>) -> Result<(), String> {
        let length = std::fs::metadata(path).map_err(|error| format!("{}: {error}", path.display()))?.len();
        let object = format!("/{bucket}/{key}");
        self.runtime.block_on(async {
            if length <= MULTIPART_THRESHOLD {
                self.put_range(&object, &[], path, 0, length, sent).await.map(drop)
            } else {
                self.put_multipart(&object, path, length, sent).await
            }
        })
    }

    /// Streams `size` bytes of `path` from `offset` as the body of a PUT;
    /// returns the answer's ETag.
    async fn put_range(
        &self,
        object: &str,
        query: &[(&str, &str)],
        path: &Path,
        offset: u64,
        size: u64,
        sent: Arc<AtomicU64>,
    ) -> Result<String, String> {
        let progress = Progress::new();
        let body = file_body(path, offset, size, sent, progress.clone())?;
        let answer = self
            .send(Method::PUT, object, query, "application/octet-stream", UNSIGNED_PAYLOAD, size, body, progress)
            .await?;
        let etag = answer.headers.get(http::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = answer.expect(StatusCode::OK).map_err(|error| format!("upload failed: {error}"))?;
        drop(body);
        etag.ok_or_else(|| "upload failed: the answer has no ETag".to_string())
    }

    /// A multipart upload: parts of at least 16 MiB (more for files
    /// beyond 160 GiB, to stay within 10,000 parts), [`PARTS_IN_FLIGHT`]
    /// at a time, each streamed from the file. If a part or the
    /// completion fails, the upload is aborted: no parts are left behind.
    async fn put_multipart(&self, object: &str, path: &Path, length: u64, sent: Arc<AtomicU64>) -> Result<(), String> {
        let created = self.call(Method::POST, object, &[("uploads", "")], "application/xml", b"").await?;
        let created = created.expect(StatusCode::OK)?;
        let upload_id = xml_field(&created, "UploadId").ok_or("no UploadId in the answer")?;
        let uploaded = self.put_parts_and_complete(object, &upload_id, path, length, sent).await;
        if uploaded.is_err() {
            let query = [("uploadId", upload_id.as_str())];
            let _ = self.call(Method::DELETE, object, &query, "application/xml", b"").await;
        }
        uploaded
    }

    async fn put_parts_and_complete(
        &self,
        object: &str,
        upload_id: &str,
        path: &Path,
        length: u64,
        sent: Arc<AtomicU64>,
    ) -> Result<(), String> {
        let part_size = (16 * 1024 * 1024u64).max(length.div_ceil(10_000));
        let parts = length.div_ceil(part_size).max(1);
        let next = AtomicU64::new(1);
        // Once a part fails, the others take no new parts.
        let failed = AtomicBool::new(false);
        let etags = Mutex::new(vec![String::new(); parts as usize]);
        let worker = || async {
            loop {
                let number = next.fetch_add(1, Ordering::Relaxed);
                if number > parts || failed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let offset = (number - 1) * part_size;
                let size = part_size.min(length - offset);
                let number_text = number.to_string();
                let query = [("partNumber", number_text.as_str()), ("uploadId", upload_id)];
                match self.put_range(object, &query, path, offset, size, sent.clone()).await {
                    Ok(etag) => etags.lock().unwrap_or_else(|p| p.into_inner())[(number - 1) as usize] = etag,
                    Err(error) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(format!("part {number}: {error}"));
                    }
                }
            }
        };
        let workers = (0..PARTS_IN_FLIGHT.min(parts as usize)).map(|_| worker());
        let results: Vec<Result<(), String>> = futures_util::future::join_all(workers).await;
        if let Some(Err(error)) = results.into_iter().find(Result::is_err) {
            return Err(error);
        }
        let mut document = String::from("<CompleteMultipartUpload>");
        for (i, etag) in etags.into_inner().unwrap_or_else(|p| p.into_inner()).iter().enumerate() {
            document.push_str(&format!("<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>", i + 1));
        }
        document.push_str("</CompleteMultipartUpload>");
        let query = [("uploadId", upload_id)];
        let completed = self.call(Method::POST, object, &query, "application/xml", document.as_bytes()).await?;
        // S3 may answer 200 with an error document once it has started.
        let completed = completed.expect(StatusCode::OK)?;
        if xml_field(&completed, "ETag").is_none() {
            return Err(format!("completing the upload failed: {}", describe_error(StatusCode::OK, &completed)));
        }
        Ok(())
    }
}

/// `size` bytes of the file from `offset`, read a chunk at a time as the
/// connection takes them: memory stays at one chunk whatever the size.
fn file_body(
    path: &Path,
    offset: u64,
    size: u64,
    sent: Arc<AtomicU64>,
    progress: Progress,
) -> Result<RequestBody, String> {
    let mut file = std::fs::File::open(path).map_err(|error| format!("{}: {error}", path.display()))?;
    file.seek(SeekFrom::Start(offset)).map_err(|error| format!("{}: {error}", path.display()))?;
    let file = tokio::fs::File::from_std(file);
    let chunks = futures_util::stream::unfold((file, size), move |(mut file, left)| {
        let (sent, progress) = (sent.clone(), progress.clone());
        async move {
            if left == 0 {
                return None;
            }
            let mut chunk = vec![0u8; FILE_CHUNK.min(left) as usize];
            let (frame, left) = match file.read(&mut chunk).await {
                Ok(0) => {
                    let shorter = std::io::ErrorKind::UnexpectedEof;
                    (Err(std::io::Error::new(shorter, "the file got shorter while it was being sent")), 0)
                }
                Ok(read) => {
                    chunk.truncate(read);
                    sent.fetch_add(read as u64, Ordering::Relaxed);
                    progress.touch();
                    (Ok(Frame::data(Bytes::from(chunk))), left - read as u64)
                }
                Err(error) => (Err(error), 0),
            };
            Some((frame, (file, left)))
        }
    });
    Ok(StreamBody::new(Box::pin(chunks)).boxed_unsync())
}

/// hyper's error, with its cause (which says what actually went wrong).
fn describe_hyper_error(error: &hyper::Error) -> String {
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

/// The text of the root's child `name` in an XML answer, read with the
/// same bounded reader the server uses.
fn xml_field(xml: &[u8], name: &str) -> Option<String> {
    let root = larder::s3::xml::parse(xml).ok()?;
    root.child(name).map(|element| element.text.clone())
}

/// An error answer as a line: S3's code and message when it is S3's error
/// document, else the status and what came.
fn describe_error(status: StatusCode, body: &[u8]) -> String {
    match (xml_field(body, "Code"), xml_field(body, "Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => format!("HTTP {}: {}", status.as_u16(), String::from_utf8_lossy(body)),
    }
}

/// Accepts exactly one certificate: the server's own.
#[derive(Debug)]
struct Pinned {
    certificate: Vec<u8>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.certificate.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the certificate this server is configured with".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// A server that answers one connection with `answer`, whatever is asked.
    fn answering(answer: &'static [u8]) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            stream.write_all(answer).unwrap();
            // Keep the connection open: the answer's framing must end it.
            std::thread::sleep(Duration::from_secs(5));
        });
        format!("http://{address}")
    }

    fn client(endpoint: &str) -> AdminClient {
        let credentials = Credentials { access_key: "AKIDEXAMPLE".into(), secret_key: "secret".into() };
        AdminClient::new(endpoint, credentials, "us-east-1").unwrap()
    }

    #[test]
    fn chunked_answers_are_read_whole() {
        let endpoint = answering(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n\
              7\r\n{\"versi\r\n8;ext=1\r\non\":\"1\"}\r\n0\r\n\r\n",
        );
        assert_eq!(client(&endpoint).status().unwrap(), serde_json::json!({"version": "1"}));
    }

    #[test]
    fn errors_are_read_from_s3_error_documents() {
        let endpoint = answering(
            b"HTTP/1.1 403 Forbidden\r\ncontent-type: application/xml\r\ntransfer-encoding: chunked\r\n\r\n\
              5d\r\n<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>\r\n0\r\n\r\n",
        );
        assert_eq!(client(&endpoint).list().unwrap_err(), "AccessDenied: Access Denied");
        assert_eq!(describe_error(StatusCode::BAD_GATEWAY, b"bad gateway"), "HTTP 502: bad gateway");
        assert_eq!(xml_field(b"<R><ETag>&quot;abc&quot;</ETag></R>", "ETag").as_deref(), Some("\"abc\""));
    }

    #[test]
    fn a_silent_server_times_out() {
        let endpoint = answering(b"");
        let mut client = client(&endpoint);
        client.idle_timeout = Duration::from_secs(2);
        let started = Instant::now();
        let error = client.status().unwrap_err();
        assert!(error.contains("stopped answering"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn a_closed_port_says_which_address_was_tried() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let error = client(&format!("http://127.0.0.1:{port}")).status().unwrap_err();
        assert!(error.starts_with(&format!("cannot reach larder at 127.0.0.1:{port}")), "{error}");
    }

    #[test]
    fn endpoints_without_a_port_use_the_schemes() {
        let parsed = Endpoint::parse("https://nas.local/").unwrap();
        assert_eq!(
            (parsed.https, parsed.authority.as_str(), parsed.host.as_str(), parsed.port),
            (true, "nas.local", "nas.local", 443)
        );
        let parsed = Endpoint::parse("http://[fd00::1]:9000").unwrap();
        assert_eq!((parsed.authority.as_str(), parsed.host.as_str(), parsed.port), ("[fd00::1]:9000", "fd00::1", 9000));
        assert_eq!(Endpoint::parse("http://[fd00::1]").unwrap().port, 80);
        assert!(Endpoint::parse("ftp://host").is_err());
        assert!(Endpoint::parse("http://host/path").is_err());
    }
}

//! The client side of the administration API and the few S3 calls the
//! command line makes (`larder key`, `larder share`): one SigV4-signed
//! HTTP/1.1 request per call, made with the root key.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use crate::iam::Credentials;
use crate::s3::share::{NewShare, ShareView};
use crate::sigv4::{self, Scope, SigningKey};
use crate::timefmt;
use crate::web::admin::{KeyView, NewKey};

pub struct AdminClient {
    /// `host:port`
    pub authority: String,
    pub credentials: Credentials,
    pub region: String,
    /// For an `https://` endpoint: TLS trusting exactly the server's own
    /// certificate (see [`AdminClient::trusting`]).
    tls: Option<Arc<rustls::ClientConfig>>,
    https: bool,
}

/// A byte stream to the server, plain or TLS.
trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

impl AdminClient {
    /// `endpoint` is `http://host:port` or `https://host:port`.
    pub fn new(endpoint: &str, credentials: Credentials, region: &str) -> Result<AdminClient, String> {
        let (https, rest) = match (endpoint.strip_prefix("http://"), endpoint.strip_prefix("https://")) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => return Err(format!("the endpoint must be http://HOST:PORT or https://HOST:PORT, not {endpoint}")),
        };
        let authority = rest.trim_end_matches('/').to_string();
        if authority.is_empty() || authority.contains('/') {
            return Err(format!("the endpoint must be http(s)://HOST[:PORT], not {endpoint}"));
        }
        Ok(AdminClient { authority, credentials, region: region.to_string(), tls: None, https })
    }

    /// Over HTTPS, trusts the certificate in `file` (the server's own,
    /// self-signed or not) and nothing else: the command line talks to
    /// its own server.
    pub fn trusting(mut self, file: &std::path::Path) -> Result<AdminClient, String> {
        let pem = std::fs::read(file).map_err(|error| crate::config::cannot_read(file, &error))?;
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
        self.tls = Some(Arc::new(config));
        Ok(self)
    }

    /// The signed request head; the body is `length` bytes whose hash is
    /// `payload_hash`.
    fn head(
        &self,
        method: &str,
        path: &str,
        payload_hash: &str,
        length: u64,
        content_type: &str,
    ) -> Result<String, String> {
        self.head_with_query(method, path, &[], payload_hash, length, content_type)
    }

    /// [`AdminClient::head`] with a query string (signed too).
    fn head_with_query(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        payload_hash: &str,
        length: u64,
        content_type: &str,
    ) -> Result<String, String> {
        let now = timefmt::now();
        let amz_date = timefmt::format_amz_date(now);
        let scope = Scope { date: amz_date[..8].to_string(), region: self.region.clone(), service: "s3".into() };
        let key = SigningKey::derive(&self.credentials.secret_key, &scope);
        let mut headers = HeaderMap::new();
        let value = |text: &str| HeaderValue::from_str(text).map_err(|e| e.to_string());
        headers.insert("host", value(&self.authority)?);
        headers.insert("x-amz-content-sha256", value(payload_hash)?);
        headers.insert("x-amz-date", value(&amz_date)?);
        let params: Vec<sigv4::QueryParam> = query
            .iter()
            .map(|(name, value)| sigv4::QueryParam { name: name.to_string(), value: value.to_string() })
            .collect();
        let authorization = sigv4::authorization_header(
            method,
            path.as_bytes(),
            &params,
            &headers,
            &self.credentials.access_key,
            &key,
            &scope,
        );
        let mut target = sigv4::uri_encode(path.as_bytes(), true);
        for (i, (name, value)) in query.iter().enumerate() {
            target.push(if i == 0 { '?' } else { '&' });
            target.push_str(&sigv4::uri_encode(name.as_bytes(), false));
            target.push('=');
            target.push_str(&sigv4::uri_encode(value.as_bytes(), false));
        }
        let mut request = format!("{method} {target} HTTP/1.1\r\n");
        for (name, value) in &headers {
            request.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or_default()));
        }
        request.push_str(&format!(
            "authorization: {authorization}\r\ncontent-type: {content_type}\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n"
        ));
        Ok(request)
    }

    fn connect(&self) -> Result<Box<dyn Stream>, String> {
        let tcp = self.connect_tcp()?;
        if !self.https {
            return Ok(Box::new(tcp));
        }
        let config = self.tls.clone().ok_or_else(|| {
            format!("{} speaks HTTPS: larder needs its certificate (tls_cert, or tls = \"self-signed\" in the configuration)", self.authority)
        })?;
        let host = match self.authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => self.authority.as_str(),
        };
        let name =
            rustls::pki_types::ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string())
                .map_err(|error| error.to_string())?;
        let connection = rustls::ClientConnection::new(config, name).map_err(|error| error.to_string())?;
        Ok(Box::new(rustls::StreamOwned::new(connection, tcp)))
    }

    fn connect_tcp(&self) -> Result<TcpStream, String> {
        let unreachable = |error: &dyn std::fmt::Display| {
            format!(
                "cannot reach larder at {}: {error} (is it running? --endpoint, LARDER_ENDPOINT or the \
                 configuration's listen say where)",
                self.authority
            )
        };
        // `host` alone means the scheme's port.
        let has_port = self.authority.rsplit_once(':').is_some_and(|(host, port)| {
            !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && (!host.contains(':') || host.ends_with(']'))
        });
        let target = if has_port {
            self.authority.clone()
        } else {
            format!("{}:{}", self.authority, if self.https { 443 } else { 80 })
        };
        let addresses =
            std::net::ToSocketAddrs::to_socket_addrs(target.as_str()).map_err(|error| unreachable(&error))?;
        let mut last = None;
        let mut connected = None;
        for address in addresses {
            match TcpStream::connect_timeout(&address, Duration::from_secs(5)) {
                Ok(stream) => {
                    connected = Some(stream);
                    break;
                }
                Err(error) => last = Some(error),
            }
        }
        let stream = match (connected, last) {
            (Some(stream), _) => stream,
            (None, Some(error)) => return Err(unreachable(&error)),
            (None, None) => return Err(unreachable(&"the name has no address")),
        };
        stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
        Ok(stream)
    }

    fn call(&self, method: &str, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
        let head =
            self.head(method, path, &hex::encode(Sha256::digest(body)), body.len() as u64, "application/json")?;
        let mut stream = self.connect()?;
        stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body)).map_err(|e| e.to_string())?;
        read_answer(stream)
    }

    fn expect(&self, method: &str, path: &str, body: &[u8], ok: u16) -> Result<Vec<u8>, String> {
        let (status, body) = self.call(method, path, body)?;
        if status == ok {
            return Ok(body);
        }
        Err(describe_error(status, &body))
    }

    pub fn create(&self, key: &NewKey) -> Result<KeyView, String> {
        let body = serde_json::to_vec(key).map_err(|e| e.to_string())?;
        let answer = self.expect("POST", "/_larder/admin/keys", &body, 200)?;
        serde_json::from_slice(&answer).map_err(|e| e.to_string())
    }

    /// The server's state, as `larder status` shows it.
    pub fn status(&self) -> Result<serde_json::Value, String> {
        let answer = self.expect("GET", "/_larder/admin/status", b"", 200)?;
        serde_json::from_slice(&answer).map_err(|e| e.to_string())
    }

    pub fn list(&self) -> Result<Vec<KeyView>, String> {
        let answer = self.expect("GET", "/_larder/admin/keys", b"", 200)?;
        serde_json::from_slice(&answer).map_err(|e| e.to_string())
    }

    pub fn show(&self, access_key: &str) -> Result<KeyView, String> {
        let answer = self.expect("GET", &format!("/_larder/admin/keys/{access_key}"), b"", 200)?;
        serde_json::from_slice(&answer).map_err(|e| e.to_string())
    }

    pub fn revoke(&self, access_key: &str) -> Result<(), String> {
        self.expect("DELETE", &format!("/_larder/admin/keys/{access_key}"), b"", 204).map(|_| ())
    }

    pub fn create_share(&self, share: &NewShare) -> Result<ShareView, String> {
        let body = serde_json::to_vec(share).map_err(|e| e.to_string())?;
        let answer = self.expect("POST", "/_larder/admin/shares", &body, 200)?;
        serde_json::from_slice(&answer).map_err(|e| e.to_string())
    }

    pub fn list_shares(&self) -> Result<Vec<ShareView>, String> {
        let answer = self.expect("GET", "/_larder/admin/shares", b"", 200)?;
        serde_json::from_slice(&answer).map_err(|e| e.to_string())
    }

    pub fn revoke_share(&self, id: &str) -> Result<(), String> {
        self.expect("DELETE", &format!("/_larder/admin/shares/{id}"), b"", 204).map(|_| ())
    }

    /// Creates a bucket unless it is already there.
    pub fn ensure_bucket(&self, bucket: &str) -> Result<(), String> {
        match self.expect("PUT", &format!("/{bucket}"), b"", 200) {
            Err(message) if message.starts_with("BucketAlreadyOwnedByYou") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Uploads a file to `bucket/key`, streaming it; `progress` is told the
    /// bytes sent so far.
    pub fn put_file(
        &self,
        bucket: &str,
        key: &str,
        path: &std::path::Path,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<(), String> {
        let mut file = std::fs::File::open(path).map_err(|error| format!("{}: {error}", path.display()))?;
        let length = file.metadata().map_err(|e| e.to_string())?.len();
        let head = self.head(
            "PUT",
            &format!("/{bucket}/{key}"),
            crate::sigv4::UNSIGNED_PAYLOAD,
            length,
            "application/octet-stream",
        )?;
        let mut stream = self.connect()?;
        stream.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
        let mut buffer = vec![0u8; 256 * 1024];
        let mut sent = 0u64;
        loop {
            let read = file.read(&mut buffer).map_err(|e| e.to_string())?;
            if read == 0 {
                break;
            }
            stream.write_all(&buffer[..read]).map_err(|e| e.to_string())?;
            sent += read as u64;
            progress(sent, length);
        }
        let (status, body) = read_answer(stream)?;
        if status == 200 {
            Ok(())
        } else {
            Err(format!("upload failed (HTTP {status}): {}", String::from_utf8_lossy(&body)))
        }
    }
}

/// Files above this go up in parts, several at a time.
pub const MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
/// Parts in flight at once, each streamed from the file (bounded memory).
const PARTS_IN_FLIGHT: usize = 4;

impl AdminClient {
    /// Uploads a large file to `bucket/key` as a multipart upload: parts of
    /// at least 16 MiB (more for files beyond 160 GiB, to stay within
    /// 10,000 parts), [`PARTS_IN_FLIGHT`] at a time, each streamed from
    /// the file with a small buffer. `sent` counts the bytes sent so far.
    pub fn put_file_multipart(
        &self,
        bucket: &str,
        key: &str,
        path: &std::path::Path,
        sent: &std::sync::atomic::AtomicU64,
    ) -> Result<(), String> {
        let length = std::fs::metadata(path).map_err(|error| format!("{}: {error}", path.display()))?.len();
        let part_size = (16 * 1024 * 1024u64).max(length.div_ceil(10_000));
        let parts = length.div_ceil(part_size).max(1);
        let object = format!("/{bucket}/{key}");
        let created = self.call_with_query("POST", &object, &[("uploads", "")], b"")?;
        let upload_id = xml_field(&created, "UploadId").ok_or("no UploadId in the answer")?;
        let next = std::sync::atomic::AtomicU64::new(1);
        let etags = std::sync::Mutex::new(vec![String::new(); parts as usize]);
        let failed = std::sync::Mutex::new(None::<String>);
        std::thread::scope(|scope| {
            for _ in 0..PARTS_IN_FLIGHT.min(parts as usize) {
                scope.spawn(|| loop {
                    let number = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if number > parts || failed.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                        return;
                    }
                    let offset = (number - 1) * part_size;
                    let size = part_size.min(length - offset);
                    match self.put_part(&object, &upload_id, number, path, offset, size, sent) {
                        Ok(etag) => etags.lock().unwrap_or_else(|p| p.into_inner())[(number - 1) as usize] = etag,
                        Err(error) => {
                            failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(error);
                            return;
                        }
                    }
                });
            }
        });
        if let Some(error) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
            let _ = self.call_with_query("DELETE", &object, &[("uploadId", &upload_id)], b"");
            return Err(format!("upload failed: {error}"));
        }
        let mut document = String::from("<CompleteMultipartUpload>");
        for (i, etag) in etags.into_inner().unwrap_or_else(|p| p.into_inner()).iter().enumerate() {
            document.push_str(&format!("<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>", i + 1));
        }
        document.push_str("</CompleteMultipartUpload>");
        let completed = self.call_with_query("POST", &object, &[("uploadId", &upload_id)], document.as_bytes())?;
        if xml_field(&completed, "ETag").is_none() {
            return Err(format!("completing the upload failed: {}", String::from_utf8_lossy(&completed)));
        }
        Ok(())
    }

    /// One part, streamed from `path` at `offset`; returns its ETag.
    #[allow(clippy::too_many_arguments)]
    fn put_part(
        &self,
        object: &str,
        upload_id: &str,
        number: u64,
        path: &std::path::Path,
        offset: u64,
        size: u64,
        sent: &std::sync::atomic::AtomicU64,
    ) -> Result<String, String> {
        use std::io::{Seek, SeekFrom};
        let mut file = std::fs::File::open(path).map_err(|error| format!("{}: {error}", path.display()))?;
        file.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
        let number = number.to_string();
        let query = [("partNumber", number.as_str()), ("uploadId", upload_id)];
        let head = self.head_with_query(
            "PUT",
            object,
            &query,
            crate::sigv4::UNSIGNED_PAYLOAD,
            size,
            "application/octet-stream",
        )?;
        let mut stream = self.connect()?;
        stream.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
        let mut buffer = vec![0u8; 256 * 1024];
        let mut left = size;
        while left > 0 {
            let want = buffer.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let read = file.read(&mut buffer[..want]).map_err(|e| e.to_string())?;
            if read == 0 {
                return Err("the file got shorter while it was being sent".into());
            }
            stream.write_all(&buffer[..read]).map_err(|e| e.to_string())?;
            left -= read as u64;
            sent.fetch_add(read as u64, std::sync::atomic::Ordering::Relaxed);
        }
        let (status, body, etag) = read_answer_with_etag(stream)?;
        match (status, etag) {
            (200, Some(etag)) => Ok(etag),
            _ => Err(format!("part {number}: {}", describe_error(status, &body))),
        }
    }

    /// A signed request with a query string; the answer's body if 200.
    fn call_with_query(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<u8>, String> {
        let head = self.head_with_query(
            method,
            path,
            query,
            &hex::encode(Sha256::digest(body)),
            body.len() as u64,
            "application/xml",
        )?;
        let mut stream = self.connect()?;
        stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body)).map_err(|e| e.to_string())?;
        let (status, answer) = read_answer(stream)?;
        if status / 100 == 2 {
            Ok(answer)
        } else {
            Err(describe_error(status, &answer))
        }
    }
}

/// The text of the root's child `name` in an XML answer, read with the
/// same bounded reader the server uses.
fn xml_field(xml: &[u8], name: &str) -> Option<String> {
    let root = crate::s3::xml::parse(xml).ok()?;
    root.child(name).map(|element| element.text.clone())
}

/// An error answer as a line: S3's code and message when it is S3's error
/// document, else the status and what came.
fn describe_error(status: u16, body: &[u8]) -> String {
    match (xml_field(body, "Code"), xml_field(body, "Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => format!("HTTP {status}: {}", String::from_utf8_lossy(body)),
    }
}

/// [`read_answer`], and the answer's ETag header.
fn read_answer_with_etag(stream: Box<dyn Stream>) -> Result<(u16, Vec<u8>, Option<String>), String> {
    let (status, body, head) = read_answer_and_head(stream)?;
    let etag = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("etag").then(|| value.trim().to_string())
    });
    Ok((status, body, etag))
}

/// Reads a whole answer (the request asked the server to close).
fn read_answer(stream: Box<dyn Stream>) -> Result<(u16, Vec<u8>), String> {
    read_answer_and_head(stream).map(|(status, body, _)| (status, body))
}

/// The status, body and head of a whole answer.
fn read_answer_and_head(mut stream: Box<dyn Stream>) -> Result<(u16, Vec<u8>, String), String> {
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        // A server that closes without TLS's goodbye has still answered.
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(error) => return Err(error.to_string()),
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no HTTP answer")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("no HTTP status")?;
    let chunked = head.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding") && value.to_ascii_lowercase().contains("chunked")
        })
    });
    let body = &raw[split + 4..];
    let body = if chunked { dechunk(body)? } else { body.to_vec() };
    Ok((status, body, head))
}

/// The data of a `Transfer-Encoding: chunked` body.
fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").ok_or("a chunked answer was cut short")?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "a chunked answer does not read")?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if raw.len() < size + 2 {
            return Err("a chunked answer was cut short".into());
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
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

    #[test]
    fn chunked_answers_are_read_whole() {
        assert_eq!(dechunk(b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n").unwrap(), b"hello world");
        assert!(dechunk(b"5\r\nhel").is_err());
    }

    #[test]
    fn errors_are_read_from_s3_error_documents() {
        let document = b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";
        assert_eq!(describe_error(404, document), "NoSuchKey: The specified key does not exist.");
        assert_eq!(describe_error(502, b"bad gateway"), "HTTP 502: bad gateway");
        assert_eq!(xml_field(b"<R><ETag>&quot;abc&quot;</ETag></R>", "ETag").as_deref(), Some("\"abc\""));
    }
}

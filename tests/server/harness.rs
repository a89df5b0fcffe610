//! Starts the real server on 127.0.0.1:0 and talks raw HTTP/1.1 to it,
//! signing requests with SigV4 (header or presigned) the way clients do.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};
use larder::config::Config;
use larder::iam::Credentials;
use larder::server::RunningServer;
use larder::sigv4::{self, Scope, SigningKey};
use larder::timefmt;
use sha2::{Digest, Sha256};

pub fn unique_dir(label: &str) -> PathBuf {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes).unwrap();
    std::env::temp_dir().join(format!("larder-test-{label}-{}", hex::encode(bytes)))
}

pub fn test_credentials() -> Credentials {
    Credentials {
        access_key: "LKTESTROOTKEY0000001".into(),
        secret_key: "test/secret+key/for/larder/integration00".into(),
    }
}

/// The server under test: in this process (the library), or, when
/// `LARDER_BIN` names a binary, that binary as a process of its own (run
/// through `LARDER_RUNNER`, e.g. qemu-user for an ARM build), with the
/// same configuration written to a file.
pub struct TestServer {
    runtime: tokio::runtime::Runtime,
    server: Option<RunningServer>,
    process: Option<std::process::Child>,
    config_file: Option<PathBuf>,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub credentials: Credentials,
    pub region: String,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_in(unique_dir("server"), |_| {})
    }

    pub fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_in(unique_dir("server"), adjust)
    }

    pub fn start_in(dir: PathBuf, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let config = Self::config(&dir, adjust);
        // A test clock cannot be handed to another process.
        if std::env::var_os("LARDER_BIN").is_some() && config.time.is_none() {
            return Self::spawn(dir, config);
        }
        Self::in_process(dir, config)
    }

    /// In this process whatever `LARDER_BIN` says, for tests that look at
    /// the running server's insides ([`TestServer::running`]).
    pub fn start_in_process(dir: PathBuf, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let config = Self::config(&dir, adjust);
        Self::in_process(dir, config)
    }

    fn config(dir: &std::path::Path, adjust: impl FnOnce(&mut Config)) -> Config {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.to_path_buf(),
            root_credentials: Some(test_credentials()),
            ..Config::default()
        };
        adjust(&mut config);
        config
    }

    fn in_process(dir: PathBuf, config: Config) -> TestServer {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let region = config.region.clone();
        let server = runtime.block_on(larder::server::start(config)).expect("the server starts");
        TestServer {
            addr: server.local_addr(),
            credentials: server.root_credentials().clone(),
            server: Some(server),
            process: None,
            config_file: None,
            runtime,
            dir,
            region,
        }
    }

    fn spawn(dir: PathBuf, config: Config) -> TestServer {
        let config_file = PathBuf::from(format!("{}.toml", dir.display()));
        std::fs::write(&config_file, toml::to_string(&config).unwrap()).unwrap();
        let mut command = larder_command();
        command.arg("serve").arg("--config").arg(&config_file);
        if let Some(root) = &config.root_credentials {
            command.env("LARDER_ROOT_ACCESS_KEY", &root.access_key).env("LARDER_ROOT_SECRET_KEY", &root.secret_key);
        } else {
            command.env_remove("LARDER_ROOT_ACCESS_KEY").env_remove("LARDER_ROOT_SECRET_KEY");
        }
        let mut process = command
            .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .env_remove("LARDER_LISTEN")
            .env_remove("LARDER_DATA_DIR")
            .env_remove("LARDER_PUBLIC_URL")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let addr = listening_address(&mut process).expect("the server starts").parse().unwrap();
        let credentials = match config.root_credentials {
            Some(credentials) => credentials,
            None => larder::iam::read_root_key(&dir, config.group_access).unwrap().expect("a root key"),
        };
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        TestServer {
            runtime,
            server: None,
            process: Some(process),
            config_file: Some(config_file),
            addr,
            dir,
            credentials,
            region: config.region,
        }
    }

    /// Stops the server cleanly, keeping the data folder.
    /// The server itself (its addresses, certificate, public URL).
    pub fn running(&self) -> &RunningServer {
        self.server.as_ref().expect("a server in this process (TestServer::start_in_process)")
    }

    pub fn stop(mut self) -> PathBuf {
        self.shut_down();
        std::mem::take(&mut self.dir)
    }

    /// A clean stop: `shutdown` in process, SIGTERM to a process.
    fn shut_down(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
        if let Some(mut process) = self.process.take() {
            let _ = std::process::Command::new("kill").args(["-TERM", &process.id().to_string()]).status();
            // A server that does not stop must not hang the suite.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while process.try_wait().ok().flatten().is_none() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = process.kill();
            let _ = process.wait();
        }
        if let Some(file) = self.config_file.take() {
            let _ = std::fs::remove_file(file);
        }
    }

    pub fn client(&self) -> Client {
        Client {
            addr: self.addr,
            credentials: self.credentials.clone(),
            region: self.region.clone(),
            source: None,
            token: None,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shut_down();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[derive(Clone)]
pub struct Client {
    pub addr: SocketAddr,
    pub credentials: Credentials,
    pub region: String,
    /// Local address to send from (any of 127.0.0.0/8); the OS picks when unset.
    pub source: Option<std::net::IpAddr>,
    /// Session token of temporary credentials.
    pub token: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// x-amz-content-sha256 is the body's hash.
    Signed,
    Unsigned,
}

#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Header(Payload),
    /// A presigned URL valid for this many seconds.
    Presigned(i64),
}

/// A request to build, sign and send. `key` is the decoded object key; the
/// path is encoded the way SDKs do.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub bucket: String,
    pub key: String,
    /// Decoded query parameters.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// Headers added after signing.
    pub unsigned_headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub auth: Auth,
    /// Signing time; now when unset.
    pub time: Option<i64>,
    pub region: Option<String>,
    pub secret: Option<String>,
    /// The service signed for: `s3` unless set.
    pub service: Option<String>,
}

impl Request {
    pub fn new(method: &str, bucket: &str, key: &str) -> Request {
        Request {
            method: method.into(),
            bucket: bucket.into(),
            key: key.into(),
            query: Vec::new(),
            headers: Vec::new(),
            unsigned_headers: Vec::new(),
            body: Vec::new(),
            auth: Auth::Header(Payload::Signed),
            time: None,
            region: None,
            secret: None,
            service: None,
        }
    }

    pub fn query(mut self, name: &str, value: &str) -> Request {
        self.query.push((name.into(), value.into()));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn unsigned_header(mut self, name: &str, value: &str) -> Request {
        self.unsigned_headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    pub fn auth(mut self, auth: Auth) -> Request {
        self.auth = auth;
        self
    }

    pub fn at(mut self, time: i64) -> Request {
        self.time = Some(time);
        self
    }

    pub fn path(&self) -> String {
        match (self.bucket.is_empty(), self.key.is_empty()) {
            (true, _) => "/".into(),
            (false, true) => format!("/{}", self.bucket),
            (false, false) => format!("/{}/{}", self.bucket, self.key),
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The text of the first `<name>` element of the body.
    pub fn xml(&self, name: &str) -> Option<String> {
        let text = self.text();
        let start = text.find(&format!("<{name}>"))? + name.len() + 2;
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(unescape(&text[start..end]))
    }

    pub fn xml_all(&self, name: &str) -> Vec<String> {
        let text = self.text();
        let (open, close) = (format!("<{name}>"), format!("</{name}>"));
        let mut out = Vec::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find(&open) {
            let after = &rest[start + open.len()..];
            let Some(end) = after.find(&close) else { break };
            out.push(unescape(&after[..end]));
            rest = &after[end + close.len()..];
        }
        out
    }

    pub fn code(&self) -> Option<String> {
        self.xml("Code")
    }

    /// Asserts an S3 error: status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code().as_deref()), (status, Some(code)), "body: {}", self.text());
        assert_eq!(self.header("x-amz-request-id"), self.xml("RequestId").as_deref(), "request ids must agree");
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) {
        assert_eq!(self.status, status, "body: {}", self.text());
    }
}

impl Client {
    /// Builds the raw request bytes: head and body.
    pub fn encode(&self, request: &Request) -> Vec<u8> {
        let path_bytes = request.path();
        let encoded_path = sigv4::uri_encode(path_bytes.as_bytes(), true);
        let time = request.time.unwrap_or_else(timefmt::now);
        let amz_date = timefmt::format_amz_date(time);
        let region = request.region.clone().unwrap_or_else(|| self.region.clone());
        let service = request.service.clone().unwrap_or_else(|| "s3".into());
        let scope = Scope { date: amz_date[..8].to_string(), region, service };
        let secret = request.secret.clone().unwrap_or_else(|| self.credentials.secret_key.clone());
        let key = SigningKey::derive(&secret, &scope);
        let host = self.addr.to_string();

        let query: Vec<sigv4::QueryParam> = request
            .query
            .iter()
            .map(|(name, value)| sigv4::QueryParam { name: name.clone(), value: value.clone() })
            .collect();
        let mut signed = HeaderMap::new();
        signed.insert("host", HeaderValue::from_str(&host).unwrap());
        for (name, value) in &request.headers {
            signed.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            );
        }
        if let (Some(token), Auth::Header(_)) = (&self.token, &request.auth) {
            signed.insert("x-amz-security-token", HeaderValue::from_str(token).unwrap());
        }
        let mut extra: Vec<(String, String)> = Vec::new();
        let query_string = match &request.auth {
            Auth::None => encode_query(&query),
            Auth::Header(payload) => {
                let hash = match payload {
                    Payload::Signed => hex::encode(Sha256::digest(&request.body)),
                    Payload::Unsigned => sigv4::UNSIGNED_PAYLOAD.to_string(),
                };
                if !signed.contains_key("x-amz-content-sha256") {
                    signed.insert("x-amz-content-sha256", HeaderValue::from_str(&hash).unwrap());
                }
                if !signed.contains_key("x-amz-date") {
                    signed.insert("x-amz-date", HeaderValue::from_str(&amz_date).unwrap());
                }
                let authorization = sigv4::authorization_header(
                    &request.method,
                    path_bytes.as_bytes(),
                    &query,
                    &signed,
                    &self.credentials.access_key,
                    &key,
                    &scope,
                );
                extra.push(("authorization".into(), authorization));
                encode_query(&query)
            }
            Auth::Presigned(expires) => sigv4::presign_query(
                &request.method,
                path_bytes.as_bytes(),
                &query,
                &signed,
                &self.credentials.access_key,
                &key,
                &scope,
                &amz_date,
                *expires,
                self.token.as_deref(),
            ),
        };
        let target = if query_string.is_empty() { encoded_path } else { format!("{encoded_path}?{query_string}") };
        let mut head = format!("{} {target} HTTP/1.1\r\n", request.method);
        for (name, value) in signed.iter() {
            head.push_str(&format!("{}: {}\r\n", name, String::from_utf8_lossy(value.as_bytes())));
        }
        for (name, value) in extra.iter().chain(request.unsigned_headers.iter()) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let has_length = request
            .headers
            .iter()
            .chain(request.unsigned_headers.iter())
            .any(|(n, _)| n == "content-length" || n == "transfer-encoding");
        if !has_length && (!request.body.is_empty() || matches!(request.method.as_str(), "PUT" | "POST")) {
            head.push_str(&format!("content-length: {}\r\n", request.body.len()));
        }
        head.push_str("connection: close\r\n\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&request.body);
        bytes
    }

    /// The presigned URL path and query for `request`, as a client would hand it out.
    pub fn presigned_target(&self, request: &Request) -> String {
        let bytes = self.encode(request);
        let head = String::from_utf8_lossy(&bytes);
        head.split(' ').nth(1).unwrap().to_string()
    }

    pub fn send(&self, request: &Request) -> Response {
        let bytes = self.encode(request);
        send_raw_from(self.source, self.addr, &bytes, request.method == "HEAD")
    }

    /// The same client with other credentials.
    pub fn with_credentials(&self, access_key: &str, secret_key: &str) -> Client {
        Client {
            credentials: Credentials { access_key: access_key.into(), secret_key: secret_key.into() },
            ..self.clone()
        }
    }

    /// The same client with temporary credentials.
    pub fn with_session(&self, access_key: &str, secret_key: &str, token: &str) -> Client {
        Client { token: Some(token.into()), ..self.with_credentials(access_key, secret_key) }
    }

    /// The same client sending from `source`.
    pub fn sending_from(&self, source: &str) -> Client {
        Client { source: Some(source.parse().unwrap()), ..self.clone() }
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

fn encode_query(query: &[sigv4::QueryParam]) -> String {
    query
        .iter()
        .map(|p| {
            format!("{}={}", sigv4::uri_encode(p.name.as_bytes(), false), sigv4::uri_encode(p.value.as_bytes(), false))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Sends bytes as they are and reads the whole answer (the request asks
/// the server to close the connection).
pub fn send_raw(addr: SocketAddr, bytes: &[u8], head_request: bool) -> Response {
    send_raw_from(None, addr, bytes, head_request)
}

/// Connects from a chosen local address: how source-address rules are tested.
pub fn connect_from(source: Option<std::net::IpAddr>, addr: SocketAddr) -> TcpStream {
    let Some(source) = source else {
        return TcpStream::connect(addr).unwrap();
    };
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&SocketAddr::new(source, 0).into()).unwrap();
    socket.connect(&addr.into()).unwrap();
    socket.into()
}

pub fn send_raw_from(source: Option<std::net::IpAddr>, addr: SocketAddr, bytes: &[u8], head_request: bool) -> Response {
    let mut stream = connect_from(source, addr);
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The server may answer (and close) before taking the whole body.
    let _ = stream.write_all(bytes);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    parse_response(&raw, head_request)
}

pub fn parse_response(raw: &[u8], head_request: bool) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if head_request {
        body.clear();
    } else if headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")) {
        body = decode_chunked(&body);
    }
    // A 100 Continue interim answer precedes the real one.
    if status == 100 {
        return parse_response(&raw[split + 4..], head_request);
    }
    Response { status, headers, body }
}

fn decode_chunked(mut input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = input.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&input[..line_end]).split(';').next().unwrap().trim(), 16)
                .unwrap_or(0);
        input = &input[line_end + 2..];
        if size == 0 || input.len() < size {
            break;
        }
        out.extend_from_slice(&input[..size]);
        input = &input[(size + 2).min(input.len())..];
    }
    out
}

pub fn md5_base64(data: &[u8]) -> String {
    use base64::Engine;
    use md5::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(data))
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(data))
}

/// Runs `larder ARGS --endpoint <server>` with the server's root key in
/// the environment; returns success, standard output and standard error.
pub fn larder_cli(server: &TestServer, args: &[&str]) -> (bool, String, String) {
    let output = crate::harness::larder_command()
        .args(args)
        .args(["--endpoint", &format!("http://{}", server.addr)])
        .env("LARDER_ROOT_ACCESS_KEY", &server.credentials.access_key)
        .env("LARDER_ROOT_SECRET_KEY", &server.credentials.secret_key)
        .env_remove("LARDER_ACCESS_KEY")
        .env_remove("LARDER_SECRET_KEY")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Creates a key through the admin API with `root`; returns a client using it.
pub fn create_key(root: &Client, body: serde_json::Value) -> Client {
    let response = root.send(&Request::new("POST", "_larder", "admin/keys").body(body.to_string()));
    response.assert_status(200);
    let key: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    root.with_credentials(key["access_key"].as_str().unwrap(), key["secret_key"].as_str().unwrap())
}

/// Creates a bucket and asserts it worked.
pub fn create_bucket(client: &Client, bucket: &str) {
    client.send(&Request::new("PUT", bucket, "")).assert_status(200);
}

pub fn put(client: &Client, bucket: &str, key: &str, body: &[u8]) -> Response {
    let response = client.send(&Request::new("PUT", bucket, key).body(body.to_vec()));
    response.assert_status(200);
    response
}

pub fn get(client: &Client, bucket: &str, key: &str) -> Response {
    client.send(&Request::new("GET", bucket, key))
}

/// Deterministic test bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect()
}

/// The `larder` binary as a command: the one cargo built, or `LARDER_BIN`
/// (e.g. a cross-built binary), run through `LARDER_RUNNER` if set (e.g.
/// `qemu-aarch64 -L /usr/aarch64-linux-gnu`).
pub fn larder_command() -> std::process::Command {
    let argv = larder_argv();
    let mut command = std::process::Command::new(&argv[0]);
    command.args(&argv[1..]);
    command
}

/// [`larder_command`] as words: the runner's, then the binary.
pub fn larder_argv() -> Vec<String> {
    let binary = std::env::var("LARDER_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_larder").to_string());
    let runner = std::env::var("LARDER_RUNNER").unwrap_or_default();
    runner.split_whitespace().map(str::to_string).chain([binary]).collect()
}

/// [`larder_argv`] as a shell command line.
pub fn larder_shell_words() -> String {
    larder_argv().join(" ")
}

/// Starts the `larder` binary on 127.0.0.1:0 with the test root key;
/// returns the process and the address it listens on.
pub fn spawn_server(dir: &std::path::Path) -> (std::process::Child, SocketAddr) {
    spawn_server_with(dir, &[])
}

/// [`spawn_server`] with more environment variables.
pub fn spawn_server_with(dir: &std::path::Path, env: &[(&str, &str)]) -> (std::process::Child, SocketAddr) {
    let credentials = test_credentials();
    let mut child = crate::harness::larder_command()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("LARDER_ROOT_ACCESS_KEY", &credentials.access_key)
        .env("LARDER_ROOT_SECRET_KEY", &credentials.secret_key)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
    let addr = line.trim().strip_prefix("larder listening on ").unwrap_or_else(|| panic!("unexpected: {line}"));
    (child, addr.parse().unwrap())
}

/// Waits (up to a minute) until the server's check of the blobs after an
/// unclean stop is done.
pub fn wait_for_recovery(client: &Client) {
    for _ in 0..600 {
        let health = client.send(&Request::new("GET", "_larder", "health"));
        let health: serde_json::Value = serde_json::from_slice(&health.body).unwrap_or_default();
        if health["recovery"] == "done" {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the check of the blobs did not end");
}

/// Reads a spawned `larder serve`'s stdout (piped) up to its `larder
/// listening on ADDR` line; the address, or None if it stopped first.
pub fn listening_address(child: &mut std::process::Child) -> Option<String> {
    let mut reader = std::io::BufReader::new(child.stdout.take()?);
    let mut line = String::new();
    while std::io::BufRead::read_line(&mut reader, &mut line).is_ok_and(|read| read > 0) {
        if let Some(addr) = line.trim().strip_prefix("larder listening on ") {
            return Some(addr.to_string());
        }
        line.clear();
    }
    None
}

/// A client of a server started with [`spawn_server`].
pub fn client_of(addr: SocketAddr) -> Client {
    Client { addr, credentials: test_credentials(), region: "us-east-1".into(), source: None, token: None }
}

/// A CompleteMultipartUpload document listing `parts` as (number, ETag).
pub fn complete_document(parts: &[(u32, &str)]) -> String {
    let parts: String =
        parts.iter().map(|(n, etag)| format!("<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>")).collect();
    format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>")
}

/// Sends `signal` to a server started with [`spawn_server`] and waits for it.
pub fn stop(mut child: std::process::Child, signal: i32) {
    crate::storage::unsafe_kill(child.id(), signal);
    child.wait().unwrap();
}

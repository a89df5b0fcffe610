//! A hostile client on the same network: bodies swapped after signing,
//! admin calls from elsewhere, secrets looked for in logs, share links
//! stretched with ranges and races, floods and stalled connections.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest;

use crate::harness::*;
use crate::storage::unsafe_kill;

/// A captured request with its body replaced after signing: the head
/// (signature, `x-amz-content-sha256`) stays, `content-length` follows.
fn swap_body(raw: &[u8], body: &[u8]) -> Vec<u8> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut out = String::new();
    for line in head.split("\r\n") {
        if line.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(&format!("content-length: {}\r\n", body.len()));
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Signs `request` (with body A) and sends it with body `b` instead.
fn send_swapped(client: &Client, request: &Request, b: &[u8]) -> Response {
    let raw = swap_body(&client.encode(request), b);
    send_raw_from(client.source, client.addr, &raw, false)
}

fn admin(method: &str, path: &str) -> Request {
    Request::new(method, "_larder", &format!("admin/{path}"))
}

fn delete_document(keys: &[&str]) -> String {
    let objects: String = keys.iter().map(|k| format!("<Object><Key>{k}</Key></Object>")).collect();
    format!("<Delete><Quiet>true</Quiet>{objects}</Delete>")
}

/// Every body-carrying operation: signed for body A, sent with body B,
/// refused with 400 XAmzContentSHA256Mismatch and nothing changed.
#[test]
fn bodies_swapped_after_signing_are_refused_with_no_effect() {
    let server = TestServer::start();
    let root = server.client();
    create_bucket(&root, "swap");
    put(&root, "swap", "victim", b"precious");
    put(&root, "swap", "decoy1", b"x");

    let mismatch = |response: Response, what: &str| {
        assert_eq!(response.status, 400, "{what}: {}", response.text());
        assert_eq!(response.code().as_deref(), Some("XAmzContentSHA256Mismatch"), "{what}");
    };

    // Admin: a key asked for as read-only, sent as a full-access key with a chosen secret.
    let a = br#"{"name":"reader","grants":["swap:read"]}"#.to_vec();
    let b = br#"{"name":"evil","grants":["*:read,write,delete,list"],"access_key":"LKEVIL00000000000000","secret_key":"evil-secret-evil-secret-evil-secret-0000"}"#;
    mismatch(send_swapped(&root, &admin("POST", "keys").body(a.clone()), b), "admin key");
    let keys = root.send(&admin("GET", "keys"));
    keys.assert_status(200);
    assert!(!keys.text().contains("LKEVIL") && !keys.text().contains("reader"), "{}", keys.text());
    let evil = root.with_credentials("LKEVIL00000000000000", "evil-secret-evil-secret-evil-secret-0000");
    get(&evil, "swap", "victim").assert_error(403, "InvalidAccessKeyId");
    // The same request with its own body works: the refusal was the swap.
    root.send(&admin("POST", "keys").body(a)).assert_status(200);

    // Admin: a share link for one object, sent for another with unlimited uses.
    let expires = larder::timefmt::now() + 3600;
    let a = format!(r#"{{"bucket":"swap","key":"decoy1","expires":{expires},"uses":1}}"#);
    let b = format!(r#"{{"bucket":"swap","key":"victim","expires":{expires}      }}"#);
    mismatch(send_swapped(&root, &admin("POST", "shares").body(a), b.as_bytes()), "admin share");
    let shares = root.send(&admin("GET", "shares"));
    assert_eq!(shares.text().trim(), "[]", "no share was made");

    // PutBucketPolicy: a harmless policy, swapped for one that opens the bucket.
    let a = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::swap/*"}]}"#;
    let b = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::swap/*"}]}"#;
    mismatch(send_swapped(&root, &Request::new("PUT", "swap", "").query("policy", "").body(a), b.as_bytes()), "policy");
    root.send(&Request::new("GET", "swap", "").query("policy", "")).assert_error(404, "NoSuchBucketPolicy");
    get(&root.clone(), "swap", "victim").assert_status(200);
    root.send(&Request::new("GET", "swap", "victim").auth(Auth::None)).assert_error(403, "AccessDenied");

    // PutBucketCors.
    let a = "<CORSConfiguration><CORSRule><AllowedOrigin>http://a.lan</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";
    let b = "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PUT</AllowedMethod></CORSRule></CORSConfiguration>";
    let cors = Request::new("PUT", "swap", "").query("cors", "").header("content-md5", &md5_base64(a.as_bytes()));
    mismatch(send_swapped(&root, &cors.body(a), b.as_bytes()), "cors");
    root.send(&Request::new("GET", "swap", "").query("cors", "")).assert_error(404, "NoSuchCORSConfiguration");

    // DeleteObjects: signed to delete a decoy, sent to delete the victim.
    let a = delete_document(&["decoy1"]);
    let b = delete_document(&["victim"]);
    let request = Request::new("POST", "swap", "").query("delete", "").header("content-md5", &md5_base64(a.as_bytes()));
    mismatch(send_swapped(&root, &request.body(a), b.as_bytes()), "delete objects");
    assert_eq!(get(&root, "swap", "victim").body, b"precious");
    assert_eq!(get(&root, "swap", "decoy1").body, b"x");

    // CompleteMultipartUpload: signed for one part list, sent with another.
    let created = root.send(&Request::new("POST", "swap", "mp").query("uploads", ""));
    let upload_id = created.xml("UploadId").unwrap();
    let part = root.send(
        &Request::new("PUT", "swap", "mp").query("partNumber", "1").query("uploadId", &upload_id).body("only part"),
    );
    let etag = part.header("etag").unwrap().to_string();
    let a = complete_document(&[(1, &etag)]);
    let b = complete_document(&[(1, &etag.to_uppercase())]);
    let complete = Request::new("POST", "swap", "mp").query("uploadId", &upload_id).body(a.clone());
    mismatch(send_swapped(&root, &complete, b.as_bytes()), "complete");
    get(&root, "swap", "mp").assert_error(404, "NoSuchKey");
    root.send(&Request::new("GET", "swap", "mp").query("uploadId", &upload_id)).assert_status(200);
    root.send(&complete).assert_status(200);

    // A presigned PUT that signed the payload's hash in a header.
    let a = b"presigned bytes";
    let presigned = Request::new("PUT", "swap", "presigned")
        .auth(Auth::Presigned(300))
        .header("x-amz-content-sha256", &hex::encode(sha2::Sha256::digest(a)))
        .body(&a[..]);
    mismatch(send_swapped(&root, &presigned, b"forged!! bytes!"), "presigned put");
    get(&root, "swap", "presigned").assert_error(404, "NoSuchKey");
    root.send(&presigned).assert_status(200);

    // PutObject and UploadPart: the store checks what it wrote.
    let a = b"signed bytes";
    mismatch(send_swapped(&root, &Request::new("PUT", "swap", "victim").body(&a[..]), b"forged bytes"), "put");
    assert_eq!(get(&root, "swap", "victim").body, b"precious");

    // STS: the signature covers the form itself.
    let mut sts = Request::new("POST", "", "")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900");
    sts.service = Some("sts".into());
    let swapped = send_swapped(&root, &sts, b"Action=GetSessionToken&Version=2011-06-15&DurationSeconds=999");
    // (Refused as a payload mismatch when the hash header came along,
    // else as a signature mismatch.)
    assert!(swapped.status == 400 || swapped.status == 403, "{}", swapped.text());
    assert!(swapped.xml("AccessKeyId").is_none());
}

/// Content-MD5 and `x-amz-checksum-*` bind unsigned bodies as well.
#[test]
fn declared_digests_are_checked_on_every_body() {
    let server = TestServer::start();
    let root = server.client();
    create_bucket(&root, "digests");
    let cors = "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>";
    let unsigned = Auth::Header(Payload::Unsigned);
    let wrong_md5 = md5_base64(b"something else");
    root.send(
        &Request::new("PUT", "digests", "")
            .query("cors", "")
            .auth(unsigned.clone())
            .header("content-md5", &wrong_md5)
            .body(cors),
    )
    .assert_error(400, "BadDigest");
    root.send(
        &Request::new("PUT", "digests", "")
            .query("cors", "")
            .auth(unsigned.clone())
            .header("x-amz-checksum-crc32", "AAAAAA==")
            .body(cors),
    )
    .assert_error(400, "BadDigest");
    root.send(&Request::new("GET", "digests", "").query("cors", "")).assert_error(404, "NoSuchCORSConfiguration");
    root.send(
        &Request::new("PUT", "digests", "")
            .query("cors", "")
            .auth(unsigned)
            .header("content-md5", &md5_base64(cors.as_bytes()))
            .body(cors),
    )
    .assert_status(200);
    // An aws-chunked body is for uploads only: a configuration cannot be
    // sent in chunks that would escape the payload check.
    let chunked = Request::new("PUT", "digests", "")
        .query("policy", "")
        .header("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
        .header("content-encoding", "aws-chunked")
        .body("5\r\nhello\r\n0\r\n\r\n");
    root.send(&chunked).assert_error(400, "InvalidRequest");
}

/// The admin API takes only header-signed requests with a payload hash,
/// STS only header-signed ones; every request must sign `host`.
#[test]
fn admin_and_sts_refuse_unsigned_and_presigned_requests() {
    let server = TestServer::start();
    let root = server.client();
    let body = br#"{"name":"unsigned","grants":["*:read"]}"#.to_vec();
    root.send(&admin("POST", "keys").auth(Auth::Header(Payload::Unsigned)).body(body.clone()))
        .assert_error(403, "AccessDenied");
    root.send(&admin("GET", "keys").auth(Auth::Header(Payload::Unsigned))).assert_error(403, "AccessDenied");
    root.send(&admin("GET", "keys").auth(Auth::Presigned(300))).assert_error(403, "AccessDenied");
    root.send(&admin("DELETE", "keys/LKNOSUCHKEY000000000").auth(Auth::Presigned(300)))
        .assert_error(403, "AccessDenied");
    assert!(!root.send(&admin("GET", "keys")).text().contains("unsigned"));

    let mut sts = Request::new("POST", "", "").query("Action", "GetSessionToken").query("Version", "2011-06-15");
    sts.service = Some("sts".into());
    sts.auth = Auth::Presigned(300);
    let refused = root.send(&sts);
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(refused.xml("SessionToken").is_none());

    // A signature that leaves out `host` is refused, naming it.
    let now = larder::timefmt::now();
    let amz_date = larder::timefmt::format_amz_date(now);
    let scope = larder::sigv4::Scope { date: amz_date[..8].into(), region: "us-east-1".into(), service: "s3".into() };
    let key = larder::sigv4::SigningKey::derive(&server.credentials.secret_key, &scope);
    let mut signed = http::HeaderMap::new();
    signed.insert("x-amz-content-sha256", larder::sigv4::UNSIGNED_PAYLOAD.parse().unwrap());
    signed.insert("x-amz-date", amz_date.parse().unwrap());
    let authorization =
        larder::sigv4::authorization_header("GET", b"/", &[], &signed, &server.credentials.access_key, &key, &scope);
    let raw = format!(
        "GET / HTTP/1.1\r\nhost: {}\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\nx-amz-date: {amz_date}\r\nauthorization: {authorization}\r\nconnection: close\r\n\r\n",
        server.addr
    );
    let refused = send_raw(server.addr, raw.as_bytes(), false);
    refused.assert_error(403, "AccessDenied");
    assert_eq!(refused.xml("HeadersNotSigned").as_deref(), Some("host"));
}

/// Outside `admin_from` the admin API answers AccessDenied whatever the
/// credentials, so a stranger learns nothing about keys.
#[test]
fn admin_api_answers_only_where_allowed() {
    let server = TestServer::start_with(|config| config.admin_from = vec!["127.0.0.1/32".parse().unwrap()]);
    let root = server.client();
    let here = root.sending_from("127.0.0.1");
    here.send(&admin("GET", "keys")).assert_status(200);
    let elsewhere = root.sending_from("127.0.0.2");
    let refused = elsewhere.send(&admin("GET", "keys"));
    refused.assert_error(403, "AccessDenied");
    let stranger = elsewhere.with_credentials("LKNOSUCHKEY000000000", "whatever-whatever-whatever-whatever-0000");
    let probed = stranger.send(&admin("GET", "keys"));
    probed.assert_error(403, "AccessDenied");
    assert_eq!(probed.xml("Message"), refused.xml("Message"), "an unknown key is answered like the root key");
    elsewhere
        .send(&admin("POST", "keys").body(br#"{"name":"lan","grants":["*:read"]}"#.to_vec()))
        .assert_error(403, "AccessDenied");
    // S3 itself answers from anywhere.
    elsewhere.send(&Request::new("GET", "", "")).assert_status(200);
    // A proxy larder does not trust (say nginx on the board) would make
    // every client look local: forwarded admin requests are refused.
    here.send(&admin("GET", "keys").unsigned_header("x-forwarded-for", "203.0.113.9"))
        .assert_error(403, "AccessDenied");
}

fn start_binary(dir: &std::path::Path) -> Command {
    let mut command = crate::harness::larder_command();
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("LARDER_ROOT_ACCESS_KEY")
        .env_remove("LARDER_ROOT_SECRET_KEY")
        .env("RUST_LOG", "debug");
    command
}

/// Reads the child's stdout until the server says it listens, then stops
/// it; returns everything it printed on stdout and stderr.
fn run_until_listening(mut command: Command) -> String {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut printed = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.unwrap();
        let done = line.contains("larder listening on ");
        printed.push(line);
        if done {
            break;
        }
    }
    unsafe_kill(child.id(), libc::SIGTERM);
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    child.wait().unwrap();
    printed.join("\n") + "\n" + &stderr
}

#[test]
fn the_root_secret_is_shown_only_on_a_terminal() {
    // Not a terminal (systemd, a log file): the secret is only in the file.
    let dir = unique_dir("secret-log");
    let output = run_until_listening(start_binary(&dir));
    let stored = std::fs::read_to_string(dir.join("root-key.toml")).unwrap();
    let secret = stored.lines().find_map(|l| l.strip_prefix("secret_key = ")).unwrap().trim_matches('"');
    let access = stored.lines().find_map(|l| l.strip_prefix("access_key = ")).unwrap().trim_matches('"');
    assert!(secret.len() >= 30);
    assert!(!output.contains(secret), "the secret reached a log:\n{output}");
    assert!(output.contains(access) && output.contains("root-key.toml"), "{output}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(dir.join("root-key.toml")).unwrap().permissions().mode() & 0o777, 0o600);
    std::fs::remove_dir_all(&dir).unwrap();

    // On a terminal (script(1) gives the server a pty) it is shown once.
    let dir = unique_dir("secret-tty");
    let mut command = Command::new("script");
    let line = format!(
        "env -u LARDER_ROOT_ACCESS_KEY -u LARDER_ROOT_SECRET_KEY {} serve --listen 127.0.0.1:0 --data-dir {}",
        crate::harness::larder_shell_words(),
        dir.display()
    );
    command.args(["-qfec", &line, "/dev/null"]);
    let output = run_until_listening(command);
    let stored = std::fs::read_to_string(dir.join("root-key.toml")).unwrap();
    let secret = stored.lines().find_map(|l| l.strip_prefix("secret_key = ")).unwrap().trim_matches('"');
    assert!(output.contains(&format!("secret key: {secret}")), "{output}");
    assert!(output.contains("aws --endpoint-url http://127.0.0.1:"));
    // The server under script(1) may still be writing as it goes.
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_data_folder_open_to_others_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = unique_dir("loose");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = TestServer::start_in(dir.clone(), |_| {});
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    drop(server);
}

fn share_link(root: &Client, key: &str, uses: Option<u64>) -> (Client, String) {
    let expires = larder::timefmt::now() + 3600;
    let mut document = serde_json::json!({"bucket": "links", "key": key, "expires": expires});
    if let Some(uses) = uses {
        document["uses"] = uses.into();
    }
    let created = root.send(&admin("POST", "shares").body(document.to_string()));
    created.assert_status(200);
    let view: serde_json::Value = serde_json::from_slice(&created.body).unwrap();
    let id = view["id"].as_str().unwrap().to_string();
    (root.with_credentials(&id, view["secret_key"].as_str().unwrap()), id)
}

fn ranged(client: &Client, key: &str, range: &str) -> Response {
    client.send(&Request::new("GET", "links", key).auth(Auth::Presigned(600)).header("range", range))
}

/// A link with N uses serves N times the object's bytes, however they
/// are asked for, and a download cut short can be resumed.
#[test]
fn share_link_budgets_hold_against_ranges() {
    let server = TestServer::start();
    let root = server.client();
    create_bucket(&root, "links");
    let bytes = pattern(100_000, 9);
    put(&root, "links", "file", &bytes);

    let (link, _) = share_link(&root, "file", Some(1));
    ranged(&link, "file", "bytes=1-").assert_status(206);
    ranged(&link, "file", "bytes=0-0").assert_status(206);
    // The whole object has been served once: nothing more, in any shape.
    for range in ["bytes=0-", "bytes=1-", "bytes=-1", "bytes=99999-", "bytes=0-0"] {
        ranged(&link, "file", range).assert_error(403, "AccessDenied");
    }
    link.send(&Request::new("GET", "links", "file").auth(Auth::Presigned(600))).assert_error(403, "AccessDenied");

    // A download cut short gives back what it did not send, so the rest
    // can be fetched with a Range. (What the network held in flight when
    // it broke counts as sent: the object is large enough here that this
    // cannot reach the range resumed.)
    let bytes = pattern(32 << 20, 5);
    put(&root, "links", "file", &bytes);
    let (link, _) = share_link(&root, "file", Some(1));
    let request = Request::new("GET", "links", "file").auth(Auth::Presigned(600));
    let mut stream = connect_from(None, server.addr);
    stream.write_all(&link.encode(&request)).unwrap();
    let mut first = vec![0u8; 4096];
    let read = stream.read(&mut first).unwrap();
    assert!(read > 0);
    drop(stream);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resumed = ranged(&link, "file", "bytes=16777216-");
        if resumed.status == 206 {
            assert!(resumed.body == bytes[16 << 20..]);
            break;
        }
        assert!(Instant::now() < deadline, "the unsent bytes were never given back");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Concurrent downloads never under-count: of 8 racing full downloads of
/// a 3-use link, exactly 3 are served.
#[test]
fn concurrent_downloads_never_exceed_the_budget() {
    let server = TestServer::start();
    let root = server.client();
    create_bucket(&root, "links");
    put(&root, "links", "file", &pattern(20_000, 3));
    let (link, _) = share_link(&root, "file", Some(3));
    let request = Request::new("GET", "links", "file").auth(Auth::Presigned(600));
    let served = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8).map(|_| scope.spawn(|| link.send(&request).status)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).filter(|status| *status == 200).count()
    });
    assert_eq!(served, 3);
}

/// Revoking a link while it is being downloaded, then restarting: the
/// link stays dead.
#[test]
fn a_revoked_link_stays_dead_after_races_and_a_restart() {
    let dir = unique_dir("revoke-race");
    let server = TestServer::start_in(dir.clone(), |_| {});
    let root = server.client();
    create_bucket(&root, "links");
    put(&root, "links", "file", &pattern(5_000, 1));
    let mut links = Vec::new();
    for _ in 0..4 {
        let (link, id) = share_link(&root, "file", Some(1000));
        let request = Request::new("GET", "links", "file").auth(Auth::Presigned(600));
        std::thread::scope(|scope| {
            let downloads: Vec<_> = (0..6).map(|_| scope.spawn(|| link.send(&request).status)).collect();
            std::thread::sleep(Duration::from_millis(5));
            root.send(&admin("DELETE", &format!("shares/{id}"))).assert_status(204);
            for download in downloads {
                let status = download.join().unwrap();
                assert!(status == 200 || status == 403, "{status}");
            }
        });
        links.push(link);
    }
    let request = Request::new("GET", "links", "file").auth(Auth::Presigned(600));
    for link in &links {
        link.send(&request).assert_error(403, "InvalidAccessKeyId");
    }
    let dir = server.stop();
    let server = TestServer::start_in(dir, |_| {});
    let root = server.client();
    for link in &links {
        Client { addr: server.addr, ..link.clone() }.send(&request).assert_error(403, "InvalidAccessKeyId");
    }
    assert_eq!(root.send(&admin("GET", "shares")).text().trim(), "[]");
}

fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    kib * 1024
}

/// Sends `head`, then `flood_bytes` of `A` as fast as the server takes
/// them, while the answer is read on another thread. Returns the answer
/// and how much of the flood the server took.
fn flood(addr: std::net::SocketAddr, head: &[u8], flood_bytes: u64) -> (Response, u64) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut reader = stream.try_clone().unwrap();
    let answer = std::thread::spawn(move || {
        let mut raw = Vec::new();
        let _ = reader.read_to_end(&mut raw);
        raw
    });
    stream.write_all(head).unwrap();
    let block = vec![b'A'; 1 << 20];
    let mut sent = 0u64;
    while sent < flood_bytes {
        match stream.write(&block) {
            Ok(n) => sent += n as u64,
            Err(_) => break,
        }
    }
    let raw = answer.join().unwrap();
    (parse_response(&raw, false), sent)
}

/// POST Object is read before anything is authenticated: a form whose
/// part headers, fields or parts never end is refused while the server's
/// memory stays near idle.
#[test]
fn post_floods_are_refused_in_bounded_memory() {
    let dir = unique_dir("post-flood");
    let (mut child, addr) = spawn_server(&dir);
    let client = client_of(addr);
    create_bucket(&client, "flood");
    std::thread::sleep(Duration::from_millis(300));
    let idle = resident_bytes(child.id());
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(idle));
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak, sampling, pid) = (peak.clone(), sampling.clone(), child.id());
        std::thread::spawn(move || {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(resident_bytes(pid), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let two_gib = 2u64 << 30;
    let post_head = |preamble: &str| {
        format!(
            "POST /flood HTTP/1.1\r\nhost: {addr}\r\ncontent-type: multipart/form-data; boundary=x\r\n\
             content-length: {}\r\n\r\n{preamble}",
            two_gib + preamble.len() as u64
        )
    };
    // Part headers that never end.
    let (answer, taken) = flood(addr, post_head("--x\r\n").as_bytes(), two_gib);
    answer.assert_error(400, "MalformedPOSTRequest");
    assert!(taken < 64 << 20, "the server read on: {taken} bytes");
    // A field that never ends.
    let (answer, _) =
        flood(addr, post_head("--x\r\ncontent-disposition: form-data; name=\"key\"\r\n\r\n").as_bytes(), two_gib);
    answer.assert_error(400, "MaxPostPreDataLengthExceeded");
    // Parts without end.
    let many = "--x\r\ncontent-disposition: form-data; name=\"a\"\r\n\r\nb\r\n".repeat(200);
    let (answer, _) = flood(addr, post_head(&many).as_bytes(), 1 << 20);
    answer.assert_error(400, "MalformedPOSTRequest");
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("POST floods: idle {} KiB, peak {} KiB", idle / 1024, peak / 1024);
    assert!(peak < idle + (8 << 20), "memory grew from {idle} to {peak} bytes");
    // The server is unharmed.
    client.send(&Request::new("GET", "flood", "")).assert_status(200);
    unsafe_kill(child.id(), libc::SIGKILL);
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads whatever the server sends within `wait`; `None` if the
/// connection is still open and silent after it.
fn read_until_closed(stream: &mut std::net::TcpStream, wait: Duration) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buffer = vec![0u8; 1 << 20];
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => return Some(got),
            Ok(n) => got.extend_from_slice(&buffer[..n]),
            Err(error)
                if error.kind() == std::io::ErrorKind::WouldBlock || error.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(got),
        }
    }
    None
}

/// 256 stalled connections from one address (idle, half-sent heads,
/// unread GETs, trickled uploads): another address is still answered at
/// once, the excess is refused with 503 SlowDown, and every stalled
/// connection is dropped by the server within its limits.
#[test]
fn stalled_connections_cannot_starve_the_server() {
    let server = TestServer::start_with(|config| {
        config.header_timeout_secs = 2;
        config.body_idle_timeout_secs = 3;
        config.min_upload_rate_window_secs = 2;
    });
    let root = server.client();
    create_bucket(&root, "stall");
    let big = pattern(16 << 20, 7);
    put(&root, "stall", "big", &big);
    put(&root, "stall", "small", b"still here");

    let attacker = root.sending_from("127.0.0.9");
    let unread_get = attacker.encode(&Request::new("GET", "stall", "big"));
    let trickle_head = {
        let mut raw = attacker.encode(
            &Request::new("PUT", "stall", "trickle")
                .auth(Auth::Header(Payload::Unsigned))
                .header("content-length", "1048576"),
        );
        raw.extend_from_slice(b"0123456789");
        raw
    };
    let mut stalled = Vec::new();
    for i in 0..256 {
        let mut stream = connect_from(attacker.source, server.addr);
        match i % 4 {
            0 => {}
            1 => stream.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").unwrap(),
            2 => stream.write_all(&unread_get).unwrap(),
            _ => stream.write_all(&trickle_head).unwrap(),
        }
        stalled.push((i % 4, stream));
    }
    // Another host on the LAN is served at once.
    for _ in 0..3 {
        let started = Instant::now();
        let health = send_raw(
            server.addr,
            format!("GET /_larder/health HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", server.addr).as_bytes(),
            false,
        );
        health.assert_status(200);
        assert_eq!(get(&root, "stall", "small").body, b"still here");
        assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    }
    // The attacker's excess was refused at once with S3's SlowDown.
    let mut refused = 0;
    let mut admitted = Vec::new();
    for (kind, mut stream) in stalled {
        stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let mut head = [0u8; 64];
        match stream.read(&mut head) {
            Ok(n) if head[..n].starts_with(b"HTTP/1.1 503") => refused += 1,
            Ok(n) => admitted.push((kind, stream, head[..n].to_vec())),
            Err(_) => admitted.push((kind, stream, Vec::new())),
        }
    }
    assert!(refused >= 256 - 64, "only {refused} of 256 were refused");
    // Every admitted stalled connection is dropped by the server: heads by
    // the header timeout, unread answers and trickles by the body limits.
    // (Nothing is read meanwhile: an unread answer must stay unread.)
    std::thread::sleep(Duration::from_secs(7));
    let deadline = Duration::from_secs(10);
    for (kind, stream, first) in admitted.iter_mut() {
        let got = read_until_closed(stream, deadline);
        let got = got.unwrap_or_else(|| panic!("a stalled connection of kind {kind} was never dropped"));
        let got = [first.as_slice(), &got].concat();
        if *kind == 2 {
            assert!(got.len() < big.len(), "an unread answer was sent whole");
        }
        if *kind == 3 {
            parse_response(&got, false).assert_error(400, "RequestTimeout");
        }
    }
    // Their slots are free again.
    let started = Instant::now();
    attacker.send(&Request::new("GET", "stall", "small")).assert_status(200);
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// The machine's clock, moved by a test.
#[derive(Default)]
pub struct ShiftedClock {
    pub offset: std::sync::atomic::AtomicI64,
    start: std::sync::OnceLock<Instant>,
}

impl larder::clock::TimeSource for ShiftedClock {
    fn system(&self) -> i64 {
        larder::timefmt::now() + self.offset.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn monotonic(&self) -> Duration {
        self.start.get_or_init(Instant::now).elapsed()
    }
}

fn health(server: &TestServer) -> serde_json::Value {
    let raw = format!("GET /_larder/health HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", server.addr);
    let answer = send_raw(server.addr, raw.as_bytes(), false);
    answer.assert_status(200);
    serde_json::from_slice(&answer.body).unwrap()
}

/// A clock that jumps a year ahead (a bad NTP answer) is used while it is
/// wrong, but not saved: once it is put right, links work again, across
/// restarts too.
#[test]
fn a_forward_clock_jump_does_not_kill_links_for_good() {
    let shifted = std::sync::Arc::new(ShiftedClock::default());
    let time = larder::clock::TimeOverride(shifted.clone());
    let start = |dir: std::path::PathBuf| {
        let time = time.clone();
        TestServer::start_in(dir, move |config| config.time = Some(time))
    };
    let server = start(unique_dir("clock-jump"));
    let root = server.client();
    create_bucket(&root, "links");
    put(&root, "links", "file", b"still shared");
    let (link, _) = share_link(&root, "file", None);
    let request = Request::new("GET", "links", "file").auth(Auth::Presigned(3600));
    let url = link.encode(&request);
    send_raw(server.addr, &url, false).assert_status(200);
    assert_eq!(health(&server)["clock"], "ok");

    shifted.offset.store(365 * 86_400, std::sync::atomic::Ordering::SeqCst);
    let report = health(&server);
    assert_eq!(report["clock"], "ahead");
    assert!(report["clock_ahead_secs"].as_i64().unwrap() > 364 * 86_400);
    assert!(report["clock_advice"].as_str().unwrap().contains("correct it"));
    // Judged by the wrong clock while it is wrong (the link's key has
    // expired by it)...
    assert_eq!(send_raw(server.addr, &url, false).status, 403);
    // ...which is not saved: a restart still sees it as ahead.
    let dir = server.stop();
    let server = start(dir);
    assert_eq!(health(&server)["clock"], "ahead");

    shifted.offset.store(0, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(health(&server)["clock"], "ok");
    let url = Client { addr: server.addr, ..link.clone() }.encode(&request);
    send_raw(server.addr, &url, false).assert_status(200);
    let dir = server.stop();
    let server = start(dir);
    send_raw(server.addr, &Client { addr: server.addr, ..link }.encode(&request), false).assert_status(200);
}

/// Past `max_connections` a new connection is answered 503 SlowDown at
/// once, from any address.
#[test]
fn a_full_server_answers_slow_down_at_once() {
    let server = TestServer::start_with(|config| config.max_connections = 4);
    let held: Vec<_> = (0..4).map(|_| connect_from(Some("127.0.0.5".parse().unwrap()), server.addr)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let refused = send_raw_from(
        Some("127.0.0.6".parse().unwrap()),
        server.addr,
        format!("GET /_larder/health HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", server.addr).as_bytes(),
        false,
    );
    refused.assert_error(503, "SlowDown");
    assert!(started.elapsed() < Duration::from_secs(1));
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    send_raw(
        server.addr,
        format!("GET /_larder/health HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n", server.addr).as_bytes(),
        false,
    )
    .assert_status(200);
}

/// An upload that never goes silent but trickles below the minimum rate
/// is cut off at the end of its window; one at a modest pace is not.
#[test]
fn uploads_below_the_minimum_rate_are_dropped() {
    let server = TestServer::start_with(|config| {
        config.body_idle_timeout_secs = 30;
        config.min_upload_bytes_per_sec = 1024;
        config.min_upload_rate_window_secs = 2;
    });
    let root = server.client();
    create_bucket(&root, "pace");
    let upload = |key: &str, chunk: usize, every: Duration, total: usize| {
        let head = root.encode(
            &Request::new("PUT", "pace", key)
                .auth(Auth::Header(Payload::Unsigned))
                .header("content-length", &total.to_string()),
        );
        let mut stream = connect_from(None, server.addr);
        stream.write_all(&head).unwrap();
        let started = Instant::now();
        let mut sent = 0;
        while sent < total {
            if stream.write_all(&vec![b'x'; chunk.min(total - sent)]).is_err() {
                break;
            }
            sent += chunk;
            std::thread::sleep(every);
        }
        let got = read_until_closed(&mut stream, Duration::from_secs(10)).unwrap_or_default();
        (parse_response(&got, false), started.elapsed())
    };
    // 256 bytes a second, never silent for long: cut off after one window.
    let (answer, took) = upload("trickle", 64, Duration::from_millis(250), 64 * 1024);
    answer.assert_error(400, "RequestTimeout");
    assert!(took < Duration::from_secs(6), "took {took:?}");
    get(&root, "pace", "trickle").assert_error(404, "NoSuchKey");
    // 4 KiB a second for three seconds is slow but fine.
    let (answer, _) = upload("steady", 1024, Duration::from_millis(250), 12 * 1024);
    answer.assert_status(200);
}

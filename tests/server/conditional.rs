//! Conditional writes and `Expect: 100-continue`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::harness::*;

fn setup() -> (TestServer, Client) {
    let server = TestServer::start();
    let client = server.client();
    create_bucket(&client, "cond");
    (server, client)
}

#[test]
fn if_none_match_star_creates_only() {
    let (_server, client) = setup();
    let first = client.send(&Request::new("PUT", "cond", "once").header("if-none-match", "*").body("first"));
    first.assert_status(200);
    let second = client.send(&Request::new("PUT", "cond", "once").header("if-none-match", "*").body("second"));
    second.assert_error(412, "PreconditionFailed");
    assert_eq!(get(&client, "cond", "once").body, b"first");
}

/// `If-None-Match: <etag>` on PUT: the write goes ahead unless the
/// current object has (one of) those ETags, so a sync tool never
/// overwrites the very version it means to keep.
#[test]
fn if_none_match_with_an_etag_refuses_only_that_version() {
    let (_server, client) = setup();
    let first = put(&client, "cond", "synced", b"v1").header("etag").unwrap().to_string();
    let same = client.send(&Request::new("PUT", "cond", "synced").header("if-none-match", &first).body("v2"));
    same.assert_error(412, "PreconditionFailed");
    let listed = format!("\"0123456789abcdef0123456789abcdef\", {first}");
    let in_list = client.send(&Request::new("PUT", "cond", "synced").header("if-none-match", &listed).body("v2"));
    in_list.assert_error(412, "PreconditionFailed");
    assert_eq!(get(&client, "cond", "synced").body, b"v1");
    let other = client.send(
        &Request::new("PUT", "cond", "synced")
            .header("if-none-match", "\"0123456789abcdef0123456789abcdef\"")
            .body("v2"),
    );
    other.assert_status(200);
    assert_eq!(get(&client, "cond", "synced").body, b"v2");
    // No object yet: nothing to match, so the write goes ahead.
    let fresh = client.send(&Request::new("PUT", "cond", "fresh").header("if-none-match", &first).body("new"));
    fresh.assert_status(200);
}

#[test]
fn if_match_replaces_only_the_expected_version() {
    let (_server, client) = setup();
    let etag = put(&client, "cond", "k", b"v1").header("etag").unwrap().to_string();
    client
        .send(&Request::new("PUT", "cond", "k").header("if-match", "\"0123\"").body("v2"))
        .assert_error(412, "PreconditionFailed");
    client.send(&Request::new("PUT", "cond", "k").header("if-match", &etag).body("v2")).assert_status(200);
    client
        .send(&Request::new("PUT", "cond", "k").header("if-match", &etag).body("v3"))
        .assert_error(412, "PreconditionFailed");
    assert_eq!(get(&client, "cond", "k").body, b"v2");
    client
        .send(&Request::new("PUT", "cond", "absent").header("if-match", &etag).body("x"))
        .assert_error(404, "NoSuchKey");
}

#[test]
fn sixteen_concurrent_create_only_puts_one_wins() {
    let (_server, client) = setup();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            let client = client.clone();
            std::thread::spawn(move || {
                let body = pattern(256 * 1024, i as u8);
                let response =
                    client.send(&Request::new("PUT", "cond", "race").header("if-none-match", "*").body(body.clone()));
                (response.status, body)
            })
        })
        .collect();
    let results: Vec<(u16, Vec<u8>)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let winners: Vec<&Vec<u8>> = results.iter().filter(|(status, _)| *status == 200).map(|(_, body)| body).collect();
    assert_eq!(winners.len(), 1, "statuses: {:?}", results.iter().map(|r| r.0).collect::<Vec<_>>());
    assert!(results.iter().all(|(status, _)| *status == 200 || *status == 412));
    assert!(get(&client, "cond", "race").body == *winners[0]);
}

/// Sends a request head with `Expect: 100-continue` and returns what the
/// server says before any body byte is sent, plus the stream.
fn send_head_expecting_continue(client: &Client, request: &Request) -> (String, TcpStream) {
    let bytes = client.encode(request);
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut stream = TcpStream::connect(client.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(&bytes[..split]).unwrap();
    let mut buffer = vec![0u8; 4096];
    let n = stream.read(&mut buffer).unwrap();
    (String::from_utf8_lossy(&buffer[..n]).into_owned(), stream)
}

#[test]
fn refusals_come_before_the_body() {
    let (_server, client) = setup();
    put(&client, "cond", "exists", b"x");
    let body = pattern(1024 * 1024, 1);
    let with_expect = |request: Request| request.unsigned_header("expect", "100-continue").body(body.clone());

    let mut bad_signature = with_expect(Request::new("PUT", "cond", "k"));
    bad_signature.secret = Some("wrong".into());
    let too_large = Request::new("PUT", "cond", "k")
        .unsigned_header("expect", "100-continue")
        .auth(Auth::Header(Payload::Unsigned))
        .header("content-length", &(6u64 << 30).to_string());
    let cases = [
        (bad_signature, "403", "SignatureDoesNotMatch"),
        (with_expect(Request::new("PUT", "no-such-bucket", "k")), "404", "NoSuchBucket"),
        (too_large, "400", "EntityTooLarge"),
        (with_expect(Request::new("PUT", "cond", "exists").header("if-none-match", "*")), "412", "PreconditionFailed"),
        (with_expect(Request::new("PUT", "cond", "k").auth(Auth::None)), "403", "AccessDenied"),
    ];
    for (request, status, code) in cases {
        let (answer, _stream) = send_head_expecting_continue(&client, &request);
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{code}: {answer}");
        assert!(answer.contains(&format!("<Code>{code}</Code>")), "{answer}");
        // The unsent body would be read as the next request: the client must not reuse the connection.
        assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    }
    assert_eq!(get(&client, "cond", "k").status, 404);

    // An accepted upload gets 100 Continue, then its answer.
    let request = with_expect(Request::new("PUT", "cond", "accepted"));
    let (answer, mut stream) = send_head_expecting_continue(&client, &request);
    assert!(answer.starts_with("HTTP/1.1 100 Continue"), "{answer}");
    stream.write_all(&body).unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    let response = parse_response(&rest, false);
    response.assert_status(200);
    assert!(get(&client, "cond", "accepted").body == body);
}

//! AWS's SigV4 test suite (awslabs/aws-c-auth, Apache-2.0, copied into
//! tests/data/sigv4-suite with its LICENSE and NOTICE), run through the
//! verifier in both the header and the presigned (query) form.

use std::path::{Path, PathBuf};

use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use super::*;

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sigv4-suite")
}

/// Cases where the generic suite normalises the path and S3 does not; the
/// `-unnormalized` twin of each holds S3's rule.
const NORMALISED_PATH_CASES: &[&str] = &[
    "get-relative-normalized",
    "get-relative-relative-normalized",
    "get-slash-dot-slash-normalized",
    "get-slash-normalized",
    "get-slash-pointless-dot-normalized",
    "get-slashes-normalized",
];

struct RawRequest {
    method: String,
    path: Vec<u8>,
    query: Vec<QueryParam>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl RawRequest {
    fn as_request(&self) -> Request<'_> {
        Request { method: &self.method, path: &self.path, query: &self.query, headers: &self.headers }
    }
}

/// Parses the suite's request files; continuation lines (obsolete header
/// folding) are unfolded with a space, as an HTTP server does.
fn parse_raw_request(text: &str) -> RawRequest {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let request_line = request_line.strip_suffix(" HTTP/1.1").unwrap();
    let (method, target) = request_line.split_once(' ').unwrap();
    let (raw_path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            let last = fields.last_mut().unwrap();
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            let (name, value) = line.split_once(':').unwrap();
            fields.push((name.to_string(), value.to_string()));
        }
    }
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        headers.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(&value).unwrap());
    }
    RawRequest {
        method: method.to_string(),
        path: percent_decode(raw_path, false).unwrap(),
        query: parse_query(raw_query).unwrap(),
        headers,
        body: body.as_bytes().to_vec(),
    }
}

struct Case {
    name: String,
    dir: PathBuf,
    secret: String,
}

impl Case {
    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap()
    }

    fn signed(&self, form: &str) -> RawRequest {
        parse_raw_request(&self.read(&format!("{form}-signed-request.txt")))
    }

    /// The suite signs the body hash where S3 would use x-amz-content-sha256.
    fn payload_line(request: &RawRequest) -> String {
        match request.headers.get("x-amz-content-sha256") {
            Some(value) => value.to_str().unwrap().to_string(),
            None => hex::encode(Sha256::digest(&request.body)),
        }
    }
}

fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = std::fs::read_dir(suite_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("context.json").exists())
        .map(|dir| {
            let context: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("context.json")).unwrap()).unwrap();
            Case {
                name: dir.file_name().unwrap().to_string_lossy().into_owned(),
                secret: context["credentials"]["secret_access_key"].as_str().unwrap().to_string(),
                dir,
            }
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(cases.len() >= 38, "the suite is incomplete: {}", cases.len());
    cases
}

fn parsed(request: &RawRequest, kind: AuthKind) -> ParsedAuth {
    match parse(&request.as_request()) {
        Ok(Authentication::V4(auth)) => {
            assert_eq!(auth.kind, kind);
            *auth
        }
        other => panic!("expected a V4 signature, got {other:?}"),
    }
}

#[test]
fn suite_header_form() {
    for case in cases() {
        let request = case.signed("header");
        let auth = parsed(&request, AuthKind::Header);
        let payload = Case::payload_line(&request);
        let canonical = canonical_request(&request.as_request(), &auth.signed_headers, &payload);
        let key = SigningKey::derive(&case.secret, &auth.scope);
        if NORMALISED_PATH_CASES.contains(&case.name.as_str()) {
            assert_ne!(canonical, case.read("header-canonical-request.txt"), "{}: S3 must not normalise", case.name);
            let twin = case.name.replace("-normalized", "-unnormalized");
            let twin_canonical =
                std::fs::read_to_string(suite_dir().join(twin).join("header-canonical-request.txt")).unwrap();
            assert_eq!(canonical, twin_canonical, "{}", case.name);
            continue;
        }
        assert_eq!(canonical, case.read("header-canonical-request.txt"), "{}", case.name);
        let to_sign = string_to_sign(&auth.amz_date, &auth.scope, &canonical);
        assert_eq!(to_sign, case.read("header-string-to-sign.txt"), "{}", case.name);
        assert_eq!(auth.signature, case.read("header-signature.txt").trim(), "{}", case.name);
        verify_with_payload(&auth, &request.as_request(), &key, &payload)
            .unwrap_or_else(|e| panic!("{}: {e:?}", case.name));

        let mut tampered = auth.clone();
        tampered.signature.replace_range(0..1, if tampered.signature.starts_with('0') { "1" } else { "0" });
        assert!(matches!(
            verify_with_payload(&tampered, &request.as_request(), &key, &payload),
            Err(SigError::SignatureDoesNotMatch { .. })
        ));
    }
}

#[test]
fn suite_query_form() {
    for case in cases() {
        let request = case.signed("query");
        let auth = parsed(&request, AuthKind::Query);
        let payload = Case::payload_line(&request);
        let key = SigningKey::derive(&case.secret, &auth.scope);
        let result = verify_with_payload(&auth, &request.as_request(), &key, &payload);
        if NORMALISED_PATH_CASES.contains(&case.name.as_str()) || case.name == "post-sts-header-after" {
            // post-sts-header-after adds the token after signing; S3 counts
            // X-Amz-Security-Token in the canonical query, so it must fail.
            assert!(result.is_err(), "{} must not verify under S3's rules", case.name);
            continue;
        }
        let canonical = canonical_request(&request.as_request(), &auth.signed_headers, &payload);
        assert_eq!(canonical, case.read("query-canonical-request.txt"), "{}", case.name);
        assert_eq!(auth.expires, Some(3600));
        result.unwrap_or_else(|e| panic!("{}: {e:?}", case.name));
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    map
}

fn presigned_request(expires: &str) -> RawRequest {
    RawRequest {
        method: "GET".into(),
        path: b"/bucket/key".to_vec(),
        query: parse_query(&format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature=00"
        ))
        .unwrap(),
        headers: headers(&[("host", "localhost")]),
        body: Vec::new(),
    }
}

#[test]
fn presigned_expiry_parameters() {
    let refused = |expires: &str| match parse(&presigned_request(expires).as_request()) {
        Err(SigError::QueryMalformed(message)) => message,
        other => panic!("{expires}: {other:?}"),
    };
    assert!(refused("604801").contains("less than a week"));
    assert!(refused("-1").contains("non-negative"));
    assert!(refused("soon").contains("should be a number"));
    let auth = parsed(&presigned_request("604800"), AuthKind::Query);
    let start = timefmt::parse_amz_date("20240101T000000Z").unwrap();
    assert_eq!(auth.check_time(start + 604_800), Ok(()));
    assert!(matches!(auth.check_time(start + 604_801), Err(SigError::Expired { .. })));
    assert_eq!(auth.check_time(start - MAX_SKEW_SECS - 1), Err(SigError::NotYetValid));
    assert!(matches!(
        parsed(&presigned_request("0"), AuthKind::Query).check_time(start),
        Err(SigError::Expired { .. })
    ));
}

#[test]
fn missing_query_parameter_is_named() {
    let mut request = presigned_request("60");
    request.query.retain(|p| p.name != "X-Amz-Date");
    assert_eq!(parse(&request.as_request()).unwrap_err(), SigError::QueryMalformed(QUERY_PARAMS_REQUIRED.into()));
}

#[test]
fn header_scope_and_time_checks() {
    let request = RawRequest {
        method: "GET".into(),
        path: b"/".to_vec(),
        query: Vec::new(),
        headers: headers(&[
            ("host", "localhost"),
            ("x-amz-date", "20240101T000000Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AK/20240101/eu-west-1/s3/aws4_request,SignedHeaders=host;x-amz-date,Signature=00",
            ),
        ]),
        body: Vec::new(),
    };
    let auth = parsed(&request, AuthKind::Header);
    assert!(matches!(auth.check_scope("eu-west-1"), Err(SigError::MissingContentSha256)));
    assert!(matches!(auth.check_scope("us-east-1"), Err(SigError::WrongRegion { .. })));
    let start = auth.request_time;
    assert_eq!(auth.check_time(start + MAX_SKEW_SECS), Ok(()));
    assert!(matches!(auth.check_time(start + MAX_SKEW_SECS + 1), Err(SigError::TooSkewed { .. })));
    assert!(matches!(auth.check_time(start - MAX_SKEW_SECS - 1), Err(SigError::TooSkewed { .. })));

    let mut wrong_day = request;
    wrong_day.headers.insert("x-amz-date", HeaderValue::from_static("20240102T000000Z"));
    assert!(
        matches!(parse(&wrong_day.as_request()), Err(SigError::HeaderMalformed(m)) if m.contains("Invalid credential date"))
    );
}

#[test]
fn sigv2_is_recognised() {
    let request = RawRequest {
        method: "GET".into(),
        path: b"/".to_vec(),
        query: parse_query("AWSAccessKeyId=AK&Signature=abc&Expires=1").unwrap(),
        headers: HeaderMap::new(),
        body: Vec::new(),
    };
    assert_eq!(parse(&request.as_request()).unwrap_err(), SigError::SigV2);
}

#[test]
fn presign_then_verify_round_trip() {
    let scope = Scope { date: "20240101".into(), region: "us-east-1".into(), service: "s3".into() };
    let key = SigningKey::derive("secret", &scope);
    let host = headers(&[("host", "127.0.0.1:9000")]);
    let path = "a key/ሴ+%".as_bytes();
    let query = presign_query("GET", path, &[], &host, "AK", &key, &scope, "20240101T000000Z", 60, None);
    let request = RawRequest {
        method: "GET".into(),
        path: path.to_vec(),
        query: parse_query(&query).unwrap(),
        headers: host.clone(),
        body: Vec::new(),
    };
    let auth = parsed(&request, AuthKind::Query);
    verify(&auth, &request.as_request(), &key).unwrap();

    let mut with_extra_header = request;
    with_extra_header.headers.insert("x-amz-meta-a", HeaderValue::from_static("1"));
    assert_eq!(
        verify(&auth, &with_extra_header.as_request(), &key),
        Err(SigError::HeadersNotSigned(vec!["x-amz-meta-a".into()]))
    );
}

#[test]
fn a_signature_matches_in_either_case_and_nothing_else_does() {
    let scope = Scope { date: "20240101".into(), region: "us-east-1".into(), service: "s3".into() };
    let key = SigningKey::derive("secret", &scope);
    let signature = key.sign("to sign");
    assert!(key.matches("to sign", &signature));
    assert!(key.matches("to sign", &signature.to_uppercase()));
    assert!(!key.matches("to sign.", &signature));
    assert!(!key.matches("to sign", &signature[..62]));
    assert!(!key.matches("to sign", &format!("{signature}00")));
    let mut flipped = signature.clone().into_bytes();
    flipped[63] = if flipped[63] == b'0' { b'1' } else { b'0' };
    assert!(!key.matches("to sign", std::str::from_utf8(&flipped).unwrap()));
    assert!(!key.matches("to sign", &format!("{}g", &signature[..63])));
    // The kept keyed state signs like a fresh HMAC of the derived key.
    let again = SigningKey::derive("secret", &scope);
    assert_eq!(again.sign("other"), key.sign("other"));
    assert_eq!(again, key);
}

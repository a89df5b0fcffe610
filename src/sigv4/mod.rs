//! AWS Signature Version 4 as Amazon S3 checks it.
//!
//! Pure: a request's method, decoded path, decoded query and headers, plus
//! the time, go in; a verdict comes out. Nothing here knows buckets, keys
//! or storage, so it runs against AWS's published vectors and benchmarks
//! alone. The flow for one request is [`parse`], then
//! [`ParsedAuth::check_scope`], a key lookup (the caller's), then
//! [`ParsedAuth::check_time`] and [`verify`].

mod canonical;
mod chunk;
mod encode;
mod sign;
pub mod v2;

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;

pub use canonical::{canonical_request, string_to_sign};
pub use chunk::ChunkChain;
pub use encode::{parse_query, percent_decode, uri_encode, BadPercentEncoding, QueryParam};
pub use sign::{authorization_header, presign_query};

use crate::timefmt;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// SHA-256 of the empty string, the payload hash of a body-less request.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// X-Amz-Expires may be at most a week.
pub const MAX_EXPIRES_SECS: i64 = 604_800;
/// Header-signed requests may be this far from the server's clock.
pub const MAX_SKEW_SECS: i64 = 900;

/// The parts of a request that a signature covers.
pub struct Request<'a> {
    pub method: &'a str,
    /// The request path decoded once (S3 neither normalises it nor decodes twice).
    pub path: &'a [u8],
    pub query: &'a [QueryParam],
    pub headers: &'a HeaderMap,
}

/// How a request says who it is.
#[derive(Debug)]
pub enum Authentication {
    Anonymous,
    V4(Box<ParsedAuth>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    /// `Authorization: AWS4-HMAC-SHA256 ...`
    Header,
    /// A presigned URL: `X-Amz-Algorithm=...&X-Amz-Signature=...`
    Query,
}

/// The credential scope: `<date>/<region>/<service>/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub date: String,
    pub region: String,
    pub service: String,
}

impl Scope {
    pub fn to_scope_string(&self) -> String {
        format!("{}/{}/{}/aws4_request", self.date, self.region, self.service)
    }
}

/// A SigV4 signature as the request carries it, not yet checked.
#[derive(Debug, Clone)]
pub struct ParsedAuth {
    pub kind: AuthKind,
    pub access_key: String,
    pub scope: Scope,
    /// The `SignedHeaders` list exactly as sent (`;`-separated, lower case).
    pub signed_headers: String,
    pub signature: String,
    /// The request time as Unix seconds, and in the `x-amz-date` form the
    /// string to sign uses.
    pub request_time: i64,
    pub amz_date: String,
    /// Presigned URLs only: X-Amz-Expires in seconds.
    pub expires: Option<i64>,
    /// Header auth only: the `x-amz-content-sha256` header.
    pub content_sha256: Option<String>,
    pub security_token: Option<String>,
}

/// Every way a signature can be refused. The HTTP edge maps each to the S3
/// error code and status AWS uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    /// 400 AuthorizationHeaderMalformed.
    HeaderMalformed(String),
    /// 400 AuthorizationQueryParametersError.
    QueryMalformed(String),
    /// 400, the header or query form of "the region 'x' is wrong".
    WrongRegion { kind: AuthKind, got: String, expected: String },
    /// 400 InvalidArgument: an Authorization scheme we do not know.
    UnsupportedAuthorization,
    /// 400 InvalidRequest: SigV2 (header or query).
    SigV2,
    /// 403 AccessDenied: no usable `x-amz-date` or `Date`.
    MissingDate,
    /// 400 InvalidRequest: header auth without `x-amz-content-sha256`.
    MissingContentSha256,
    /// 400 InvalidArgument: `x-amz-content-sha256` is neither a hash nor a known marker.
    InvalidContentSha256,
    /// 403 RequestTimeTooSkewed.
    TooSkewed { request_time: i64, server_time: i64 },
    /// 403 AccessDenied "Request has expired".
    Expired { expires_secs: i64, expired_at: i64, server_time: i64 },
    /// 403 AccessDenied "Request is not valid yet".
    NotYetValid,
    /// 403 AccessDenied: `x-amz-*` headers on a presigned URL it did not sign.
    HeadersNotSigned(Vec<String>),
    /// 403 SignatureDoesNotMatch, with what S3 echoes to help debugging.
    SignatureDoesNotMatch {
        access_key: String,
        string_to_sign: String,
        canonical_request: String,
        signature_provided: String,
    },
}

const QUERY_PARAMS_REQUIRED: &str = "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.";

/// Works out how the request authenticates and reads its signature fields.
pub fn parse(request: &Request<'_>) -> Result<Authentication, SigError> {
    let param = |name: &str| request.query.iter().find(|p| p.name == name).map(|p| p.value.as_str());
    if let Some(header) = request.headers.get(http::header::AUTHORIZATION) {
        let header = header.to_str().map_err(|_| SigError::UnsupportedAuthorization)?;
        return parse_authorization_header(header, request).map(|auth| Authentication::V4(Box::new(auth)));
    }
    if param("X-Amz-Algorithm").is_some() || param("X-Amz-Credential").is_some() || param("X-Amz-Signature").is_some() {
        return parse_presigned(&param).map(|auth| Authentication::V4(Box::new(auth)));
    }
    if param("AWSAccessKeyId").is_some() && param("Signature").is_some() {
        return Err(SigError::SigV2);
    }
    Ok(Authentication::Anonymous)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn parse_authorization_header(header: &str, request: &Request<'_>) -> Result<ParsedAuth, SigError> {
    let header = header.trim();
    if header.starts_with("AWS ") {
        return Err(SigError::SigV2);
    }
    let Some(fields) = header.strip_prefix(ALGORITHM).filter(|rest| rest.starts_with(' ')) else {
        return Err(SigError::UnsupportedAuthorization);
    };
    let malformed = |what: &str| SigError::HeaderMalformed(format!("The authorization header is malformed; {what}"));
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for field in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let Some((name, value)) = field.split_once('=') else {
            return Err(malformed(&format!("the authorization component \"{field}\" is malformed.")));
        };
        match name.trim() {
            "Credential" => credential = Some(value.trim()),
            "SignedHeaders" => signed_headers = Some(value.trim()),
            "Signature" => signature = Some(value.trim()),
            other => return Err(malformed(&format!("the authorization component \"{other}\" is malformed."))),
        }
    }
    let credential = credential.ok_or_else(|| malformed("the Credential is missing."))?;
    let signed_headers = signed_headers.ok_or_else(|| malformed("the SignedHeaders are missing."))?;
    let signature = signature.ok_or_else(|| malformed("the Signature is missing."))?;
    let (access_key, scope) = parse_credential(credential).map_err(|what| malformed(&what))?;

    let (request_time, amz_date) = match header_str(request.headers, "x-amz-date") {
        Some(text) => {
            let time = timefmt::parse_amz_date(text.trim()).ok_or(SigError::MissingDate)?;
            (time, text.trim().to_string())
        }
        None => {
            let text = header_str(request.headers, "date").ok_or(SigError::MissingDate)?;
            let time = timefmt::parse_http_date(text).ok_or(SigError::MissingDate)?;
            (time, timefmt::format_amz_date(time))
        }
    };
    if scope.date != amz_date[..8] {
        return Err(SigError::HeaderMalformed("Invalid credential date. Date is not the same as X-Amz-Date.".into()));
    }
    Ok(ParsedAuth {
        kind: AuthKind::Header,
        access_key,
        scope,
        signed_headers: signed_headers.to_string(),
        signature: signature.to_string(),
        request_time,
        amz_date,
        expires: None,
        content_sha256: header_str(request.headers, "x-amz-content-sha256").map(|v| v.trim().to_string()),
        security_token: header_str(request.headers, "x-amz-security-token").map(str::to_string),
    })
}

fn parse_presigned<'a>(param: &dyn Fn(&str) -> Option<&'a str>) -> Result<ParsedAuth, SigError> {
    let malformed = |text: &str| SigError::QueryMalformed(text.to_string());
    let (Some(algorithm), Some(credential), Some(signature), Some(date), Some(signed_headers), Some(expires)) = (
        param("X-Amz-Algorithm"),
        param("X-Amz-Credential"),
        param("X-Amz-Signature"),
        param("X-Amz-Date"),
        param("X-Amz-SignedHeaders"),
        param("X-Amz-Expires"),
    ) else {
        return Err(malformed(QUERY_PARAMS_REQUIRED));
    };
    if algorithm != ALGORITHM {
        return Err(malformed("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\""));
    }
    let expires: i64 = expires.parse().map_err(|_| malformed("X-Amz-Expires should be a number"))?;
    if expires < 0 {
        return Err(malformed("X-Amz-Expires must be non-negative"));
    }
    if expires > MAX_EXPIRES_SECS {
        return Err(malformed(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds",
        ));
    }
    let (access_key, scope) = parse_credential(credential)
        .map_err(|what| malformed(&format!("Error parsing the X-Amz-Credential parameter; {what}")))?;
    let request_time = timefmt::parse_amz_date(date)
        .ok_or_else(|| malformed("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\""))?;
    if scope.date != date[..8] {
        return Err(malformed(
            "Error parsing the X-Amz-Credential parameter; Invalid credential date. Date is not the same as X-Amz-Date.",
        ));
    }
    Ok(ParsedAuth {
        kind: AuthKind::Query,
        access_key,
        scope,
        signed_headers: signed_headers.to_string(),
        signature: signature.to_string(),
        request_time,
        amz_date: date.to_string(),
        expires: Some(expires),
        content_sha256: None,
        security_token: param("X-Amz-Security-Token").map(str::to_string),
    })
}

/// Splits `AKID/20130524/us-east-1/s3/aws4_request`; the error text says what is wrong.
pub fn parse_credential(credential: &str) -> Result<(String, Scope), String> {
    let mut parts = credential.split('/');
    let shape = "the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".";
    let (Some(access_key), Some(date), Some(region), Some(service), Some(terminal), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(shape.to_string());
    };
    if access_key.is_empty() || date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) || region.is_empty() {
        return Err(shape.to_string());
    }
    if terminal != "aws4_request" {
        return Err(format!("incorrect terminal \"{terminal}\". This endpoint uses \"aws4_request\"."));
    }
    let scope = Scope { date: date.to_string(), region: region.to_string(), service: service.to_string() };
    Ok((access_key.to_string(), scope))
}

/// Is this a valid `x-amz-content-sha256` value for a body we can check?
pub fn is_hex_sha256(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

impl ParsedAuth {
    /// Checks what needs no key: the region, the service and the payload
    /// hash declaration.
    pub fn check_scope(&self, region: &str) -> Result<(), SigError> {
        self.check_scope_of(region, "s3")?;
        if self.kind == AuthKind::Header {
            let value = self.content_sha256.as_deref().ok_or(SigError::MissingContentSha256)?;
            if value != UNSIGNED_PAYLOAD && !value.starts_with("STREAMING-") && !is_hex_sha256(value) {
                return Err(SigError::InvalidContentSha256);
            }
        }
        Ok(())
    }

    /// Checks region and service only: for services other than S3 (STS),
    /// which sign the body's hash without naming it in a header.
    pub fn check_scope_of(&self, region: &str, service: &str) -> Result<(), SigError> {
        if self.scope.region != region {
            return Err(SigError::WrongRegion {
                kind: self.kind,
                got: self.scope.region.clone(),
                expected: region.to_string(),
            });
        }
        if self.scope.service != service {
            let what = format!("incorrect service \"{}\". This endpoint belongs to \"{service}\".", self.scope.service);
            return Err(match self.kind {
                AuthKind::Header => SigError::HeaderMalformed(format!("The authorization header is malformed; {what}")),
                AuthKind::Query => {
                    SigError::QueryMalformed(format!("Error parsing the X-Amz-Credential parameter; {what}"))
                }
            });
        }
        Ok(())
    }

    /// Checks the request time against `now`: the skew for header auth, the
    /// validity window for presigned URLs (checked when the request arrives,
    /// so a download that started in time finishes).
    pub fn check_time(&self, now: i64) -> Result<(), SigError> {
        match self.expires {
            None => {
                if (now - self.request_time).abs() > MAX_SKEW_SECS {
                    return Err(SigError::TooSkewed { request_time: self.request_time, server_time: now });
                }
            }
            Some(expires) => {
                if self.request_time - now > MAX_SKEW_SECS {
                    return Err(SigError::NotYetValid);
                }
                let expired_at = self.request_time + expires;
                if now > expired_at || expires == 0 {
                    return Err(SigError::Expired { expires_secs: expires, expired_at, server_time: now });
                }
            }
        }
        Ok(())
    }

    /// The payload hash line of the canonical request.
    pub fn payload_line(&self) -> &str {
        match self.kind {
            AuthKind::Header => self.content_sha256.as_deref().unwrap_or(UNSIGNED_PAYLOAD),
            AuthKind::Query => UNSIGNED_PAYLOAD,
        }
    }
}

/// The HMAC key derived from a secret for one (date, region, service).
/// Callers cache it: deriving costs four HMACs, verifying with it one.
/// The HMAC's keyed state is kept too, so a signature costs the message's
/// SHA-256 blocks and the outer hash, not the key's two blocks again.
#[derive(Clone)]
pub struct SigningKey {
    key: [u8; 32],
    keyed: HmacSha256,
}

impl PartialEq for SigningKey {
    fn eq(&self, other: &SigningKey) -> bool {
        self.key == other.key
    }
}

impl Eq for SigningKey {}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

type HmacSha256 = Hmac<Sha256>;

pub(crate) fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

impl SigningKey {
    pub fn derive(secret: &str, scope: &Scope) -> SigningKey {
        let date_key = hmac(format!("AWS4{secret}").as_bytes(), scope.date.as_bytes());
        let region_key = hmac(&date_key, scope.region.as_bytes());
        let service_key = hmac(&region_key, scope.service.as_bytes());
        let key = hmac(&service_key, b"aws4_request");
        SigningKey { key, keyed: HmacSha256::new_from_slice(&key).expect("HMAC takes any key length") }
    }

    /// Hex signature of a string to sign.
    pub fn sign(&self, string_to_sign: &str) -> String {
        let mut mac = self.keyed.clone();
        mac.update(string_to_sign.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Compares `signature` (hex) with ours in constant time.
    pub fn matches(&self, string_to_sign: &str, signature: &str) -> bool {
        let Some(provided) = decode_signature(signature) else {
            return false;
        };
        let mut mac = self.keyed.clone();
        mac.update(string_to_sign.as_bytes());
        // `verify_slice` compares in constant time.
        mac.verify_slice(&provided).is_ok()
    }
}

/// 64 hex digits to 32 bytes. The provided signature is no secret, so a
/// plain loop will do (the `hex` crate's general decoder cost a twentieth
/// of a presigned check).
fn decode_signature(signature: &str) -> Option<[u8; 32]> {
    let digits = signature.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = encode::hex_value(pair[0])? << 4 | encode::hex_value(pair[1])?;
    }
    Some(bytes)
}

/// Verifies the signature of a parsed request.
pub fn verify(auth: &ParsedAuth, request: &Request<'_>, key: &SigningKey) -> Result<(), SigError> {
    // An `x-amz-*` header changes what a request does; one the signer did
    // not sign could have been added on the way.
    let unsigned = unsigned_amz_headers(auth, request.headers);
    if !unsigned.is_empty() {
        return Err(SigError::HeadersNotSigned(unsigned));
    }
    verify_with_payload(auth, request, key, auth.payload_line())
}

/// Verifies with an explicit payload hash line (AWS's generic test suite
/// signs the body hash where S3 uses `x-amz-content-sha256`).
pub fn verify_with_payload(
    auth: &ParsedAuth,
    request: &Request<'_>,
    key: &SigningKey,
    payload_line: &str,
) -> Result<(), SigError> {
    // A signature that does not cover `host` could be replayed against
    // another server; AWS refuses it, naming the header.
    if !auth.signed_headers.split(';').any(|name| name == "host") {
        return Err(SigError::HeadersNotSigned(vec!["host".to_string()]));
    }
    let canonical = canonical_request(request, &auth.signed_headers, payload_line);
    let to_sign = string_to_sign(&auth.amz_date, &auth.scope, &canonical);
    if key.matches(&to_sign, &auth.signature) {
        Ok(())
    } else {
        Err(SigError::SignatureDoesNotMatch {
            access_key: auth.access_key.clone(),
            string_to_sign: to_sign,
            canonical_request: canonical,
            signature_provided: auth.signature.clone(),
        })
    }
}

fn unsigned_amz_headers(auth: &ParsedAuth, headers: &HeaderMap) -> Vec<String> {
    let signed: Vec<&str> = auth.signed_headers.split(';').collect();
    let mut unsigned: Vec<String> = headers
        .keys()
        .map(|name| name.as_str())
        .filter(|name| name.starts_with("x-amz-") && !signed.contains(name))
        .map(str::to_string)
        .collect();
    unsigned.dedup();
    unsigned
}

#[cfg(test)]
mod tests;

//! Authentication of one request: SigV4 in the header or the query,
//! checked in S3's order (shape, scope, key, time, token, signature).

use crate::iam::{Keyring, Principal};
use crate::sigv4::{self, AuthKind, Authentication, ParsedAuth, SigningKey};
use crate::timefmt;

use super::error::S3Error;
use super::RequestContext;

/// Who sent a request, and the signature and key that proved it.
pub struct Authenticated {
    pub principal: Principal,
    pub auth: Option<ParsedAuth>,
    pub signing_key: Option<SigningKey>,
}

/// The service a request is signed for.
pub enum Service<'a> {
    /// S3 names the payload hash in `x-amz-content-sha256`; Signature
    /// Version 2 is accepted if `sigv2`.
    S3 { sigv2: bool },
    /// STS signs the hash of its (small, form-encoded) body.
    Sts { body_sha256: &'a str },
}

pub fn authenticate(
    keyring: &Keyring,
    region: &str,
    now: i64,
    context: &RequestContext,
    service: Service<'_>,
) -> Result<Authenticated, S3Error> {
    let request = sigv4::Request {
        method: context.method.as_str(),
        path: context.path.as_bytes(),
        query: &context.query.0,
        headers: &context.headers,
    };
    if let Service::S3 { sigv2 } = service {
        if let Some(parsed) = sigv4::v2::parse(&context.headers, &context.query.0) {
            if !sigv2 {
                return Err(sigv4::SigError::SigV2.into());
            }
            return authenticate_v2(keyring, now, context, parsed?);
        }
    }
    let auth = match sigv4::parse(&request)? {
        Authentication::Anonymous => {
            return Ok(Authenticated { principal: Principal::Anonymous, auth: None, signing_key: None })
        }
        Authentication::V4(auth) => *auth,
    };
    match service {
        Service::S3 { .. } => auth.check_scope(region)?,
        Service::Sts { .. } => auth.check_scope_of(region, "sts")?,
    }
    keyring.check_key(&auth.access_key, now)?;
    // The skew of a header-signed request is judged by the system clock;
    // validity windows (presigned URLs) by larder's never-receding clock.
    auth.check_time(if auth.kind == AuthKind::Header { timefmt::now() } else { now })?;
    keyring.check_session_token(&auth.access_key, auth.security_token.as_deref())?;
    // Derived (four HMACs, and a cache slot) only for a request that is
    // in time and names a live key.
    let key = keyring.signing_key(&auth.access_key, &auth.scope, now)?;
    match service {
        Service::S3 { .. } => sigv4::verify(&auth, &request, &key)?,
        Service::Sts { body_sha256 } => sigv4::verify_with_payload(&auth, &request, &key, body_sha256)?,
    }
    Ok(Authenticated { principal: Principal::Key(auth.access_key.clone()), auth: Some(auth), signing_key: Some(key) })
}

/// Signature Version 2, in S3's order: key, time, token, signature. No
/// payload hash is signed: a body is bound by its Content-MD5 if it has
/// one (checked as it is read, like every declared digest).
fn authenticate_v2(
    keyring: &Keyring,
    now: i64,
    context: &RequestContext,
    auth: sigv4::v2::V2Auth,
) -> Result<Authenticated, S3Error> {
    keyring.check_key(&auth.access_key, now)?;
    sigv4::v2::check_time(&auth, &context.headers, now, timefmt::now())?;
    keyring.check_session_token(&auth.access_key, auth.security_token.as_deref())?;
    let secret = keyring.secret_key(&auth.access_key, now)?;
    let string_to_sign = sigv4::v2::string_to_sign(
        context.method.as_str(),
        &context.raw_path,
        &context.query.0,
        &context.headers,
        auth.expires,
    );
    sigv4::v2::verify(&auth, &secret, &string_to_sign)?;
    Ok(Authenticated { principal: Principal::Key(auth.access_key), auth: None, signing_key: None })
}

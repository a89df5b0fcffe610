//! An STS-compatible endpoint on the S3 port: `AssumeRole` and
//! `GetSessionToken` (`POST /`, form-encoded, signed for service `sts`)
//! hand out temporary credentials with the caller's rights or fewer
//! (AssumeRole's `Policy` narrows them), valid 15 minutes to 36 hours and
//! never longer than the calling key. Requests and presigned URLs made
//! with them carry `X-Amz-Security-Token`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use http::{Response, StatusCode};
use sha2::{Digest, Sha256};

use crate::iam::{Credentials, KeyRecord, Policy, Principal};
use crate::sigv4;
use crate::timefmt;

use super::auth::{self, Service};
use super::body;
use super::error::S3Error;
use super::xml::escape;
use super::{RequestContext, S3Result, S3};

pub use super::error::STS_NAMESPACE as NAMESPACE;
/// The limits S3 documents for temporary credentials.
const MIN_DURATION_SECS: i64 = 900;
const MAX_DURATION_SECS: i64 = 129_600;
const MAX_FORM_BYTES: usize = 64 * 1024;
/// Live temporary credentials one key may hold at once.
const MAX_SESSIONS_PER_KEY: usize = 1000;

fn validation(message: impl Into<String>) -> S3Error {
    S3Error::new("ValidationError", StatusCode::BAD_REQUEST, message)
}

/// `arn:aws:iam::ACCOUNT:role/PATH/NAME` becomes, as STS writes it,
/// `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION`.
fn assumed_role_arn(role_arn: &str, session: &str) -> String {
    let account = role_arn.split(':').nth(4).unwrap_or("000000000000");
    let role = role_arn.rsplit('/').next().unwrap_or(role_arn);
    format!("arn:aws:sts::{account}:assumed-role/{role}/{session}")
}

pub async fn handle(s3: &S3, context: &mut RequestContext) -> S3Result {
    answer(s3, context).await.map_err(S3Error::for_sts)
}

async fn answer(s3: &S3, context: &mut RequestContext) -> S3Result {
    let form = context.body.read_to_end(MAX_FORM_BYTES).await?;
    let body_sha256 = hex::encode(Sha256::digest(&form));
    let authenticated = auth::authenticate(
        &s3.keyring,
        &s3.config.region,
        s3.clock.now(),
        context,
        Service::Sts { body_sha256: &body_sha256 },
    )?;
    // Credentials are handed out only for a signed body: a presigned
    // URL signs none.
    if authenticated.auth.as_ref().is_some_and(|auth| auth.kind == sigv4::AuthKind::Query) {
        return Err(S3Error::access_denied()
            .with("Detail", "STS takes only header-signed requests, whose signature covers the body."));
    }
    let Principal::Key(caller) = authenticated.principal else {
        return Err(S3Error::new(
            "MissingAuthenticationToken",
            StatusCode::FORBIDDEN,
            "Request is missing Authentication Token",
        ));
    };
    if s3.keyring.is_session(&caller) {
        return Err(S3Error::access_denied().with("Detail", "Temporary credentials cannot ask for more."));
    }
    let text = String::from_utf8(form.to_vec()).map_err(|_| validation("The form is not UTF-8."))?;
    let mut params = sigv4::parse_query(&text).map_err(|_| validation("The form is not well-formed."))?;
    params.extend(context.query.0.iter().cloned());
    let param = |name: &str| params.iter().find(|p| p.name == name).map(|p| p.value.clone());
    let action = param("Action").unwrap_or_default();
    let (default_duration, result) = match action.as_str() {
        "AssumeRole" => (3600, "AssumeRoleResult"),
        "GetSessionToken" => (43_200, "GetSessionTokenResult"),
        other => {
            return Err(S3Error::new(
                "InvalidAction",
                StatusCode::BAD_REQUEST,
                format!("Could not find operation {other} for version 2011-06-15"),
            ))
        }
    };
    let duration = match param("DurationSeconds") {
        Some(text) => text.parse::<i64>().map_err(|_| validation("DurationSeconds must be a number."))?,
        None => default_duration,
    };
    if !(MIN_DURATION_SECS..=MAX_DURATION_SECS).contains(&duration) {
        return Err(validation(format!(
            "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value between {MIN_DURATION_SECS} and {MAX_DURATION_SECS}"
        )));
    }
    let (session_name, session_policy, role_arn) = if action == "AssumeRole" {
        let role_arn = param("RoleArn").ok_or_else(|| validation("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"))?;
        let name = param("RoleSessionName")
            .ok_or_else(|| validation("1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null"))?;
        let policy = param("Policy");
        if let Some(policy) = &policy {
            Policy::parse_session(policy.as_bytes())
                .map_err(|message| S3Error::new("MalformedPolicyDocument", StatusCode::BAD_REQUEST, message))?;
        }
        (name, policy, Some(role_arn))
    } else {
        ("session".to_string(), None, None)
    };
    let now = s3.clock.now();
    // Expired sessions go now, so they cannot pile up; live ones are capped.
    let sessions: Vec<KeyRecord> = s3.keyring.list().into_iter().filter(|key| key.session_token.is_some()).collect();
    for expired in sessions.iter().filter(|key| key.is_expired(now)) {
        s3.store.remove_key(&expired.access_key).await?;
        s3.keyring.remove(&expired.access_key);
    }
    let live =
        sessions.iter().filter(|key| !key.is_expired(now) && key.parent.as_deref() == Some(caller.as_str())).count();
    if live >= MAX_SESSIONS_PER_KEY {
        return Err(S3Error::access_denied().with("Detail", "This key holds too many live temporary credentials."));
    }
    let caller_expiry = s3.keyring.get(&caller).and_then(|key| key.expires);
    let expires = caller_expiry.map_or(now + duration, |limit| limit.min(now + duration));

    let generated = Credentials::generate();
    let access_key = format!("LT{}", &generated.access_key[2..]);
    let mut token = [0u8; 48];
    getrandom::getrandom(&mut token).expect("the OS random source works");
    let token = BASE64.encode(token);
    let record = KeyRecord {
        access_key: access_key.clone(),
        secret_key: generated.secret_key.clone(),
        name: format!("{}/{session_name}", s3.keyring.name_of(&caller)),
        grants: Vec::new(),
        expires: Some(expires),
        source_cidrs: Vec::new(),
        created: now,
        session_token: Some(token.clone()),
        parent: Some(caller.clone()),
        session_policy,
        share: None,
    };
    let document = serde_json::to_vec(&record).map_err(|_| S3Error::internal())?;
    s3.store.save_key(&access_key, document).await?;
    s3.keyring.insert(record);
    tracing::info!(%access_key, caller, expires, "temporary credentials issued");

    let mut out =
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{NAMESPACE}\"><{result}>");
    out.push_str(&format!(
        "<Credentials><AccessKeyId>{access_key}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey><SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>",
        escape(&generated.secret_key),
        escape(&token),
        timefmt::format_iso8601(expires)
    ));
    if let Some(role_arn) = role_arn {
        out.push_str(&format!(
            "<AssumedRoleUser><AssumedRoleId>{access_key}:{}</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser>",
            escape(&session_name),
            escape(&assumed_role_arn(&role_arn, &session_name))
        ));
    }
    out.push_str(&format!(
        "</{result}><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        context.request_id
    ));
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "text/xml")
        .body(body::full(out))
        .map_err(|_| S3Error::internal())
}

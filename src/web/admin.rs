//! larder's own administration API, on the S3 port under `/_larder/admin/`
//! (no bucket can be named `_larder`), signed with SigV4 by the root key:
//!
//! - `POST /_larder/admin/keys` with a JSON [`NewKey`]: create a key;
//!   the answer carries its secret, the only time it is shown;
//! - `GET /_larder/admin/keys`: list keys (no secrets);
//! - `GET /_larder/admin/keys/<access key>`: show one;
//! - `DELETE /_larder/admin/keys/<access key>`: revoke it, at once.

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::clock::ClockState;
use crate::iam::{Cidr, Credentials, Grant, KeyRecord, Right};
use crate::sigv4::{is_hex_sha256, AuthKind};
use crate::store::Recovery;

use crate::s3::share::{self, NewShare, ShareView};
use crate::s3::{bind_declared_digests, empty_response, RequestContext, S3Error, S3Result, S3};

use super::health::{live_links, stored};
use super::json_response;

pub const PATH_PREFIX: &str = "/_larder/admin/";
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// A key to create.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewKey {
    pub name: String,
    /// `BUCKET[/PREFIX]:RIGHTS`, as [`Grant::parse`] reads them.
    pub grants: Vec<String>,
    /// Unix seconds.
    #[serde(default)]
    pub expires: Option<i64>,
    #[serde(default)]
    pub source_cidrs: Vec<String>,
    /// Given access key and secret, for automation; made up when absent.
    #[serde(default)]
    pub access_key: Option<String>,
    #[serde(default)]
    pub secret_key: Option<String>,
}

/// A key as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyView {
    pub access_key: String,
    /// Only in the answer to a create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    pub name: String,
    pub grants: Vec<String>,
    pub expires: Option<i64>,
    pub source_cidrs: Vec<String>,
    pub created: i64,
}

fn right_name(right: Right) -> &'static str {
    match right {
        Right::Read => "read",
        Right::Write => "write",
        Right::Delete => "delete",
        Right::List => "list",
        Right::Owner => "owner",
        Right::BypassGovernance => "bypass-governance",
    }
}

fn view(key: &KeyRecord, with_secret: bool) -> KeyView {
    KeyView {
        access_key: key.access_key.clone(),
        secret_key: with_secret.then(|| key.secret_key.clone()),
        name: key.name.clone(),
        grants: key
            .grants
            .iter()
            .map(|grant| {
                let target = if grant.prefix.is_empty() {
                    grant.bucket.clone()
                } else {
                    format!("{}/{}", grant.bucket, grant.prefix)
                };
                let rights: Vec<&str> = grant.rights.iter().map(|r| right_name(*r)).collect();
                format!("{target}:{}", rights.join(","))
            })
            .collect(),
        expires: key.expires,
        source_cidrs: key.source_cidrs.iter().map(Cidr::to_string).collect(),
        created: key.created,
    }
}

/// `GET /_larder/admin/status`: what `larder status` shows.
async fn status(s3: &S3) -> S3Result {
    let (objects, bytes) = stored(s3).await?;
    let now = s3.clock.now();
    let live_links = live_links(s3);
    let clock = match s3.clock.state() {
        ClockState::Ok => "ok",
        ClockState::Behind(_) => "behind",
        ClockState::Ahead(_) => "ahead",
    };
    let recovery = match s3.store.recovery() {
        Recovery::Done => "done".to_string(),
        Recovery::Checking { blobs } => format!("checking blobs after an unclean stop ({blobs} so far)"),
    };
    json_response(
        StatusCode::OK,
        &serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_secs": s3.started.elapsed().as_secs(),
            "listen": s3.config.listen.to_string(),
            "public_url": s3.config.public_url,
            "data_dir": s3.config.data_dir.display().to_string(),
            "durability": if s3.store.is_durable() { "full" } else { "relaxed" },
            "disk_free_bytes": s3.store.free_space(),
            "objects": objects,
            "bytes": bytes,
            "live_links": live_links,
            "clock": clock,
            "wall_clock": crate::timefmt::format_iso8601(s3.clock.system()),
            "larder_time": crate::timefmt::format_iso8601(now),
            "index": s3.store.degraded().map_or_else(|| "ok".to_string(), |why| format!("degraded: {why}")),
            "recovery": recovery,
            "lifecycle": s3.lifecycle.last_run(),
        }),
    )
}

/// May the admin API answer this request? Only from `admin_from`, and
/// never through a proxy larder does not trust: a reverse proxy on the
/// board itself would otherwise make every client look local.
fn allowed_from(s3: &S3, context: &RequestContext) -> bool {
    let forwarded = ["forwarded", "x-forwarded-for"].iter().any(|name| context.headers.contains_key(*name));
    if forwarded && !s3.config.trusted_proxies.iter().any(|cidr| cidr.contains(context.peer)) {
        return false;
    }
    s3.config.admin_from.iter().any(|cidr| cidr.contains(context.client))
}

/// The admin API changes who may do what: its requests must be signed in
/// the header with the payload's hash, never presigned or unsigned, so a
/// captured request cannot be replayed with another body.
fn require_signed_payload(context: &RequestContext) -> Result<(), S3Error> {
    let signed = context
        .auth
        .as_ref()
        .is_some_and(|auth| auth.kind == AuthKind::Header && auth.content_sha256.as_deref().is_some_and(is_hex_sha256));
    if signed {
        Ok(())
    } else {
        Err(S3Error::access_denied().with(
            "Detail",
            "The admin API takes only header-signed requests whose x-amz-content-sha256 is the payload's hash.",
        ))
    }
}

fn no_such_access_key(access_key: &str) -> S3Error {
    S3Error::new("NoSuchAccessKey", StatusCode::NOT_FOUND, "The access key does not exist.")
        .with("AWSAccessKeyId", access_key)
}

pub async fn handle(s3: &S3, context: &mut RequestContext) -> S3Result {
    // Elsewhere the admin API does not exist: a stranger learns neither
    // whether a key is valid nor whether a signature would pass.
    if !allowed_from(s3, context) {
        return Err(S3Error::access_denied());
    }
    s3.authenticate(context)?;
    if !s3.keyring.is_root(&context.principal) {
        return Err(S3Error::access_denied());
    }
    require_signed_payload(context)?;
    bind_declared_digests(context, true)?;
    let rest = context.path[PATH_PREFIX.len()..].trim_end_matches('/').to_string();
    let (collection, item) = rest.split_once('/').unwrap_or((rest.as_str(), ""));
    if collection == "status" && context.method == Method::GET {
        return status(s3).await;
    }
    // `larder lifecycle run`: the buckets' lifecycle rules, applied now.
    if collection == "lifecycle" && context.method == Method::POST {
        let summary = s3.run_lifecycle().await;
        return json_response(StatusCode::OK, &serde_json::json!(summary));
    }
    if collection != "keys" && collection != "shares" {
        return Err(S3Error::invalid_request(format!("Unknown administration resource: {collection}")));
    }
    if collection == "shares" {
        return shares(s3, context, item).await;
    }
    match (context.method.clone(), item) {
        (Method::POST, "") => create_key(s3, context).await,
        (Method::GET, "") => {
            let keys: Vec<KeyView> =
                s3.keyring.list().iter().filter(|key| key.share.is_none()).map(|key| view(key, false)).collect();
            json_response(StatusCode::OK, &keys)
        }
        (Method::GET, access_key) => {
            let key = s3.keyring.get(access_key).ok_or_else(|| no_such_access_key(access_key))?;
            json_response(StatusCode::OK, &view(&key, false))
        }
        (Method::DELETE, access_key) if !access_key.is_empty() => {
            if !s3.store.remove_key(access_key).await? {
                return Err(no_such_access_key(access_key));
            }
            s3.keyring.remove(access_key);
            // Temporary credentials it issued die with it.
            for session in s3.keyring.list().into_iter().filter(|key| key.parent.as_deref() == Some(access_key)) {
                s3.store.remove_key(&session.access_key).await?;
                s3.keyring.remove(&session.access_key);
            }
            tracing::info!(access_key, "key revoked");
            empty_response(StatusCode::NO_CONTENT)
        }
        _ => Err(S3Error::method_not_allowed()),
    }
}

/// `/_larder/admin/shares[/<id>]`: create, list and revoke share links.
async fn shares(s3: &S3, context: &mut RequestContext, id: &str) -> S3Result {
    match (context.method.clone(), id) {
        (Method::POST, "") => {
            let document = context.body.read_to_end(MAX_DOCUMENT_BYTES).await?;
            let request: NewShare = serde_json::from_slice(&document)
                .map_err(|error| S3Error::invalid_argument(format!("Bad share document: {error}")))?;
            let now = s3.clock.now();
            if request.expires <= now {
                return Err(S3Error::invalid_argument("The expiry is in the past."));
            }
            if request.uses == Some(0) {
                return Err(S3Error::invalid_argument("A link needs at least one use."));
            }
            match request.upload {
                Some(_) => s3.store.bucket(&request.bucket).await.map(|_| ())?,
                None => s3.store.head_object(&request.bucket, &request.key).await.map(|_| ())?,
            }
            // Dead links go now, so they cannot pile up.
            for dead in s3.keyring.list().into_iter().filter(|key| key.share.is_some() && key.is_expired(now)) {
                s3.store.remove_key(&dead.access_key).await?;
                s3.keyring.remove(&dead.access_key);
            }
            let record = share::share_key(&request, now);
            let document = serde_json::to_vec(&record).map_err(|_| S3Error::internal())?;
            s3.store.save_key(&record.access_key, document).await?;
            s3.keyring.insert(record.clone());
            tracing::info!(id = record.access_key, bucket = request.bucket, key = request.key, "share link created");
            let mut view = share::view(&record, true);
            if let Some(view) = view.as_mut() {
                view.public_url = Some(s3.config.public_url.clone());
            }
            json_response(StatusCode::OK, &view)
        }
        (Method::GET, "") => {
            let now = s3.clock.now();
            let mut shares: Vec<ShareView> = s3
                .keyring
                .list()
                .iter()
                .filter(|key| !key.is_expired(now))
                .filter_map(|key| share::view(key, false))
                .collect();
            for view in shares.iter_mut().filter(|view| view.upload.is_none()) {
                view.size = s3.store.head_object(&view.bucket, &view.key).await.ok().map(|record| record.size);
            }
            json_response(StatusCode::OK, &shares)
        }
        (Method::DELETE, id) if !id.is_empty() => {
            if s3.keyring.get(id).and_then(|key| key.share).is_none() || !s3.store.remove_key(id).await? {
                return Err(S3Error::new("NoSuchShare", StatusCode::NOT_FOUND, "The share link does not exist."));
            }
            s3.keyring.remove(id);
            tracing::info!(id, "share link revoked");
            empty_response(StatusCode::NO_CONTENT)
        }
        _ => Err(S3Error::method_not_allowed()),
    }
}

fn valid_access_key(text: &str) -> bool {
    (16..=128).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

async fn create_key(s3: &S3, context: &mut RequestContext) -> S3Result {
    let document = context.body.read_to_end(MAX_DOCUMENT_BYTES).await?;
    let request: NewKey = serde_json::from_slice(&document)
        .map_err(|error| S3Error::invalid_argument(format!("Bad key document: {error}")))?;
    if request.name.trim().is_empty() {
        return Err(S3Error::invalid_argument("A key needs a name."));
    }
    let grants = request
        .grants
        .iter()
        .map(|g| Grant::parse(g))
        .collect::<Result<Vec<_>, _>>()
        .map_err(S3Error::invalid_argument)?;
    let source_cidrs = request
        .source_cidrs
        .iter()
        .map(|c| c.parse())
        .collect::<Result<Vec<Cidr>, _>>()
        .map_err(S3Error::invalid_argument)?;
    let generated = Credentials::generate();
    let access_key = request.access_key.unwrap_or(generated.access_key);
    let secret_key = request.secret_key.unwrap_or(generated.secret_key);
    if !valid_access_key(&access_key) {
        return Err(S3Error::invalid_argument("An access key is 16 to 128 letters and digits."));
    }
    if secret_key.len() < 16 || secret_key.len() > 128 || secret_key.chars().any(char::is_whitespace) {
        return Err(S3Error::invalid_argument("A secret key is 16 to 128 characters, no spaces."));
    }
    if access_key == s3.keyring.root().access_key || s3.keyring.get(&access_key).is_some() {
        return Err(S3Error::new(
            "KeyAlreadyExists",
            StatusCode::CONFLICT,
            "A key with this access key already exists.",
        ));
    }
    let now = s3.clock.now();
    if request.expires.is_some_and(|expires| expires <= now) {
        return Err(S3Error::invalid_argument("The expiry is in the past."));
    }
    let record = KeyRecord {
        access_key,
        secret_key,
        name: request.name,
        grants,
        expires: request.expires,
        source_cidrs,
        created: now,
        session_token: None,
        parent: None,
        session_policy: None,
        share: None,
    };
    let document = serde_json::to_vec(&record).map_err(|_| S3Error::internal())?;
    s3.store.save_key(&record.access_key, document).await?;
    s3.keyring.insert(record.clone());
    tracing::info!(access_key = record.access_key, name = record.name, "key created");
    json_response(StatusCode::OK, &view(&record, true))
}

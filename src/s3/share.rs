//! Share links (`larder share`): each link is signed by its own key that
//! may read one object. The key carries the link's limits: an expiry, a
//! number of downloads, and it records the last use. Revoking a link is
//! deleting its key.
//!
//! A link with N uses serves at most N times the object's size in bytes,
//! counted atomically in the index: every GET reserves the bytes it will
//! send before it starts and gives back what it did not send when it
//! ends, so a download cut short can be resumed with a Range while a
//! range trick gets nothing extra. HEAD spends nothing.

use http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::iam::{Credentials, Grant, KeyRecord, Keyring, Principal, Right, ShareInfo, UploadLimits};
use crate::sigv4::uri_encode;
use crate::store::Store;

use super::error::S3Error;
use super::{RequestContext, S3};

/// A share to create, as the admin API takes it.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewShare {
    pub bucket: String,
    pub key: String,
    /// The name browsers save it under; the key's last segment if absent.
    #[serde(default)]
    pub file_name: Option<String>,
    /// Unix seconds.
    pub expires: i64,
    #[serde(default)]
    pub uses: Option<u64>,
    /// An upload link: `key` is then the prefix uploads land under.
    #[serde(default)]
    pub upload: Option<UploadLimits>,
}

/// A share as the admin API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ShareView {
    pub id: String,
    /// Only in the answer to a create: the link is signed with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<String>,
    pub bucket: String,
    pub key: String,
    pub file_name: String,
    pub expires: Option<i64>,
    pub uses: Option<u64>,
    pub used: u64,
    /// Bytes the link has served (or is serving) of its budget.
    #[serde(default)]
    pub bytes_served: u64,
    /// The shared object's size now, when listed.
    #[serde(default)]
    pub size: Option<u64>,
    pub last_use: Option<i64>,
    pub last_client: Option<String>,
    #[serde(default)]
    pub upload: Option<UploadLimits>,
    /// The short link's id (`<public_url>/s/<id>`).
    #[serde(default)]
    pub short_id: Option<String>,
    /// The server's public URL, base of every link (in a create's answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}

impl ShareView {
    /// Whole downloads left: the budget is uses times the object's size.
    pub fn uses_left(&self) -> Option<u64> {
        let uses = self.uses?;
        Some(match self.size {
            Some(size) if size > 0 && self.upload.is_none() => {
                uses.saturating_mul(size).saturating_sub(self.bytes_served) / size
            }
            _ => uses.saturating_sub(self.used),
        })
    }
}

pub fn view(key: &KeyRecord, with_secret: bool) -> Option<ShareView> {
    let share = key.share.as_ref()?;
    Some(ShareView {
        id: key.access_key.clone(),
        secret_key: with_secret.then(|| key.secret_key.clone()),
        bucket: share.bucket.clone(),
        key: share.key.clone(),
        file_name: share.file_name.clone(),
        expires: key.expires,
        uses: share.uses,
        used: share.used,
        bytes_served: share.bytes_served,
        size: None,
        last_use: share.last_use,
        last_client: share.last_client.clone(),
        upload: share.upload.clone(),
        short_id: share.short_id.as_ref().map(|id| id.to_ascii_lowercase()),
        public_url: None,
    })
}

/// 128 random bits in base32 (RFC 4648, no padding): 26 letters and
/// digits, the same read in any case.
pub fn new_short_id() -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).expect("the system's random source works");
    let mut out = String::with_capacity(26);
    let (mut buffer, mut bits) = (0u32, 0);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The key record of a new share link.
pub fn share_key(request: &NewShare, now: i64) -> KeyRecord {
    let generated = Credentials::generate();
    let file_name =
        request.file_name.clone().unwrap_or_else(|| request.key.rsplit('/').next().unwrap_or(&request.key).to_string());
    KeyRecord {
        access_key: format!("LS{}", &generated.access_key[2..]),
        secret_key: generated.secret_key,
        name: format!("share:{}/{}", request.bucket, request.key),
        // Upload links write under their prefix; download links read one object.
        grants: vec![Grant {
            bucket: request.bucket.clone(),
            prefix: request.key.clone(),
            rights: vec![if request.upload.is_some() { Right::Write } else { Right::Read }],
            exact: request.upload.is_none(),
        }],
        expires: Some(request.expires),
        source_cidrs: Vec::new(),
        created: now,
        session_token: None,
        parent: None,
        session_policy: None,
        share: Some(ShareInfo {
            bucket: request.bucket.clone(),
            key: request.key.clone(),
            file_name,
            uses: request.uses,
            used: 0,
            bytes_served: 0,
            last_use: None,
            last_client: None,
            upload: request.upload.clone(),
            short_id: Some(new_short_id()),
        }),
    }
}

/// `attachment; filename="..."; filename*=UTF-8''...` (RFC 6266): the
/// plain form for old browsers, the encoded one for any name.
fn attachment(file_name: &str) -> String {
    let plain: String = file_name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    format!("attachment; filename=\"{plain}\"; filename*=UTF-8''{}", uri_encode(file_name.as_bytes(), false))
}

fn used_up() -> S3Error {
    S3Error::new("AccessDenied", StatusCode::FORBIDDEN, "This link has been used up.")
}

/// What a GET through a link may take from its budget: `bytes` of the
/// object, starting at `start`, of an object of `size` bytes.
fn reserve(share: &mut ShareInfo, start: u64, bytes: u64, size: u64) -> Result<(), S3Error> {
    if let Some(uses) = share.uses {
        let spent = if size == 0 {
            share.used >= uses
        } else {
            share.bytes_served.checked_add(bytes).is_none_or(|total| total > uses.saturating_mul(size))
        };
        if spent {
            return Err(used_up());
        }
        share.bytes_served += bytes;
    }
    if start == 0 {
        share.used += 1;
    }
    Ok(())
}

/// Changes a link's record atomically, in the index first (a
/// compare-and-swap: concurrent downloads never under-count, and a link
/// revoked meanwhile is not written back), then in memory.
async fn change_link(
    store: &Store,
    keyring: &Keyring,
    access_key: &str,
    mut change: impl FnMut(&mut ShareInfo) -> Result<(), S3Error> + Send + 'static,
) -> Result<(), S3Error> {
    let outcome = store
        .update_key(access_key, move |document| {
            let mut record: KeyRecord = serde_json::from_slice(document).map_err(|_| S3Error::internal())?;
            change(record.share.as_mut().ok_or_else(S3Error::internal)?)?;
            serde_json::to_vec(&record).map_err(|_| S3Error::internal())
        })
        .await?;
    match outcome {
        None => Err(used_up()),
        Some(Err(refusal)) => Err(refusal),
        Some(Ok(document)) => {
            if let Ok(record) = serde_json::from_slice::<KeyRecord>(&document) {
                keyring.replace_if_present(record);
            }
            Ok(())
        }
    }
}

impl S3 {
    /// Spends one use of the upload link the request comes through (if it
    /// comes through one), refusing a spent link.
    pub(super) async fn spend_link_use(&self, context: &RequestContext) -> Result<(), S3Error> {
        let Principal::Key(access_key) = &context.principal else { return Ok(()) };
        if self.keyring.get(access_key).and_then(|key| key.share).is_none() {
            return Ok(());
        }
        let (now, client) = (self.clock.now(), context.client.to_string());
        change_link(&self.store, &self.keyring, access_key, move |share| {
            if share.uses.is_some_and(|uses| share.used >= uses) {
                return Err(used_up());
            }
            share.used += 1;
            share.last_use = Some(now);
            share.last_client = Some(client.clone());
            Ok(())
        })
        .await?;
        count_link_use();
        Ok(())
    }

    /// Gives back the use [`S3::spend_link_use`] took, when nothing came
    /// of it (the upload failed to commit).
    pub(super) async fn refund_link_use(&self, context: &RequestContext) {
        let Principal::Key(access_key) = &context.principal else { return };
        let refund = change_link(&self.store, &self.keyring, access_key, |share| {
            share.used = share.used.saturating_sub(1);
            Ok(())
        })
        .await;
        if let Err(error) = refund {
            tracing::debug!(code = error.code, "an upload link's use was not given back");
        }
    }

    /// For a request through a share link: makes the answer a download
    /// under the shared file's name and, for a GET of `start..end` of an
    /// object of `size` bytes, takes those bytes from the link's budget
    /// (refusing a spent link). Returns the reservation when bytes were
    /// taken: what the response does not send is given back.
    pub(super) async fn through_share(
        &self,
        context: &RequestContext,
        (start, end, size): (u64, u64, u64),
        headers: &mut HeaderMap,
    ) -> Result<Option<Reservation>, S3Error> {
        let Principal::Key(access_key) = &context.principal else { return Ok(None) };
        let Some(share) = self.keyring.get(access_key).and_then(|key| key.share) else { return Ok(None) };
        if context.query.get("response-content-disposition").is_none() {
            if let Ok(value) = HeaderValue::from_str(&attachment(&share.file_name)) {
                headers.insert(http::header::CONTENT_DISPOSITION, value);
            }
        }
        // HEAD spends nothing; nor does a range of an unlimited link.
        if context.method != http::Method::GET || (share.uses.is_none() && start != 0) {
            return Ok(None);
        }
        let bytes = end - start;
        let (now, client) = (self.clock.now(), context.client.to_string());
        change_link(&self.store, &self.keyring, access_key, move |share| {
            reserve(share, start, bytes, size)?;
            if start == 0 {
                share.last_use = Some(now);
                share.last_client = Some(client.clone());
            }
            Ok(())
        })
        .await?;
        if start == 0 {
            count_link_use();
        }
        Ok((share.uses.is_some() && bytes > 0).then(|| Reservation {
            store: self.store.clone(),
            keyring: self.keyring.clone(),
            access_key: access_key.clone(),
            bytes,
        }))
    }
}

fn count_link_use() {
    crate::metrics::global().link_uses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Bytes taken from a link's budget for one download in flight.
pub struct Reservation {
    store: Store,
    keyring: Arc<Keyring>,
    access_key: String,
    bytes: u64,
}

impl Reservation {
    /// Gives back what the download did not send, so that a download cut
    /// short can be resumed with a Range.
    pub fn settle(self, sent: u64) {
        let unsent = self.bytes.saturating_sub(sent);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if unsent == 0 {
            return;
        }
        runtime.spawn(async move {
            let refund = change_link(&self.store, &self.keyring, &self.access_key, move |share| {
                share.bytes_served = share.bytes_served.saturating_sub(unsent);
                Ok(())
            })
            .await;
            if let Err(error) = refund {
                tracing::debug!(code = error.code, "a link's unsent bytes were not given back");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names() {
        assert_eq!(attachment("report.pdf"), "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf");
        assert_eq!(
            attachment("ሴ \"q\".txt"),
            "attachment; filename=\"_ _q_.txt\"; filename*=UTF-8''%E1%88%B4%20%22q%22.txt"
        );
    }
}

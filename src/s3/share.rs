//! Share links (`larder share`): each link is signed by its own key that
//! may read one object. The key carries the link's limits: an expiry, a
//! number of downloads, and it records the last use. Revoking a link is
//! deleting its key.
//!
//! A download counts when a GET starts at the first byte (no Range, or a
//! Range from byte 0): a client that resumes with later ranges spends no
//! further use, and HEAD spends none.

use http::{HeaderMap, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use crate::iam::{Credentials, Grant, KeyRecord, Principal, Right, ShareInfo, UploadLimits};
use crate::sigv4::uri_encode;

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
    pub last_use: Option<i64>,
    pub last_client: Option<String>,
    #[serde(default)]
    pub upload: Option<UploadLimits>,
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
        last_use: share.last_use,
        last_client: share.last_client.clone(),
        upload: share.upload.clone(),
    })
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
            last_use: None,
            last_client: None,
            upload: request.upload.clone(),
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

impl S3 {
    /// Spends one use of the share link the request comes through (if it
    /// comes through one), refusing a spent link.
    pub(super) async fn spend_link_use(&self, context: &RequestContext) -> Result<(), S3Error> {
        let Principal::Key(access_key) = &context.principal else { return Ok(()) };
        let used = self
            .keyring
            .use_share(access_key, self.clock.now(), &context.client.to_string())
            .map_err(|_| S3Error::new("AccessDenied", StatusCode::FORBIDDEN, "This link has been used up."))?;
        if let Some(record) = used {
            let document = serde_json::to_vec(&record).map_err(|_| S3Error::internal())?;
            self.store.save_key(access_key, document).await?;
        }
        Ok(())
    }

    /// For a GET through a share link: spends one use when the download
    /// starts at the first byte (refusing a spent link), and makes the
    /// answer a download under the shared file's name.
    pub(super) async fn through_share(
        &self,
        context: &RequestContext,
        starts_at_zero: bool,
        headers: &mut HeaderMap,
    ) -> Result<(), S3Error> {
        let Principal::Key(access_key) = &context.principal else { return Ok(()) };
        let Some(share) = self.keyring.get(access_key).and_then(|key| key.share) else { return Ok(()) };
        if starts_at_zero && context.method == http::Method::GET {
            self.spend_link_use(context).await?;
        }
        if context.query.get("response-content-disposition").is_none() {
            if let Ok(value) = HeaderValue::from_str(&attachment(&share.file_name)) {
                headers.insert(http::header::CONTENT_DISPOSITION, value);
            }
        }
        Ok(())
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

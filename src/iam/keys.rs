//! Access keys beyond the root key, their rights, and what each S3
//! operation needs.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::cidr::Cidr;

/// A right a key holds on a bucket, or on a prefix inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Right {
    /// GET and HEAD objects.
    Read,
    /// PUT objects, multipart uploads, copy into.
    Write,
    /// DELETE objects.
    Delete,
    /// List objects and uploads, head the bucket.
    List,
    /// Everything, including creating and deleting the bucket.
    Owner,
    /// Pass an Object Lock GOVERNANCE retention when the request asks to
    /// (`x-amz-bypass-governance-retention: true`). Never implied by
    /// another right, `owner` and `all` included.
    #[serde(rename = "bypass-governance")]
    BypassGovernance,
}

impl Right {
    pub fn parse_list(text: &str) -> Result<Vec<Right>, String> {
        let mut rights = Vec::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word.to_ascii_lowercase().as_str() {
                "read" => rights.push(Right::Read),
                "write" => rights.push(Right::Write),
                "delete" => rights.push(Right::Delete),
                "list" => rights.push(Right::List),
                "owner" => rights.push(Right::Owner),
                "bypass-governance" => rights.push(Right::BypassGovernance),
                "all" => rights.extend([Right::Read, Right::Write, Right::Delete, Right::List, Right::Owner]),
                other => {
                    return Err(format!(
                        "unknown right '{other}' (read, write, delete, list, owner, all or bypass-governance)"
                    ))
                }
            }
        }
        if rights.is_empty() {
            return Err("no rights given".into());
        }
        rights.dedup();
        Ok(rights)
    }
}

/// Rights on a bucket (`*` for every bucket), limited to keys under
/// `prefix` (or, when `exact`, to the one key `prefix`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    pub rights: Vec<Right>,
    #[serde(default)]
    pub exact: bool,
}

impl Grant {
    /// Parses `BUCKET[/PREFIX]:RIGHTS`, e.g. `photos:read,list` or
    /// `uploads/cam1/:write` or `*:all`.
    pub fn parse(text: &str) -> Result<Grant, String> {
        let (target, rights) =
            text.rsplit_once(':').ok_or_else(|| format!("expected BUCKET[/PREFIX]:RIGHTS, got '{text}'"))?;
        let (bucket, prefix) = target.split_once('/').unwrap_or((target, ""));
        if bucket.is_empty() {
            return Err(format!("no bucket in '{text}'"));
        }
        Ok(Grant {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            rights: Right::parse_list(rights)?,
            exact: false,
        })
    }

    fn covers_bucket(&self, bucket: &str) -> bool {
        self.bucket == "*" || self.bucket == bucket
    }

    fn has(&self, right: Right) -> bool {
        self.rights.contains(&right) || (self.rights.contains(&Right::Owner) && right != Right::BypassGovernance)
    }
}

/// A key made with `larder key create` (or a temporary one).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub access_key: String,
    pub secret_key: String,
    pub name: String,
    pub grants: Vec<Grant>,
    /// Unix seconds after which the key no longer works.
    #[serde(default)]
    pub expires: Option<i64>,
    /// Addresses the key may be used from; empty means anywhere.
    #[serde(default)]
    pub source_cidrs: Vec<Cidr>,
    pub created: i64,
    /// Temporary credentials (STS): the token requests must carry, the
    /// key they were issued to, and the session policy that narrows them.
    #[serde(default)]
    pub session_token: Option<String>,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default)]
    pub session_policy: Option<String>,
    /// A share link's key (`larder share`): one object, read only.
    #[serde(default)]
    pub share: Option<ShareInfo>,
}

/// What a share link gives and how much of it is left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareInfo {
    pub bucket: String,
    pub key: String,
    /// The name a browser saves the download under.
    pub file_name: String,
    /// Downloads allowed in all; `None` for as many as wanted.
    pub uses: Option<u64>,
    /// Downloads started from the first byte (shown in `share list`).
    pub used: u64,
    /// Bytes sent or reserved for downloads in flight: a link with N uses
    /// serves at most N times the object's size, however it is ranged.
    #[serde(default)]
    pub bytes_served: u64,
    pub last_use: Option<i64>,
    pub last_client: Option<String>,
    /// For an upload link (`larder share --upload`): `key` is the prefix
    /// uploads land under, and these are their limits.
    #[serde(default)]
    pub upload: Option<UploadLimits>,
    /// The id of the link's short form, `<public_url>/s/<id>`: 128 random
    /// bits in base32 (links made before short links have none).
    #[serde(default)]
    pub short_id: Option<String>,
}

/// What an upload link accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadLimits {
    pub max_size: u64,
    /// A Content-Type prefix such as `image/`; any type when absent.
    #[serde(default)]
    pub content_type: Option<String>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("access_key", &self.access_key)
            .field("name", &self.name)
            .field("grants", &self.grants)
            .field("expires", &self.expires)
            .field("source_cidrs", &self.source_cidrs)
            .finish_non_exhaustive()
    }
}

/// What an operation needs, in the terms of [`Right`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ListBuckets,
    CreateBucket,
    DeleteBucket,
    /// HeadBucket, location, versioning: any right on the bucket.
    InspectBucket,
    /// Policy and CORS configuration: owner of the bucket.
    ConfigureBucket,
    /// Listing under a prefix.
    List,
    Read,
    Write,
    Delete,
    /// Passing an Object Lock GOVERNANCE retention.
    BypassGovernance,
}

/// One access to check: an action on `bucket` and an object key (or, for
/// listings, the listed prefix), from `source`. `name` is the S3 action
/// (`s3:GetObject`) that policies speak of.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub action: Action,
    pub name: &'a str,
    pub bucket: &'a str,
    pub key: &'a str,
    pub source: IpAddr,
    /// Over TLS, as a trusted proxy reports it.
    pub secure: bool,
}

impl Access<'_> {
    /// The resource ARN a policy matches: the bucket, or the object.
    pub fn resource(&self) -> String {
        if self.key.is_empty() || matches!(self.action, Action::List | Action::InspectBucket) {
            format!("arn:aws:s3:::{}", self.bucket)
        } else {
            format!("arn:aws:s3:::{}/{}", self.bucket, self.key)
        }
    }
}

impl KeyRecord {
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires.is_some_and(|expires| now >= expires)
    }

    pub fn allows_source(&self, source: IpAddr) -> bool {
        self.source_cidrs.is_empty() || self.source_cidrs.iter().any(|cidr| cidr.contains(source))
    }

    /// Do this key's grants allow `access`? (Expiry and source addresses
    /// are checked by the caller.)
    pub fn grants_allow(&self, access: &Access<'_>) -> bool {
        let on_bucket = || self.grants.iter().filter(|grant| grant.covers_bucket(access.bucket));
        let under_prefix = |grant: &&Grant| {
            if grant.exact {
                access.key == grant.prefix
            } else {
                access.key.starts_with(&grant.prefix)
            }
        };
        match access.action {
            Action::ListBuckets => true,
            Action::CreateBucket | Action::DeleteBucket | Action::ConfigureBucket => {
                on_bucket().any(|grant| grant.prefix.is_empty() && grant.has(Right::Owner))
            }
            Action::InspectBucket => on_bucket().next().is_some(),
            Action::List => on_bucket().filter(under_prefix).any(|grant| grant.has(Right::List)),
            Action::Read => on_bucket().filter(under_prefix).any(|grant| grant.has(Right::Read)),
            Action::Write => on_bucket().filter(under_prefix).any(|grant| grant.has(Right::Write)),
            Action::Delete => on_bucket().filter(under_prefix).any(|grant| grant.has(Right::Delete)),
            Action::BypassGovernance => {
                on_bucket().filter(under_prefix).any(|grant| grant.has(Right::BypassGovernance))
            }
        }
    }

    /// May this key see `bucket` in ListBuckets?
    pub fn sees_bucket(&self, bucket: &str) -> bool {
        self.grants.iter().any(|grant| grant.covers_bucket(bucket))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(grants: &[&str]) -> KeyRecord {
        KeyRecord {
            access_key: "AK".into(),
            secret_key: "S".into(),
            name: "test".into(),
            grants: grants.iter().map(|g| Grant::parse(g).unwrap()).collect(),
            expires: None,
            source_cidrs: Vec::new(),
            created: 0,
            session_token: None,
            parent: None,
            session_policy: None,
            share: None,
        }
    }

    fn allows(key: &KeyRecord, action: Action, bucket: &str, object: &str) -> bool {
        key.grants_allow(&Access {
            action,
            name: "s3:x",
            bucket,
            key: object,
            source: "127.0.0.1".parse().unwrap(),
            secure: false,
        })
    }

    #[test]
    fn grants_scope_rights_to_buckets_and_prefixes() {
        let camera = key(&["uploads/cam1/:write", "photos:read,list"]);
        assert!(allows(&camera, Action::Write, "uploads", "cam1/a.jpg"));
        assert!(!allows(&camera, Action::Write, "uploads", "cam2/a.jpg"));
        assert!(!allows(&camera, Action::Read, "uploads", "cam1/a.jpg"));
        assert!(allows(&camera, Action::Read, "photos", "x"));
        assert!(allows(&camera, Action::List, "photos", ""));
        assert!(!allows(&camera, Action::Delete, "photos", "x"));
        assert!(!allows(&camera, Action::CreateBucket, "photos", ""));
        assert!(allows(&camera, Action::InspectBucket, "uploads", ""));
        assert!(!allows(&camera, Action::InspectBucket, "other", ""));
        let admin = key(&["*:all"]);
        assert!(allows(&admin, Action::CreateBucket, "anything", ""));
        assert!(allows(&admin, Action::Delete, "anything", "k"));
    }

    #[test]
    fn grant_syntax() {
        assert_eq!(
            Grant::parse("b/p/q:read").unwrap(),
            Grant { bucket: "b".into(), prefix: "p/q".into(), rights: vec![Right::Read], exact: false }
        );
        assert!(Grant::parse("b").is_err());
        assert!(Grant::parse("b:fly").is_err());
        assert!(Grant::parse(":read").is_err());
    }

    #[test]
    fn expiry_and_sources() {
        let mut limited = key(&["b:read"]);
        limited.expires = Some(100);
        limited.source_cidrs = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(!limited.is_expired(99) && limited.is_expired(100));
        assert!(limited.allows_source("10.1.2.3".parse().unwrap()));
        assert!(!limited.allows_source("192.168.0.1".parse().unwrap()));
    }
}

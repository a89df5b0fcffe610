//! Who may do what: the root key, further keys with rights per bucket or
//! prefix, an expiry and allowed source addresses. The signing keys
//! derived from secrets are cached here per (key, date, region), so
//! verifying a request costs a few SHA-256 blocks, not a key derivation.
//! Keys are kept by the store; this module only holds and judges them.

mod cidr;
mod keys;
mod policy;
mod root_key;

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use crate::sigv4::{Scope, SigningKey};
use subtle::ConstantTimeEq;

pub use cidr::Cidr;
pub use keys::{Access, Action, Grant, KeyRecord, Right, ShareInfo, UploadLimits};
pub use policy::{wildcard_match as policy_wildcard_match, MAX_POLICY_BYTES};
pub use policy::{Policy, PolicyRequest, Verdict};
pub use root_key::{load_or_create_root_key, read_root_key, RootKeySource, ROOT_KEY_FILE};

/// An access key and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never reach logs.
        f.debug_struct("Credentials").field("access_key", &self.access_key).finish_non_exhaustive()
    }
}

impl Credentials {
    /// A fresh key pair: a 20-character access key and a 40-character secret.
    pub fn generate() -> Credentials {
        const ACCESS_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        // Rejection sampling keeps every character equally likely.
        let pick = |alphabet: &[u8], len: usize| {
            let limit = 256 - 256 % alphabet.len();
            let mut out = String::with_capacity(len);
            let mut bytes = [0u8; 64];
            while out.len() < len {
                getrandom::getrandom(&mut bytes).expect("the OS random source works");
                for byte in bytes.iter().map(|b| usize::from(*b)).filter(|b| *b < limit) {
                    if out.len() < len {
                        out.push(alphabet[byte % alphabet.len()] as char);
                    }
                }
            }
            out
        };
        Credentials { access_key: format!("LK{}", pick(ACCESS_ALPHABET, 18)), secret_key: pick(SECRET_ALPHABET, 40) }
    }
}

/// Who a request is from, once its signature checks out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    Key(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IamError {
    /// 403 InvalidAccessKeyId: no such key (or it was revoked).
    UnknownAccessKey(String),
    /// 403 InvalidAccessKeyId: the key is past its expiry.
    ExpiredKey(String),
    /// 400 ExpiredToken: temporary credentials past their expiry.
    ExpiredToken,
    /// 400 InvalidToken: a session token that does not belong to the key.
    InvalidToken,
    /// 403 AccessDenied.
    AccessDenied,
}

/// Signing keys kept before the cache is cleared; a key lives a day.
const SIGNING_KEY_CACHE_LIMIT: usize = 1024;

pub struct Keyring {
    root: Credentials,
    keys: RwLock<HashMap<String, KeyRecord>>,
    signing_keys: Mutex<HashMap<(String, Scope), SigningKey>>,
}

impl Keyring {
    pub fn new(root: Credentials, keys: Vec<KeyRecord>) -> Keyring {
        let keys = keys.into_iter().map(|key| (key.access_key.clone(), key)).collect();
        Keyring { root, keys: RwLock::new(keys), signing_keys: Mutex::new(HashMap::new()) }
    }

    pub fn root(&self) -> &Credentials {
        &self.root
    }

    pub fn is_root(&self, principal: &Principal) -> bool {
        matches!(principal, Principal::Key(key) if *key == self.root.access_key)
    }

    fn keys(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, KeyRecord>> {
        self.keys.read().unwrap_or_else(|poison| poison.into_inner())
    }

    /// Is `key` usable now: not expired, and (for temporary credentials)
    /// issued by a key that is itself still usable?
    fn check_live(&self, keys: &HashMap<String, KeyRecord>, key: &KeyRecord, now: i64) -> Result<(), IamError> {
        if key.is_expired(now) {
            return Err(match key.session_token {
                Some(_) => IamError::ExpiredToken,
                None => IamError::ExpiredKey(key.access_key.clone()),
            });
        }
        match &key.parent {
            Some(parent) if *parent == self.root.access_key => Ok(()),
            Some(parent) => match keys.get(parent) {
                Some(parent) if !parent.is_expired(now) => Ok(()),
                _ => Err(IamError::UnknownAccessKey(key.access_key.clone())),
            },
            None => Ok(()),
        }
    }

    /// The secret of a live key.
    fn secret(&self, access_key: &str, now: i64) -> Result<String, IamError> {
        if access_key == self.root.access_key {
            return Ok(self.root.secret_key.clone());
        }
        let keys = self.keys();
        let key = keys.get(access_key).ok_or_else(|| IamError::UnknownAccessKey(access_key.to_string()))?;
        self.check_live(&keys, key, now)?;
        Ok(key.secret_key.clone())
    }

    /// A request with temporary credentials must carry their session
    /// token (compared in constant time); other keys must carry none.
    pub fn check_session_token(&self, access_key: &str, token: Option<&str>) -> Result<(), IamError> {
        let expected = self.keys().get(access_key).and_then(|key| key.session_token.clone());
        match (expected, token) {
            (None, None) => Ok(()),
            (Some(expected), Some(token)) if bool::from(expected.as_bytes().ct_eq(token.as_bytes())) => Ok(()),
            (Some(_), None) => Err(IamError::UnknownAccessKey(access_key.to_string())),
            _ => Err(IamError::InvalidToken),
        }
    }

    /// Is `access_key` known and live (not revoked, not expired)?
    /// The secret of a live key (Signature Version 2 signs with it
    /// directly).
    pub fn secret_key(&self, access_key: &str, now: i64) -> Result<String, IamError> {
        self.secret(access_key, now)
    }

    pub fn check_key(&self, access_key: &str, now: i64) -> Result<(), IamError> {
        self.secret(access_key, now).map(drop)
    }

    /// The signing key, derived without touching the cache: for requests
    /// whose scope date the client chooses freely (POST policies), so that
    /// unverified requests cannot churn the cache.
    pub fn signing_key_uncached(&self, access_key: &str, scope: &Scope, now: i64) -> Result<SigningKey, IamError> {
        Ok(SigningKey::derive(&self.secret(access_key, now)?, scope))
    }

    /// The signing key for `access_key` in `scope`, derived once and cached.
    /// A revoked or expired key fails here, on every request.
    pub fn signing_key(&self, access_key: &str, scope: &Scope, now: i64) -> Result<SigningKey, IamError> {
        let secret = self.secret(access_key, now)?;
        let cache_key = (access_key.to_string(), scope.clone());
        let mut cache = self.signing_keys.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(key) = cache.get(&cache_key) {
            return Ok(key.clone());
        }
        if cache.len() >= SIGNING_KEY_CACHE_LIMIT {
            cache.clear();
        }
        let key = SigningKey::derive(&secret, scope);
        cache.insert(cache_key, key.clone());
        Ok(key)
    }

    fn forget_signing_keys(&self, access_key: &str) {
        let mut cache = self.signing_keys.lock().unwrap_or_else(|poison| poison.into_inner());
        cache.retain(|(key, _), _| key != access_key);
    }

    /// Adds or replaces a key; it works from the next request on.
    pub fn insert(&self, record: KeyRecord) {
        self.forget_signing_keys(&record.access_key);
        self.keys.write().unwrap_or_else(|poison| poison.into_inner()).insert(record.access_key.clone(), record);
    }

    /// Removes a key; it fails from the next request on.
    pub fn remove(&self, access_key: &str) -> Option<KeyRecord> {
        let removed = self.keys.write().unwrap_or_else(|poison| poison.into_inner()).remove(access_key);
        self.forget_signing_keys(access_key);
        removed
    }

    pub fn get(&self, access_key: &str) -> Option<KeyRecord> {
        self.keys().get(access_key).cloned()
    }

    /// The share link whose short id is `short_id` (any case), compared in
    /// constant time: a short link is a bearer secret.
    pub fn find_short_link(&self, short_id: &str) -> Option<KeyRecord> {
        let wanted = short_id.to_ascii_uppercase();
        let keys = self.keys();
        let mut found = None;
        for key in keys.values() {
            let Some(id) = key.share.as_ref().and_then(|share| share.short_id.as_deref()) else { continue };
            if id.len() == wanted.len() && bool::from(id.as_bytes().ct_eq(wanted.as_bytes())) {
                found = Some(key.clone());
            }
        }
        found
    }

    /// Every key but the root key, by name.
    pub fn list(&self) -> Vec<KeyRecord> {
        let mut keys: Vec<KeyRecord> = self.keys().values().cloned().collect();
        keys.sort_by(|a, b| a.name.cmp(&b.name).then(a.access_key.cmp(&b.access_key)));
        keys
    }

    /// May `principal` make `access` now? The root key may do anything;
    /// other keys must be live, used from an allowed address, and hold a
    /// grant that covers the access.
    pub fn authorize(&self, principal: &Principal, access: &Access<'_>, now: i64) -> Result<(), IamError> {
        let Principal::Key(access_key) = principal else {
            return Err(IamError::AccessDenied);
        };
        if *access_key == self.root.access_key {
            return Ok(());
        }
        let keys = self.keys();
        let key = keys.get(access_key).ok_or_else(|| IamError::UnknownAccessKey(access_key.clone()))?;
        self.check_live(&keys, key, now)?;
        // Temporary credentials hold their issuer's rights, narrowed by
        // their session policy.
        let holder = match &key.parent {
            Some(parent) if *parent == self.root.access_key => None,
            Some(parent) => Some(keys.get(parent).ok_or_else(|| IamError::UnknownAccessKey(access_key.clone()))?),
            None => Some(key),
        };
        if let Some(holder) = holder {
            if !key.allows_source(access.source) || !holder.allows_source(access.source) || !holder.grants_allow(access)
            {
                return Err(IamError::AccessDenied);
            }
        }
        if let Some(document) = &key.session_policy {
            let policy = Policy::parse_session(document.as_bytes()).map_err(|_| IamError::AccessDenied)?;
            let resource = access.resource();
            let request = PolicyRequest {
                principal: Some((access_key, &key.name)),
                issuer: None,
                action: access.name,
                resource: &resource,
                source: access.source,
                secure: access.secure,
            };
            if policy.evaluate(&request) != Verdict::Allow {
                return Err(IamError::AccessDenied);
            }
        }
        Ok(())
    }

    /// Replaces a key with a newer version of itself, unless it was
    /// removed meanwhile: a revoked link never comes back.
    pub fn replace_if_present(&self, record: KeyRecord) {
        let mut keys = self.keys.write().unwrap_or_else(|poison| poison.into_inner());
        if let Some(key) = keys.get_mut(&record.access_key) {
            *key = record;
        }
    }

    /// The name a principal goes by in policies.
    pub fn name_of(&self, access_key: &str) -> String {
        if access_key == self.root.access_key {
            return "root".into();
        }
        self.get(access_key).map(|key| key.name).unwrap_or_default()
    }

    /// For temporary credentials: the access key and name of the key that
    /// issued them.
    pub fn issuer_of(&self, access_key: &str) -> Option<(String, String)> {
        let parent = self.keys().get(access_key)?.parent.clone()?;
        let name = self.name_of(&parent);
        Some((parent, name))
    }

    /// Is this key temporary credentials?
    pub fn is_session(&self, access_key: &str) -> bool {
        self.keys().get(access_key).is_some_and(|key| key.session_token.is_some())
    }

    /// Is `bucket` shown to `principal` in ListBuckets? Temporary
    /// credentials see what their issuer sees.
    pub fn sees_bucket(&self, principal: &Principal, bucket: &str) -> bool {
        let Principal::Key(key) = principal else { return false };
        let holder = self.keys().get(key).and_then(|record| record.parent.clone()).unwrap_or_else(|| key.clone());
        holder == self.root.access_key || self.keys().get(&holder).is_some_and(|record| record.sees_bucket(bucket))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_keys_are_cached_per_scope() {
        let root = Credentials::generate();
        let keyring = Keyring::new(root.clone(), Vec::new());
        let scope = Scope { date: "20240101".into(), region: "us-east-1".into(), service: "s3".into() };
        let key = keyring.signing_key(&root.access_key, &scope, 0).unwrap();
        assert_eq!(key, SigningKey::derive(&root.secret_key, &scope));
        assert_eq!(keyring.signing_key(&root.access_key, &scope, 0).unwrap(), key);
        assert_eq!(keyring.signing_key("LKNOPE", &scope, 0), Err(IamError::UnknownAccessKey("LKNOPE".into())));
        assert_eq!(root.access_key.len(), 20);
        assert_eq!(root.secret_key.len(), 40);
        assert!(!format!("{root:?}").contains(&root.secret_key));
    }

    #[test]
    fn revoked_and_expired_keys_stop_at_once() {
        let keyring = Keyring::new(Credentials::generate(), Vec::new());
        let scope = Scope { date: "20240101".into(), region: "us-east-1".into(), service: "s3".into() };
        let record = KeyRecord {
            access_key: "LKUSER".into(),
            secret_key: "secret".into(),
            name: "user".into(),
            grants: vec![Grant::parse("b:read").unwrap()],
            expires: Some(1000),
            source_cidrs: Vec::new(),
            created: 0,
            session_token: None,
            parent: None,
            session_policy: None,
            share: None,
        };
        keyring.insert(record);
        assert!(keyring.signing_key("LKUSER", &scope, 999).is_ok());
        assert_eq!(keyring.signing_key("LKUSER", &scope, 1000), Err(IamError::ExpiredKey("LKUSER".into())));
        let principal = Principal::Key("LKUSER".into());
        let read = Access {
            action: Action::Read,
            name: "s3:GetObject",
            bucket: "b",
            key: "k",
            source: "127.0.0.1".parse().unwrap(),
            secure: false,
        };
        assert_eq!(keyring.authorize(&principal, &read, 10), Ok(()));
        assert_eq!(
            keyring.authorize(&principal, &Access { action: Action::Write, ..read }, 10),
            Err(IamError::AccessDenied)
        );
        keyring.remove("LKUSER");
        assert_eq!(keyring.signing_key("LKUSER", &scope, 10), Err(IamError::UnknownAccessKey("LKUSER".into())));
        assert_eq!(keyring.authorize(&Principal::Anonymous, &read, 10), Err(IamError::AccessDenied));
    }
}

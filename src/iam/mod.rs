//! Who may do what. For now one root key holds every right; the signing
//! keys derived from secrets are cached here per (key, date, region), so
//! verifying a request costs a few SHA-256 blocks, not a key derivation.

mod root_key;

use std::collections::HashMap;
use std::sync::Mutex;

use crate::sigv4::{Scope, SigningKey};

pub use root_key::{load_or_create_root_key, RootKeySource, ROOT_KEY_FILE};

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
    /// 403 InvalidAccessKeyId.
    UnknownAccessKey(String),
    /// 403 AccessDenied.
    AccessDenied,
}

/// Signing keys kept before the cache is cleared; a key lives a day.
const SIGNING_KEY_CACHE_LIMIT: usize = 1024;

pub struct Keyring {
    root: Credentials,
    signing_keys: Mutex<HashMap<(String, Scope), SigningKey>>,
}

impl Keyring {
    pub fn new(root: Credentials) -> Keyring {
        Keyring { root, signing_keys: Mutex::new(HashMap::new()) }
    }

    pub fn root(&self) -> &Credentials {
        &self.root
    }

    fn secret(&self, access_key: &str) -> Option<&str> {
        (access_key == self.root.access_key).then_some(self.root.secret_key.as_str())
    }

    /// The signing key for `access_key` in `scope`, derived once and cached.
    pub fn signing_key(&self, access_key: &str, scope: &Scope) -> Result<SigningKey, IamError> {
        let secret = self.secret(access_key).ok_or_else(|| IamError::UnknownAccessKey(access_key.to_string()))?;
        let cache_key = (access_key.to_string(), scope.clone());
        let mut cache = self.signing_keys.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Some(key) = cache.get(&cache_key) {
            return Ok(key.clone());
        }
        if cache.len() >= SIGNING_KEY_CACHE_LIMIT {
            cache.clear();
        }
        let key = SigningKey::derive(secret, scope);
        cache.insert(cache_key, key.clone());
        Ok(key)
    }

    /// May `principal` act at all? Anonymous requests are refused until
    /// buckets can be made public; a known key holds every right.
    pub fn authorize(&self, principal: &Principal) -> Result<(), IamError> {
        match principal {
            Principal::Anonymous => Err(IamError::AccessDenied),
            Principal::Key(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_keys_are_cached_per_scope() {
        let root = Credentials::generate();
        let keyring = Keyring::new(root.clone());
        let scope = Scope { date: "20240101".into(), region: "us-east-1".into(), service: "s3".into() };
        let key = keyring.signing_key(&root.access_key, &scope).unwrap();
        assert_eq!(key, SigningKey::derive(&root.secret_key, &scope));
        assert_eq!(keyring.signing_key(&root.access_key, &scope).unwrap(), key);
        assert_eq!(keyring.signing_key("LKNOPE", &scope), Err(IamError::UnknownAccessKey("LKNOPE".into())));
        assert_eq!(root.access_key.len(), 20);
        assert_eq!(root.secret_key.len(), 40);
        assert!(!format!("{root:?}").contains(&root.secret_key));
    }
}

//! Settings: built-in defaults, then a TOML file, then the environment and
//! command-line flags (applied by `main`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::clock::TimeOverride;
use crate::iam::{Cidr, Credentials};
use crate::store::Durability;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// The data folder: index, blobs, the root key.
    pub data_dir: PathBuf,
    /// The region requests must be signed for.
    pub region: String,
    /// "full" (fsync before answering) or "relaxed".
    pub durability: DurabilitySetting,
    /// The index's cache, in MiB; sled's resident memory runs at 2-4x this.
    pub index_cache_mib: u64,
    /// Open connections at most; one more is answered 503 SlowDown.
    pub max_connections: usize,
    /// Open connections from one client address at most, so that one
    /// host cannot take every slot.
    pub max_connections_per_client: usize,
    /// Time allowed for a request head to arrive.
    pub header_timeout_secs: u64,
    /// Time a request body may stay silent, or a response unread, before
    /// the request fails and the connection is dropped.
    pub body_idle_timeout_secs: u64,
    /// An upload that averages fewer bytes a second than this over
    /// `min_upload_rate_window_secs` is dropped (0: no minimum).
    pub min_upload_bytes_per_sec: u64,
    pub min_upload_rate_window_secs: u64,
    /// Where the admin API (`/_larder/admin/`) may be called from.
    pub admin_from: Vec<Cidr>,
    /// Multipart uploads not completed within this many seconds are
    /// aborted in the background (default 7 days).
    pub multipart_expiry_secs: u64,
    /// Reverse proxies (addresses or CIDR ranges) whose X-Forwarded-For or
    /// Forwarded header names the real client.
    pub trusted_proxies: Vec<Cidr>,
    /// The root key, when given by the environment rather than stored.
    #[serde(skip)]
    pub root_credentials: Option<Credentials>,
    /// Another clock than the machine's (tests).
    #[serde(skip)]
    #[doc(hidden)]
    pub time: Option<TimeOverride>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DurabilitySetting {
    Full,
    Relaxed,
}

impl From<DurabilitySetting> for Durability {
    fn from(setting: DurabilitySetting) -> Durability {
        match setting {
            DurabilitySetting::Full => Durability::Full,
            DurabilitySetting::Relaxed => Durability::Relaxed,
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 9000)),
            data_dir: PathBuf::from("./larder-data"),
            region: "us-east-1".to_string(),
            durability: DurabilitySetting::Full,
            index_cache_mib: 16,
            max_connections: 256,
            max_connections_per_client: 64,
            header_timeout_secs: 10,
            body_idle_timeout_secs: 60,
            min_upload_bytes_per_sec: 1024,
            min_upload_rate_window_secs: 30,
            admin_from: vec![Cidr::LOOPBACK_V4, Cidr::LOOPBACK_V6],
            multipart_expiry_secs: 7 * 24 * 3600,
            trusted_proxies: Vec::new(),
            root_credentials: None,
            time: None,
        }
    }
}

impl Config {
    /// Reads a TOML file; keys it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        toml::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_overrides_defaults_and_refuses_unknown_keys() {
        let config: Config = toml::from_str("listen = \"127.0.0.1:9100\"\ndurability = \"relaxed\"").unwrap();
        assert_eq!(config.listen, "127.0.0.1:9100".parse().unwrap());
        assert_eq!(config.durability, DurabilitySetting::Relaxed);
        assert_eq!(config.region, "us-east-1");
        assert!(toml::from_str::<Config>("listne = \"x\"").is_err());
    }
}

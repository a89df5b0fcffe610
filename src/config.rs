//! Settings: built-in defaults, then a TOML file, then the environment and
//! command-line flags (applied by `main`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::clock::TimeOverride;
use crate::iam::{Cidr, Credentials};
use crate::store::Durability;

/// Serializes to the TOML it reads (less what the file never holds: the
/// root key from the environment, a test clock).
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    /// Where `GET /metrics` answers (no credentials): the board itself and
    /// private networks by default.
    pub metrics_from: Vec<Cidr>,
    /// Multipart uploads not completed within this many seconds are
    /// aborted in the background (default 7 days).
    pub multipart_expiry_secs: u64,
    /// The length of a lifecycle rule's day, in seconds: rules run once a
    /// day and count their Days in these (86400; tests shorten it).
    pub lifecycle_day_secs: u64,
    /// Reverse proxies (addresses or CIDR ranges) whose X-Forwarded-For or
    /// Forwarded header names the real client.
    pub trusted_proxies: Vec<Cidr>,
    /// The base of every link larder makes (share links, QR codes, upload
    /// pages), e.g. `http://192.168.1.20:9000`. Unset: the address of the
    /// interface that holds the default route (see [`public_url_for`]).
    pub public_url: Option<String>,
    /// Accept AWS Signature Version 2 (older clients, boto3's default
    /// presigned URLs for us-east-1); `false` refuses it with a clear error.
    pub sigv2: bool,
    /// Members of the data folder's group may read the root key file (and
    /// so run `larder key`, `share` and `status` without root): the folder
    /// is 0750 and root-key.toml 0640 instead of 0700 and 0600. Others
    /// never get in.
    pub group_access: bool,
    /// HTTPS with this certificate chain and key (PEM files, read again on
    /// SIGHUP).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `"self-signed"`: HTTPS with a certificate larder makes on first
    /// start (kept in the data folder's `tls/`).
    pub tls: Option<String>,
    /// With TLS: HTTPS here, and plain HTTP on `listen` beside it. Unset:
    /// `listen` speaks HTTPS only.
    pub listen_tls: Option<SocketAddr>,
    /// The root key, when given by the environment rather than stored.
    #[serde(skip)]
    pub root_credentials: Option<Credentials>,
    /// Another clock than the machine's (tests).
    #[serde(skip)]
    #[doc(hidden)]
    pub time: Option<TimeOverride>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
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
            metrics_from: [
                "127.0.0.0/8",
                "::1/128",
                "10.0.0.0/8",
                "172.16.0.0/12",
                "192.168.0.0/16",
                "fc00::/7",
                "fe80::/10",
            ]
            .iter()
            .map(|cidr| cidr.parse().expect("a CIDR"))
            .collect(),
            multipart_expiry_secs: 7 * 24 * 3600,
            lifecycle_day_secs: 86_400,
            trusted_proxies: Vec::new(),
            public_url: None,
            sigv2: true,
            group_access: false,
            tls_cert: None,
            tls_key: None,
            tls: None,
            listen_tls: None,
            root_credentials: None,
            time: None,
        }
    }
}

/// Where the configuration is looked for when no file is named, in order.
pub const CONFIG_SEARCH_PATH: [&str; 2] = ["larder.toml", "/etc/larder/larder.toml"];

impl Config {
    /// Reads a TOML file; keys it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path).map_err(|error| cannot_read(path, &error))?;
        toml::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))
    }

    /// The configuration `serve` and every other command share: the file
    /// named (`--config` or `LARDER_CONFIG`), else the first file of
    /// [`CONFIG_SEARCH_PATH`] that exists, else the built-in defaults.
    /// Returns the file it read, if any.
    pub fn discover(named: Option<&Path>) -> Result<(Config, Option<PathBuf>), String> {
        if let Some(path) = named {
            return Ok((Config::from_file(path)?, Some(path.to_path_buf())));
        }
        for candidate in CONFIG_SEARCH_PATH.iter().map(Path::new) {
            match std::fs::metadata(candidate) {
                Ok(_) => return Ok((Config::from_file(candidate)?, Some(candidate.to_path_buf()))),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(cannot_read(candidate, &error)),
            }
        }
        Ok((Config::default(), None))
    }
}

/// Checks a `public_url` setting: an absolute http(s) URL of a host (and
/// port), without path, query or fragment (presigned URLs sign the path
/// larder sees). Returns it without a trailing slash.
pub fn check_public_url(url: &str) -> Result<String, String> {
    let trimmed = url.trim_end_matches('/');
    let bad = || format!("public_url: expected an absolute http(s) URL such as http://192.168.1.20:9000, not {url:?}");
    let uri: http::Uri = trimmed.parse().map_err(|_| bad())?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    let path_ok = matches!(uri.path(), "" | "/") && uri.query().is_none() && !trimmed.contains('#');
    let host_ok = uri.host().is_some_and(|host| !host.is_empty()) && !trimmed.contains('@');
    if !(scheme_ok && path_ok && host_ok) {
        return Err(bad());
    }
    Ok(trimmed.to_string())
}

/// The public URL of a server listening on `listen` (port as bound) when
/// none is set: on a wildcard address, the address of the interface that
/// holds the default route (what another device on the LAN reaches);
/// loopback when there is no route or the server listens only there.
pub fn public_url_for(listen: SocketAddr, https: bool) -> String {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
    let ip = listen.ip();
    let ip = if !ip.is_unspecified() {
        ip
    } else {
        // Connecting a UDP socket sends nothing; it only asks the routing
        // table which source address a packet to the world would leave from.
        let routed = |bind: IpAddr, world: IpAddr| -> Option<IpAddr> {
            let socket = UdpSocket::bind((bind, 0)).ok()?;
            socket.connect((world, 9)).ok()?;
            Some(socket.local_addr().ok()?.ip()).filter(|ip| !ip.is_unspecified())
        };
        let v4 = routed(Ipv4Addr::UNSPECIFIED.into(), Ipv4Addr::new(192, 0, 2, 1).into());
        let v6 = || routed(Ipv6Addr::UNSPECIFIED.into(), "2001:db8::1".parse().expect("an IPv6 address"));
        match (ip, v4) {
            (_, Some(v4)) => v4,
            (IpAddr::V6(_), None) => v6().unwrap_or(Ipv6Addr::LOCALHOST.into()),
            (IpAddr::V4(_), None) => Ipv4Addr::LOCALHOST.into(),
        }
    };
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{}", SocketAddr::new(ip, listen.port()))
}

/// A file that does not read, and, when it is a matter of permissions,
/// what to do about it.
pub fn cannot_read(path: &Path, error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::PermissionDenied {
        return format!(
            "cannot read {}: permission denied; run as its owner (e.g. `sudo larder ...`) or as a member of its \
             group (installed packages: `sudo usermod -aG larder $USER`, then log in again)",
            path.display()
        );
    }
    format!("cannot read {}: {error}", path.display())
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

    #[test]
    fn public_urls_are_absolute_http_urls_of_a_host() {
        assert_eq!(check_public_url("http://192.168.1.20:9000/").unwrap(), "http://192.168.1.20:9000");
        assert_eq!(check_public_url("https://larder.home").unwrap(), "https://larder.home");
        for bad in ["192.168.1.20:9000", "ftp://host", "http://host/path", "http://host?x=1", "http://", "/x"] {
            assert!(check_public_url(bad).is_err(), "{bad}");
        }
        assert_eq!(public_url_for("127.0.0.1:9000".parse().unwrap(), false), "http://127.0.0.1:9000");
        assert_eq!(public_url_for("127.0.0.1:9443".parse().unwrap(), true), "https://127.0.0.1:9443");
        assert!(public_url_for("0.0.0.0:9000".parse().unwrap(), false).ends_with(":9000"));
    }

    #[test]
    fn a_named_file_must_read_and_says_which() {
        let missing = Path::new("/nonexistent/larder.toml");
        let error = Config::discover(Some(missing)).unwrap_err();
        assert!(error.contains("/nonexistent/larder.toml"), "{error}");
    }
}

//! The command line's parts, one file per command, and what they share:
//! finding the server (flags, environment, the configuration `serve`
//! reads) and its root key.

pub mod args;
pub mod bench;
pub mod client;
pub mod key;
pub mod lifecycle;
pub mod presign;
pub mod serve;
pub mod share;
pub mod status;

use std::path::PathBuf;

use larder::config::Config;
use larder::iam::Credentials;

use client::AdminClient;

/// How the command line reaches a running server: flags and environment
/// first, then the configuration file `serve` reads (see
/// `Config::discover`), then the defaults.
#[derive(clap::Args)]
pub struct ServerArgs {
    /// TOML configuration file [default: ./larder.toml, else /etc/larder/larder.toml]
    #[arg(long, env = "LARDER_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// The server [default: http://127.0.0.1:PORT, PORT from the configuration's listen]
    #[arg(long, env = "LARDER_ENDPOINT", global = true)]
    pub endpoint: Option<String>,
    /// Data folder holding root-key.toml, unless LARDER_ROOT_ACCESS_KEY and
    /// LARDER_ROOT_SECRET_KEY are set [default: the configuration's, else ./larder-data]
    #[arg(long, env = "LARDER_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Region to sign for [default: the configuration's, else us-east-1]
    #[arg(long, env = "LARDER_REGION", global = true)]
    pub region: Option<String>,
}

/// A running server as the command line found it.
pub struct Target {
    pub endpoint: String,
    pub data_dir: PathBuf,
    pub region: String,
    /// The server's certificate, when it speaks HTTPS.
    pub certificate: Option<PathBuf>,
    /// May the data folder's group read the root key? (`group_access`)
    pub group_access: bool,
}

impl Target {
    /// The admin client for it, with the root key.
    pub fn admin(&self) -> Result<AdminClient, String> {
        let client = AdminClient::new(&self.endpoint, root_credentials(self)?, &self.region)?;
        match &self.certificate {
            Some(certificate) if self.endpoint.starts_with("https://") => client.trusting(certificate),
            _ => Ok(client),
        }
    }
}

impl ServerArgs {
    pub fn resolve(&self) -> Result<Target, String> {
        let (config, _) = Config::discover(self.config.as_deref())?;
        let data_dir = self.data_dir.clone().unwrap_or(config.data_dir);
        let certificate = match (&config.tls_cert, config.tls.as_deref()) {
            (Some(cert), _) => Some(cert.clone()),
            (None, Some(_)) => Some(data_dir.join("tls").join("self-signed.pem")),
            (None, None) => None,
        };
        // HTTPS only when `listen` itself speaks it (no listen_tls beside).
        let https_only = certificate.is_some() && config.listen_tls.is_none();
        let endpoint = match &self.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => local_endpoint(config.listen, https_only),
        };
        let region = self.region.clone().unwrap_or(config.region);
        Ok(Target { endpoint, data_dir, region, certificate, group_access: config.group_access })
    }
}

/// Where this machine reaches a server listening on `listen`.
pub fn local_endpoint(listen: std::net::SocketAddr, https: bool) -> String {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{}", std::net::SocketAddr::new(ip, listen.port()))
}

pub fn root_credentials(server: &Target) -> Result<Credentials, String> {
    let data_dir = &server.data_dir;
    let access_key = std::env::var("LARDER_ROOT_ACCESS_KEY").ok().filter(|v| !v.is_empty());
    let secret_key = std::env::var("LARDER_ROOT_SECRET_KEY").ok().filter(|v| !v.is_empty());
    if let (Some(access_key), Some(secret_key)) = (access_key, secret_key) {
        return Ok(Credentials { access_key, secret_key });
    }
    larder::iam::read_root_key(data_dir, server.group_access)
        .map_err(|error| larder::config::cannot_read(&data_dir.join(larder::iam::ROOT_KEY_FILE), &error))?
        .ok_or_else(|| format!("no root key: set LARDER_ROOT_ACCESS_KEY and LARDER_ROOT_SECRET_KEY, or point --data-dir at the server's data folder ({} has no root-key.toml)", data_dir.display()))
}

pub fn print_json(value: &impl serde::Serialize) -> Result<(), String> {
    println!("{}", serde_json::to_string_pretty(value).map_err(|error| error.to_string())?);
    Ok(())
}

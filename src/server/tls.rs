//! HTTPS, built in and off by default: a certificate and key from PEM
//! files (read again on SIGHUP, for renewals), or a self-signed certificate
//! larder makes on first start and keeps in the data folder. rustls on
//! ring: no OpenSSL.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

use crate::config::Config;

/// Where the certificate comes from.
#[derive(Debug, Clone)]
enum Source {
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned { cert: PathBuf, key: PathBuf },
}

/// The server's certificate, replaceable while connections come in.
#[derive(Debug)]
pub struct Certificates {
    source: Source,
    current: RwLock<Arc<CertifiedKey>>,
    fingerprint: RwLock<String>,
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|poison| poison.into_inner()).clone())
    }
}

impl Certificates {
    /// The SHA-256 fingerprint of the certificate served, as browsers and
    /// Proxmox show it (`AB:CD:...`).
    pub fn fingerprint(&self) -> String {
        self.fingerprint.read().unwrap_or_else(|poison| poison.into_inner()).clone()
    }

    /// The file clients can trust (the certificate itself, when larder
    /// made it).
    pub fn certificate_file(&self) -> &Path {
        match &self.source {
            Source::Files { cert, .. } | Source::SelfSigned { cert, .. } => cert,
        }
    }

    /// Reads the files again (SIGHUP); on any error the old certificate
    /// stays.
    pub fn reload(&self) -> Result<(), String> {
        let (cert, key) = match &self.source {
            Source::Files { cert, key } | Source::SelfSigned { cert, key } => (cert, key),
        };
        let (certified, fingerprint) = load(cert, key)?;
        *self.current.write().unwrap_or_else(|poison| poison.into_inner()) = Arc::new(certified);
        *self.fingerprint.write().unwrap_or_else(|poison| poison.into_inner()) = fingerprint;
        Ok(())
    }
}

/// The TLS setup `config` asks for, if any: the acceptor and the
/// certificates behind it. `names` are the host names and addresses a
/// self-signed certificate is made for.
pub fn setup(config: &Config, names: &[String]) -> Result<Option<(TlsAcceptor, Arc<Certificates>)>, String> {
    let source = match (config.tls.as_deref(), &config.tls_cert, &config.tls_key) {
        (None, None, None) => return Ok(None),
        (Some("self-signed"), None, None) => {
            let dir = config.data_dir.join("tls");
            Source::SelfSigned { cert: dir.join("self-signed.pem"), key: dir.join("self-signed.key") }
        }
        (None, Some(cert), Some(key)) => Source::Files { cert: cert.clone(), key: key.clone() },
        (Some(other), None, None) => {
            return Err(format!("tls: expected \"self-signed\" (or tls_cert and tls_key), not {other:?}"))
        }
        _ => return Err("set tls_cert and tls_key together, or tls = \"self-signed\", not both".into()),
    };
    if let Source::SelfSigned { cert, key } = &source {
        if !cert.exists() || !key.exists() {
            make_self_signed(cert, key, names, config.group_access)?;
        } else if config.group_access {
            // Made before group access was turned on: the group's command
            // lines need the certificate (public) to trust the server.
            use std::os::unix::fs::PermissionsExt;
            let open = |path: &Path, mode: u32| {
                fs::set_permissions(path, fs::Permissions::from_mode(mode))
                    .map_err(|error| format!("{}: {error}", path.display()))
            };
            open(cert.parent().expect("a path in the data folder"), 0o750)?;
            open(cert, 0o644)?;
        }
    }
    let (cert, key) = match &source {
        Source::Files { cert, key } | Source::SelfSigned { cert, key } => (cert, key),
    };
    let (certified, fingerprint) = load(cert, key)?;
    let certificates = Arc::new(Certificates {
        source,
        current: RwLock::new(Arc::new(certified)),
        fingerprint: RwLock::new(fingerprint),
    });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| format!("TLS: {error}"))?
        .with_no_client_auth()
        .with_cert_resolver(certificates.clone());
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some((TlsAcceptor::from(Arc::new(server_config)), certificates)))
}

/// Reads a PEM certificate chain and key and checks that they belong
/// together. Returns them ready to serve, and the leaf's fingerprint.
fn load(cert_path: &Path, key_path: &Path) -> Result<(CertifiedKey, String), String> {
    let read = |path: &Path| fs::read(path).map_err(|error| crate::config::cannot_read(path, &error));
    let cert_pem = read(cert_path)?;
    let key_pem = read(key_path)?;
    let chain: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|error| format!("tls_cert {}: {error}", cert_path.display()))?;
    let Some(leaf) = chain.first() else {
        return Err(format!("tls_cert {}: no certificate in it", cert_path.display()));
    };
    let fingerprint =
        Sha256::digest(leaf.as_ref()).iter().map(|byte| format!("{byte:02X}")).collect::<Vec<_>>().join(":");
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|error| format!("tls_key {}: {error}", key_path.display()))?
        .ok_or_else(|| format!("tls_key {}: no private key in it", key_path.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| format!("tls_key {}: {error}", key_path.display()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|_| {
        format!("tls_cert {} and tls_key {} do not belong together", cert_path.display(), key_path.display())
    })?;
    Ok((certified, fingerprint))
}

/// Makes a self-signed certificate for `names` (host names and
/// addresses), valid far beyond any board's wrong clock, and keeps it
/// with its key (0600) in the data folder. The certificate is public
/// (0644): with group access, the group's command lines trust it.
fn make_self_signed(cert_path: &Path, key_path: &Path, names: &[String], group_access: bool) -> Result<(), String> {
    let mut params =
        rcgen::CertificateParams::new(names.to_vec()).map_err(|error| format!("self-signed certificate: {error}"))?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "larder");
    let key = rcgen::KeyPair::generate().map_err(|error| format!("self-signed certificate: {error}"))?;
    let cert = params.self_signed(&key).map_err(|error| format!("self-signed certificate: {error}"))?;
    let dir = cert_path.parent().expect("a path in the data folder");
    let dir_mode = if group_access { 0o750 } else { 0o700 };
    std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), dir_mode)
        .create(dir)
        .map_err(|error| format!("{}: {error}", dir.display()))?;
    let write = |path: &Path, text: String, mode: u32| {
        use std::io::Write;
        let mut file = std::os::unix::fs::OpenOptionsExt::mode(
            fs::OpenOptions::new().write(true).create(true).truncate(true),
            mode,
        )
        .open(path)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    };
    write(key_path, key.serialize_pem(), 0o600).map_err(|error| format!("{}: {error}", key_path.display()))?;
    write(cert_path, cert.pem(), 0o644).map_err(|error| format!("{}: {error}", cert_path.display()))?;
    tracing::info!(file = %cert_path.display(), names = ?names, "made a self-signed certificate");
    Ok(())
}

/// The names a self-signed certificate is made for: `localhost`, the
/// host's name (and `NAME.local`, as mDNS announces it), loopback, and
/// the address other devices reach.
pub fn host_names(public_host: Option<&str>) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if let Ok(host) = fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim();
        if !host.is_empty() && host != "localhost" {
            names.push(host.to_string());
            names.push(format!("{host}.local"));
        }
    }
    if let Some(host) = public_host {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        if !names.contains(&host) {
            names.push(host);
        }
    }
    names
}

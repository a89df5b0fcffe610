//! The `larder` command: parses the command line and calls the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use larder::admin_client::AdminClient;
use larder::config::Config;
use larder::iam::{Credentials, RootKeySource};
use larder::s3::admin::{KeyView, NewKey};
use larder::s3::share::NewShare;

#[derive(Parser)]
#[command(name = "larder", version, about = "A small S3-compatible object store for single-board computers")]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a command, larder serves: `larder` is `larder serve`.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve(ServeArgs),
    /// Rebuild the index from the data folder (blobs, bucket markers, key
    /// and configuration files), keeping the old one beside it. Stop the
    /// server first.
    Repair {
        #[command(flatten)]
        args: ServeArgs,
        /// Compare the index with the data folder; change nothing.
        #[arg(long)]
        check: bool,
        /// Say what a repair would do; change nothing.
        #[arg(long, conflicts_with = "check")]
        dry_run: bool,
    },
    /// Print a presigned URL for an object (made offline, from the root key
    /// or LARDER_ACCESS_KEY / LARDER_SECRET_KEY).
    Presign {
        /// get, put, head or delete
        method: String,
        /// s3://BUCKET/KEY
        target: String,
        /// How long the link works (e.g. 90m, 24h, 7d; at most 7 days).
        #[arg(long, default_value = "1h")]
        expires: String,
        /// PUT links: the upload must have this Content-Type.
        #[arg(long)]
        content_type: Option<String>,
        /// PUT links: the upload must be exactly this many bytes.
        #[arg(long)]
        content_length: Option<u64>,
        /// Sign with this AWS CLI profile's key (~/.aws/credentials).
        #[arg(long)]
        profile: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Share files: upload them and print a download link (and QR code)
    /// for each; `share list` and `share revoke ID` manage the links.
    #[command(args_conflicts_with_subcommands = true)]
    Share {
        #[command(subcommand)]
        command: Option<ShareCommand>,
        /// The files to share.
        files: Vec<PathBuf>,
        /// The bucket to put them in (made if missing).
        #[arg(long, default_value = "shared")]
        bucket: String,
        /// How long the links work (e.g. 2h, 24h, 7d; at most 7 days).
        #[arg(long, default_value = "24h")]
        expires: String,
        /// The links stop after this many downloads (uploads, with --upload).
        #[arg(long)]
        uses: Option<u64>,
        /// Instead of sharing files, make a link to an upload page that
        /// puts what people send under s3://BUCKET/PREFIX/.
        #[arg(long, conflicts_with = "files")]
        upload: Option<String>,
        /// With --upload: the largest file accepted (e.g. 500K, 200M, 2G).
        #[arg(long, default_value = "100M", requires = "upload")]
        max_size: String,
        /// With --upload: the files accepted, by type (e.g. image/*).
        #[arg(long = "type", requires = "upload")]
        content_type: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// What the running server is doing: version, uptime, addresses, data
    /// folder, disk, objects, links, clock and index.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Manage access keys on a running server (uses the root key).
    Key {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: KeyCommand,
    },
}

/// How the command line reaches a running server: flags and environment
/// first, then the configuration file `serve` reads (see
/// `Config::discover`), then the defaults.
#[derive(clap::Args)]
struct ServerArgs {
    /// TOML configuration file [default: ./larder.toml, else /etc/larder/larder.toml]
    #[arg(long, env = "LARDER_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// The server [default: http://127.0.0.1:PORT, PORT from the configuration's listen]
    #[arg(long, env = "LARDER_ENDPOINT", global = true)]
    endpoint: Option<String>,
    /// Data folder holding root-key.toml, unless LARDER_ROOT_ACCESS_KEY and
    /// LARDER_ROOT_SECRET_KEY are set [default: the configuration's, else ./larder-data]
    #[arg(long, env = "LARDER_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// Region to sign for [default: the configuration's, else us-east-1]
    #[arg(long, env = "LARDER_REGION", global = true)]
    region: Option<String>,
}

/// A running server as the command line found it.
struct Target {
    endpoint: String,
    data_dir: PathBuf,
    region: String,
    /// The server's certificate, when it speaks HTTPS.
    certificate: Option<PathBuf>,
}

impl Target {
    /// The admin client for it, with the root key.
    fn admin(&self) -> Result<AdminClient, String> {
        let client = AdminClient::new(&self.endpoint, root_credentials(&self.data_dir)?, &self.region)?;
        match &self.certificate {
            Some(certificate) if self.endpoint.starts_with("https://") => client.trusting(certificate),
            _ => Ok(client),
        }
    }
}

impl ServerArgs {
    fn resolve(&self) -> Result<Target, String> {
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
        Ok(Target { endpoint, data_dir, region: self.region.clone().unwrap_or(config.region), certificate })
    }
}

/// Where this machine reaches a server listening on `listen`.
fn local_endpoint(listen: std::net::SocketAddr, https: bool) -> String {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{}", std::net::SocketAddr::new(ip, listen.port()))
}

#[derive(Subcommand)]
enum ShareCommand {
    /// List live links: object, expiry, uses left, last use and client.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Stop a link at once.
    Revoke {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a key; prints its secret once.
    Create {
        /// A name to know the key by.
        name: String,
        /// BUCKET[/PREFIX]:RIGHTS, rights from read, write, delete, list,
        /// owner, all (repeatable). `*` as the bucket means every bucket.
        #[arg(long = "grant", required = true)]
        grants: Vec<String>,
        /// The key stops working after this long (e.g. 90m, 24h, 30d).
        #[arg(long)]
        expires: Option<String>,
        /// Addresses or CIDR ranges the key may be used from (repeatable).
        #[arg(long = "allow-from")]
        allow_from: Vec<String>,
        /// Use this access key instead of a new one (for automation).
        #[arg(long, requires = "secret_key")]
        access_key: Option<String>,
        /// Use this secret instead of a new one.
        #[arg(long, requires = "access_key")]
        secret_key: Option<String>,
    },
    /// List keys.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one key.
    Show {
        access_key: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key at once, and every presigned URL it signed.
    Revoke { access_key: String },
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// TOML configuration file; flags and environment override it
    /// [default: ./larder.toml, else /etc/larder/larder.toml, if there]
    #[arg(long, env = "LARDER_CONFIG")]
    config: Option<PathBuf>,
    /// Data folder [default: ./larder-data]
    #[arg(long, env = "LARDER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on [default: 0.0.0.0:9000]
    #[arg(long, env = "LARDER_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Region clients must sign for [default: us-east-1]
    #[arg(long, env = "LARDER_REGION")]
    region: Option<String>,
    /// The base of every link larder makes, e.g. http://192.168.1.20:9000
    /// [default: this host's address on its default route]
    #[arg(long, env = "LARDER_PUBLIC_URL")]
    public_url: Option<String>,
}

fn config_from(args: ServeArgs) -> Result<Config, String> {
    let (mut config, _) = Config::discover(args.config.as_deref())?;
    if let Some(data_dir) = args.data_dir {
        config.data_dir = data_dir;
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(region) = args.region {
        config.region = region;
    }
    if let Some(public_url) = args.public_url {
        config.public_url = Some(public_url);
    }
    let access_key = std::env::var("LARDER_ROOT_ACCESS_KEY").ok().filter(|v| !v.is_empty());
    let secret_key = std::env::var("LARDER_ROOT_SECRET_KEY").ok().filter(|v| !v.is_empty());
    config.root_credentials = match (access_key, secret_key) {
        (Some(access_key), Some(secret_key)) => Some(Credentials { access_key, secret_key }),
        (None, None) => None,
        _ => return Err("set both LARDER_ROOT_ACCESS_KEY and LARDER_ROOT_SECRET_KEY, or neither".into()),
    };
    Ok(config)
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler works");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// `println!` for a server: a closed stdout (the reader of the first
/// lines went away) is no reason to stop serving.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let config = config_from(args)?;
    let data_dir = config.data_dir.clone();
    let server = larder::server::start(config).await.map_err(|error| error.to_string())?;
    let addr = server.local_addr();
    let key_file = data_dir.join(larder::iam::ROOT_KEY_FILE);
    // The secret is shown only to a person at a terminal: anywhere else
    // (systemd's journal, a log file) stdout is a log, and logs are read
    // by more people than the root key should be.
    if server.root_key_source() == RootKeySource::Created && !std::io::stdout().is_terminal() {
        say!(
            "larder: created the root key {}; its secret is only in {} (mode 0600)",
            server.root_credentials().access_key,
            key_file.display()
        );
    } else if server.root_key_source() == RootKeySource::Created {
        let root = server.root_credentials();
        let public_url = server.public_url();
        say!(
            "larder: created the root key; it is shown only now and kept in {}\n\
             \n    access key: {}\n    secret key: {}\n\
             \ntry it with the AWS CLI:\n\
             \n    AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} \\\n      aws --endpoint-url {public_url} s3 ls\n",
            key_file.display(),
            root.access_key,
            root.secret_key,
            root.access_key,
            root.secret_key,
        );
    }
    // Scripts and tests wait for this line.
    say!("larder listening on {addr}");
    say!("larder: links start with {} (set public_url to change it)", server.public_url());
    if let Some(certificates) = server.certificates() {
        if let Some(tls_addr) = server.tls_addr() {
            say!("larder: HTTPS on {tls_addr}");
        }
        say!(
            "larder: HTTPS certificate {} (give it to clients to trust), SHA-256 fingerprint {}",
            certificates.certificate_file().display(),
            certificates.fingerprint()
        );
    }
    server.run_until(shutdown_signal()).await;
    Ok(())
}

fn root_credentials(data_dir: &std::path::Path) -> Result<Credentials, String> {
    let access_key = std::env::var("LARDER_ROOT_ACCESS_KEY").ok().filter(|v| !v.is_empty());
    let secret_key = std::env::var("LARDER_ROOT_SECRET_KEY").ok().filter(|v| !v.is_empty());
    if let (Some(access_key), Some(secret_key)) = (access_key, secret_key) {
        return Ok(Credentials { access_key, secret_key });
    }
    larder::iam::read_root_key(data_dir)
        .map_err(|error| larder::config::cannot_read(&data_dir.join(larder::iam::ROOT_KEY_FILE), &error))?
        .ok_or_else(|| format!("no root key: set LARDER_ROOT_ACCESS_KEY and LARDER_ROOT_SECRET_KEY, or point --data-dir at the server's data folder ({} has no root-key.toml)", data_dir.display()))
}

fn print_key(key: &KeyView) {
    println!("access key: {}", key.access_key);
    if let Some(secret) = &key.secret_key {
        println!("secret key: {secret}");
    }
    println!("name:       {}", key.name);
    for grant in &key.grants {
        println!("grant:      {grant}");
    }
    if let Some(expires) = key.expires {
        println!("expires:    {}", larder::timefmt::format_iso8601(expires));
    }
    for cidr in &key.source_cidrs {
        println!("allow from: {cidr}");
    }
}

fn key_command(server: ServerArgs, command: KeyCommand) -> Result<(), String> {
    let server = server.resolve()?;
    let client = server.admin()?;
    match command {
        KeyCommand::Create { name, grants, expires, allow_from, access_key, secret_key } => {
            let expires = match expires {
                Some(text) => Some(larder::timefmt::now() + larder::timefmt::parse_duration(&text)?),
                None => None,
            };
            let key =
                client.create(&NewKey { name, grants, expires, source_cidrs: allow_from, access_key, secret_key })?;
            print_key(&key);
            println!("(the secret is shown only now)");
        }
        KeyCommand::List { json: true } => print_json(&client.list()?)?,
        KeyCommand::List { json: false } => {
            let keys = client.list()?;
            if keys.is_empty() {
                println!(
                    "no keys yet (besides the root key): `larder key create NAME --grant BUCKET:RIGHTS` makes one"
                );
            }
            for key in keys {
                let expires = key.expires.map(larder::timefmt::format_iso8601).unwrap_or_else(|| "never".into());
                println!("{}  {:<20}  expires {expires}  {}", key.access_key, key.name, key.grants.join(" "));
            }
        }
        KeyCommand::Show { access_key, json: true } => print_json(&client.show(&access_key)?)?,
        KeyCommand::Show { access_key, json: false } => print_key(&client.show(&access_key)?),
        KeyCommand::Revoke { access_key } => {
            client.revoke(&access_key)?;
            println!("revoked {access_key}");
        }
    }
    Ok(())
}

/// The key that signs presigned URLs: LARDER_ACCESS_KEY/LARDER_SECRET_KEY,
/// else the root key.
fn signing_credentials(data_dir: &std::path::Path, profile: Option<&str>) -> Result<Credentials, String> {
    if let Some(profile) = profile {
        let path = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".aws").join("credentials")
        });
        let text = std::fs::read_to_string(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        return larder::presign::profile_credentials(&text, profile)
            .ok_or_else(|| format!("no key for profile {profile} in {}", path.display()));
    }
    let access_key = std::env::var("LARDER_ACCESS_KEY").ok().filter(|v| !v.is_empty());
    let secret_key = std::env::var("LARDER_SECRET_KEY").ok().filter(|v| !v.is_empty());
    match (access_key, secret_key) {
        (Some(access_key), Some(secret_key)) => Ok(Credentials { access_key, secret_key }),
        _ => root_credentials(data_dir),
    }
}

fn presign_command(
    method: &str,
    target: &str,
    expires: &str,
    content_type: Option<&str>,
    content_length: Option<u64>,
    profile: Option<&str>,
    server: &ServerArgs,
) -> Result<(), String> {
    let server = &server.resolve()?;
    let (bucket, key) = larder::presign::parse_target(target)?;
    let request = larder::presign::PresignRequest {
        method,
        endpoint: &server.endpoint,
        bucket,
        key,
        region: &server.region,
        expires_secs: larder::timefmt::parse_duration(expires)?,
        content_type,
        content_length,
    };
    let url =
        larder::presign::presign(&request, &signing_credentials(&server.data_dir, profile)?, larder::timefmt::now())?;
    println!("{url}");
    Ok(())
}

/// A QR code of `text` drawn with Unicode half blocks.
/// The QR code of `text`, drawn with half blocks for a dark terminal.
/// Error correction L: a screen does not smudge, and the code stays small
/// (a short link on a LAN address is version 3 or 4, 29 or 33 modules).
fn qr_code(text: &str) -> String {
    match qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::L) {
        Ok(code) => code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
        Err(_) => String::new(),
    }
}

/// A share's links: the short one for people (and its QR code), the full
/// presigned URL for programs. Both start with the server's public URL.
struct Links {
    short: Option<String>,
    full: String,
    id: String,
}

impl Links {
    fn of(
        share: &larder::s3::share::ShareView,
        endpoint: &str,
        bucket: &str,
        key: &str,
        lifetime: i64,
        now: i64,
        region: &str,
    ) -> Result<Links, String> {
        let base = share.public_url.as_deref().unwrap_or(endpoint).trim_end_matches('/');
        let credentials =
            Credentials { access_key: share.id.clone(), secret_key: share.secret_key.clone().unwrap_or_default() };
        let request = larder::presign::PresignRequest {
            method: "GET",
            endpoint: base,
            bucket,
            key,
            region,
            expires_secs: lifetime,
            content_type: None,
            content_length: None,
        };
        Ok(Links {
            short: share.short_id.as_ref().map(|id| format!("{base}/s/{id}")),
            full: larder::presign::presign(&request, &credentials, now)?,
            id: share.id.clone(),
        })
    }

    fn print(&self, expires: i64, uses: Option<u64>, what: &str) {
        let link = self.short.as_deref().unwrap_or(&self.full);
        println!("  link:    {link}");
        if self.short.is_some() {
            println!("  full:    {}", self.full);
        }
        println!("  id:      {}", self.id);
        let limit = uses.map(|n| format!(", {n} {what}(s)")).unwrap_or_default();
        println!("  expires: {}{limit}", larder::timefmt::format_iso8601(expires));
        println!("{}", qr_code(link));
    }
}

fn share_files(
    files: &[PathBuf],
    bucket: &str,
    expires: &str,
    uses: Option<u64>,
    server: &ServerArgs,
) -> Result<(), String> {
    let server = &server.resolve()?;
    if files.is_empty() {
        return Err("name the files to share (or use `larder share list` / `larder share revoke ID`)".into());
    }
    let lifetime = larder::timefmt::parse_duration(expires)?;
    if !(1..=larder::sigv4::MAX_EXPIRES_SECS).contains(&lifetime) {
        return Err("a link lasts 1 second to 7 days".into());
    }
    let client = server.admin()?;
    client.ensure_bucket(bucket)?;
    for path in files {
        let file_name =
            path.file_name().and_then(|n| n.to_str()).ok_or_else(|| format!("{}: not a file name", path.display()))?;
        // A random folder per upload: two shares of the same name never meet.
        let mut folder = [0u8; 6];
        getrandom::getrandom(&mut folder).map_err(|e| e.to_string())?;
        let key = format!("{}/{file_name}", hex::encode(folder));
        let length = std::fs::metadata(path).map_err(|error| format!("{}: {error}", path.display()))?.len();
        let sent = std::sync::atomic::AtomicU64::new(0);
        let done = std::sync::atomic::AtomicBool::new(false);
        let uploaded = std::thread::scope(|scope| {
            let bar = scope.spawn(|| progress_bar(file_name, length, &sent, &done));
            let uploaded = if length > larder::admin_client::MULTIPART_THRESHOLD {
                client.put_file_multipart(bucket, &key, path, &sent)
            } else {
                client
                    .put_file(bucket, &key, path, |so_far, _| sent.store(so_far, std::sync::atomic::Ordering::Relaxed))
            };
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = bar.join();
            uploaded
        });
        uploaded?;
        let now = larder::timefmt::now();
        let share = client.create_share(&NewShare {
            bucket: bucket.to_string(),
            key: key.clone(),
            file_name: Some(file_name.to_string()),
            expires: now + lifetime,
            uses,
            upload: None,
        })?;
        let links = Links::of(&share, &server.endpoint, bucket, &key, lifetime, now, &server.region)?;
        println!("{file_name}");
        links.print(now + lifetime, uses, "download");
    }
    Ok(())
}

/// Draws `name [#####-----] 45%  12.3 MiB/s  ETA 0:42` on stderr while
/// an upload runs, only when stderr is a terminal (logs stay clean).
fn progress_bar(name: &str, total: u64, sent: &std::sync::atomic::AtomicU64, done: &std::sync::atomic::AtomicBool) {
    use std::sync::atomic::Ordering;
    if !std::io::stderr().is_terminal() {
        return;
    }
    let started = std::time::Instant::now();
    let draw = || {
        let so_far = sent.load(Ordering::Relaxed).min(total);
        let fraction = if total == 0 { 1.0 } else { so_far as f64 / total as f64 };
        let filled = (fraction * 30.0) as usize;
        let secs = started.elapsed().as_secs_f64().max(0.001);
        let rate = so_far as f64 / secs;
        let eta = if rate > 0.0 { ((total - so_far) as f64 / rate) as u64 } else { 0 };
        eprint!(
            "\r{name} [{}{}] {:3.0}%  {:.1} MiB/s  ETA {}:{:02} ",
            "#".repeat(filled),
            "-".repeat(30 - filled),
            fraction * 100.0,
            rate / f64::from(1u32 << 20),
            eta / 60,
            eta % 60
        );
    };
    while !done.load(Ordering::Relaxed) {
        draw();
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    draw();
    eprintln!();
}

/// Reads a size such as `500K`, `200M`, `2G` or plain bytes.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: u64 = number.parse().map_err(|_| format!("not a size: {text}"))?;
    let factor: u64 = match unit.to_ascii_uppercase().trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("not a size: {text} (use K, M or G)")),
    };
    number.checked_mul(factor).ok_or_else(|| format!("size too large: {text}"))
}

/// `larder share --upload s3://bucket/prefix/`: a link to an upload page.
fn share_upload(
    target: &str,
    expires: &str,
    uses: Option<u64>,
    max_size: &str,
    content_type: Option<&str>,
    server: &ServerArgs,
) -> Result<(), String> {
    let server = &server.resolve()?;
    let rest = target.strip_prefix("s3://").ok_or_else(|| format!("expected s3://BUCKET/PREFIX/, not {target}"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let lifetime = larder::timefmt::parse_duration(expires)?;
    if !(1..=larder::sigv4::MAX_EXPIRES_SECS).contains(&lifetime) {
        return Err("a link lasts 1 second to 7 days".into());
    }
    let content_type = content_type.map(|t| t.trim_end_matches('*').to_string()).filter(|t| !t.is_empty());
    let client = server.admin()?;
    client.ensure_bucket(bucket)?;
    let now = larder::timefmt::now();
    let share = client.create_share(&NewShare {
        bucket: bucket.to_string(),
        key: prefix.to_string(),
        file_name: None,
        expires: now + lifetime,
        uses,
        upload: Some(larder::iam::UploadLimits { max_size: parse_size(max_size)?, content_type }),
    })?;
    let page = format!("upload/{}", share.id);
    let links = Links::of(&share, &server.endpoint, "_larder", &page, lifetime, now, &server.region)?;
    println!("upload page for s3://{bucket}/{prefix}");
    links.print(now + lifetime, uses, "upload");
    Ok(())
}

fn print_json(value: &impl serde::Serialize) -> Result<(), String> {
    println!("{}", serde_json::to_string_pretty(value).map_err(|error| error.to_string())?);
    Ok(())
}

fn status_command(json: bool, server: ServerArgs) -> Result<(), String> {
    let server = server.resolve()?;
    let client = server.admin()?;
    let status = client.status()?;
    if json {
        return print_json(&status);
    }
    let text = |name: &str| status[name].as_str().unwrap_or("?").to_string();
    let number = |name: &str| status[name].as_u64().unwrap_or(0);
    let uptime = number("uptime_secs");
    println!("larder {}, up {}d {}h {}m", text("version"), uptime / 86_400, uptime / 3600 % 24, uptime / 60 % 60);
    println!("listening on   {} (links start with {})", text("listen"), text("public_url"));
    println!("data folder    {} (durability {})", text("data_dir"), text("durability"));
    println!("disk free      {:.1} GiB", number("disk_free_bytes") as f64 / f64::from(1u32 << 30));
    println!("stored         {} objects, {:.1} MiB", number("objects"), number("bytes") as f64 / f64::from(1u32 << 20));
    println!("live links     {}", number("live_links"));
    println!("clock          {} (system {}, larder {})", text("clock"), text("wall_clock"), text("larder_time"));
    println!("index          {} (recovery {})", text("index"), text("recovery"));
    Ok(())
}

fn share_command(command: ShareCommand) -> Result<(), String> {
    let server = match &command {
        ShareCommand::List { server, .. } | ShareCommand::Revoke { server, .. } => server.resolve()?,
    };
    let client = server.admin()?;
    match &command {
        ShareCommand::List { json: true, .. } => print_json(&client.list_shares()?)?,
        ShareCommand::List { json: false, .. } => {
            let shares = client.list_shares()?;
            if shares.is_empty() {
                println!("no live links: `larder share FILE` makes one");
            }
            for share in shares {
                let expires = share.expires.map(larder::timefmt::format_iso8601).unwrap_or_else(|| "never".into());
                let left = match share.uses_left() {
                    Some(0) => "none (used up)".to_string(),
                    Some(left) => left.to_string(),
                    None => "unlimited".into(),
                };
                let last = match (share.last_use, &share.last_client) {
                    (Some(time), Some(client)) => format!("{} from {client}", larder::timefmt::format_iso8601(time)),
                    _ => "never used".into(),
                };
                println!(
                    "{}  {}/{}  expires {expires}  uses left {left}  last {last}",
                    share.id, share.bucket, share.key
                );
            }
        }
        ShareCommand::Revoke { id, .. } => {
            client.revoke_share(id)?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve(cli.serve));
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("the tokio runtime starts");
    let result = match command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Repair { args, check, dry_run } => config_from(args).and_then(|config| {
            let mode = match (check, dry_run) {
                (true, _) => larder::repair::Mode::Check,
                (_, true) => larder::repair::Mode::DryRun,
                _ => larder::repair::Mode::Rebuild,
            };
            larder::repair::run(&config, mode)
        }),
        Command::Key { server, command } => key_command(server, command),
        Command::Status { json, server } => status_command(json, server),
        Command::Share { command: Some(command), .. } => share_command(command),
        Command::Share {
            command: None, upload: Some(target), expires, uses, max_size, content_type, server, ..
        } => share_upload(&target, &expires, uses, &max_size, content_type.as_deref(), &server),
        Command::Share { command: None, files, bucket, expires, uses, server, .. } => {
            share_files(&files, &bucket, &expires, uses, &server)
        }
        Command::Presign { method, target, expires, content_type, content_length, profile, server } => presign_command(
            &method,
            &target,
            &expires,
            content_type.as_deref(),
            content_length,
            profile.as_deref(),
            &server,
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("larder: {message}");
            ExitCode::FAILURE
        }
    }
}

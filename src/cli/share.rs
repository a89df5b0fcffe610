//! `larder share`: files uploaded and shared by link (short link, QR
//! code, full presigned URL), upload pages, and `share list|revoke`.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Subcommand;
use larder::iam::Credentials;
use larder::s3::share::NewShare;

use super::{print_json, ServerArgs};

#[derive(Subcommand)]
pub enum ShareCommand {
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

/// The QR code of `text`, drawn with half blocks for a dark terminal.
/// Error correction L: a screen does not smudge, and the code stays small
/// (a short link on a LAN address is version 3 or 4, 29 or 33 modules).
pub fn qr_code(text: &str) -> String {
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
pub struct Links {
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

pub fn share_files(
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
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let done = std::sync::atomic::AtomicBool::new(false);
        let uploaded = std::thread::scope(|scope| {
            let bar = scope.spawn(|| progress_bar(file_name, length, &sent, &done));
            let uploaded = client.put_file(bucket, &key, path, sent.clone());
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
pub fn progress_bar(name: &str, total: u64, sent: &std::sync::atomic::AtomicU64, done: &std::sync::atomic::AtomicBool) {
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
pub fn parse_size(text: &str) -> Result<u64, String> {
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
pub fn share_upload(
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

pub fn share_command(command: ShareCommand) -> Result<(), String> {
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

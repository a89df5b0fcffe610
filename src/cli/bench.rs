//! `larder bench`: what this board sustains, measured in under a minute.
//! The processor (SigV4 checks and the hashes uploads go through), the
//! data folder's disk (fsync latency, sequential write and read), and a
//! real server on loopback in a scratch folder on that disk (presigned
//! PUTs and GETs, several clients at once, `durability = "full"`). Every
//! file it makes is removed at the end.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue};
use serde::Serialize;

use larder::config::Config;
use larder::iam::Credentials;
use larder::presign::{presign, PresignRequest};
use larder::sigv4::{self, Authentication, Scope, SigningKey};
use larder::timefmt;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Measure this folder's disk (a scratch folder is made in it and
    /// removed) [default: the configured data folder]
    #[arg(long, env = "LARDER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file, for the data folder
    #[arg(long, env = "LARDER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Seconds per measurement (the whole run takes about four of them,
    /// and the disk's time to write and read back what it wrote)
    #[arg(long, default_value_t = 2.0)]
    pub seconds: f64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report {
    version: &'static str,
    arch: &'static str,
    cpu: Cpu,
    disk: Disk,
    server: Server,
    /// Uploads of 1 MiB per second the board takes, end to end.
    uploads_1mib_per_sec: f64,
    /// What holds uploads back: "disk" or "cpu".
    limit: &'static str,
    summary: String,
}

#[derive(Serialize)]
struct Cpu {
    sigv4_presigned_verifications_per_sec: f64,
    md5_mb_per_sec: f64,
    sha256_mb_per_sec: f64,
    crc32c_mb_per_sec: f64,
    crc64nvme_mb_per_sec: f64,
}

#[derive(Serialize)]
struct Disk {
    folder: String,
    fsync_median_ms: f64,
    fsync_p99_ms: f64,
    write_mb_per_sec: f64,
    read_mb_per_sec: f64,
}

#[derive(Serialize)]
struct Server {
    clients: usize,
    put_4kib_per_sec: f64,
    get_4kib_per_sec: f64,
    put_1mib_mb_per_sec: f64,
    get_1mib_mb_per_sec: f64,
}

pub fn bench_command(args: BenchArgs) -> Result<(), String> {
    let (config, _) = Config::discover(args.config.as_deref())?;
    let folder = args.data_dir.clone().unwrap_or(config.data_dir);
    let span = Duration::from_secs_f64(args.seconds.clamp(0.2, 60.0));
    std::fs::create_dir_all(&folder).map_err(|error| format!("{}: {error}", folder.display()))?;
    let scratch = Scratch::new(&folder)?;
    let progress = |what: &str| {
        if !args.json {
            eprintln!("larder bench: {what}...");
        }
    };

    progress("processor");
    let cpu = measure_cpu(span);
    progress("disk");
    let disk = measure_disk(&scratch.path, span).map_err(|error| format!("{}: {error}", scratch.path.display()))?;
    progress("server on loopback");
    let server = measure_server(&scratch.path.join("server"), span)?;

    let uploads = server.put_1mib_mb_per_sec / MIB_MB;
    // Uploads write each byte once and hash it with MD5 (the ETag): the
    // slower of the two is the bound the server meets.
    let limit = if disk.write_mb_per_sec <= cpu.md5_mb_per_sec { "disk" } else { "cpu" };
    let summary = format!(
        "this board can take about {} uploads of 1 MiB per second ({:.0} MB/s) and {:.0} small uploads per \
         second; the {}, not the {}, is the limit",
        round_figure(uploads),
        server.put_1mib_mb_per_sec,
        server.put_4kib_per_sec,
        if limit == "disk" { "disk" } else { "processor" },
        if limit == "disk" { "processor" } else { "disk" },
    );
    let report = Report {
        version: env!("CARGO_PKG_VERSION"),
        arch: std::env::consts::ARCH,
        cpu,
        disk,
        server,
        uploads_1mib_per_sec: uploads,
        limit,
        summary,
    };
    if args.json {
        super::print_json(&report)?;
    } else {
        print_report(&report);
    }
    Ok(())
}

/// Megabytes (10^6) in a MiB: figures are MB/s, as disks are sold.
const MIB_MB: f64 = 1.048_576;

fn round_figure(value: f64) -> String {
    if value >= 10.0 {
        format!("{:.0}", value)
    } else {
        format!("{:.1}", value)
    }
}

fn print_report(report: &Report) {
    let cpu = &report.cpu;
    let disk = &report.disk;
    let server = &report.server;
    println!("larder {} on {}", report.version, report.arch);
    println!("processor");
    println!("  SigV4 presigned checks   {:>10.0} /s", cpu.sigv4_presigned_verifications_per_sec);
    println!("  MD5                      {:>10.0} MB/s", cpu.md5_mb_per_sec);
    println!("  SHA-256                  {:>10.0} MB/s", cpu.sha256_mb_per_sec);
    println!("  CRC32C                   {:>10.0} MB/s", cpu.crc32c_mb_per_sec);
    println!("  CRC64NVME                {:>10.0} MB/s", cpu.crc64nvme_mb_per_sec);
    println!("disk ({})", disk.folder);
    println!("  fsync                    {:>10.2} ms median, {:.2} ms p99", disk.fsync_median_ms, disk.fsync_p99_ms);
    println!("  sequential write         {:>10.0} MB/s", disk.write_mb_per_sec);
    println!("  sequential read          {:>10.0} MB/s", disk.read_mb_per_sec);
    println!("server on loopback ({} clients, presigned, full durability)", server.clients);
    println!("  PUT 4 KiB                {:>10.0} /s", server.put_4kib_per_sec);
    println!("  GET 4 KiB                {:>10.0} /s", server.get_4kib_per_sec);
    println!("  PUT 1 MiB                {:>10.0} MB/s", server.put_1mib_mb_per_sec);
    println!("  GET 1 MiB                {:>10.0} MB/s", server.get_1mib_mb_per_sec);
    println!("{}", report.summary);
}

/// A folder of the bench's own, removed whatever happens.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// A new scratch folder in `parent`, after removing any an interrupted
    /// bench left there (`bench-` and 12 hex digits: larder's names only).
    fn new(parent: &Path) -> Result<Scratch, String> {
        for entry in std::fs::read_dir(parent).map_err(|error| format!("{}: {error}", parent.display()))?.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let ours = name
                .strip_prefix("bench-")
                .is_some_and(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()));
            if ours && entry.path().is_dir() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let mut id = [0u8; 6];
        getrandom::getrandom(&mut id).map_err(|error| error.to_string())?;
        let path = parent.join(format!("bench-{}", hex::encode(id)));
        std::fs::create_dir(&path).map_err(|error| format!("{}: {error}", path.display()))?;
        Ok(Scratch { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Calls `work` until `span` has passed; its count per second. `work`
/// returns the units (bytes, operations) it did.
fn rate(span: Duration, mut work: impl FnMut() -> u64) -> f64 {
    let started = Instant::now();
    let mut done = 0u64;
    while started.elapsed() < span {
        done += work();
    }
    done as f64 / started.elapsed().as_secs_f64()
}

fn measure_cpu(span: Duration) -> Cpu {
    let slice = span / 4;
    let buffer: Vec<u8> = (0..1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let megabytes = |bytes_per_sec: f64| bytes_per_sec / 1e6;
    let hash_rate = |algorithm: larder::checksum::ChecksumAlgorithm| {
        megabytes(rate(slice, || {
            let mut hasher = larder::checksum::ChecksumHasher::new(algorithm);
            hasher.update(&buffer);
            std::hint::black_box(hasher.finish());
            buffer.len() as u64
        }))
    };
    Cpu {
        sigv4_presigned_verifications_per_sec: sigv4_rate(slice),
        md5_mb_per_sec: megabytes(rate(slice, || {
            std::hint::black_box(larder::checksum::Md5::digest(&buffer));
            buffer.len() as u64
        })),
        sha256_mb_per_sec: hash_rate(larder::checksum::ChecksumAlgorithm::Sha256),
        crc32c_mb_per_sec: hash_rate(larder::checksum::ChecksumAlgorithm::Crc32c),
        crc64nvme_mb_per_sec: hash_rate(larder::checksum::ChecksumAlgorithm::Crc64Nvme),
    }
}

/// What the server does for a presigned GET's signature: parse, check
/// scope and time, verify (the signing key cached, as the server caches it).
fn sigv4_rate(span: Duration) -> f64 {
    let now = timefmt::now();
    let scope = Scope { date: timefmt::format_scope_date(now), region: "us-east-1".into(), service: "s3".into() };
    let key = SigningKey::derive("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", &scope);
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("192.168.1.20:9000"));
    let path = b"/photos/2024/holiday/IMG_0042.jpg";
    let query = sigv4::presign_query(
        "GET",
        path,
        &[],
        &headers,
        "AKIAIOSFODNN7EXAMPLE",
        &key,
        &scope,
        &timefmt::format_amz_date(now),
        3600,
        None,
    );
    let Ok(query) = sigv4::parse_query(&query) else { return 0.0 };
    rate(span, || {
        let request = sigv4::Request { method: "GET", path, query: &query, headers: &headers };
        let verified = match sigv4::parse(&request) {
            Ok(Authentication::V4(auth)) => {
                auth.check_scope("us-east-1").is_ok()
                    && auth.check_time(now).is_ok()
                    && sigv4::verify(&auth, &request, &key).is_ok()
            }
            _ => false,
        };
        u64::from(verified)
    })
}

fn measure_disk(folder: &Path, span: Duration) -> std::io::Result<Disk> {
    use std::os::unix::fs::FileExt;
    // fsync latency: a 4 KiB write and fdatasync, as each small upload does.
    let file = std::fs::File::create(folder.join("fsync"))?;
    let block = vec![0x5au8; 4096];
    let mut latencies = Vec::new();
    let started = Instant::now();
    while started.elapsed() < span / 3 || latencies.len() < 5 {
        let one = Instant::now();
        file.write_all_at(&block, 4096 * (latencies.len() as u64 % 64))?;
        file.sync_data()?;
        latencies.push(one.elapsed().as_secs_f64() * 1000.0);
        if latencies.len() >= 10_000 {
            break;
        }
    }
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];

    // Sequential write in 1 MiB writes, as uploads go, made durable every
    // 16 MiB so that the page cache cannot hide a slow disk (and the time
    // limit holds on an SD card): at most 512 MiB.
    let path = folder.join("sequential");
    let chunk = vec![0xa5u8; 1024 * 1024];
    let mut file = std::fs::File::create(&path)?;
    let started = Instant::now();
    let mut written = 0u64;
    while (started.elapsed() < span / 3 || written < 8 * chunk.len() as u64) && written < 512 << 20 {
        file.write_all(&chunk)?;
        written += chunk.len() as u64;
        if written % (16 << 20) == 0 {
            file.sync_data()?;
        }
    }
    file.sync_all()?;
    let write_secs = started.elapsed().as_secs_f64();
    drop(file);

    // Sequential read, from the disk rather than the page cache.
    let file = std::fs::File::open(&path)?;
    drop_cached(&file, written);
    let mut reader = BufReader::with_capacity(1024 * 1024, file);
    let mut buffer = vec![0u8; 1024 * 1024];
    let started = Instant::now();
    let mut read = 0u64;
    loop {
        let got = reader.read(&mut buffer)?;
        if got == 0 {
            break;
        }
        read += got as u64;
    }
    let read_secs = started.elapsed().as_secs_f64();
    Ok(Disk {
        folder: folder.parent().unwrap_or(folder).display().to_string(),
        fsync_median_ms: percentile(0.5),
        fsync_p99_ms: percentile(0.99),
        write_mb_per_sec: written as f64 / 1e6 / write_secs,
        read_mb_per_sec: read as f64 / 1e6 / read_secs.max(1e-9),
    })
}

/// Asks the kernel to forget the file's cached pages (they are clean:
/// the file was synced), so that reading it measures the disk.
fn drop_cached(file: &std::fs::File, length: u64) {
    use std::os::fd::AsRawFd;
    let length = libc::off_t::try_from(length).unwrap_or(libc::off_t::MAX);
    // SAFETY: posix_fadvise only reads its integer arguments; the file
    // descriptor is open and owned by `file` for the whole call.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, length, libc::POSIX_FADV_DONTNEED);
    }
}

/// Clients at once against the server: a small board's share of work.
const CLIENTS: usize = 4;

fn measure_server(data_dir: &Path, span: Duration) -> Result<Server, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let root = Credentials::generate();
    let config = Config {
        listen: "127.0.0.1:0".parse().map_err(|_| "bad address")?,
        data_dir: data_dir.to_path_buf(),
        root_credentials: Some(root.clone()),
        public_url: Some("http://127.0.0.1".into()),
        ..Config::default()
    };
    let server = runtime.block_on(larder::server::start(config)).map_err(|error| error.to_string())?;
    let addr = server.local_addr();
    let client = BenchClient { addr, credentials: root, region: "us-east-1".into() };
    let measured = (|| -> Result<Server, String> {
        client.call("PUT", "/bench", None)?;
        let small = vec![0x42u8; 4096];
        let large = vec![0x17u8; 1024 * 1024];
        let slice = span / 2;
        // What the GETs read, written first whatever the PUTs manage.
        for n in 0..8 {
            client.call("PUT", &format!("/bench/read/small/{n}"), Some(&small))?;
        }
        for n in 0..4 {
            client.call("PUT", &format!("/bench/read/large/{n}"), Some(&large))?;
        }
        let put_small =
            client.load(slice, |worker, n| ("PUT", format!("small/{worker}/{n}"), Some(small.as_slice())))?;
        let get_small = client.load(slice, |_, n| ("GET", format!("read/small/{}", n % 8), None))?;
        let put_large =
            client.load(slice, |worker, n| ("PUT", format!("large/{worker}/{}", n % 16), Some(large.as_slice())))?;
        let get_large = client.load(slice, |_, n| ("GET", format!("read/large/{}", n % 4), None))?;
        Ok(Server {
            clients: CLIENTS,
            put_4kib_per_sec: put_small.0,
            get_4kib_per_sec: get_small.0,
            put_1mib_mb_per_sec: put_large.1 / 1e6,
            get_1mib_mb_per_sec: get_large.1 / 1e6,
        })
    })();
    runtime.block_on(server.shutdown());
    measured
}

/// Presigned requests over kept-alive connections, as an edge device's
/// client makes them.
struct BenchClient {
    addr: SocketAddr,
    credentials: Credentials,
    region: String,
}

type Step<'a> = (&'static str, String, Option<&'a [u8]>);

impl BenchClient {
    fn url(&self, method: &str, path: &str) -> Result<String, String> {
        let (bucket, key) = path.trim_start_matches('/').split_once('/').unwrap_or((path.trim_start_matches('/'), ""));
        let endpoint = format!("http://{}", self.addr);
        let request = PresignRequest {
            method,
            endpoint: &endpoint,
            bucket,
            key,
            region: &self.region,
            expires_secs: 3600,
            content_type: None,
            content_length: None,
        };
        let url = presign(&request, &self.credentials, timefmt::now())?;
        Ok(url[endpoint.len()..].to_string())
    }

    /// One request on a new connection; fails unless the answer is 2xx.
    fn call(&self, method: &str, path: &str, body: Option<&[u8]>) -> Result<(), String> {
        let mut connection = Connection::open(self.addr)?;
        connection.send(method, &self.url(method, path)?, body.unwrap_or_default()).map(drop)
    }

    /// `CLIENTS` threads, each on one connection, making the request
    /// `step(worker, n)` says until `span` has passed: requests and body
    /// bytes (sent or received) per second.
    fn load<'a>(&self, span: Duration, step: impl Fn(usize, u64) -> Step<'a> + Sync) -> Result<(f64, f64), String> {
        let requests = AtomicU64::new(0);
        let bytes = AtomicU64::new(0);
        let failed = AtomicBool::new(false);
        let error = std::sync::Mutex::new(None::<String>);
        let started = Instant::now();
        std::thread::scope(|scope| {
            for worker in 0..CLIENTS {
                let (requests, bytes, failed, error, step) = (&requests, &bytes, &failed, &error, &step);
                scope.spawn(move || {
                    let run = || -> Result<(), String> {
                        let mut connection = Connection::open(self.addr)?;
                        let mut n = 0u64;
                        while started.elapsed() < span && !failed.load(Ordering::Relaxed) {
                            let (method, key, body) = step(worker, n);
                            let url = self.url(method, &format!("/bench/{key}"))?;
                            let received = connection.send(method, &url, body.unwrap_or_default())?;
                            requests.fetch_add(1, Ordering::Relaxed);
                            bytes.fetch_add(received + body.map_or(0, |b| b.len() as u64), Ordering::Relaxed);
                            n += 1;
                        }
                        Ok(())
                    };
                    if let Err(message) = run() {
                        failed.store(true, Ordering::Relaxed);
                        error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(message);
                    }
                });
            }
        });
        if let Some(message) = error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(format!("the server bench failed: {message}"));
        }
        let secs = started.elapsed().as_secs_f64();
        Ok((requests.into_inner() as f64 / secs, bytes.into_inner() as f64 / secs))
    }
}

/// A kept-alive HTTP/1.1 connection to the bench's own server.
struct Connection {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Connection {
    fn open(addr: SocketAddr) -> Result<Connection, String> {
        let stream = TcpStream::connect(addr).map_err(|error| format!("{addr}: {error}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        Ok(Connection { addr, reader: BufReader::new(stream), writer })
    }

    /// Sends a request and reads its answer; the answer body's length.
    fn send(&mut self, method: &str, target: &str, body: &[u8]) -> Result<u64, String> {
        let head =
            format!("{method} {target} HTTP/1.1\r\nhost: {}\r\ncontent-length: {}\r\n\r\n", self.addr, body.len());
        self.writer.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
        self.writer.write_all(body).map_err(|e| e.to_string())?;
        let mut line = String::new();
        self.reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let status: u16 = line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or("no HTTP answer")?;
        let mut length = 0u64;
        loop {
            line.clear();
            self.reader.read_line(&mut line).map_err(|e| e.to_string())?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().map_err(|_| "a bad Content-Length")?;
                }
            }
        }
        // HEAD-less requests only: every answer here has a body of `length`.
        let copied =
            std::io::copy(&mut (&mut self.reader).take(length), &mut std::io::sink()).map_err(|e| e.to_string())?;
        if !(200..300).contains(&status) {
            return Err(format!("{method} answered {status}"));
        }
        Ok(copied)
    }
}

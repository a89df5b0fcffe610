//! The accept loop: connection limit, HTTP/1 with header timeouts and size
//! limits, graceful shutdown. Knows nothing of S3 beyond handing each
//! request to [`crate::edge::handle`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use crate::clock::{Clock, ClockState};
use crate::config::Config;
use crate::iam::{self, Credentials, KeyRecord, Keyring, RootKeySource};
use crate::s3::{Pace, S3Config, S3};
use crate::store::{Store, StoreConfig};

mod limits;
pub mod tls;

/// hyper's read buffer: request heads up to this size reach the S3 layer,
/// which answers anything over 16 KiB with S3's error document.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// Refused connections being answered at once; past this, more are
/// closed without an answer.
const MAX_REFUSALS_IN_FLIGHT: usize = 256;
/// Time a refused connection gets to take its answer.
const REFUSAL_TIME: Duration = Duration::from_secs(1);
/// How long open requests may run on after a shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A server that is listening. Dropping it does not stop it: call
/// [`RunningServer::shutdown`].
pub struct RunningServer {
    addr: SocketAddr,
    /// Where HTTPS listens beside HTTP (`listen_tls`).
    tls_addr: Option<SocketAddr>,
    certificates: Option<Arc<tls::Certificates>>,
    public_url: String,
    root: Credentials,
    root_source: RootKeySource,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where HTTPS listens, when it listens beside plain HTTP.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The certificate served over HTTPS, when there is one.
    pub fn certificates(&self) -> Option<&tls::Certificates> {
        self.certificates.as_deref()
    }

    /// The base of every link the server makes.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    pub fn root_credentials(&self) -> &Credentials {
        &self.root
    }

    pub fn root_key_source(&self) -> RootKeySource {
        self.root_source
    }

    /// Stops accepting, lets open requests finish (up to a grace period),
    /// then flushes the store and marks the stop clean.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Runs until `signal` completes, then shuts down.
    pub async fn run_until(self, signal: impl std::future::Future<Output = ()>) {
        signal.await;
        tracing::info!("shutting down");
        self.shutdown().await;
    }
}

/// The socket systemd opened for `listen`, else `listen` bound now.
async fn bind(inherited: Option<std::net::TcpListener>, listen: SocketAddr) -> Result<TcpListener, StartError> {
    match inherited {
        Some(socket) => {
            TcpListener::from_std(socket).map_err(|error| StartError(format!("socket activation: {error}")))
        }
        None => {
            TcpListener::bind(listen).await.map_err(|error| StartError(format!("cannot listen on {listen}: {error}")))
        }
    }
}

#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// Opens the store, binds the listener and starts serving.
pub async fn start(config: Config) -> Result<RunningServer, StartError> {
    let configured_url = match &config.public_url {
        Some(url) => Some(crate::config::check_public_url(url).map_err(StartError)?),
        None => None,
    };
    let store_config = StoreConfig {
        data_dir: config.data_dir.clone(),
        durability: config.durability.into(),
        index_cache_bytes: config.index_cache_mib * 1024 * 1024,
        group_access: config.group_access,
    };
    let store = tokio::task::spawn_blocking(move || Store::open(&store_config))
        .await
        .map_err(|error| StartError(error.to_string()))?
        .map_err(|error| StartError(error.to_string()))?;
    let (root, root_source) =
        iam::load_or_create_root_key(&config.data_dir, config.root_credentials.clone(), config.group_access)
            .map_err(|error| StartError(format!("root key: {error}")))?;
    // Under socket activation systemd has opened the ports: the first
    // socket serves `listen`, a second `listen_tls`.
    let mut inherited = crate::systemd::inherited_listeners().map_err(StartError)?.into_iter();
    let listener = bind(inherited.next(), config.listen).await?;
    let addr = listener.local_addr().map_err(|error| StartError(error.to_string()))?;
    let tls_listener = match config.listen_tls {
        Some(listen) if config.tls.is_some() || config.tls_cert.is_some() => {
            Some(bind(inherited.next(), listen).await?)
        }
        _ => None,
    };
    let tls_addr = match &tls_listener {
        Some(listener) => Some(listener.local_addr().map_err(|error| StartError(error.to_string()))?),
        None => None,
    };
    let https = config.tls.is_some() || config.tls_cert.is_some();
    let public_addr = tls_addr.unwrap_or(addr);
    let public_url = configured_url.unwrap_or_else(|| crate::config::public_url_for(public_addr, https));
    let public_host =
        public_url.split("://").nth(1).and_then(|rest| rest.rsplit_once(':')).map(|(host, _)| host.to_string());
    let tls = tls::setup(&config, &tls::host_names(public_host.as_deref())).map_err(StartError)?;
    let certificates = tls.as_ref().map(|(_, certificates)| certificates.clone());
    // Without listen_tls, `listen` itself speaks HTTPS.
    let (plain, secure) = match (tls, tls_listener) {
        (Some((acceptor, _)), Some(tls_listener)) => (Some(listener), Some((tls_listener, acceptor))),
        (Some((acceptor, _)), None) => (None, Some((listener, acceptor))),
        (None, _) => (Some(listener), None),
    };
    let keys = load_keys(&store, &root).await?;
    let clock = Arc::new(match &config.time {
        Some(time) => Clock::with_source(&config.data_dir, time.0.clone()),
        None => Clock::open(&config.data_dir),
    });
    let s3 = Arc::new(S3::new(
        store.clone(),
        Arc::new(Keyring::new(root.clone(), keys)),
        S3Config {
            region: config.region.clone(),
            body_pace: Pace {
                idle: Duration::from_secs(config.body_idle_timeout_secs),
                bytes_per_sec: config.min_upload_bytes_per_sec,
                window: Duration::from_secs(config.min_upload_rate_window_secs.max(1)),
            },
            trusted_proxies: config.trusted_proxies.clone(),
            admin_from: config.admin_from.clone(),
            public_url: public_url.clone(),
            metrics_from: config.metrics_from.clone(),
            sigv2: config.sigv2,
            listen: addr,
            data_dir: config.data_dir.clone(),
            lifecycle_day_secs: i64::try_from(config.lifecycle_day_secs.max(1)).unwrap_or(86_400),
        },
        clock.clone(),
    ));
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(expire_uploads(store.clone(), config.multipart_expiry_secs, stopped.clone()));
    tokio::spawn(keep_clock_floor(clock.clone(), stopped.clone()));
    tokio::spawn(run_lifecycle_daily(s3.clone(), config.lifecycle_day_secs.max(1), stopped.clone()));
    if !store.is_durable() {
        tokio::spawn(collect_garbage(store.clone(), stopped.clone()));
    }
    tokio::spawn(heal_store(store.clone(), stopped.clone()));
    tokio::spawn(reload_on_hangup(certificates.clone(), stopped.clone()));
    let task = tokio::spawn(accept_loop(Listeners { plain, secure }, s3, store, config, stopped));
    tracing::info!(%addr, public_url, "larder is serving");
    Ok(RunningServer { addr, tls_addr, certificates, public_url, root, root_source, stop, task })
}

/// The access keys kept in the store; a document that does not read is
/// skipped with a warning rather than stopping the server.
/// Expired temporary credentials are dropped here.
async fn load_keys(store: &Store, root: &Credentials) -> Result<Vec<KeyRecord>, StartError> {
    let documents = store.load_keys().map_err(|error| StartError(error.to_string()))?;
    let now = crate::timefmt::now();
    let mut keys = Vec::new();
    for document in &documents {
        match serde_json::from_slice::<KeyRecord>(document) {
            Ok(key) if key.session_token.is_some() && key.is_expired(now) => {
                store.remove_key(&key.access_key).await.map_err(|error| StartError(error.to_string()))?;
            }
            Ok(key) if key.access_key == root.access_key => {
                tracing::warn!(access_key = key.access_key, "a stored key has the root key's id; skipped");
            }
            Ok(key) => keys.push(key),
            Err(error) => tracing::warn!(%error, "an access key record does not read; skipped"),
        }
    }
    Ok(keys)
}

/// Relaxed durability: replaced blobs go only after the index that
/// replaced them is flushed, a few seconds later.
async fn collect_garbage(store: Store, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
        if let Err(error) = store.collect_garbage().await {
            tracing::warn!(%error, "collecting replaced blobs failed");
        }
    }
}

/// SIGHUP (`systemctl reload`) reads the certificate files again (a
/// renewal); without TLS it does nothing, rather than stop the server.
async fn reload_on_hangup(certificates: Option<Arc<tls::Certificates>>, mut stopped: watch::Receiver<bool>) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else { return };
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            _ = hangups.recv() => {}
        }
        let Some(certificates) = certificates.clone() else { continue };
        let reloading = certificates.clone();
        match tokio::task::spawn_blocking(move || reloading.reload()).await {
            Ok(Ok(())) => tracing::info!(fingerprint = certificates.fingerprint(), "certificate read again"),
            Ok(Err(error)) => tracing::error!(%error, "the certificate did not read; the old one stays"),
            Err(_) => {}
        }
    }
}

/// Every few seconds: an index that failed to write (a full disk) is
/// opened again once there is room (see `Store::heal`).
async fn heal_store(store: Store, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            _ = tokio::time::sleep(Duration::from_secs(3)) => {}
        }
        if let Err(error) = store.heal().await {
            tracing::warn!(%error, "the index could not be opened again; trying again soon");
        }
    }
}

/// Saves the clock floor every minute, and once more at shutdown; says in
/// the log when the system clock starts or stops disagreeing with it.
async fn keep_clock_floor(clock: Arc<Clock>, mut stopped: watch::Receiver<bool>) {
    let mut last = clock.state();
    loop {
        let saving = clock.clone();
        let _ = tokio::task::spawn_blocking(move || saving.persist()).await;
        let state = clock.state();
        if std::mem::discriminant(&state) != std::mem::discriminant(&last) {
            if state == ClockState::Ok {
                tracing::info!("the system clock agrees with larder's again");
            } else {
                clock.log_state();
            }
            last = state;
        }
        tokio::select! {
            _ = stopped.changed() => break,
            _ = tokio::time::sleep(Duration::from_secs(60)) => {}
        }
    }
    let _ = tokio::task::spawn_blocking(move || clock.persist()).await;
}

/// Applies the buckets' lifecycle rules once a day (the first run a
/// minute after the start, or a day if that is shorter) until the server stops.
async fn run_lifecycle_daily(s3: Arc<S3>, day_secs: u64, mut stopped: watch::Receiver<bool>) {
    let mut wait = Duration::from_secs(day_secs.min(60));
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        tokio::select! {
            _ = stopped.changed() => return,
            _ = s3.run_lifecycle() => {}
        }
        wait = Duration::from_secs(day_secs);
    }
}

/// Aborts stale multipart uploads now and then until the server stops.
async fn expire_uploads(store: Store, max_age_secs: u64, mut stopped: watch::Receiver<bool>) {
    let period = Duration::from_secs((max_age_secs / 2).clamp(1, 3600));
    let max_age = i64::try_from(max_age_secs).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            _ = stopped.changed() => return,
            _ = tokio::time::sleep(period) => {}
        }
        match store.expire_uploads(max_age).await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "aborted stale multipart uploads"),
            Err(error) => tracing::warn!(%error, "expiring multipart uploads failed"),
        }
    }
}

/// Answers a connection the server has no room for with 503 SlowDown and
/// closes it, reading a little of its request first so that the close
/// does not reset the connection before the client reads the answer.
fn refuse(mut stream: tokio::net::TcpStream, refusals: &Arc<Semaphore>) {
    let Ok(permit) = refusals.clone().try_acquire_owned() else { return };
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let answer = async {
            stream.write_all(&crate::s3::slow_down_answer()).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            let mut read = 0;
            while read < 64 * 1024 {
                match stream.read(&mut sink).await? {
                    0 => break,
                    n => read += n,
                }
            }
            Ok::<(), std::io::Error>(())
        };
        let _ = tokio::time::timeout(REFUSAL_TIME, answer).await;
        drop(permit);
    });
}

/// What the server accepts connections on: plain HTTP, HTTPS, or both.
struct Listeners {
    plain: Option<TcpListener>,
    secure: Option<(TcpListener, tokio_rustls::TlsAcceptor)>,
}

impl Listeners {
    /// The next connection on either, and the TLS acceptor if it came on
    /// the HTTPS one.
    async fn accept(&self) -> std::io::Result<(tokio::net::TcpStream, SocketAddr, Option<tokio_rustls::TlsAcceptor>)> {
        let plain = async {
            match &self.plain {
                Some(listener) => listener.accept().await,
                None => std::future::pending().await,
            }
        };
        let secure = async {
            match &self.secure {
                Some((listener, _)) => listener.accept().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            accepted = plain => accepted.map(|(stream, peer)| (stream, peer, None)),
            accepted = secure => {
                let acceptor = self.secure.as_ref().map(|(_, acceptor)| acceptor.clone());
                accepted.map(|(stream, peer)| (stream, peer, acceptor))
            }
        }
    }
}

/// A connection's byte stream, plain or TLS.
trait Connection: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Connection for T {}

async fn accept_loop(
    listeners: Listeners,
    s3: Arc<S3>,
    store: Store,
    config: Config,
    mut stopped: watch::Receiver<bool>,
) {
    let connections = Arc::new(Semaphore::new(config.max_connections));
    let client_slots = limits::ClientSlots::new(config.max_connections_per_client);
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let graceful = GracefulShutdown::new();
    // Held by every connection task until its service (and the store in
    // it) is gone, so that a stop returns with the data folder released.
    let alive = Arc::new(());
    let header_timeout = Duration::from_secs(config.header_timeout_secs);
    let write_stall_limit = Duration::from_secs(config.body_idle_timeout_secs);
    loop {
        let (stream, peer, tls) = tokio::select! {
            _ = stopped.changed() => break,
            accepted = listeners.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // Permits are taken after accept, so that a full server answers at
        // once instead of leaving new connections in the kernel's queue.
        // A trusted proxy speaks for many clients: it has no share of its own.
        let proxy = config.trusted_proxies.iter().any(|cidr| cidr.contains(peer.ip()));
        let slot = if proxy { None } else { client_slots.take(peer.ip()) };
        let permit = connections.clone().try_acquire_owned().ok();
        let (Some(permit), true) = (permit, proxy || slot.is_some()) else {
            tracing::debug!(%peer, "too many connections; refused");
            crate::metrics::global().refused_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            refuse(stream, &refusals);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let s3 = s3.clone();
        let secure = tls.is_some();
        let service = service_fn(move |request| {
            let s3 = s3.clone();
            async move { Ok::<_, Infallible>(crate::edge::handle(&s3, request, peer, secure).await) }
        });
        let io = limits::WriteStallLimit::new(stream, write_stall_limit);
        let builder = {
            let mut builder = http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).max_buf_size(READ_BUFFER_BYTES);
            builder
        };
        let watcher = graceful.watcher();
        let alive = alive.clone();
        tokio::spawn(async move {
            // The handshake, like a request head, has `header_timeout`.
            let io: Box<dyn Connection> = match tls {
                None => Box::new(io),
                Some(acceptor) => match tokio::time::timeout(header_timeout, acceptor.accept(io)).await {
                    Ok(Ok(tls)) => Box::new(tls),
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                },
            };
            let connection = watcher.watch(builder.serve_connection(TokioIo::new(io), service));
            let open = &crate::metrics::global().open_connections;
            open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            drop((permit, slot, alive));
        });
    }
    drop(listeners);
    let quiet = tokio::time::timeout(SHUTDOWN_GRACE, async {
        graceful.shutdown().await;
        while Arc::strong_count(&alive) > 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .is_ok();
    if !quiet {
        tracing::warn!("requests still open after the grace period; stopping anyway (the next start checks the blobs)");
    }
    match tokio::task::spawn_blocking(move || store.close(quiet)).await {
        Ok(Ok(())) => tracing::info!("store closed cleanly"),
        Ok(Err(error)) => tracing::error!(%error, "closing the store failed"),
        Err(error) => tracing::error!(%error, "closing the store failed"),
    }
}

//! `larder serve` (and bare `larder`): the server, until SIGTERM or
//! Ctrl-C; and `larder repair`, which reads the same settings.

use std::io::IsTerminal;
use std::path::PathBuf;

use larder::config::Config;
use larder::iam::{Credentials, RootKeySource};

#[derive(clap::Args, Default)]
pub struct ServeArgs {
    /// TOML configuration file; flags and environment override it
    /// [default: ./larder.toml, else /etc/larder/larder.toml, if there]
    #[arg(long, env = "LARDER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data folder [default: ./larder-data]
    #[arg(long, env = "LARDER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on [default: 0.0.0.0:9000]
    #[arg(long, env = "LARDER_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// Region clients must sign for [default: us-east-1]
    #[arg(long, env = "LARDER_REGION")]
    pub region: Option<String>,
    /// The base of every link larder makes, e.g. http://192.168.1.20:9000
    /// [default: this host's address on its default route]
    #[arg(long, env = "LARDER_PUBLIC_URL")]
    pub public_url: Option<String>,
}

pub fn config_from(args: ServeArgs) -> Result<Config, String> {
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

/// Completes at SIGTERM or Ctrl-C. The handlers are in place once this
/// returns, before anyone is told the server is up: a stop that comes at
/// once is still a clean stop.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler works");
    let mut interrupt = signal(SignalKind::interrupt()).expect("installing a SIGINT handler works");
    async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
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

pub async fn serve(args: ServeArgs) -> Result<(), String> {
    let config = config_from(args)?;
    let data_dir = config.data_dir.clone();
    let notifier = larder::systemd::Notifier::from_env().map(std::sync::Arc::new);
    // Starting can take minutes (a new index is rebuilt from the blobs
    // before the port opens): while larder runs, systemd is asked for 30 s
    // more every 10 s, so that its start timeout does not kill a slow
    // start on an SD card.
    let starting = notifier.clone().map(|notifier| {
        let extend = "EXTEND_TIMEOUT_USEC=30000000\nSTATUS=starting: opening the index and checking the data folder";
        notifier.send(extend);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                notifier.send(extend);
            }
        })
    });
    let started = larder::server::start(config).await;
    if let Some(task) = starting {
        task.abort();
    }
    let server = started.map_err(|error| error.to_string())?;
    let stop = shutdown_signal();
    let addr = server.local_addr();
    let key_file = data_dir.join(larder::iam::ROOT_KEY_FILE);
    // The secret is shown only to a person at a terminal: anywhere else
    // (systemd's journal, a log file) stdout is a log, and logs are read
    // by more people than the root key should be.
    if server.root_key_source() == RootKeySource::Created && !std::io::stdout().is_terminal() {
        say!(
            "larder: created the root key {}; its secret is only in {} (readable by its owner only, or with group_access its group)",
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
    // systemd (Type=notify) starts what depends on larder only now.
    if let Some(notifier) = &notifier {
        notifier.send(&format!("READY=1\nSTATUS=serving on {addr}"));
        if let Some(interval) = larder::systemd::watchdog_interval() {
            // Runs on the server's runtime: if that stalls, so does this.
            let notifier = notifier.clone();
            tokio::spawn(async move {
                loop {
                    notifier.send("WATCHDOG=1");
                    tokio::time::sleep(interval).await;
                }
            });
        }
    }
    server
        .run_until(async {
            stop.await;
            if let Some(notifier) = &notifier {
                notifier.send("STOPPING=1\nSTATUS=finishing open requests");
            }
        })
        .await;
    Ok(())
}

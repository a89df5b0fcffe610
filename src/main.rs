//! The `larder` command: parses the command line and calls the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use larder::config::Config;
use larder::iam::{Credentials, RootKeySource};

#[derive(Parser)]
#[command(name = "larder", version, about = "A small S3-compatible object store for single-board computers")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve(ServeArgs),
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// TOML configuration file; flags and environment override it.
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
}

fn config_from(args: ServeArgs) -> Result<Config, String> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if let Some(data_dir) = args.data_dir {
        config.data_dir = data_dir;
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(region) = args.region {
        config.region = region;
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

async fn serve(args: ServeArgs) -> Result<(), String> {
    let config = config_from(args)?;
    let data_dir = config.data_dir.clone();
    let server = larder::server::start(config).await.map_err(|error| error.to_string())?;
    let addr = server.local_addr();
    if server.root_key_source() == RootKeySource::Created {
        let root = server.root_credentials();
        let port = addr.port();
        println!(
            "larder: created the root key; it is shown only now and kept in {}\n\
             \n    access key: {}\n    secret key: {}\n\
             \ntry it with the AWS CLI:\n\
             \n    AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} \\\n      aws --endpoint-url http://127.0.0.1:{port} s3 ls\n",
            data_dir.join(larder::iam::ROOT_KEY_FILE).display(),
            root.access_key,
            root.secret_key,
            root.access_key,
            root.secret_key,
        );
    }
    // Scripts and tests wait for this line.
    println!("larder listening on {addr}");
    server.run_until(shutdown_signal()).await;
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
    let command = cli.command.unwrap_or(Command::Serve(ServeArgs::default()));
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    let result = match command {
        Command::Serve(args) => runtime.block_on(serve(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("larder: {message}");
            ExitCode::FAILURE
        }
    }
}

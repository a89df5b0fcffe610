//! The `larder` command: parses the command line and calls the library.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use cli::key::{key_command, KeyCommand};
use cli::presign::presign_command;
use cli::serve::{config_from, serve, ServeArgs};
use cli::share::{share_command, share_files, share_upload, ShareCommand};
use cli::status::status_command;
use cli::ServerArgs;

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

fn main() -> ExitCode {
    init_logging();
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

/// Logs go to stderr. Colours only for a person at a terminal; under
/// systemd (`JOURNAL_STREAM`) no timestamps either, as the journal adds
/// its own.
fn init_logging() {
    use std::io::IsTerminal;
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logger = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !journal);
    if journal {
        logger.without_time().init();
    } else {
        logger.init();
    }
}

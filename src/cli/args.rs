//! The command line itself: every command, flag and its help, as clap
//! reads them. `main.rs` dispatches; the manual page and shell
//! completions are generated from these too (`examples/man_and_completions.rs`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use super::bench::BenchArgs;
use super::key::KeyCommand;
use super::serve::ServeArgs;
use super::share::ShareCommand;
use super::ServerArgs;

#[derive(Parser)]
#[command(name = "larder", version, about = "A small S3-compatible object store for single-board computers")]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Without a command, larder serves: `larder` is `larder serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Lifecycle rules on a running server.
    Lifecycle {
        #[command(subcommand)]
        command: LifecycleCommand,
    },
    /// Measure what this board sustains: processor, the data folder's disk,
    /// and a server on loopback (about ten seconds; files removed after).
    Bench(BenchArgs),
    /// Manage access keys on a running server (uses the root key).
    Key {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Subcommand)]
pub enum LifecycleCommand {
    /// Apply every bucket's lifecycle rules now (the server does it once a
    /// day) and print what was done.
    Run {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
}

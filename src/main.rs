//! The `larder` command: parses the command line and calls the library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::args::{Cli, Command, LifecycleCommand};
use cli::bench::bench_command;
use cli::key::key_command;
use cli::lifecycle::lifecycle_run_command;
use cli::presign::presign_command;
use cli::serve::{config_from, serve};
use cli::share::{share_command, share_files, share_upload};
use cli::status::status_command;

/// The static (musl) builds map large blocks themselves (see
/// [`larder::allocator`]); glibc's builds keep glibc's allocator.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: larder::allocator::LargeBlocksMapped = larder::allocator::LargeBlocksMapped;

fn main() -> ExitCode {
    limit_malloc_arenas();
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
        Command::Bench(args) => bench_command(args),
        Command::Status { json, server } => status_command(json, server),
        Command::Lifecycle { command: LifecycleCommand::Run { json, server } } => lifecycle_run_command(json, server),
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
    // RUST_LOG as `LEVEL` or `TARGET=LEVEL,...`; anything else: info.
    let filter: tracing_subscriber::filter::Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| tracing_subscriber::filter::Targets::new().with_default(tracing::Level::INFO));
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let format = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !journal);
    if journal {
        tracing_subscriber::registry().with(format.without_time()).with(filter).init();
    } else {
        tracing_subscriber::registry().with(format).with(filter).init();
    }
}

/// glibc gives threads that allocate at once heaps of their own (arenas),
/// up to eight per core, and keeps what each grew to: with the blocking
/// pool's threads that nearly doubled the server's peak resident memory
/// under load (`scripts/bench-load.sh`). Two are enough for a board's few
/// cores. `MALLOC_ARENA_MAX` in the environment still decides. (musl, on
/// the aarch64 build, has a single heap.)
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter, which glibc
        // takes under its own lock; it runs before any other thread
        // exists, and M_ARENA_MAX accepts any positive count.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

//! Writes larder's manual pages and shell completions, generated from the
//! command line's own definition (`src/cli/args.rs`), so they never
//! drift from `larder --help`. The release script runs it:
//!
//!     cargo run --example man_and_completions -- OUT_DIR
//!
//! OUT_DIR gets `man/larder.1` (and `larder-<command>.1` for each
//! command) and `completions/{larder.bash,_larder,larder.fish}`.

#[allow(dead_code)]
#[path = "../src/cli/mod.rs"]
mod cli;

use clap::CommandFactory;

fn main() -> std::io::Result<()> {
    let out = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: man_and_completions OUT_DIR"));
    let mut command = cli::args::Cli::command();
    command.build();

    let man = out.join("man");
    std::fs::create_dir_all(&man)?;
    write_pages(&command, &man)?;

    let completions = out.join("completions");
    std::fs::create_dir_all(&completions)?;
    for shell in [clap_complete::Shell::Bash, clap_complete::Shell::Zsh, clap_complete::Shell::Fish] {
        clap_complete::generate_to(shell, &mut command, "larder", &completions)?;
    }
    Ok(())
}

/// A page for `command` and one for each of its commands (not clap's
/// `help`), named as `man larder-share` finds them (clap names built
/// commands `larder-share`, `larder-key-list`, ...).
fn write_pages(command: &clap::Command, dir: &std::path::Path) -> std::io::Result<()> {
    let name = command.get_display_name().unwrap_or_else(|| command.get_name());
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    std::fs::write(dir.join(format!("{name}.1")), page)?;
    for sub in command.get_subcommands().filter(|sub| sub.get_name() != "help") {
        write_pages(sub, dir)?;
    }
    Ok(())
}

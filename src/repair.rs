//! `larder repair [--check] [--dry-run]`: rebuild the index from the data
//! folder, or compare the two (see `store/repair.rs`).

use crate::config::Config;
use crate::store::repair;
use crate::store::StoreConfig;

/// What the user asked of `larder repair`.
pub enum Mode {
    Rebuild,
    /// Report differences; change nothing; fail if there are any.
    Check,
    /// Say what a rebuild would do; change nothing.
    DryRun,
}

pub fn run(config: &Config, mode: Mode) -> Result<(), String> {
    let store = StoreConfig {
        data_dir: config.data_dir.clone(),
        durability: config.durability.into(),
        index_cache_bytes: config.index_cache_mib * 1024 * 1024,
        group_access: config.group_access,
    };
    let dir = store.data_dir.display().to_string();
    match mode {
        Mode::Check | Mode::DryRun => {
            let report = repair::check(&store.data_dir, store.index_cache_bytes).map_err(|error| error.to_string())?;
            for line in &report.differences {
                println!("{line}");
            }
            println!(
                "{dir}: {} objects in the index, {} blobs, {} differences",
                report.objects,
                report.blobs,
                report.differences.len()
            );
            if let Mode::DryRun = mode {
                println!(
                    "a repair would move {dir}/index aside and rebuild it from the blobs, bucket markers and config files"
                );
                return Ok(());
            }
            if report.differences.is_empty() {
                Ok(())
            } else {
                Err("the index and the data folder differ; `larder repair` rebuilds the index".into())
            }
        }
        Mode::Rebuild => {
            let moved = repair::rebuild(&store).map_err(|error| error.to_string())?;
            if let Some(moved) = moved {
                println!("the old index is kept in {}", moved.display());
            }
            let report = repair::check(&store.data_dir, store.index_cache_bytes).map_err(|error| error.to_string())?;
            println!("{dir}: index rebuilt: {} objects from {} blobs", report.objects, report.blobs);
            for line in &report.differences {
                println!("still differs: {line}");
            }
            Ok(())
        }
    }
}

//! `larder repair`: the index rebuilt from the data folder alone, and
//! `--check`, which compares the two without changing anything.
//!
//! Everything the index holds is also on disk outside it: objects in their
//! blobs' footers (multipart objects in their manifests), buckets as
//! marker files, keys and bucket configuration under `config/`. A rebuild
//! moves `index/` aside (to `index.broken-<time>`) and opens the store
//! with a new one: the startup sweep puts back every bucket, object and
//! document, and sets aside what it cannot place.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use super::blob::{self, Layout};
use super::index::{Index, SledIndex};
use super::record::{BlobId, Footer};
use super::{Store, StoreConfig, StoreError};

/// What `--check` found: one line per difference.
#[derive(Debug, Default)]
pub struct Check {
    pub objects: u64,
    pub blobs: u64,
    pub differences: Vec<String>,
}

/// Compares the index with the data folder; changes nothing. Fails if a
/// server holds the folder.
pub fn check(data_dir: &Path, cache_bytes: u64) -> Result<Check, StoreError> {
    let layout = Layout::new(data_dir);
    let _lock = Store::lock(&layout)?;
    let mut report = Check::default();
    if !layout.index_dir().join("db").exists() {
        report.differences.push("there is no index".to_string());
        return Ok(report);
    }
    let index = match SledIndex::open(&layout.index_dir(), cache_bytes) {
        Ok(index) => index,
        Err(error) => {
            report.differences.push(format!("the index does not open: {error}"));
            return Ok(report);
        }
    };
    // Buckets: marker files against the index.
    let markers: BTreeSet<String> = fs::read_dir(layout.buckets_dir())?
        .filter_map(|entry| entry.ok()?.file_name().to_str().map(str::to_string))
        .collect();
    let buckets: BTreeSet<String> = index.buckets()?.into_iter().map(|(name, _)| name).collect();
    for name in markers.difference(&buckets) {
        report.differences.push(format!("bucket {name}: a marker file, but not in the index"));
    }
    for name in buckets.difference(&markers) {
        report.differences.push(format!("bucket {name}: in the index, but no marker file"));
    }
    // Objects (every version and delete marker): every blob an index
    // record names must be there.
    let mut referenced = std::collections::HashSet::new();
    for bucket in &buckets {
        let mut after: Option<(Vec<u8>, Option<u64>)> = None;
        loop {
            let page =
                index.list_versions(bucket, "", after.as_ref().map(|(key, seq)| (key.as_slice(), *seq)), 1000)?;
            for (key, record, _) in &page {
                report.objects += 1;
                for blob in record.blobs() {
                    if !layout.blob_path(blob).exists() {
                        report.differences.push(format!("{bucket}/{key}: blob {} is missing", blob.to_hex()));
                    }
                    referenced.insert(blob);
                }
            }
            match page.last() {
                Some((key, record, _)) if page.len() == 1000 => {
                    after = Some((key.as_bytes().to_vec(), Some(record.sequence)));
                }
                _ => break,
            }
        }
    }
    // Blobs: every object blob must be what the index names.
    let (paths, unreadable) = super::recovery::blob_paths(&layout.blobs_dir());
    if unreadable > 0 {
        report.differences.push(format!("{unreadable} blob folder(s) or entries do not read"));
    }
    for path in paths {
        let Some(id) = path.file_name().and_then(|name| name.to_str()).and_then(BlobId::from_hex) else { continue };
        report.blobs += 1;
        match blob::read_footer(&path) {
            Ok(Some(Footer::Object { bucket, key, .. })) if !referenced.contains(&id) => {
                report.differences.push(format!("blob {}: {bucket}/{key}, not in the index", id.to_hex()));
            }
            Ok(Some(_)) => {}
            Ok(None) => report.differences.push(format!("blob {}: its footer does not read", id.to_hex())),
            Err(error) => report.differences.push(format!("blob {}: {error}", id.to_hex())),
        }
    }
    // Keys and bucket configuration: the files against the index.
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for path in config_files(&layout.root().join("config").join("keys")) {
        if let Ok(document) = fs::read(&path) {
            files.insert(format!("{document:?}"), document);
        }
    }
    let in_index: BTreeSet<String> = index.keys()?.iter().map(|document| format!("{document:?}")).collect();
    let on_disk: BTreeSet<String> = files.keys().cloned().collect();
    let missing_files = in_index.difference(&on_disk).count();
    let missing_keys = on_disk.difference(&in_index).count();
    if missing_files > 0 {
        report.differences.push(format!("{missing_files} key document(s) in the index have no (or an older) file"));
    }
    if missing_keys > 0 {
        report.differences.push(format!("{missing_keys} key file(s) are not (or differently) in the index"));
    }
    Ok(report)
}

/// Rebuilds the index from the data folder; the old one is kept beside it.
/// Returns where it was moved.
pub fn rebuild(config: &StoreConfig) -> Result<Option<std::path::PathBuf>, StoreError> {
    let layout = Layout::new(&config.data_dir);
    let moved = {
        let _lock = Store::lock(&layout)?;
        let index = layout.index_dir();
        if index.exists() {
            let aside = layout.root().join(format!("index.broken-{}", crate::timefmt::now()));
            fs::rename(&index, &aside)?;
            blob::fsync_dir(layout.root())?;
            Some(aside)
        } else {
            None
        }
    };
    // A new index: the startup sweep rebuilds it (see `recovery.rs`).
    let store = Store::open(config)?;
    store.close(true)?;
    Ok(moved)
}

fn config_files(dir: &Path) -> Vec<std::path::PathBuf> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_none_or(|extension| extension != "tmp"))
        .collect()
}

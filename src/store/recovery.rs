//! Startup repair: what a crash can leave behind, and how it goes.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use super::blob;
use super::index::Index;
use super::record::{BlobId, BucketRecord, Footer};
use super::{failpoint, fsync_dir_if, Store, StoreError, CLEAN_SHUTDOWN_MARKER};

/// The sweep after an unclean stop, which runs while the server serves.
///
/// Writes that put a blob into `blobs/` and then change the index hold the
/// gate for reading across both steps; the sweep judges each blob with the
/// gate held for writing, so it never sees a blob between its rename and
/// its index change. A key deleted while the sweep runs is remembered: an
/// older blob of that key the sweep finds later must not bring it back.
#[derive(Default)]
pub(super) struct Background {
    gate: RwLock<()>,
    state: Mutex<BackgroundState>,
    cancel: AtomicBool,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Default)]
struct BackgroundState {
    running: bool,
    /// Set when a sweep was started and did not reach its end.
    unfinished: bool,
    checked: u64,
    deleted: HashSet<(String, String)>,
    /// Versions deleted by id: (bucket, key, sequence).
    deleted_versions: HashSet<(String, String, u64)>,
}

/// Where the startup check of the blobs stands (for `/health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    Done,
    /// Checking blobs after an unclean stop; this many so far.
    Checking {
        blobs: u64,
    },
}

impl Background {
    /// Held by a write from its blob's rename to its index change.
    pub(super) fn gate(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|poison| poison.into_inner())
    }

    /// A key was deleted (call with the gate held).
    pub(super) fn note_deleted(&self, bucket: &str, key: &str) {
        let mut state = self.lock_state();
        if state.running {
            state.deleted.insert((bucket.to_string(), key.to_string()));
        }
    }

    /// One version was deleted by id (call with the gate held): only that
    /// version must not come back.
    pub(super) fn note_deleted_version(&self, bucket: &str, key: &str, sequence: u64) {
        let mut state = self.lock_state();
        if state.running {
            state.deleted_versions.insert((bucket.to_string(), key.to_string(), sequence));
        }
    }

    fn deleted_while_running(&self, bucket: &str, key: &str, sequence: u64) -> bool {
        let state = self.lock_state();
        let (bucket, key) = (bucket.to_string(), key.to_string());
        state.deleted.contains(&(bucket.clone(), key.clone()))
            || state.deleted_versions.contains(&(bucket, key, sequence))
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, BackgroundState> {
        self.state.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    pub(super) fn status(&self) -> Recovery {
        let state = self.lock_state();
        if state.running {
            Recovery::Checking { blobs: state.checked }
        } else {
            Recovery::Done
        }
    }

    /// Stops a sweep still running and waits for it. True when no sweep
    /// was left unfinished: only then may the stop be marked clean.
    pub(super) fn stop(&self) -> bool {
        self.cancel.store(true, Ordering::Relaxed);
        self.wait();
        !self.lock_state().unfinished
    }

    pub(super) fn wait(&self) {
        let thread = self.thread.lock().unwrap_or_else(|poison| poison.into_inner()).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Store {
    /// Empties `tmp/`, removes blobs on the garbage list and, after an
    /// unclean stop, sweeps unreferenced blobs: in the background, while
    /// the server serves, unless the index is new (then nothing is served
    /// before every blob has been put back).
    pub(super) fn recover(&self, new_index: bool) -> Result<(), StoreError> {
        let inner = &self.inner;
        let layout = &inner.layout;
        for entry in fs::read_dir(layout.tmp_dir())? {
            fs::remove_file(entry?.path())?;
        }
        inner.remove_garbage_now(inner.index.garbage()?);
        let marker = layout.root().join(CLEAN_SHUTDOWN_MARKER);
        let clean = marker.exists();
        if clean {
            fs::remove_file(&marker)?;
        }
        if new_index {
            self.restore_buckets()?;
            self.restore_config()?;
        } else {
            // After an unclean stop, undoes a change cut off between its
            // file and the index; after any stop, writes the files a data
            // folder from before they existed lacks. Keys are few.
            self.align_config_files()?;
        }
        fsync_dir_if(inner.durable(), layout.root())?;
        if new_index {
            self.sweep_and_report(true)?;
        } else if !clean {
            self.start_background_sweep()?;
        }
        Ok(())
    }

    /// Checks the blobs against the index on a thread of its own.
    pub(super) fn start_background_sweep(&self) -> Result<(), StoreError> {
        let background = &self.inner.background;
        // One at a time: a sweep under way finishes first.
        background.wait();
        background.cancel.store(false, Ordering::Relaxed);
        {
            let mut state = background.lock_state();
            state.running = true;
            state.unfinished = true;
        }
        let store = self.clone();
        let thread = std::thread::Builder::new().name("larder-sweep".into()).spawn(move || {
            let result = store.sweep_and_report(false);
            let mut state = store.inner.background.lock_state();
            state.running = false;
            state.deleted.clear();
            state.deleted_versions.clear();
            match result {
                Ok(true) => state.unfinished = false,
                Ok(false) => tracing::info!("the check of the blobs was interrupted; it runs again at the next start"),
                Err(error) => tracing::error!(%error, "the check of the blobs failed; it runs again at the next start"),
            }
        })?;
        *background.thread.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(thread);
        Ok(())
    }

    /// Where the check of the blobs after an unclean stop stands.
    pub fn recovery(&self) -> Recovery {
        self.inner.background.status()
    }

    /// Waits for the check of the blobs after an unclean stop to end.
    pub fn wait_for_recovery(&self) {
        self.inner.background.wait();
    }

    /// Sweeps, and logs what was found. False if stopped before the end.
    fn sweep_and_report(&self, new_index: bool) -> Result<bool, StoreError> {
        if new_index {
            tracing::info!("a new index: putting back every object from the blobs before serving");
        } else {
            tracing::info!("checking every blob against the index (the last stop was not clean), while serving");
        }
        let (sweep, finished) = self.sweep_unreferenced_blobs(new_index)?;
        if finished && (Sweep { max_sequence: 0, ..sweep }) != Sweep::default() {
            tracing::warn!(
                blobs = sweep.seen,
                rolled_forward = sweep.rolled_forward,
                removed = sweep.removed,
                lost_and_found = sweep.lost_and_found,
                unreadable = sweep.unreadable,
                "checked the blobs after an unclean stop"
            );
        }
        Ok(finished)
    }

    /// Is the blob `id`, whose footer says `footer`, still referred to?
    fn is_referenced(&self, id: BlobId, footer: &Footer) -> Result<bool, StoreError> {
        let index = &self.inner.index;
        match footer {
            Footer::Object { bucket, key, record } => {
                Ok(index.version(bucket, key, record.version)?.is_some_and(|(known, _)| known.blob == id))
            }
            Footer::Part { bucket, key, upload, number, .. } => {
                if index.part(*upload, *number)?.is_some_and(|part| part.blob == id) {
                    return Ok(true);
                }
                // A part of a completed upload: of the current object or an older version.
                let versions = index.object(bucket, key)?.into_iter().chain(index.noncurrent(bucket, key)?);
                Ok(versions.into_iter().any(|record| record.parts.iter().any(|part| part.blob == id)))
            }
        }
    }

    /// A blob nothing refers to, after an unclean stop: an upload that
    /// crashed between the rename into `blobs/` and the index update, or an
    /// index update the crash took back. Nothing is deleted on the index's
    /// word alone: a version (an object or a delete marker) is put back
    /// among its key's versions where its sequence places it, a part its
    /// upload still waits for is put back; an object of a bucket nobody
    /// knows is put aside. Only a null version older than the index's (or
    /// a multipart manifest, whose parts its upload still holds, or a part
    /// of an upload that is gone) is removed.
    fn settle_unreferenced(&self, id: BlobId, footer: Footer, new_index: bool) -> Result<Settled, StoreError> {
        let index = &self.inner.index;
        match footer {
            Footer::Object { bucket, key, mut record } if record.blob == id => {
                if self.inner.background.deleted_while_running(&bucket, &key, record.sequence) {
                    return Ok(Settled::Superseded);
                }
                // A lock changed after the blob was written is in its file.
                if let Ok(text) = fs::read_to_string(self.inner.layout.lock_file(id)) {
                    record.lock = super::record::ObjectLock::from_text(&text).unwrap_or(record.lock);
                }
                // A multipart manifest's parts belong to its upload until
                // the Complete commits; only a new index (where no upload
                // is left to hold them) takes it, if every part is there.
                let parts_all_there =
                    || record.parts.iter().all(|part| self.inner.layout.blob_path(part.blob).exists());
                let takes_manifest = new_index && parts_all_there();
                if !record.parts.is_empty() && !takes_manifest {
                    return Ok(if new_index { Settled::Orphan } else { Settled::Superseded });
                }
                if !self.restore_bucket(&bucket)? {
                    return Ok(Settled::Orphan);
                }
                let Some(replaced) = index.place_version(&bucket, &key, &record)? else {
                    return Ok(Settled::Superseded);
                };
                if let Some(replaced) = replaced {
                    // An older null version of the same key (rolled forward
                    // earlier in this sweep, say): garbage now.
                    self.inner.index.flush()?;
                    self.inner.remove_garbage_now(replaced.blobs());
                }
                tracing::info!(bucket, key, "an upload the index had lost was rolled forward");
                Ok(Settled::RolledForward)
            }
            Footer::Part { upload, number, record, .. } if record.blob == id => {
                if index.upload(upload)?.is_some() && index.part(upload, number)?.is_none() {
                    index.put_part(upload, number, &record)?;
                    return Ok(Settled::RolledForward);
                }
                // With a new index, an upload in progress is not known: its
                // parts are kept aside rather than judged.
                Ok(if new_index { Settled::Orphan } else { Settled::Superseded })
            }
            Footer::Object { .. } | Footer::Part { .. } => Ok(Settled::Superseded),
        }
    }

    /// With a new index: the key documents and bucket configuration kept as
    /// files (see `Layout::key_file`).
    fn restore_config(&self) -> Result<(), StoreError> {
        let index = &self.inner.index;
        let config = self.inner.layout.root().join("config");
        let Ok(kinds) = fs::read_dir(&config) else { return Ok(()) };
        let (mut keys, mut documents) = (0, 0);
        for kind in kinds {
            let kind = kind?;
            let Some(kind_name) = kind.file_name().to_str().map(str::to_string) else { continue };
            for entry in fs::read_dir(kind.path())? {
                let entry = entry?;
                let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
                if name.ends_with(".tmp") {
                    continue;
                }
                let document = fs::read(entry.path())?;
                if kind_name == "keys" {
                    let Some(access_key) = hex::decode(&name).ok().and_then(|bytes| String::from_utf8(bytes).ok())
                    else {
                        continue;
                    };
                    index.put_key(&access_key, &document)?;
                    keys += 1;
                } else if index.bucket(&name)?.is_some() {
                    index.set_bucket_config(&name, &kind_name, Some(&document))?;
                    documents += 1;
                }
            }
        }
        index.flush()?;
        tracing::info!(keys, documents, "keys and bucket configuration put back from their files");
        Ok(())
    }

    /// With the index intact: the index is right about keys and
    /// configuration (what it holds was acknowledged), so their files
    /// follow it. A change cut off between its file and the index is
    /// undone; it was never answered.
    fn align_config_files(&self) -> Result<(), StoreError> {
        let layout = &self.inner.layout;
        let durable = self.inner.durable();
        let mut wanted = std::collections::HashMap::new();
        for (access_key, document) in self.inner.index.named_keys()? {
            wanted.insert(layout.key_file(&access_key), document);
        }
        for (bucket, name, document) in self.inner.index.bucket_configs()? {
            wanted.insert(layout.bucket_config_file(&bucket, &name), document);
        }
        let config = layout.root().join("config");
        let kinds = fs::read_dir(&config).into_iter().flatten().flatten();
        for path in kinds.flat_map(|kind| fs::read_dir(kind.path()).into_iter().flatten().flatten()) {
            let path = path.path();
            if !wanted.contains_key(&path) {
                blob::remove_file_durably(&path, durable)?;
            }
        }
        for (path, document) in wanted {
            if fs::read(&path).ok().as_deref() != Some(document.as_slice()) {
                blob::write_file_atomically(&path, &document, durable)?;
            }
        }
        Ok(())
    }

    /// With a new index: every bucket whose marker file exists.
    fn restore_buckets(&self) -> Result<(), StoreError> {
        for entry in fs::read_dir(self.inner.layout.buckets_dir())? {
            if let Some(name) = entry?.file_name().to_str() {
                self.restore_bucket(name)?;
            }
        }
        Ok(())
    }

    /// Is `bucket` in the index, or (its marker file says it exists, and an
    /// index that lost it) put back?
    fn restore_bucket(&self, bucket: &str) -> Result<bool, StoreError> {
        let index = &self.inner.index;
        if index.bucket(bucket)?.is_some() {
            return Ok(true);
        }
        let path = self.inner.layout.bucket_marker(bucket);
        let Ok(marker) = fs::metadata(&path) else { return Ok(false) };
        let created = marker
            .modified()
            .ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |age| i64::try_from(age.as_secs()).unwrap_or(0));
        // The marker holds the versioning state.
        let record = BucketRecord::from_marker_text(created, &fs::read_to_string(&path).unwrap_or_default());
        index.create_bucket(bucket, created)?;
        if record != BucketRecord::new(created) {
            index.set_versioning(bucket, record.versioning, record.object_lock)?;
        }
        tracing::info!(bucket, "a bucket the index had lost was put back from its marker file");
        Ok(true)
    }

    /// Walks `blobs/` after an unclean stop (see [`Store::settle_unreferenced`]).
    /// A blob whose footer does not read goes to `lost+found/`; an entry
    /// that cannot be read is reported and skipped, never a reason not to
    /// start. Returns what it found, and false if it was stopped early.
    fn sweep_unreferenced_blobs(&self, new_index: bool) -> Result<(Sweep, bool), StoreError> {
        let background = &self.inner.background;
        let mut sweep = Sweep::default();
        // Objects first (multipart manifests among them), then parts: a
        // part is then known to belong to an object before it is judged.
        for parts in [false, true] {
            let (paths, unreadable) = blob_paths(&self.inner.layout.blobs_dir());
            sweep.unreadable += unreadable;
            for path in paths {
                if background.cancel.load(Ordering::Relaxed) {
                    self.inner.index.flush()?;
                    return Ok((sweep, false));
                }
                failpoint::pause("sweep-each-blob");
                if !parts {
                    sweep.seen += 1;
                    background.lock_state().checked = sweep.seen;
                    if sweep.seen % 10_000 == 0 {
                        tracing::info!(blobs = sweep.seen, "checking blobs");
                    }
                }
                self.judge(&path, parts, new_index, &mut sweep)?;
            }
        }
        // New writes must sort after every version the blobs hold.
        self.inner.index.raise_sequence(sweep.max_sequence)?;
        if sweep.rolled_forward > 0 || new_index {
            self.inner.index.flush()?;
        }
        Ok((sweep, true))
    }

    /// One blob of the sweep: left alone, rolled forward, removed or put
    /// aside.
    fn judge(&self, path: &Path, parts: bool, new_index: bool, sweep: &mut Sweep) -> Result<(), StoreError> {
        let Some(id) = path.file_name().and_then(|name| name.to_str()).and_then(BlobId::from_hex) else {
            return Ok(());
        };
        let lost_and_found = self.inner.layout.root().join(LOST_AND_FOUND);
        match blob::read_footer(path) {
            Ok(Some(footer)) => {
                if matches!(footer, Footer::Part { .. }) != parts {
                    return Ok(());
                }
                if let Footer::Object { record, .. } = &footer {
                    sweep.max_sequence = sweep.max_sequence.max(record.sequence);
                }
                // No write is between its blob's rename and its index
                // change while this blob is judged.
                let _gate = self.inner.background.gate.write().unwrap_or_else(|poison| poison.into_inner());
                if !path.exists() || self.is_referenced(id, &footer)? {
                    return Ok(());
                }
                match self.settle_unreferenced(id, footer, new_index)? {
                    Settled::RolledForward => sweep.rolled_forward += 1,
                    Settled::Superseded => match fs::remove_file(path) {
                        Ok(()) => sweep.removed += 1,
                        // Removed meanwhile, as garbage of a write since.
                        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                        Err(error) => return Err(error.into()),
                    },
                    Settled::Orphan => {
                        put_aside(path, &lost_and_found, "a blob nothing in the index accounts for")?;
                        sweep.lost_and_found += 1;
                    }
                }
            }
            // Gone since the folder was listed: garbage of a write since.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Ok(None) if !parts => {
                // Torn or damaged: kept for a person to look at.
                put_aside(path, &lost_and_found, "a blob's footer does not read")?;
                sweep.lost_and_found += 1;
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(blob = %path.display(), %error, "a blob does not read; skipped");
                sweep.unreadable += 1;
            }
        }
        Ok(())
    }
}

/// What became of an unreferenced blob.
enum Settled {
    RolledForward,
    /// The index holds something newer: the blob is garbage.
    Superseded,
    /// Nothing says where it belongs.
    Orphan,
}

/// Moves a blob to `lost+found/`, for a person to look at.
fn put_aside(path: &Path, lost_and_found: &Path, why: &str) -> Result<(), StoreError> {
    blob::create_dir_durably(lost_and_found, true)?;
    let target = lost_and_found.join(path.file_name().unwrap_or_default());
    fs::rename(path, &target)?;
    blob::fsync_dir(lost_and_found)?;
    tracing::warn!(blob = %path.display(), moved_to = %target.display(), "{why}; moved to lost+found");
    Ok(())
}

/// Where blobs whose footer does not read are put aside.
pub const LOST_AND_FOUND: &str = "lost+found";

/// What a sweep found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Sweep {
    seen: u64,
    rolled_forward: u64,
    removed: u64,
    lost_and_found: u64,
    unreadable: u64,
    /// The largest sequence in an object footer.
    max_sequence: u64,
}

/// Every file under `blobs/ab/cd/`, and how many folders or entries did
/// not read (each reported, then skipped).
pub(super) fn blob_paths(blobs: &Path) -> (Vec<PathBuf>, u64) {
    let mut unreadable = 0;
    let mut out = Vec::new();
    for first in entries(blobs, &mut unreadable, true) {
        for second in entries(&first, &mut unreadable, true) {
            out.extend(entries(&second, &mut unreadable, false));
        }
    }
    (out, unreadable)
}

/// The subfolders (`dirs`) or files of `dir`.
fn entries(dir: &Path, unreadable: &mut u64, dirs: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "a blob folder does not read; skipped");
            *unreadable += 1;
            return out;
        }
    };
    for entry in listing {
        match entry.and_then(|entry| Ok((entry.file_type()?, entry.path()))) {
            Ok((kind, path)) if kind.is_dir() == dirs => out.push(path),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "a blob folder entry does not read; skipped");
                *unreadable += 1;
            }
        }
    }
    out
}

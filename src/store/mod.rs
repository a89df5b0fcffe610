//! Objects on disk: the index (behind [`Index`]) and the blob files, and
//! the commit protocol that keeps them consistent (DESIGN.md, "Commit
//! protocol for a PUT"). Knows nothing of HTTP or XML.
//!
//! Every blocking call (file I/O, sled) runs on tokio's blocking pool. An
//! upload runs its whole commit (footer, fsync, rename, index update,
//! flush) in one blocking task, so a client that goes away mid-commit can
//! never leave it half done.

pub(crate) mod blob;
mod commit;
mod failpoint;
mod index;
mod multipart;
mod reader;
pub(crate) mod record;
mod recovery;
mod reopen;
pub mod repair;
mod upload;

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::checksum::{Checksum, ChecksumAlgorithm, DigestSet, Digests};
use crate::timefmt;

pub use blob::Layout;
pub use index::{Index, SledIndex};
pub use multipart::{CompletedPart, MAX_PART_NUMBER, MIN_PART_SIZE};
pub use reader::ObjectFile;
pub use record::{
    BlobId, BucketRecord, LockMode, ObjectLock, ObjectMeta, ObjectRecord, PartRecord, UploadRecord, VersionId,
    Versioning,
};
pub use recovery::Recovery;
use reopen::ReopeningIndex;
pub use upload::Upload;

const CLEAN_SHUTDOWN_MARKER: &str = "clean-shutdown";
/// Room set aside for the index on a full disk (see `reopen.rs`).
const INDEX_RESERVE: &str = "index-reserve";

#[derive(Debug)]
pub enum StoreError {
    NoSuchBucket,
    NoSuchKey,
    /// A version id that names nothing.
    NoSuchVersion,
    /// Object Lock keeps the version (a retention not yet over, or a legal
    /// hold): nobody may delete it.
    ObjectLocked,
    /// A bucket with Object Lock stays versioned; Object Lock needs
    /// versioning enabled.
    InvalidBucketState,
    /// The version asked for by id is a delete marker (S3's 405), or
    /// (`current`) the key's current version is one (404 with
    /// `x-amz-delete-marker`).
    DeleteMarker {
        record: Box<ObjectRecord>,
        current: bool,
    },
    BucketAlreadyOwnedByYou,
    BucketNotEmpty,
    /// A conditional write's condition did not hold.
    PreconditionFailed,
    NoSuchUpload,
    /// CompleteMultipartUpload named a part that is not there (or not with that ETag).
    InvalidPart,
    InvalidPartOrder,
    /// A part other than the last is below the minimum size.
    EntityTooSmall,
    /// A digest the client sent did not match the bytes.
    DigestMismatch(DigestKind),
    /// Another server holds the data folder.
    Locked(PathBuf),
    Io(io::Error),
    Index(String),
    /// The index failed to write and has not been opened again yet (see
    /// `reopen.rs`): writes are refused, reads go on.
    Degraded(String),
    /// The index took an upload's change but could not make it durable
    /// (see `Index::put_object_durably`): the upload's blob must stay.
    Unflushed(String),
    Corrupt(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestKind {
    /// `x-amz-content-sha256`.
    PayloadSha256,
    /// `Content-MD5`.
    Md5,
    Checksum(ChecksumAlgorithm),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Locked(path) => write!(
                f,
                "another larder server is using the data folder {} (its LOCK is held); stop it or choose another --data-dir",
                path.display()
            ),
            StoreError::Io(error) => write!(f, "I/O error: {error}"),
            StoreError::Index(error) => write!(f, "index error: {error}"),
            StoreError::Corrupt(what) => write!(f, "corrupt data: {what}"),
            StoreError::Degraded(why) => write!(f, "writes are refused for now: {why}"),
            other => write!(f, "{other:?}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<io::Error> for StoreError {
    fn from(error: io::Error) -> Self {
        StoreError::Io(error)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync file, directory and index before answering (the default).
    Full,
    /// Skip the fsyncs: faster and kinder to SD cards, but a power cut can
    /// lose the last few seconds of acknowledged writes (never both
    /// versions of an overwritten object).
    Relaxed,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub durability: Durability,
    pub index_cache_bytes: u64,
    /// The folder's group may enter it (to read the root key file, see
    /// `group_access` in the configuration); others never may.
    pub group_access: bool,
}

/// A conditional write: S3's `If-None-Match: *` and `If-Match` on PUT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WriteCondition {
    #[default]
    None,
    /// Only if no object has the key.
    Absent,
    /// Only if the current object has this ETag (unquoted).
    EtagMatches(String),
    /// Only if there is no object, or its ETag is none of these (unquoted).
    EtagIsNoneOf(Vec<String>),
}

impl WriteCondition {
    /// Checks the condition against the current record.
    pub fn check(&self, current: Option<&ObjectRecord>) -> Result<(), StoreError> {
        match (self, current) {
            (WriteCondition::None, _) => Ok(()),
            (WriteCondition::Absent, None) => Ok(()),
            (WriteCondition::Absent, Some(_)) => Err(StoreError::PreconditionFailed),
            (WriteCondition::EtagMatches(_), None) => Err(StoreError::NoSuchKey),
            (WriteCondition::EtagMatches(etag), Some(record)) if &record.etag == etag => Ok(()),
            (WriteCondition::EtagMatches(_), Some(_)) => Err(StoreError::PreconditionFailed),
            (WriteCondition::EtagIsNoneOf(etags), Some(record)) if etags.contains(&record.etag) => {
                Err(StoreError::PreconditionFailed)
            }
            (WriteCondition::EtagIsNoneOf(_), _) => Ok(()),
        }
    }
}

/// Asked, inside the transaction that would remove a version, whether it
/// may go (Object Lock's check).
pub type DeleteGuard = dyn Fn(&ObjectRecord) -> Result<(), StoreError> + Send + Sync;

/// Which version of a key a read or delete means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Selector {
    /// The current version.
    #[default]
    Current,
    /// One version; `None` is the null version.
    Version(Option<VersionId>),
}

/// What a delete did, as S3 reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Deleted {
    /// The version removed, or the delete marker added.
    pub version: Option<VersionId>,
    pub delete_marker: bool,
    /// Whether anything was versioned (S3 then names the version, even `null`).
    pub versioned: bool,
}

/// What a client said the bytes must hash to.
#[derive(Debug, Clone, Default)]
pub struct ExpectedDigests {
    pub md5: Option<[u8; 16]>,
    pub payload_sha256: Option<[u8; 32]>,
    pub checksum: Option<Checksum>,
}

impl ExpectedDigests {
    /// Step 3 of the commit protocol, and the request body's own check:
    /// every digest the client sent must match the bytes. The payload hash
    /// first: a body that is not the one signed is that, whatever else it
    /// also fails.
    pub fn check(&self, digests: &Digests) -> Result<(), StoreError> {
        if self.payload_sha256.is_some() && digests.sha256 != self.payload_sha256 {
            return Err(StoreError::DigestMismatch(DigestKind::PayloadSha256));
        }
        if self.md5.is_some_and(|md5| digests.md5 != md5) {
            return Err(StoreError::DigestMismatch(DigestKind::Md5));
        }
        if let Some(checksum) = &self.checksum {
            if digests.checksum.as_ref() != Some(checksum) {
                return Err(StoreError::DigestMismatch(DigestKind::Checksum(checksum.algorithm)));
            }
        }
        Ok(())
    }

    /// The digests the writer must compute to check these, plus `store`,
    /// a checksum to compute and keep even though no value was sent.
    pub fn digest_set(&self, store: Option<ChecksumAlgorithm>) -> DigestSet {
        DigestSet {
            sha256: self.payload_sha256.is_some(),
            checksum: self.checksum.as_ref().map(|c| c.algorithm).or(store),
        }
    }
}

struct Inner {
    layout: Layout,
    durability: Durability,
    index: reopen::ReopeningIndex,
    group_commit: commit::GroupCommit,
    /// Garbage blobs removed by whichever writer gets there first.
    garbage_removals: commit::GroupCommit<BlobId>,
    blob_names: blob::BlobNames,
    /// Blobs multipart reads hold.
    pins: reader::Pins,
    /// Serialises changes to key documents' files (see `update_key`).
    key_files: std::sync::Mutex<()>,
    /// Serialises Object Lock changes, from their file to the index.
    lock_files: std::sync::Mutex<()>,
    /// Serialises changes of buckets' versioning and Object Lock state.
    bucket_states: std::sync::Mutex<()>,
    /// Bytes promised to uploads in flight.
    reserved: std::sync::Mutex<u64>,
    /// The startup sweep, while it runs.
    background: recovery::Background,
    _lock: File,
}

/// The object store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|error| Err(StoreError::Io(io::Error::other(error))))
}

impl Inner {
    /// Bytes free on the data folder's file system, and the margin uploads
    /// leave free there for the index (the larger of 64 MiB and 1% of the
    /// file system): one `statvfs` for both, as every upload asks.
    fn space(&self) -> (u64, u64) {
        let (free, total) = match fs2::statvfs(self.layout.root()) {
            Ok(stats) => (stats.available_space(), stats.total_space()),
            Err(_) => (u64::MAX, u64::MAX),
        };
        (free, (64 * 1024 * 1024).max(total / 100))
    }

    fn durable(&self) -> bool {
        self.durability == Durability::Full
    }

    /// Flushes the index, sharing the flush with concurrent writers.
    fn commit_index(&self) -> Result<(), StoreError> {
        failpoint::hit("before-index-flush");
        if self.durable() {
            self.group_commit.flush(|| crate::metrics::timed_sync(|| self.index.flush()))?;
        }
        failpoint::hit("after-index-commit");
        Ok(())
    }

    /// Step 6 of the commit protocol: remove blobs nothing refers to any
    /// more, then forget them. A crash in between repeats this at startup.
    /// Writers finishing together share one run, with one fsync per
    /// folder; each returns once its own blobs are dealt with.
    /// In relaxed mode the index change that made them garbage may not be
    /// on disk yet, so they wait on the garbage list for
    /// [`Store::collect_garbage`], which flushes first.
    fn remove_garbage(&self, blobs: impl IntoIterator<Item = BlobId>) {
        if self.durable() {
            let _ = self.garbage_removals.run_with(blobs, |batch| {
                self.remove_garbage_now(batch);
                Ok::<(), std::convert::Infallible>(())
            });
        }
    }

    /// [`Inner::remove_garbage`] once the client has its answer: if a
    /// removal is under way, the blobs join it and this thread moves on.
    /// Waiting there instead held a blocking thread per upload answered
    /// while removals lagged (68 threads under 16 clients' small PUTs).
    fn remove_garbage_after_answer(&self, blobs: impl IntoIterator<Item = BlobId>) {
        if self.durable() {
            let _ = self.garbage_removals.run_or_hand_over(blobs, |batch| {
                self.remove_garbage_now(batch);
                Ok::<(), std::convert::Infallible>(())
            });
        }
    }

    /// Removes garbage blobs now, except those a reader holds: they go
    /// when the last reader lets go (see [`reader::Pins`]).
    fn remove_garbage_now(&self, blobs: impl IntoIterator<Item = BlobId>) {
        let unheld = blobs.into_iter().filter(|&blob| !self.pins.doom_if_pinned(blob)).collect();
        self.unlink_garbage(unheld);
    }

    /// Removes garbage blobs, and forgets each only once its removal is on
    /// disk: a blob that came back after a power cut with no garbage entry
    /// and no record would look like a lost upload, and the startup sweep
    /// would roll a deleted object forward.
    fn unlink_garbage(&self, blobs: Vec<BlobId>) {
        let mut removed = Vec::with_capacity(blobs.len());
        for blob in blobs {
            let path = self.layout.blob_path(blob);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(blob = %blob.to_hex(), %error, "could not remove a replaced blob");
                    continue;
                }
            }
            failpoint::hit("after-garbage-unlink");
            // Its Object Lock file, if it had one, is of no use now.
            let _ = fs::remove_file(self.layout.lock_file(blob));
            removed.push((blob, path));
        }
        // One fsync of a folder makes every removal from it durable.
        // Relaxed mode syncs the whole file system before forgetting.
        let mut unsynced = Vec::new();
        if self.durable() {
            let mut folders: Vec<&Path> = removed.iter().filter_map(|(_, path)| path.parent()).collect();
            folders.sort_unstable();
            folders.dedup();
            for folder in folders {
                if let Err(error) = blob::fsync_dir(folder) {
                    tracing::warn!(folder = %folder.display(), %error, "a folder of removed blobs did not sync; they stay on the garbage list");
                    unsynced.push(folder);
                }
            }
        }
        for (blob, path) in &removed {
            if path.parent().is_some_and(|folder| unsynced.contains(&folder)) {
                continue;
            }
            if let Err(error) = self.index.forget_garbage(*blob) {
                tracing::warn!(blob = %blob.to_hex(), %error, "could not forget a removed blob");
            }
        }
    }
}

/// Space set aside for an upload in flight (see [`Store::reserve_space`]).
pub struct SpaceReservation {
    inner: Arc<Inner>,
    bytes: u64,
}

impl Drop for SpaceReservation {
    fn drop(&mut self) {
        let mut reserved = self.inner.reserved.lock().unwrap_or_else(|poison| poison.into_inner());
        *reserved = reserved.saturating_sub(self.bytes);
    }
}

/// Sets the data folder to `wanted` (0700, or 0750 with group access):
/// tightens one that others may read (made by hand, or by an older
/// larder), or refuses to open it; opens a 0700 one to the group when
/// group access is turned on.
fn keep_private(dir: &Path, wanted: u32) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = fs::metadata(dir)?.permissions().mode();
    if mode & 0o777 == wanted {
        return Ok(());
    }
    if mode & 0o777 & !wanted == 0 {
        // Narrower than wanted: only group access turned on widens it.
        if wanted & 0o070 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(wanted))?;
        }
        return Ok(());
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(wanted)).map_err(|error| {
        StoreError::Io(io::Error::new(
            error.kind(),
            format!(
                "the data folder {} is open to other users (mode {:o}) and cannot be made private: {error}; \
                 run `chmod {:o} {}` as its owner",
                dir.display(),
                mode & 0o777,
                wanted,
                dir.display()
            ),
        ))
    })?;
    tracing::warn!(dir = %dir.display(), was = format!("{:o}", mode & 0o777), now = format!("{wanted:o}"), "the data folder was open to other users; it is now private");
    Ok(())
}

impl Store {
    /// Takes the data folder's LOCK, held as long as the file is open.
    fn lock(layout: &Layout) -> Result<File, StoreError> {
        let lock = File::options().create(true).truncate(false).write(true).open(layout.root().join("LOCK"))?;
        if fs2::FileExt::try_lock_exclusive(&lock).is_err() {
            return Err(StoreError::Locked(layout.root().to_path_buf()));
        }
        Ok(lock)
    }

    /// Opens (creating if needed) the data folder, takes its LOCK, and
    /// repairs what a crash may have left: `tmp/` emptied, replaced blobs
    /// removed and, after an unclean stop, unreferenced blobs swept.
    pub fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        let layout = Layout::new(&config.data_dir);
        // The folder holds keys and secrets: only its owner (and, with
        // group access, its group) may look in.
        let mode = if config.group_access { 0o750 } else { 0o700 };
        if !layout.root().exists() {
            std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), mode)
                .create(layout.root())?;
        }
        keep_private(layout.root(), mode)?;
        for dir in [layout.blobs_dir(), layout.tmp_dir(), layout.buckets_dir()] {
            std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o700).create(&dir)?;
        }
        let lock = Store::lock(&layout)?;
        // A new index next to existing blobs (the old one was lost or
        // removed): the blobs are checked whatever the last stop was.
        let new_index = !layout.index_dir().join("db").exists();
        let reserve = layout.root().join(INDEX_RESERVE);
        let index = ReopeningIndex::open(&layout.index_dir(), reserve, config.index_cache_bytes).map_err(|error| {
            StoreError::Io(io::Error::other(format!(
                "the index in {} does not open ({error}); stop here: `larder repair --data-dir {}` rebuilds it from \
                 the data folder and keeps the old one",
                layout.index_dir().display(),
                layout.root().display()
            )))
        })?;
        let store = Store {
            inner: Arc::new(Inner {
                layout,
                durability: config.durability,
                index,
                group_commit: commit::GroupCommit::default(),
                garbage_removals: commit::GroupCommit::default(),
                blob_names: Default::default(),
                pins: Default::default(),
                key_files: Default::default(),
                lock_files: Default::default(),
                bucket_states: Default::default(),
                reserved: Default::default(),
                background: Default::default(),
                _lock: lock,
            }),
        };
        store.recover(new_index)?;
        let (free, margin) = store.inner.space();
        store.inner.index.keep_reserve(free, margin);
        Ok(store)
    }

    /// Flushes everything and, if no write may still be under way
    /// (`quiet`), marks the stop as clean so the next start can skip the
    /// blob sweep.
    pub fn close(&self, quiet: bool) -> Result<(), StoreError> {
        // A sweep cut short must run again: no clean mark then.
        let swept = self.inner.background.stop();
        // Removals before the index that forgets them (see `unlink_garbage`).
        blob::sync_file_system(self.inner.layout.root())?;
        self.inner.index.flush()?;
        if !quiet || !swept {
            return Ok(());
        }
        // Relaxed writes left data unsynced: the marker says "nothing to
        // check at the next start", so everything goes to disk first.
        blob::sync_file_system(self.inner.layout.root())?;
        let marker = self.inner.layout.root().join(CLEAN_SHUTDOWN_MARKER);
        File::create(&marker)?.sync_all()?;
        fsync_dir_if(true, self.inner.layout.root())?;
        Ok(())
    }

    /// In relaxed mode: flushes the index, then removes the blobs it no
    /// longer refers to. The server runs this every few seconds.
    pub async fn collect_garbage(&self) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        blocking(move || {
            let garbage = inner.index.garbage()?;
            if garbage.is_empty() {
                return Ok(());
            }
            // A replaced blob may go only when the index that replaced it
            // and the blob that replaced it are both on disk: relaxed
            // uploads were never fsynced, so the whole file system is. The
            // same sync makes the last round's removals durable before the
            // flush makes their garbage entries' removal durable.
            blob::sync_file_system(inner.layout.root())?;
            inner.index.flush()?;
            inner.remove_garbage_now(garbage);
            Ok(())
        })
        .await
    }

    /// Is the disk so full that uploads are refused (less free than the
    /// margin kept for the index)?
    pub fn nearly_full(&self) -> bool {
        let (free, margin) = self.inner.space();
        free < margin
    }

    /// Why writes are refused, if the index failed to write (see
    /// `reopen.rs`).
    pub fn degraded(&self) -> Option<String> {
        self.inner.index.failure()
    }

    /// Run every few seconds: once the disk has room again, opens a failed
    /// index again and checks the blobs of the writes it failed (in the
    /// background); keeps the room set aside for the index.
    pub async fn heal(&self) -> Result<(), StoreError> {
        let store = self.clone();
        blocking(move || {
            let inner = &store.inner;
            let (free, margin) = inner.space();
            if let Some(failure) = inner.index.failure() {
                // Room for the index's log, wherever it is: deletes may
                // proceed before uploads have their margin back.
                if inner.index.room() < 2 * reopen::RESERVE_BYTES {
                    return Ok(());
                }
                inner.index.reopen()?;
                tracing::warn!(was = failure, "the index is open again: writes resume");
                store.start_background_sweep()?;
            }
            inner.index.keep_reserve(free, margin);
            Ok(())
        })
        .await
    }

    pub fn is_durable(&self) -> bool {
        self.inner.durable()
    }

    /// Sets `bytes` aside for an upload that declared them, keeping the
    /// margin the index needs (the larger of 64 MiB and 1% of the file
    /// system): concurrent uploads cannot together promise more than the
    /// disk holds. `None` when there is no room; the space is given back
    /// when the reservation is dropped.
    pub fn reserve_space(&self, bytes: u64) -> Option<SpaceReservation> {
        let (free, margin) = self.inner.space();
        let mut reserved = self.inner.reserved.lock().unwrap_or_else(|poison| poison.into_inner());
        if reserved.saturating_add(bytes).saturating_add(margin) > free {
            return None;
        }
        *reserved += bytes;
        Some(SpaceReservation { inner: self.inner.clone(), bytes })
    }

    /// Bytes free on the data folder's file system.
    pub fn free_space(&self) -> u64 {
        self.inner.space().0
    }

    /// A bucket's configuration document (`policy`, `cors`), if set.
    pub async fn bucket_config(&self, bucket: &str, name: &'static str) -> Result<Option<Vec<u8>>, StoreError> {
        let inner = self.inner.clone();
        let bucket = bucket.to_string();
        blocking(move || {
            if inner.index.bucket(&bucket)?.is_none() {
                return Err(StoreError::NoSuchBucket);
            }
            inner.index.bucket_config(&bucket, name)
        })
        .await
    }

    /// Sets or (with `None`) removes a bucket's configuration document.
    pub async fn set_bucket_config(
        &self,
        bucket: &str,
        name: &'static str,
        document: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        let bucket = bucket.to_string();
        blocking(move || {
            // The file first: a crash between the two leaves the index's
            // older answer, and a rebuild the newer (never acknowledged).
            let file = inner.layout.bucket_config_file(&bucket, name);
            match &document {
                Some(document) => blob::write_file_atomically(&file, document, inner.durable())?,
                None => blob::remove_file_durably(&file, inner.durable())?,
            }
            inner.index.set_bucket_config(&bucket, name, document.as_deref())?;
            inner.commit_index()
        })
        .await
    }

    /// The checksums a multipart object's parts were uploaded with, read
    /// from the part blobs' own footers (the object's record keeps only
    /// their sizes). Part numbers count from 1; `parts` is a slice of them.
    pub async fn part_checksums(&self, parts: Vec<record::PartRef>) -> Result<Vec<Option<Checksum>>, StoreError> {
        let inner = self.inner.clone();
        blocking(move || {
            parts
                .iter()
                .map(|part| match blob::read_footer(&inner.layout.blob_path(part.blob))? {
                    Some(record::Footer::Part { record, .. }) => Ok(record.checksum),
                    _ => Ok(None),
                })
                .collect()
        })
        .await
    }

    /// A small document the server keeps about itself (see [`Index::note`]).
    pub fn note(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.index.note(name)
    }

    /// Saves a note; it is made durable with the index's next flush.
    pub async fn set_note(&self, name: &'static str, document: Vec<u8>) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        blocking(move || inner.index.set_note(name, &document)).await
    }

    /// Every stored access key document (see `iam`).
    pub fn load_keys(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.inner.index.keys()
    }

    /// Stores an access key document durably.
    pub async fn save_key(&self, access_key: &str, document: Vec<u8>) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        let access_key = access_key.to_string();
        blocking(move || {
            let _files = inner.key_files.lock().unwrap_or_else(|poison| poison.into_inner());
            blob::write_file_atomically(&inner.layout.key_file(&access_key), &document, inner.durable())?;
            inner.index.put_key(&access_key, &document)?;
            inner.commit_index()
        })
        .await
    }

    /// Changes an access key document atomically and durably: `change`
    /// gets the stored document and returns the new one, or refuses with
    /// its own error. `None` if there is no such key (a revoked key stays
    /// revoked, whatever races it).
    pub async fn update_key<E: Send + 'static>(
        &self,
        access_key: &str,
        mut change: impl FnMut(&[u8]) -> Result<Vec<u8>, E> + Send + 'static,
    ) -> Result<Option<Result<Vec<u8>, E>>, StoreError> {
        let inner = self.inner.clone();
        let access_key = access_key.to_string();
        blocking(move || {
            // Held from the index's change to the file's, so that a removal
            // cannot fall in between and a revoked key's file come back.
            let _files = inner.key_files.lock().unwrap_or_else(|poison| poison.into_inner());
            let mut refusal = None;
            let changed = inner.index.update_key(&access_key, &mut |current| match change(current) {
                Ok(changed) => Some(changed),
                Err(error) => {
                    refusal = Some(error);
                    None
                }
            })?;
            match changed {
                Some(changed) => {
                    inner.commit_index()?;
                    blob::write_file_atomically(&inner.layout.key_file(&access_key), &changed, inner.durable())?;
                    Ok(Some(Ok(changed)))
                }
                None => Ok(refusal.map(Err)),
            }
        })
        .await
    }

    /// Removes an access key durably; false if there was none.
    pub async fn remove_key(&self, access_key: &str) -> Result<bool, StoreError> {
        let inner = self.inner.clone();
        let access_key = access_key.to_string();
        blocking(move || {
            // The file first: a revoked key must not come back in a rebuild.
            let _files = inner.key_files.lock().unwrap_or_else(|poison| poison.into_inner());
            blob::remove_file_durably(&inner.layout.key_file(&access_key), inner.durable())?;
            let removed = inner.index.delete_key(&access_key)?;
            inner.commit_index()?;
            Ok(removed)
        })
        .await
    }

    /// Creates a bucket; with `object_lock`, versioned from the start and
    /// for good.
    pub async fn create_bucket(&self, name: &str, object_lock: bool) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        let name = name.to_string();
        blocking(move || {
            if inner.index.bucket(&name)?.is_some() {
                return Err(StoreError::BucketAlreadyOwnedByYou);
            }
            // The marker file keeps the bucket if the index is ever rebuilt.
            let mut record = BucketRecord::new(timefmt::now());
            if object_lock {
                (record.versioning, record.object_lock) = (Versioning::Enabled, true);
            }
            let marker = inner.layout.bucket_marker(&name);
            let mut file = File::create(&marker)?;
            io::Write::write_all(&mut file, record.marker_text().as_bytes())?;
            file.sync_all()?;
            fsync_dir_if(inner.durable(), &inner.layout.buckets_dir())?;
            if !inner.index.create_bucket(&name, record.created)? {
                return Err(StoreError::BucketAlreadyOwnedByYou);
            }
            if object_lock {
                inner.index.set_versioning(&name, Versioning::Enabled, true)?;
            }
            inner.commit_index()
        })
        .await
    }

    /// Turns Object Lock on for a bucket whose versioning is enabled; it
    /// stays on for good.
    pub async fn enable_object_lock(&self, name: &str) -> Result<(), StoreError> {
        self.change_bucket_state(name, |record| {
            record.object_lock = true;
            Ok(())
        })
        .await
    }

    /// Sets a bucket's versioning state (Enabled or Suspended).
    pub async fn set_versioning(&self, name: &str, versioning: Versioning) -> Result<(), StoreError> {
        self.change_bucket_state(name, move |record| {
            record.versioning = versioning;
            Ok(())
        })
        .await
    }

    /// Changes a bucket's versioning or Object Lock state, one change at a
    /// time, refusing a state where Object Lock is on without versioning
    /// enabled; the marker file first, as configuration files are.
    async fn change_bucket_state(
        &self,
        name: &str,
        change: impl FnOnce(&mut BucketRecord) -> Result<(), StoreError> + Send + 'static,
    ) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        let name = name.to_string();
        blocking(move || {
            let _states = inner.bucket_states.lock().unwrap_or_else(|poison| poison.into_inner());
            let mut record = inner.index.bucket(&name)?.ok_or(StoreError::NoSuchBucket)?;
            change(&mut record)?;
            if record.object_lock && record.versioning != Versioning::Enabled {
                return Err(StoreError::InvalidBucketState);
            }
            blob::write_file_atomically(
                &inner.layout.bucket_marker(&name),
                record.marker_text().as_bytes(),
                inner.durable(),
            )?;
            inner.index.set_versioning(&name, record.versioning, record.object_lock)?;
            inner.commit_index()
        })
        .await
    }

    pub async fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        let name = name.to_string();
        blocking(move || {
            inner.index.delete_bucket(&name)?;
            inner.commit_index()?;
            let _ = fs::remove_file(inner.layout.bucket_marker(&name));
            // Its configuration documents' files too, whatever their names.
            for kind in fs::read_dir(inner.layout.root().join("config")).into_iter().flatten().flatten() {
                if let Some(kind) = kind.file_name().to_str().filter(|kind| *kind != "keys") {
                    blob::remove_file_durably(&inner.layout.bucket_config_file(&name, kind), inner.durable())?;
                }
            }
            Ok(())
        })
        .await
    }

    pub async fn bucket(&self, name: &str) -> Result<BucketRecord, StoreError> {
        // One index lookup, from sled's cache: on this thread, as GET's
        // (see `open_version`); a PUT asks twice.
        self.inner.index.bucket(name)?.ok_or(StoreError::NoSuchBucket)
    }

    pub async fn list_buckets(&self) -> Result<Vec<(String, BucketRecord)>, StoreError> {
        let inner = self.inner.clone();
        blocking(move || inner.index.buckets()).await
    }

    /// The record of an object; NoSuchBucket or NoSuchKey if absent.
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectRecord, StoreError> {
        self.head_version(bucket, key, Selector::Current).await
    }

    /// The record of one version (see [`lookup`] for the refusals).
    /// Runs on the caller's thread: see [`Store::open_version`].
    pub async fn head_version(&self, bucket: &str, key: &str, which: Selector) -> Result<ObjectRecord, StoreError> {
        lookup(&self.inner, bucket, key, which)
    }

    /// The record of an object with its blob open, so a concurrent
    /// overwrite or delete cannot pull the bytes away mid-read.
    pub async fn open_object(&self, bucket: &str, key: &str) -> Result<(ObjectRecord, ObjectFile), StoreError> {
        self.open_version(bucket, key, Selector::Current).await
    }

    /// [`Store::open_object`] for one version.
    pub async fn open_version(
        &self,
        bucket: &str,
        key: &str,
        which: Selector,
    ) -> Result<(ObjectRecord, ObjectFile), StoreError> {
        // An index lookup (sled, from its cache) and a small object's open
        // and read (from the page cache) take a few microseconds: on this
        // thread they cost less than the trip to the blocking pool and
        // back, which was most of a small GET's cost. A larger object's
        // file is opened on the pool.
        let record = lookup(&self.inner, bucket, key, which)?;
        if record.parts.is_empty() && record.size <= reader::READ_WHOLE_UP_TO {
            return open_now(&self.inner, bucket, key, which, Some(record));
        }
        let inner = self.inner.clone();
        let (bucket, key) = (bucket.to_string(), key.to_string());
        blocking(move || open_now(&inner, &bucket, &key, which, None)).await
    }

    /// S3's DELETE without a version: in an unversioned bucket the object
    /// goes; in a versioned one a delete marker becomes the current
    /// version (with an id when versioning is enabled, the null version
    /// when suspended, which replaces the old null version).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<Deleted, StoreError> {
        let inner = self.inner.clone();
        let (bucket, key) = (bucket.to_string(), key.to_string());
        blocking(move || {
            let versioning = inner.index.bucket(&bucket)?.ok_or(StoreError::NoSuchBucket)?.versioning;
            if versioning == Versioning::Unversioned {
                remove_version(&inner, &bucket, &key, None, &|_| Ok(()))?;
                return Ok(Deleted::default());
            }
            let sequence = inner.index.next_sequence()?;
            let version = (versioning == Versioning::Enabled).then(|| VersionId::new(sequence));
            let id = inner.blob_names.next();
            let record = ObjectRecord {
                blob: id,
                size: 0,
                etag: String::new(),
                last_modified: timefmt::now(),
                sequence,
                version,
                delete_marker: true,
                lock: ObjectLock::default(),
                full_object_checksum: false,
                checksum: None,
                meta: ObjectMeta::default(),
                parts: Vec::new(),
            };
            // A delete marker is a blob too, so that a rebuilt index has it.
            let tmp = inner.layout.tmp_path(id);
            let file = io::BufWriter::new(blob::create_tmp(&tmp)?);
            let footer = record::Footer::Object { bucket: bucket.clone(), key: key.clone(), record: record.clone() };
            let replaced = {
                let _gate = inner.background.gate();
                let path = inner.write_blob(id, &tmp, file, &footer)?;
                if record.version.is_none() {
                    inner.background.note_deleted(&bucket, &key);
                }
                inner.index.put_object(&bucket, &key, &record, &WriteCondition::None).inspect_err(|_| {
                    let _ = fs::remove_file(&path);
                })?
            };
            inner.commit_index()?;
            inner.remove_garbage(replaced.iter().flat_map(ObjectRecord::blobs));
            Ok(Deleted { version, delete_marker: true, versioned: true })
        })
        .await
    }

    /// S3's DELETE with a version id: that version goes for good (a delete
    /// marker too), if `guard` (Object Lock) lets it. Deleting a version
    /// that is not there succeeds.
    pub async fn delete_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        guard: Box<DeleteGuard>,
    ) -> Result<Deleted, StoreError> {
        let inner = self.inner.clone();
        let (bucket, key) = (bucket.to_string(), key.to_string());
        blocking(move || {
            let removed = remove_version(&inner, &bucket, &key, version, &*guard)?;
            Ok(Deleted {
                version,
                delete_marker: removed.is_some_and(|removed| removed.delete_marker),
                versioned: true,
            })
        })
        .await
    }

    /// Changes one version's Object Lock: `change` gets the record and
    /// returns the new lock, or refuses. The lock file is written before
    /// the index, so a rebuilt index has the change too.
    pub async fn set_object_lock(
        &self,
        bucket: &str,
        key: &str,
        which: Selector,
        change: impl FnOnce(&ObjectRecord) -> Result<ObjectLock, StoreError> + Send + 'static,
    ) -> Result<ObjectRecord, StoreError> {
        let inner = self.inner.clone();
        let (bucket, key) = (bucket.to_string(), key.to_string());
        blocking(move || {
            let _files = inner.lock_files.lock().unwrap_or_else(|poison| poison.into_inner());
            let mut record = lookup(&inner, &bucket, &key, which)?;
            let lock = change(&record)?;
            let file = inner.layout.lock_file(record.blob);
            blob::write_file_atomically(&file, lock.to_text().as_bytes(), inner.durable())?;
            if !inner.index.set_lock(&bucket, &key, record.sequence, lock)? {
                let _ = fs::remove_file(&file);
                return Err(StoreError::NoSuchVersion);
            }
            inner.commit_index()?;
            record.lock = lock;
            Ok(record)
        })
        .await
    }

    /// Up to `limit` versions and delete markers under `prefix`: by key,
    /// newest first, each with whether it is its key's latest; after a key
    /// (all its versions) or a key and version.
    pub async fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(Vec<u8>, Option<Selector>)>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectRecord, bool)>, StoreError> {
        let inner = self.inner.clone();
        let (bucket, prefix) = (bucket.to_string(), prefix.to_string());
        blocking(move || {
            if inner.index.bucket(&bucket)?.is_none() {
                return Err(StoreError::NoSuchBucket);
            }
            let after = match after {
                None => None,
                Some((key, None | Some(Selector::Current))) => Some((key, None)),
                Some((key, Some(Selector::Version(Some(version))))) => Some((key, Some(version.sequence()))),
                Some((key, Some(Selector::Version(None)))) => {
                    let name = String::from_utf8_lossy(&key).into_owned();
                    match inner.index.version(&bucket, &name, None)? {
                        Some((record, _)) => Some((key, Some(record.sequence))),
                        // The null version is gone: start after the key.
                        None => Some((key, None)),
                    }
                }
            };
            inner.index.list_versions(&bucket, &prefix, after.as_ref().map(|(key, seq)| (key.as_slice(), *seq)), limit)
        })
        .await
    }

    /// Up to `limit` objects under `prefix`, in key order, after `after`.
    pub async fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<Vec<u8>>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectRecord)>, StoreError> {
        let inner = self.inner.clone();
        let (bucket, prefix) = (bucket.to_string(), prefix.to_string());
        blocking(move || {
            if inner.index.bucket(&bucket)?.is_none() {
                return Err(StoreError::NoSuchBucket);
            }
            inner.index.list(&bucket, &prefix, after.as_deref(), limit)
        })
        .await
    }

    /// Starts an upload into `bucket/key` (steps 2 to 6 of the commit
    /// protocol happen in the returned [`Upload`]). Fails at once if the
    /// bucket does not exist.
    pub async fn begin_upload(&self, bucket: &str, key: &str, digests: DigestSet) -> Result<Upload, StoreError> {
        self.bucket(bucket).await?;
        let target = upload::Target::Object { bucket: bucket.to_string(), key: key.to_string() };
        Ok(Upload::start(self.inner.clone(), target, digests))
    }
}

/// Looks an object up (unless the caller just did: `looked_up`) and opens
/// its first blob; small objects are read whole (see
/// [`ObjectFile::open_single`]).
fn open_now(
    inner: &Arc<Inner>,
    bucket: &str,
    key: &str,
    which: Selector,
    mut looked_up: Option<ObjectRecord>,
) -> Result<(ObjectRecord, ObjectFile), StoreError> {
    // The blob can be replaced between lookup and open; look again.
    for _ in 0..8 {
        let record = match looked_up.take() {
            Some(record) => record,
            None => lookup(inner, bucket, key, which)?,
        };
        let segments = record.segments();
        // A multipart object's parts are held until the read ends:
        // an overwrite meanwhile leaves them in place for it. Held
        // first, then the record checked again, so that no part
        // can go between the lookup and the hold.
        let pin = (segments.len() > 1).then(|| reader::Pin::new(inner, &segments));
        if pin.is_some() && lookup(inner, bucket, key, which)?.blob != record.blob {
            continue;
        }
        let opened = match pin {
            None if segments.len() == 1 => ObjectFile::open_single(&inner.layout, segments[0]),
            pin => File::open(inner.layout.blob_path(segments[0].blob)).map(|first| ObjectFile {
                layout: inner.layout.clone(),
                segments,
                first,
                _pin: pin,
                whole: None,
            }),
        };
        match opened {
            Ok(file) => return Ok((record, file)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(StoreError::NoSuchKey)
}

/// The record `which` names: NoSuchBucket, NoSuchKey (the current
/// version is absent), NoSuchVersion, or DeleteMarker (it is one).
fn lookup(inner: &Inner, bucket: &str, key: &str, which: Selector) -> Result<ObjectRecord, StoreError> {
    let found = match which {
        Selector::Current => inner.index.object(bucket, key)?.map(|record| (record, true)),
        Selector::Version(version) => inner.index.version(bucket, key, version)?,
    };
    match found {
        Some((record, _)) if record.delete_marker => {
            Err(StoreError::DeleteMarker { record: Box::new(record), current: false })
        }
        Some((record, _)) => Ok(record),
        None if inner.index.bucket(bucket)?.is_none() => Err(StoreError::NoSuchBucket),
        None if which != Selector::Current => Err(StoreError::NoSuchVersion),
        // A current delete marker answers as S3 does: 404 that names it.
        None => match inner.index.noncurrent(bucket, key)?.into_iter().next() {
            Some(marker) if marker.delete_marker => {
                Err(StoreError::DeleteMarker { record: Box::new(marker), current: true })
            }
            _ => Err(StoreError::NoSuchKey),
        },
    }
}

/// Removes one version, telling a running sweep, and removes its blobs
/// once the index change is durable.
fn remove_version(
    inner: &Inner,
    bucket: &str,
    key: &str,
    version: Option<VersionId>,
    guard: &DeleteGuard,
) -> Result<Option<ObjectRecord>, StoreError> {
    let removed = {
        // A sweep running now must not bring the version back.
        let _gate = inner.background.gate();
        match version {
            Some(version) => inner.background.note_deleted_version(bucket, key, version.sequence()),
            None => inner.background.note_deleted(bucket, key),
        }
        inner.index.remove_version(bucket, key, version, guard)?
    };
    if let Some(old) = &removed {
        inner.commit_index()?;
        inner.remove_garbage(old.blobs());
    }
    Ok(removed)
}

fn fsync_dir_if(durable: bool, dir: &Path) -> Result<(), StoreError> {
    if durable {
        blob::fsync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use bytes::Bytes;

    use super::record::Footer;
    use super::*;

    fn config(dir: &Path) -> StoreConfig {
        StoreConfig {
            data_dir: dir.to_path_buf(),
            durability: Durability::Full,
            index_cache_bytes: 4 << 20,
            group_access: false,
        }
    }

    async fn put(store: &Store, key: &str, body: &[u8]) -> ObjectRecord {
        let mut upload = store.begin_upload("bucket", key, DigestSet::default()).await.unwrap();
        for chunk in body.chunks(1000) {
            upload.write(Bytes::copy_from_slice(chunk)).await.unwrap();
        }
        upload.commit(ObjectMeta::default(), ExpectedDigests::default()).await.unwrap()
    }

    async fn read(store: &Store, key: &str) -> Vec<u8> {
        let (record, file) = store.open_object("bucket", key).await.unwrap();
        let mut chunks = file.stream(0, record.size);
        let mut out = Vec::new();
        while let Some(chunk) = chunks.recv().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    /// Two writes to one key whose sequences were taken in one order and
    /// whose index changes commit in the other: the key's versions still
    /// sort by sequence, and the newest is current.
    #[test]
    fn versions_sort_by_sequence_whatever_order_they_commit_in() {
        let dir = std::env::temp_dir().join(format!("larder-store-test-{}", BlobId::random().to_hex()));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let store = Store::open(&config(&dir)).unwrap();
            store.create_bucket("bucket", false).await.unwrap();
            store.set_versioning("bucket", Versioning::Enabled).await.unwrap();
            let index = &store.inner.index;
            let record = |sequence: u64, delete_marker: bool| ObjectRecord {
                blob: BlobId::random(),
                size: 1,
                etag: String::new(),
                last_modified: 0,
                sequence,
                version: Some(VersionId::new(sequence)),
                delete_marker,
                lock: ObjectLock::default(),
                full_object_checksum: false,
                checksum: None,
                meta: ObjectMeta::default(),
                parts: Vec::new(),
            };
            // A PUT that took sequence 11 commits before a DELETE that took 10.
            index.put_object("bucket", "k", &record(11, false), &WriteCondition::None).unwrap();
            index.put_object("bucket", "k", &record(10, true), &WriteCondition::None).unwrap();
            assert_eq!(store.head_object("bucket", "k").await.unwrap().sequence, 11, "the newer object stays current");
            let listed = store.list_versions("bucket", "", None, 10).await.unwrap();
            let order: Vec<(u64, bool)> = listed.iter().map(|(_, record, latest)| (record.sequence, *latest)).collect();
            assert_eq!(order, [(11, true), (10, false)]);
            // And the other way round: a marker above an older object.
            index.put_object("bucket", "m", &record(21, true), &WriteCondition::None).unwrap();
            index.put_object("bucket", "m", &record(20, false), &WriteCondition::None).unwrap();
            assert!(matches!(
                store.head_object("bucket", "m").await,
                Err(StoreError::DeleteMarker { current: true, .. })
            ));
            assert_eq!(store.bucket("bucket").await.unwrap().objects, 4);
            store.close(true).unwrap();
        });
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A rebuilt index hands out sequences above every blob's: a version
    /// written after `larder repair` must sort as the newest.
    #[test]
    fn a_rebuilt_index_continues_after_the_blobs_sequences() {
        let dir = std::env::temp_dir().join(format!("larder-store-test-{}", BlobId::random().to_hex()));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let store = Store::open(&config(&dir)).unwrap();
            store.create_bucket("bucket", false).await.unwrap();
            let mut old = put(&store, "key", b"old").await;
            store.close(true).unwrap();
            drop(store);
            // The same object, as a store that had counted far higher left it.
            let path = Layout::new(&dir).blob_path(old.blob);
            fs::remove_file(&path).unwrap();
            old.sequence = 1 << 40;
            let mut file = File::create(&path).unwrap();
            file.write_all(b"old").unwrap();
            let footer = Footer::Object { bucket: "bucket".into(), key: "key".into(), record: old.clone() };
            blob::append_footer(&mut file, &footer.encode()).unwrap();
            fs::remove_dir_all(dir.join("index")).unwrap();

            let store = Store::open(&config(&dir)).unwrap();
            assert_eq!(store.head_object("bucket", "key").await.unwrap().sequence, 1 << 40);
            let new = put(&store, "key", b"new").await;
            assert!(new.sequence > 1 << 40, "{}", new.sequence);
            assert_eq!(read(&store, "key").await, b"new");
            store.close(true).unwrap();
        });
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The whole store on this target (run under qemu for ARM): sled, blob
    /// files, the commit protocol, reopening and the startup sweep.
    #[test]
    fn store_round_trip_and_reopen() {
        let dir = std::env::temp_dir().join(format!("larder-store-test-{}", BlobId::random().to_hex()));
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async {
            let store = Store::open(&config(&dir)).unwrap();
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700, "only the owner may look in");
            assert!(matches!(Store::open(&config(&dir)), Err(StoreError::Locked(_))));
            store.create_bucket("bucket", false).await.unwrap();
            assert!(matches!(store.create_bucket("bucket", false).await, Err(StoreError::BucketAlreadyOwnedByYou)));
            let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
            let record = put(&store, "a/key", &body).await;
            assert_eq!(record.size, body.len() as u64);
            put(&store, "b", b"first").await;
            put(&store, "b", b"second").await;
            assert_eq!(read(&store, "a/key").await, body);
            assert_eq!(read(&store, "b").await, b"second");
            let listed = store.list_objects("bucket", "", None, 10).await.unwrap();
            assert_eq!(listed.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["a/key", "b"]);
            let after = store.list_objects("bucket", "", Some(b"a/key".to_vec()), 10).await.unwrap();
            assert_eq!(after.len(), 1);
            assert!(matches!(store.delete_bucket("bucket").await, Err(StoreError::BucketNotEmpty)));

            // A digest mismatch stores nothing.
            let mut upload = store.begin_upload("bucket", "bad", DigestSet::default()).await.unwrap();
            upload.write(Bytes::from_static(b"data")).await.unwrap();
            let expected = ExpectedDigests { md5: Some([0; 16]), ..ExpectedDigests::default() };
            assert!(matches!(
                upload.commit(ObjectMeta::default(), expected).await,
                Err(StoreError::DigestMismatch(DigestKind::Md5))
            ));
            assert!(matches!(store.head_object("bucket", "bad").await, Err(StoreError::NoSuchKey)));
            // An abandoned upload leaves no temporary file.
            let mut upload = store.begin_upload("bucket", "abandoned", DigestSet::default()).await.unwrap();
            upload.write(Bytes::from_static(b"partial")).await.unwrap();
            drop(upload);
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            assert_eq!(fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
            store.close(true).unwrap();
        });
        drop(runtime);

        // An orphan blob (renamed, never indexed) goes at the next unclean start.
        let orphan = Layout::new(&dir).blob_path(BlobId::random());
        let record = ObjectRecord {
            blob: BlobId::random(),
            size: 1,
            etag: String::new(),
            last_modified: 0,
            sequence: 0,
            version: None,
            delete_marker: false,
            lock: Default::default(),
            full_object_checksum: false,
            checksum: None,
            meta: ObjectMeta::default(),
            parts: Vec::new(),
        };
        fs::create_dir_all(orphan.parent().unwrap()).unwrap();
        let mut file = File::create(&orphan).unwrap();
        file.write_all(b"x").unwrap();
        let footer = Footer::Object { bucket: "bucket".into(), key: "never-indexed".into(), record };
        blob::append_footer(&mut file, &footer.encode()).unwrap();
        fs::remove_file(dir.join(CLEAN_SHUTDOWN_MARKER)).unwrap();

        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let store = Store::open(&config(&dir)).unwrap();
            store.wait_for_recovery();
            assert_eq!(store.recovery(), Recovery::Done);
            assert!(!orphan.exists(), "the sweep removes unreferenced blobs");
            assert_eq!(read(&store, "b").await, b"second");
            assert_eq!(store.bucket("bucket").await.unwrap().objects, 2);
            store.delete_object("bucket", "a/key").await.unwrap();
            store.delete_object("bucket", "b").await.unwrap();
            store.delete_bucket("bucket").await.unwrap();
            assert!(store.list_buckets().await.unwrap().is_empty());
        });
        fs::remove_dir_all(&dir).unwrap();
    }
}

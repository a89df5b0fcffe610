//! The object index: buckets, objects by `bucket \0 key` (ordered, so a
//! listing page costs O(page)), multipart uploads and their parts, and the
//! list of blobs waiting to be removed. [`Index`] is what the store needs; [`SledIndex`] keeps it in
//! sled. Every method blocks: callers run them on the blocking pool.

use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use sled::transaction::TransactionalTree;

use super::commit::GroupCommit;
use super::failpoint;
use super::record::{
    BlobId, BucketRecord, CompletedRecord, ObjectLock, ObjectRecord, PartRecord, UploadRecord, VersionId, Versioning,
};
use super::DeleteGuard;
use super::StoreError;
use super::WriteCondition;

pub trait Index: Send + Sync + 'static {
    fn bucket(&self, name: &str) -> Result<Option<BucketRecord>, StoreError>;
    fn buckets(&self) -> Result<Vec<(String, BucketRecord)>, StoreError>;
    /// Returns false if the bucket already existed.
    fn create_bucket(&self, name: &str, created: i64) -> Result<bool, StoreError>;
    /// Fails with NoSuchBucket or BucketNotEmpty.
    fn delete_bucket(&self, name: &str) -> Result<(), StoreError>;
    fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, StoreError>;
    /// Sets a bucket's versioning state (and Object Lock flag); fails with
    /// NoSuchBucket.
    fn set_versioning(&self, bucket: &str, versioning: Versioning, object_lock: bool) -> Result<(), StoreError>;
    /// Adds `record` (an object, or a delete marker) to the key's versions
    /// if `condition` holds (checked in the same transaction): as the
    /// newest, unless a version with a higher sequence committed first
    /// (then below it). The version it displaces stays as a noncurrent
    /// one, unless both are the null version: a new null version replaces
    /// the old one wherever it is. Returns what joined the garbage list: the
    /// replaced null version, or `record` itself if a newer null version
    /// was there. Fails with NoSuchBucket, PreconditionFailed, NoSuchKey, or
    /// ObjectLocked (a locked null version is never replaced).
    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<Option<ObjectRecord>, StoreError>;
    /// [`Index::put_object`], then [`Index::flush`]. Concurrent callers
    /// share one transaction and one flush: sled writes its log twice for
    /// every transaction, which made one per upload most of a small
    /// upload's index cost. A failed flush is `StoreError::Unflushed`:
    /// the change may be in the index, so its blob must stay; any other
    /// error leaves the index as it was.
    fn put_object_durably(
        &self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<Option<ObjectRecord>, StoreError>;
    /// Removes one version (`None`: the null version), current or not, if
    /// `guard` allows it (asked in the same transaction); its blobs join
    /// the garbage list. When it was the current one, the next newest
    /// becomes current. Fails with NoSuchBucket or the guard's refusal.
    fn remove_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        guard: &DeleteGuard,
    ) -> Result<Option<ObjectRecord>, StoreError>;
    /// Sets the Object Lock of the version with `sequence`; false if it is
    /// gone.
    fn set_lock(&self, bucket: &str, key: &str, sequence: u64, lock: ObjectLock) -> Result<bool, StoreError>;
    /// One version of a key (`None`: the null version), and whether it is
    /// the current object.
    fn version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
    ) -> Result<Option<(ObjectRecord, bool)>, StoreError>;
    /// The key's versions other than the current object (noncurrent ones
    /// and delete markers), newest first.
    fn noncurrent(&self, bucket: &str, key: &str) -> Result<Vec<ObjectRecord>, StoreError>;
    /// Up to `limit` versions and delete markers under `prefix`, by key and
    /// then newest first, with whether each is its key's latest; after
    /// `after`: a key (all its versions), or a key and a sequence (its
    /// versions older than that).
    fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(&[u8], Option<u64>)>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectRecord, bool)>, StoreError>;
    /// For the startup sweep: puts a version found in a blob where its
    /// sequence places it among the key's versions. `None` when the index
    /// holds the same or a newer null version (the blob is garbage), else
    /// the older null version it replaced, if any.
    fn place_version(
        &self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
    ) -> Result<Option<Option<ObjectRecord>>, StoreError>;
    /// Up to `limit` objects whose keys start with `prefix`, in key order,
    /// strictly after `after` when given.
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectRecord)>, StoreError>;
    fn create_upload(&self, id: BlobId, record: &UploadRecord) -> Result<(), StoreError>;
    fn upload(&self, id: BlobId) -> Result<Option<UploadRecord>, StoreError>;
    /// Uploads of `bucket` under `prefix`, ordered by key then start time,
    /// after index position `after` (see [`upload_position`]).
    fn uploads(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, BlobId, UploadRecord)>, StoreError>;
    /// Uploads started before `before` (Unix seconds).
    fn uploads_started_before(&self, before: i64) -> Result<Vec<BlobId>, StoreError>;
    /// Adds or replaces a part; a replaced part's blob joins the garbage
    /// list. Fails with NoSuchUpload.
    fn put_part(&self, id: BlobId, number: u32, part: &PartRecord) -> Result<Option<PartRecord>, StoreError>;
    fn part(&self, id: BlobId, number: u32) -> Result<Option<PartRecord>, StoreError>;
    /// Parts numbered above `after`, in order.
    fn parts(&self, id: BlobId, after: u32, limit: usize) -> Result<Vec<(u32, PartRecord)>, StoreError>;
    /// In one transaction: stores `record` for the upload's bucket and key
    /// if `condition` holds, forgets the upload and its parts (those not in
    /// `record` join the garbage list, as does a replaced object's blobs),
    /// and remembers `completed`. Fails with NoSuchUpload, NoSuchBucket,
    /// PreconditionFailed.
    fn complete_upload(
        &self,
        id: BlobId,
        record: &ObjectRecord,
        completed: &CompletedRecord,
        condition: &WriteCondition,
    ) -> Result<Option<ObjectRecord>, StoreError>;
    /// Forgets an upload; its parts join the garbage list and are returned.
    fn abort_upload(&self, id: BlobId) -> Result<Vec<BlobId>, StoreError>;
    /// After an upload is gone (no part can be added any more): parts that
    /// raced its completion or abort join the garbage list and are returned.
    fn drop_leftover_parts(&self, id: BlobId) -> Result<Vec<BlobId>, StoreError>;
    fn completed(&self, id: BlobId) -> Result<Option<CompletedRecord>, StoreError>;
    fn forget_completed_before(&self, before: i64) -> Result<(), StoreError>;
    fn garbage(&self) -> Result<Vec<BlobId>, StoreError>;
    /// A bucket's configuration document `name` (policy, cors), opaque here.
    fn bucket_config(&self, bucket: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets (`Some`) or removes (`None`) a configuration document; fails
    /// with NoSuchBucket.
    fn set_bucket_config(&self, bucket: &str, name: &str, document: Option<&[u8]>) -> Result<(), StoreError>;
    /// Access keys, stored as opaque documents by access key id.
    fn keys(&self) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Every key document with its access key.
    fn named_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Every bucket configuration document: (bucket, name, document).
    fn bucket_configs(&self) -> Result<Vec<(String, String, Vec<u8>)>, StoreError>;
    fn put_key(&self, access_key: &str, document: &[u8]) -> Result<(), StoreError>;
    /// Returns false if there was no such key.
    fn delete_key(&self, access_key: &str) -> Result<bool, StoreError>;
    /// Compare-and-swap: replaces the document with `change(current)`,
    /// retrying if it changed meanwhile. `None` if there is no such key or
    /// `change` declined; a deleted key is never written back.
    fn update_key(
        &self,
        access_key: &str,
        change: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    fn forget_garbage(&self, blob: BlobId) -> Result<(), StoreError>;
    /// A number larger than any handed out before, across restarts.
    fn next_sequence(&self) -> Result<u64, StoreError>;
    /// Makes every later [`Index::next_sequence`] larger than `seen` (a
    /// rebuilt index continues after the blobs' sequences).
    fn raise_sequence(&self, seen: u64) -> Result<(), StoreError>;
    /// Makes every change so far durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// A small document the server keeps about itself (the last lifecycle
    /// run), opaque here; not rebuilt by repair.
    fn note(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn set_note(&self, name: &str, document: &[u8]) -> Result<(), StoreError>;
}

pub struct SledIndex {
    db: sled::Db,
    buckets: sled::Tree,
    /// `bucket \0 key` -> the current version, unless that is a delete marker.
    objects: sled::Tree,
    /// `bucket \0 key \0 !sequence (u64 BE)` -> every other version and
    /// every delete marker, newest first within a key.
    versions: sled::Tree,
    /// `sequence-base` -> what `next_sequence` adds to sled's counter.
    meta: sled::Tree,
    sequence_base: std::sync::atomic::AtomicU64,
    /// Changes to one key's versions read the key's noncurrent versions
    /// before their transaction (sled's transactions cannot scan): one
    /// key's changes take its stripe, so nothing moves in between.
    stripes: Vec<std::sync::Mutex<()>>,
    /// Uploads waiting for [`Index::put_object_durably`]'s next group.
    durable_puts: GroupCommit<QueuedPut>,
    garbage: sled::Tree,
    /// upload id -> UploadRecord
    uploads: sled::Tree,
    /// `bucket \0 key \0 created (u64 BE) id` -> upload id, for listings.
    upload_keys: sled::Tree,
    /// `upload id, part number (u32 BE)` -> PartRecord
    parts: sled::Tree,
    /// upload id -> CompletedRecord
    completed: sled::Tree,
    /// access key -> key document (owned by iam)
    keys: sled::Tree,
    /// `bucket \0 name` -> configuration document
    bucket_config: sled::Tree,
    /// sled's files, for the fsync its own flush leaves out.
    files: SledFiles,
}

/// sled's `flush` ends in `sync_file_range` on its log, which persists
/// neither the file's size nor its extents and flushes no disk cache, and
/// it writes values too large for a page to files of their own without
/// syncing them. Its background thread fsyncs later; an answer cannot wait
/// for that. These are what a flush must sync itself.
struct SledFiles {
    dir: std::path::PathBuf,
    /// `index/db`, the log and pages.
    log: std::fs::File,
    /// What is known synced in `index/blobs/`.
    blobs: std::sync::Mutex<SyncedBlobs>,
}

#[derive(Default)]
struct SyncedBlobs {
    names: std::collections::HashSet<std::ffi::OsString>,
    /// The folder's modification time when it was last listed: unchanged
    /// (and old enough that no later creation can share it), nothing new.
    listed_at: Option<std::time::SystemTime>,
}

impl SledFiles {
    fn open(dir: &Path) -> std::io::Result<SledFiles> {
        let log = std::fs::File::open(dir.join("db"))?;
        // A new index's files and the folder's entries are durable before
        // anything is written to them.
        log.sync_all()?;
        super::blob::fsync_dir(dir)?;
        let files = SledFiles { dir: dir.to_path_buf(), log, blobs: Default::default() };
        files.sync_blobs()?;
        Ok(files)
    }

    /// Makes what sled has written durable: the log, then any value file
    /// not synced before (and the folder that names it).
    fn sync(&self) -> std::io::Result<()> {
        self.log.sync_data()?;
        self.sync_blobs()
    }

    fn sync_blobs(&self) -> std::io::Result<()> {
        let blobs = self.dir.join("blobs");
        let modified = match std::fs::metadata(&blobs) {
            Ok(metadata) => metadata.modified()?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        };
        let mut synced = self.blobs.lock().unwrap_or_else(|poison| poison.into_inner());
        let settled = modified.elapsed().is_ok_and(|age| age > std::time::Duration::from_secs(1));
        if settled && synced.listed_at == Some(modified) {
            return Ok(());
        }
        let mut present = std::collections::HashSet::new();
        let mut new = false;
        for entry in std::fs::read_dir(&blobs)? {
            let name = entry?.file_name();
            if !synced.names.contains(&name) {
                match std::fs::File::open(blobs.join(&name)) {
                    Ok(file) => file.sync_all()?,
                    // Removed by sled meanwhile: nothing to keep.
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(error) => return Err(error),
                }
                new = true;
            }
            present.insert(name);
        }
        if new {
            super::blob::fsync_dir(&blobs)?;
        }
        *synced = SyncedBlobs { names: present, listed_at: Some(modified) };
        Ok(())
    }
}

/// Where an upload sorts in its bucket's listing of uploads.
pub fn upload_position(bucket: &str, record: &UploadRecord, id: BlobId) -> Vec<u8> {
    let mut out = object_key(bucket, record.key.as_bytes());
    out.push(0);
    out.extend_from_slice(&(record.created as u64).to_be_bytes());
    out.extend_from_slice(&id.0);
    out
}

fn part_key(id: BlobId, number: u32) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..16].copy_from_slice(&id.0);
    out[16..].copy_from_slice(&number.to_be_bytes());
    out
}

fn object_key(bucket: &str, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bucket.len() + 1 + key.len());
    out.extend_from_slice(bucket.as_bytes());
    out.push(0);
    out.extend_from_slice(key);
    out
}

/// Where a noncurrent version or delete marker sorts: after its key's
/// current object, newest first.
fn version_key(bucket: &str, key: &[u8], sequence: u64) -> Vec<u8> {
    let mut out = version_prefix(bucket, key);
    out.extend_from_slice(&(!sequence).to_be_bytes());
    out
}

fn version_prefix(bucket: &str, key: &[u8]) -> Vec<u8> {
    let mut out = object_key(bucket, key);
    out.push(0);
    out
}

/// The key part of a `versions` tree key.
fn key_of_version<'a>(id: &'a [u8], bucket: &str) -> &'a [u8] {
    &id[bucket.len() + 1..id.len().saturating_sub(9).max(bucket.len() + 1)]
}

fn decode_object(bytes: &[u8], key: &str) -> Result<ObjectRecord, Abort> {
    ObjectRecord::decode(bytes).map_err(|_| Abort::Abort(corrupt(key)))
}

fn decode_bucket(bytes: Option<sled::IVec>, bucket: &str) -> Result<BucketRecord, Abort> {
    let Some(bytes) = bytes else { return Err(Abort::Abort(StoreError::NoSuchBucket)) };
    BucketRecord::decode(&bytes).map_err(|_| Abort::Abort(corrupt(bucket)))
}

/// A new null version never replaces one that Object Lock has marked: no
/// bucket with Object Lock writes null versions, so this is a second line.
fn check_replaceable(old: &ObjectRecord) -> Result<(), Abort> {
    if old.lock.is_none() {
        Ok(())
    } else {
        Err(Abort::Abort(StoreError::ObjectLocked))
    }
}

fn to_garbage(garbage: &TransactionalTree, record: &ObjectRecord) -> Result<(), Abort> {
    for blob in record.blobs() {
        garbage.insert(&blob.0[..], &[][..])?;
    }
    Ok(())
}

/// The trees a change to a key's versions touches, inside a transaction.
struct VersionTrees<'a> {
    objects: &'a TransactionalTree,
    versions: &'a TransactionalTree,
    garbage: &'a TransactionalTree,
}

impl VersionTrees<'_> {
    /// Puts `record` where its sequence places it among the key's versions
    /// (`current` and `noncurrent` read under the key's stripe): the newest
    /// becomes current ([`VersionTrees::install`]), an older one joins the
    /// noncurrent versions. A write whose sequence was taken before a
    /// concurrent one's, but which commits after it, lands below it, so a
    /// key's versions always sort by sequence. `None` when the key holds
    /// the same or a newer null version (the record is superseded); else
    /// the older null version it replaced, if any.
    fn place(
        &self,
        totals: &mut BucketRecord,
        bucket: &str,
        key: &str,
        current: Option<ObjectRecord>,
        noncurrent: &[ObjectRecord],
        record: &ObjectRecord,
    ) -> Result<Option<Option<ObjectRecord>>, Abort> {
        let id = object_key(bucket, key.as_bytes());
        let all: Vec<&ObjectRecord> = current.iter().chain(noncurrent.iter()).collect();
        if all.iter().any(|known| {
            known.version == record.version && (known.version.is_some() || known.sequence >= record.sequence)
        }) {
            return Ok(None);
        }
        let newest = all.iter().map(|known| known.sequence).max();
        if newest.is_none_or(|newest| record.sequence > newest) {
            return Ok(Some(self.install(totals, bucket, key, current, noncurrent, record)?));
        }
        // Older than the current version: a noncurrent one.
        let mut replaced = None;
        if record.version.is_none() {
            if let Some(null) = all.iter().find(|known| known.version.is_none()) {
                check_replaceable(null)?;
                if current.as_ref().is_some_and(|current| current.sequence == null.sequence) {
                    self.objects.remove(id.as_slice())?;
                } else {
                    self.versions.remove(version_key(bucket, key.as_bytes(), null.sequence))?;
                }
                to_garbage(self.garbage, null)?;
                totals.objects = totals.objects.saturating_sub(1);
                totals.bytes = totals.bytes.saturating_sub(null.size);
                replaced = Some((*null).clone());
            }
        }
        self.versions.insert(version_key(bucket, key.as_bytes(), record.sequence), record.encode())?;
        totals.objects += 1;
        totals.bytes += record.size;
        if current.is_none() || replaced.as_ref().zip(current.as_ref()).is_some_and(|(r, c)| r.sequence == c.sequence) {
            // The current object went, or there was none: the newest
            // of what is left may have to become current.
            let mut rest: Vec<&ObjectRecord> = noncurrent
                .iter()
                .filter(|known| replaced.as_ref().is_none_or(|r| r.sequence != known.sequence))
                .chain(std::iter::once(record))
                .collect();
            rest.sort_by_key(|known| std::cmp::Reverse(known.sequence));
            self.promote(bucket, key, &rest)?;
        }
        Ok(Some(replaced))
    }

    /// A write's new version, placed by its sequence ([`VersionTrees::place`]).
    /// Returns what became garbage: a null version it replaced, or the
    /// record itself when a newer null version committed first.
    fn place_new(
        &self,
        totals: &mut BucketRecord,
        bucket: &str,
        key: &str,
        current: Option<ObjectRecord>,
        noncurrent: &[ObjectRecord],
        record: &ObjectRecord,
    ) -> Result<Option<ObjectRecord>, Abort> {
        match self.place(totals, bucket, key, current, noncurrent, record)? {
            Some(replaced) => Ok(replaced),
            None => {
                to_garbage(self.garbage, record)?;
                Ok(Some(record.clone()))
            }
        }
    }

    /// Makes `record` the newest version of `key` (see [`Index::put_object`]);
    /// `noncurrent` was read under the key's stripe. Returns the replaced
    /// null version, whose blobs are now garbage.
    fn install(
        &self,
        totals: &mut BucketRecord,
        bucket: &str,
        key: &str,
        current: Option<ObjectRecord>,
        noncurrent: &[ObjectRecord],
        record: &ObjectRecord,
    ) -> Result<Option<ObjectRecord>, Abort> {
        let id = object_key(bucket, key.as_bytes());
        let mut replaced = None;
        if let Some(current) = current {
            if current.version.is_none() && record.version.is_none() {
                replaced = Some(current);
            } else {
                self.versions.insert(version_key(bucket, key.as_bytes(), current.sequence), current.encode())?;
            }
        }
        if record.version.is_none() {
            if let Some(null) = noncurrent.iter().find(|version| version.version.is_none()) {
                self.versions.remove(version_key(bucket, key.as_bytes(), null.sequence))?;
                replaced = Some(null.clone());
            }
        }
        if let Some(old) = &replaced {
            check_replaceable(old)?;
            to_garbage(self.garbage, old)?;
            totals.objects = totals.objects.saturating_sub(1);
            totals.bytes = totals.bytes.saturating_sub(old.size);
        }
        if record.delete_marker {
            self.objects.remove(id.as_slice())?;
            self.versions.insert(version_key(bucket, key.as_bytes(), record.sequence), record.encode())?;
        } else {
            self.objects.insert(id.as_slice(), record.encode())?;
        }
        totals.objects += 1;
        totals.bytes += record.size;
        Ok(replaced)
    }

    /// After the current object went: the newest noncurrent version (of
    /// `rest`, newest first) becomes current, unless it is a delete marker.
    fn promote(&self, bucket: &str, key: &str, rest: &[&ObjectRecord]) -> Result<(), Abort> {
        if let Some(next) = rest.first().filter(|next| !next.delete_marker) {
            self.versions.remove(version_key(bucket, key.as_bytes(), next.sequence))?;
            self.objects.insert(object_key(bucket, key.as_bytes()), next.encode())?;
        }
        Ok(())
    }
}

/// One upload's change to the index, for [`Index::put_object`] and the
/// groups of [`Index::put_object_durably`]: `record` becomes a version of
/// `key` if `condition` holds; returns the version it replaced, if any.
fn put_in(
    buckets: &TransactionalTree,
    trees: &VersionTrees<'_>,
    bucket: &str,
    key: &str,
    record: &ObjectRecord,
    condition: &WriteCondition,
    noncurrent: &[ObjectRecord],
) -> Result<Option<ObjectRecord>, Abort> {
    let id = object_key(bucket, key.as_bytes());
    let mut totals = decode_bucket(buckets.get(bucket)?, bucket)?;
    let current = trees.objects.get(id.as_slice())?.map(|old| decode_object(&old, key)).transpose()?;
    condition.check(current.as_ref()).map_err(Abort::Abort)?;
    let replaced = trees.place_new(&mut totals, bucket, key, current, noncurrent, record)?;
    buckets.insert(bucket, totals.encode())?;
    Ok(replaced)
}

type PutOutcome = Result<Option<ObjectRecord>, StoreError>;

/// An upload waiting in [`SledIndex::durable_puts`]; its writer holds the
/// key's stripe and reads `outcome` once the group has run.
struct QueuedPut {
    bucket: String,
    key: String,
    record: ObjectRecord,
    condition: WriteCondition,
    noncurrent: Vec<ObjectRecord>,
    outcome: Arc<Mutex<Option<PutOutcome>>>,
}

impl QueuedPut {
    fn settle(&self, outcome: PutOutcome) {
        *self.outcome.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(outcome);
    }
}

impl SledIndex {
    /// One group of [`Index::put_object_durably`]: one transaction for
    /// every upload in it, then one flush. An upload refused (a failed
    /// condition, Object Lock) aborts the transaction, since it may have
    /// written part of its change already; it is told why, and the rest
    /// go again without it.
    fn commit_puts(&self, mut batch: Vec<QueuedPut>) {
        while !batch.is_empty() {
            let attempt = (&self.buckets, &self.objects, &self.versions, &self.garbage).transaction(
                |(buckets, objects, versions, garbage)| {
                    let trees = VersionTrees { objects, versions, garbage };
                    let mut replaced = Vec::with_capacity(batch.len());
                    for (n, put) in batch.iter().enumerate() {
                        let old = put_in(
                            buckets,
                            &trees,
                            &put.bucket,
                            &put.key,
                            &put.record,
                            &put.condition,
                            &put.noncurrent,
                        )
                        .map_err(|error| match error {
                            // Which upload was refused, so the rest can go again.
                            ConflictableTransactionError::Abort(error) => {
                                ConflictableTransactionError::Abort((n, error))
                            }
                            ConflictableTransactionError::Conflict => ConflictableTransactionError::Conflict,
                            ConflictableTransactionError::Storage(error) => {
                                ConflictableTransactionError::Storage(error)
                            }
                        })?;
                        replaced.push(old);
                    }
                    Ok(replaced)
                },
            );
            match attempt {
                Ok(replaced) => {
                    failpoint::hit("before-index-flush");
                    let flushed = crate::metrics::timed_sync(|| self.flush()).map_err(|error| error.to_string());
                    for (put, old) in batch.iter().zip(replaced) {
                        put.settle(flushed.clone().map(|()| old).map_err(StoreError::Unflushed));
                    }
                    return;
                }
                Err(TransactionError::Abort((n, error))) => batch.remove(n).settle(Err(error)),
                Err(TransactionError::Storage(error)) => {
                    for put in &batch {
                        put.settle(Err(from_sled(error.clone())));
                    }
                    return;
                }
            }
        }
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("index record for {what} does not decode"))
}

fn from_sled(error: sled::Error) -> StoreError {
    StoreError::Index(error.to_string())
}

fn from_transaction(error: TransactionError<StoreError>) -> StoreError {
    match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => from_sled(error),
    }
}

type Abort = ConflictableTransactionError<StoreError>;

/// Up to `limit` entries of `tree` whose keys start with `prefix`, from `start` on.
fn page(
    tree: &sled::Tree,
    prefix: &[u8],
    start: Bound<Vec<u8>>,
    limit: usize,
) -> Result<Vec<(sled::IVec, sled::IVec)>, StoreError> {
    let mut out = Vec::new();
    for entry in tree.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
        if out.len() >= limit {
            break;
        }
        let (key, value) = entry.map_err(from_sled)?;
        if !key.starts_with(prefix) {
            break;
        }
        out.push((key, value));
    }
    Ok(out)
}

impl SledIndex {
    pub fn open(path: &Path, cache_bytes: u64) -> Result<SledIndex, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(500))
            .open()
            .map_err(from_sled)?;
        let meta = db.open_tree("meta").map_err(from_sled)?;
        let base = match meta.get("sequence-base").map_err(from_sled)? {
            Some(bytes) => u64::from_le_bytes(bytes.as_ref().try_into().map_err(|_| corrupt("the sequence base"))?),
            None => 0,
        };
        Ok(SledIndex {
            buckets: db.open_tree("buckets").map_err(from_sled)?,
            objects: db.open_tree("objects").map_err(from_sled)?,
            versions: db.open_tree("versions").map_err(from_sled)?,
            meta,
            sequence_base: std::sync::atomic::AtomicU64::new(base),
            stripes: (0..64).map(|_| std::sync::Mutex::new(())).collect(),
            durable_puts: GroupCommit::default(),
            garbage: db.open_tree("garbage").map_err(from_sled)?,
            uploads: db.open_tree("uploads").map_err(from_sled)?,
            upload_keys: db.open_tree("upload_keys").map_err(from_sled)?,
            parts: db.open_tree("parts").map_err(from_sled)?,
            completed: db.open_tree("completed").map_err(from_sled)?,
            keys: db.open_tree("keys").map_err(from_sled)?,
            bucket_config: db.open_tree("bucket_config").map_err(from_sled)?,
            files: SledFiles::open(path)?,
            db,
        })
    }
}

impl SledIndex {
    fn stripe(&self, bucket: &str, key: &str) -> std::sync::MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (bucket, key).hash(&mut hasher);
        let stripe = &self.stripes[(hasher.finish() % self.stripes.len() as u64) as usize];
        stripe.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Index for SledIndex {
    fn bucket(&self, name: &str) -> Result<Option<BucketRecord>, StoreError> {
        match self.buckets.get(name).map_err(from_sled)? {
            Some(bytes) => Ok(Some(BucketRecord::decode(&bytes).map_err(|_| corrupt(name))?)),
            None => Ok(None),
        }
    }

    fn buckets(&self) -> Result<Vec<(String, BucketRecord)>, StoreError> {
        self.buckets
            .iter()
            .map(|entry| {
                let (name, value) = entry.map_err(from_sled)?;
                let name = String::from_utf8_lossy(&name).into_owned();
                let record = BucketRecord::decode(&value).map_err(|_| corrupt(&name))?;
                Ok((name, record))
            })
            .collect()
    }

    fn create_bucket(&self, name: &str, created: i64) -> Result<bool, StoreError> {
        let record = BucketRecord::new(created);
        let result = self
            .buckets
            .compare_and_swap(name, None as Option<&[u8]>, Some(&record.encode()[..]))
            .map_err(from_sled)?;
        Ok(result.is_ok())
    }

    fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        let configs: Vec<sled::IVec> = self
            .bucket_config
            .scan_prefix(object_key(name, b""))
            .keys()
            .collect::<Result<_, _>>()
            .map_err(from_sled)?;
        (&self.buckets, &self.bucket_config)
            .transaction(|(buckets, bucket_config)| {
                for config in &configs {
                    bucket_config.remove(config)?;
                }
                let Some(bytes) = buckets.get(name)? else {
                    return Err(Abort::Abort(StoreError::NoSuchBucket));
                };
                let record = BucketRecord::decode(&bytes).map_err(|_| Abort::Abort(corrupt(name)))?;
                if record.objects > 0 {
                    return Err(Abort::Abort(StoreError::BucketNotEmpty));
                }
                buckets.remove(name)?;
                Ok(())
            })
            .map_err(from_transaction)
    }

    fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, StoreError> {
        match self.objects.get(object_key(bucket, key.as_bytes())).map_err(from_sled)? {
            Some(bytes) => Ok(Some(ObjectRecord::decode(&bytes).map_err(|_| corrupt(key))?)),
            None => Ok(None),
        }
    }

    fn set_versioning(&self, bucket: &str, versioning: Versioning, object_lock: bool) -> Result<(), StoreError> {
        self.buckets
            .transaction(|buckets| {
                let mut record = decode_bucket(buckets.get(bucket)?, bucket)?;
                record.versioning = versioning;
                record.object_lock = object_lock;
                buckets.insert(bucket, record.encode())?;
                Ok(())
            })
            .map_err(from_transaction)
    }

    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<Option<ObjectRecord>, StoreError> {
        let _stripe = self.stripe(bucket, key);
        let noncurrent = self.noncurrent(bucket, key)?;
        (&self.buckets, &self.objects, &self.versions, &self.garbage)
            .transaction(|(buckets, objects, versions, garbage)| {
                let trees = VersionTrees { objects, versions, garbage };
                put_in(buckets, &trees, bucket, key, record, condition, &noncurrent)
            })
            .map_err(from_transaction)
    }

    fn put_object_durably(
        &self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<Option<ObjectRecord>, StoreError> {
        // The stripe is held until the group has run: nothing else changes
        // this key's versions between the read below and the transaction.
        let _stripe = self.stripe(bucket, key);
        let noncurrent = self.noncurrent(bucket, key)?;
        let outcome = Arc::new(Mutex::new(None));
        let queued = QueuedPut {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            record: record.clone(),
            condition: condition.clone(),
            noncurrent,
            outcome: outcome.clone(),
        };
        let _ = self.durable_puts.run_with([queued], |batch| {
            self.commit_puts(batch);
            Ok::<(), std::convert::Infallible>(())
        });
        let outcome = outcome.lock().unwrap_or_else(|poison| poison.into_inner()).take();
        outcome.unwrap_or_else(|| Err(StoreError::Index("a grouped index write was not run".into())))
    }

    fn remove_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        guard: &DeleteGuard,
    ) -> Result<Option<ObjectRecord>, StoreError> {
        let _stripe = self.stripe(bucket, key);
        let noncurrent = self.noncurrent(bucket, key)?;
        let id = object_key(bucket, key.as_bytes());
        (&self.buckets, &self.objects, &self.versions, &self.garbage)
            .transaction(|(buckets, objects, versions, garbage)| {
                let mut totals = decode_bucket(buckets.get(bucket)?, bucket)?;
                let current = objects.get(id.as_slice())?.map(|old| decode_object(&old, key)).transpose()?;
                let trees = VersionTrees { objects, versions, garbage };
                let removed = match current {
                    Some(current) if current.version == version => {
                        guard(&current).map_err(Abort::Abort)?;
                        objects.remove(id.as_slice())?;
                        trees.promote(bucket, key, &noncurrent.iter().collect::<Vec<_>>())?;
                        current
                    }
                    current => {
                        let Some(position) = noncurrent.iter().position(|old| old.version == version) else {
                            return Ok(None);
                        };
                        let old = noncurrent[position].clone();
                        guard(&old).map_err(Abort::Abort)?;
                        versions.remove(version_key(bucket, key.as_bytes(), old.sequence))?;
                        if position == 0 && current.is_none() {
                            trees.promote(bucket, key, &noncurrent[1..].iter().collect::<Vec<_>>())?;
                        }
                        old
                    }
                };
                to_garbage(garbage, &removed)?;
                totals.objects = totals.objects.saturating_sub(1);
                totals.bytes = totals.bytes.saturating_sub(removed.size);
                buckets.insert(bucket, totals.encode())?;
                Ok(Some(removed))
            })
            .map_err(from_transaction)
    }

    fn set_lock(&self, bucket: &str, key: &str, sequence: u64, lock: ObjectLock) -> Result<bool, StoreError> {
        let _stripe = self.stripe(bucket, key);
        let (id, version_id) = (object_key(bucket, key.as_bytes()), version_key(bucket, key.as_bytes(), sequence));
        (&self.objects, &self.versions)
            .transaction(|(objects, versions)| {
                for (tree, at) in [(objects, &id), (versions, &version_id)] {
                    let Some(bytes) = tree.get(at.as_slice())? else { continue };
                    let mut record = decode_object(&bytes, key)?;
                    if record.sequence == sequence {
                        record.lock = lock;
                        tree.insert(at.as_slice(), record.encode())?;
                        return Ok(true);
                    }
                }
                Ok(false)
            })
            .map_err(from_transaction)
    }

    fn version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
    ) -> Result<Option<(ObjectRecord, bool)>, StoreError> {
        if let Some(current) = self.object(bucket, key)?.filter(|current| current.version == version) {
            return Ok(Some((current, true)));
        }
        let found = match version {
            // A version id holds its sequence: one lookup.
            Some(id) => {
                match self.versions.get(version_key(bucket, key.as_bytes(), id.sequence())).map_err(from_sled)? {
                    Some(bytes) => Some(ObjectRecord::decode(&bytes).map_err(|_| corrupt(key))?)
                        .filter(|record| record.version == version),
                    None => None,
                }
            }
            None => self.noncurrent(bucket, key)?.into_iter().find(|record| record.version.is_none()),
        };
        // Only an object is ever current; a delete marker never is here.
        Ok(found.map(|found| (found, false)))
    }

    fn noncurrent(&self, bucket: &str, key: &str) -> Result<Vec<ObjectRecord>, StoreError> {
        let mut out = Vec::new();
        for entry in self.versions.scan_prefix(version_prefix(bucket, key.as_bytes())) {
            let (_, value) = entry.map_err(from_sled)?;
            out.push(ObjectRecord::decode(&value).map_err(|_| corrupt(key))?);
        }
        Ok(out)
    }

    fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(&[u8], Option<u64>)>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectRecord, bool)>, StoreError> {
        let prefix_key = object_key(bucket, prefix.as_bytes());
        let after = after.filter(|(key, _)| *key >= prefix.as_bytes());
        let (object_start, version_start) = match after {
            None => (Bound::Included(prefix_key.clone()), Bound::Included(prefix_key.clone())),
            // Past the key's current object; its versions older than `sequence`.
            Some((key, Some(sequence))) => {
                (Bound::Excluded(object_key(bucket, key)), Bound::Excluded(version_key(bucket, key, sequence)))
            }
            // Past every version of the key.
            Some((key, None)) => {
                (Bound::Excluded(object_key(bucket, key)), Bound::Excluded(version_key(bucket, key, 0)))
            }
        };
        let in_prefix = |entry: &Result<(sled::IVec, sled::IVec), sled::Error>| {
            entry.as_ref().map_or(true, |(id, _)| id.starts_with(&prefix_key))
        };
        let mut objects =
            self.objects.range::<Vec<u8>, _>((object_start, Bound::Unbounded)).take_while(in_prefix).peekable();
        let mut versions =
            self.versions.range::<Vec<u8>, _>((version_start, Bound::Unbounded)).take_while(in_prefix).peekable();
        let skip = bucket.len() + 1;
        // Within a page that starts inside a key, that key's latest came before.
        let mut last_key: Option<Vec<u8>> =
            after.filter(|(_, sequence)| sequence.is_some()).map(|(key, _)| key.to_vec());
        let mut out = Vec::new();
        while out.len() < limit {
            let object_key_bytes = match objects.peek() {
                Some(Ok((id, _))) => Some(id[skip..].to_vec()),
                Some(Err(_)) => return Err(from_sled(objects.next().and_then(Result::err).expect("an error"))),
                None => None,
            };
            let version_key_bytes = match versions.peek() {
                Some(Ok((id, _))) => Some(key_of_version(id, bucket).to_vec()),
                Some(Err(_)) => return Err(from_sled(versions.next().and_then(Result::err).expect("an error"))),
                None => None,
            };
            let (key, value) = match (object_key_bytes, version_key_bytes) {
                (None, None) => break,
                // A key's current object sorts before its other versions.
                (Some(object), Some(version)) if object <= version => (object, objects.next()),
                (Some(object), None) => (object, objects.next()),
                (_, Some(version)) => (version, versions.next()),
            };
            let (_, value) = value.expect("peeked").map_err(from_sled)?;
            let name = String::from_utf8_lossy(&key).into_owned();
            let record = ObjectRecord::decode(&value).map_err(|_| corrupt(&name))?;
            let latest = last_key.as_deref() != Some(key.as_slice());
            last_key = Some(key);
            out.push((name, record, latest));
        }
        Ok(out)
    }

    fn place_version(
        &self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
    ) -> Result<Option<Option<ObjectRecord>>, StoreError> {
        let _stripe = self.stripe(bucket, key);
        let noncurrent = self.noncurrent(bucket, key)?;
        let id = object_key(bucket, key.as_bytes());
        (&self.buckets, &self.objects, &self.versions, &self.garbage)
            .transaction(|(buckets, objects, versions, garbage)| {
                let mut totals = decode_bucket(buckets.get(bucket)?, bucket)?;
                let current = objects.get(id.as_slice())?.map(|old| decode_object(&old, key)).transpose()?;
                let trees = VersionTrees { objects, versions, garbage };
                let placed = trees.place(&mut totals, bucket, key, current, &noncurrent, record)?;
                if placed.is_some() {
                    buckets.insert(bucket, totals.encode())?;
                }
                Ok(placed)
            })
            .map_err(from_transaction)
    }

    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectRecord)>, StoreError> {
        let prefix_key = object_key(bucket, prefix.as_bytes());
        let start = match after {
            Some(after) if after >= prefix.as_bytes() => Bound::Excluded(object_key(bucket, after)),
            _ => Bound::Included(prefix_key.clone()),
        };
        let skip = bucket.len() + 1;
        let mut out = Vec::new();
        for (id, value) in page(&self.objects, &prefix_key, start, limit)? {
            let key = String::from_utf8_lossy(&id[skip..]).into_owned();
            let record = ObjectRecord::decode(&value).map_err(|_| corrupt(&key))?;
            out.push((key, record));
        }
        Ok(out)
    }

    fn create_upload(&self, id: BlobId, record: &UploadRecord) -> Result<(), StoreError> {
        let position = upload_position(&record.bucket, record, id);
        let value = record.encode();
        (&self.uploads, &self.upload_keys)
            .transaction(|(uploads, upload_keys)| {
                uploads.insert(&id.0[..], value.as_slice())?;
                upload_keys.insert(position.as_slice(), &id.0[..])?;
                Ok(())
            })
            .map_err(from_transaction)
    }

    fn upload(&self, id: BlobId) -> Result<Option<UploadRecord>, StoreError> {
        match self.uploads.get(id.0).map_err(from_sled)? {
            Some(bytes) => Ok(Some(UploadRecord::decode(&bytes).map_err(|_| corrupt("an upload"))?)),
            None => Ok(None),
        }
    }

    fn uploads(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, BlobId, UploadRecord)>, StoreError> {
        let prefix_key = object_key(bucket, prefix.as_bytes());
        let start = match after {
            Some(after) if after >= prefix_key.as_slice() => Bound::Excluded(after.to_vec()),
            _ => Bound::Included(prefix_key.clone()),
        };
        let mut out = Vec::new();
        for (position, id) in page(&self.upload_keys, &prefix_key, start, limit)? {
            let id = BlobId(id.as_ref().try_into().map_err(|_| corrupt("an upload key"))?);
            if let Some(record) = self.upload(id)? {
                out.push((position.to_vec(), id, record));
            }
        }
        Ok(out)
    }

    fn uploads_started_before(&self, before: i64) -> Result<Vec<BlobId>, StoreError> {
        let mut out = Vec::new();
        for entry in self.uploads.iter() {
            let (id, value) = entry.map_err(from_sled)?;
            let record = UploadRecord::decode(&value).map_err(|_| corrupt("an upload"))?;
            if record.created < before {
                out.push(BlobId(id.as_ref().try_into().map_err(|_| corrupt("an upload id"))?));
            }
        }
        Ok(out)
    }

    fn put_part(&self, id: BlobId, number: u32, part: &PartRecord) -> Result<Option<PartRecord>, StoreError> {
        let value = part.encode();
        (&self.uploads, &self.parts, &self.garbage)
            .transaction(|(uploads, parts, garbage)| {
                if uploads.get(&id.0[..])?.is_none() {
                    return Err(Abort::Abort(StoreError::NoSuchUpload));
                }
                match parts.insert(&part_key(id, number)[..], value.as_slice())? {
                    Some(old) => {
                        let old = PartRecord::decode(&old).map_err(|_| Abort::Abort(corrupt("a part")))?;
                        garbage.insert(&old.blob.0[..], &[][..])?;
                        Ok(Some(old))
                    }
                    None => Ok(None),
                }
            })
            .map_err(from_transaction)
    }

    fn part(&self, id: BlobId, number: u32) -> Result<Option<PartRecord>, StoreError> {
        match self.parts.get(part_key(id, number)).map_err(from_sled)? {
            Some(bytes) => Ok(Some(PartRecord::decode(&bytes).map_err(|_| corrupt("a part"))?)),
            None => Ok(None),
        }
    }

    fn parts(&self, id: BlobId, after: u32, limit: usize) -> Result<Vec<(u32, PartRecord)>, StoreError> {
        let start = part_key(id, after.saturating_add(1));
        let mut out = Vec::new();
        for entry in self.parts.range(start..) {
            if out.len() >= limit {
                break;
            }
            let (key, value) = entry.map_err(from_sled)?;
            if key[..16] != id.0 {
                break;
            }
            let number = u32::from_be_bytes(key[16..].try_into().map_err(|_| corrupt("a part key"))?);
            out.push((number, PartRecord::decode(&value).map_err(|_| corrupt("a part"))?));
        }
        Ok(out)
    }

    fn complete_upload(
        &self,
        id: BlobId,
        record: &ObjectRecord,
        completed: &CompletedRecord,
        condition: &WriteCondition,
    ) -> Result<Option<ObjectRecord>, StoreError> {
        let upload = self.upload(id)?.ok_or(StoreError::NoSuchUpload)?;
        let all_parts = self.parts(id, 0, usize::MAX)?;
        let kept: std::collections::HashSet<BlobId> = record.parts.iter().map(|part| part.blob).collect();
        // The caller chose the parts from an earlier read; a part replaced
        // since then must not be completed (its blob is on its way out).
        if !kept.iter().all(|blob| all_parts.iter().any(|(_, part)| part.blob == *blob)) {
            return Err(StoreError::InvalidPart);
        }
        let position = upload_position(&upload.bucket, &upload, id);
        let object_id = object_key(&upload.bucket, upload.key.as_bytes());
        let (bucket, key) = (upload.bucket.as_str(), upload.key.as_str());
        let _stripe = self.stripe(bucket, key);
        let noncurrent = self.noncurrent(bucket, key)?;
        let completed_value = completed.encode();
        let trees = (
            &self.buckets,
            &self.objects,
            &self.versions,
            &self.garbage,
            &self.uploads,
            &self.upload_keys,
            &self.parts,
            &self.completed,
        );
        trees
            .transaction(|(buckets, objects, versions, garbage, uploads, upload_keys, parts, done)| {
                if uploads.remove(&id.0[..])?.is_none() {
                    return Err(Abort::Abort(StoreError::NoSuchUpload));
                }
                let mut totals = decode_bucket(buckets.get(bucket)?, bucket)?;
                let current = objects.get(object_id.as_slice())?.map(|old| decode_object(&old, key)).transpose()?;
                condition.check(current.as_ref()).map_err(Abort::Abort)?;
                let version_trees = VersionTrees { objects, versions, garbage };
                let replaced = version_trees.place_new(&mut totals, bucket, key, current, &noncurrent, record)?;
                buckets.insert(bucket, totals.encode())?;
                upload_keys.remove(position.as_slice())?;
                for (number, part) in &all_parts {
                    // A part written again after the read above fails the
                    // completion instead of losing its bytes.
                    match parts.remove(&part_key(id, *number)[..])? {
                        Some(current) if current.as_ref() == part.encode().as_slice() => {}
                        _ => return Err(Abort::Abort(StoreError::InvalidPart)),
                    }
                    if !kept.contains(&part.blob) {
                        garbage.insert(&part.blob.0[..], &[][..])?;
                    }
                }
                done.insert(&id.0[..], completed_value.as_slice())?;
                Ok(replaced)
            })
            .map_err(from_transaction)
    }

    fn abort_upload(&self, id: BlobId) -> Result<Vec<BlobId>, StoreError> {
        let upload = self.upload(id)?.ok_or(StoreError::NoSuchUpload)?;
        let all_parts = self.parts(id, 0, usize::MAX)?;
        let position = upload_position(&upload.bucket, &upload, id);
        (&self.uploads, &self.upload_keys, &self.parts, &self.garbage)
            .transaction(|(uploads, upload_keys, parts, garbage)| {
                if uploads.remove(&id.0[..])?.is_none() {
                    return Err(Abort::Abort(StoreError::NoSuchUpload));
                }
                upload_keys.remove(position.as_slice())?;
                // What is there now goes, even if a part changed since the read.
                let mut removed = Vec::with_capacity(all_parts.len());
                for (number, _) in &all_parts {
                    if let Some(current) = parts.remove(&part_key(id, *number)[..])? {
                        let current = PartRecord::decode(&current).map_err(|_| Abort::Abort(corrupt("a part")))?;
                        garbage.insert(&current.blob.0[..], &[][..])?;
                        removed.push(current.blob);
                    }
                }
                Ok(removed)
            })
            .map_err(from_transaction)
    }

    fn drop_leftover_parts(&self, id: BlobId) -> Result<Vec<BlobId>, StoreError> {
        let mut dropped = Vec::new();
        for (number, part) in self.parts(id, 0, usize::MAX)? {
            (&self.parts, &self.garbage)
                .transaction(|(parts, garbage)| {
                    parts.remove(&part_key(id, number)[..])?;
                    garbage.insert(&part.blob.0[..], &[][..])?;
                    Ok(())
                })
                .map_err(from_transaction)?;
            dropped.push(part.blob);
        }
        Ok(dropped)
    }

    fn completed(&self, id: BlobId) -> Result<Option<CompletedRecord>, StoreError> {
        match self.completed.get(id.0).map_err(from_sled)? {
            Some(bytes) => Ok(Some(CompletedRecord::decode(&bytes).map_err(|_| corrupt("a completed upload"))?)),
            None => Ok(None),
        }
    }

    fn forget_completed_before(&self, before: i64) -> Result<(), StoreError> {
        for entry in self.completed.iter() {
            let (id, value) = entry.map_err(from_sled)?;
            let record = CompletedRecord::decode(&value).map_err(|_| corrupt("a completed upload"))?;
            if record.completed < before {
                self.completed.remove(id).map_err(from_sled)?;
            }
        }
        Ok(())
    }

    fn bucket_config(&self, bucket: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.bucket_config.get(object_key(bucket, name.as_bytes())).map_err(from_sled)?.map(|v| v.to_vec()))
    }

    fn set_bucket_config(&self, bucket: &str, name: &str, document: Option<&[u8]>) -> Result<(), StoreError> {
        let id = object_key(bucket, name.as_bytes());
        (&self.buckets, &self.bucket_config)
            .transaction(|(buckets, configs)| {
                if buckets.get(bucket)?.is_none() {
                    return Err(Abort::Abort(StoreError::NoSuchBucket));
                }
                match document {
                    Some(document) => configs.insert(id.as_slice(), document)?,
                    None => configs.remove(id.as_slice())?,
                };
                Ok(())
            })
            .map_err(from_transaction)
    }

    fn named_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.keys
            .iter()
            .map(|entry| {
                let (name, document) = entry.map_err(from_sled)?;
                Ok((String::from_utf8_lossy(&name).into_owned(), document.to_vec()))
            })
            .collect()
    }

    fn bucket_configs(&self) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for entry in self.bucket_config.iter() {
            let (id, document) = entry.map_err(from_sled)?;
            // `bucket \0 name`, as `object_key` writes it.
            if let Some(split) = id.iter().position(|byte| *byte == 0) {
                let bucket = String::from_utf8_lossy(&id[..split]).into_owned();
                let name = String::from_utf8_lossy(&id[split + 1..]).into_owned();
                out.push((bucket, name, document.to_vec()));
            }
        }
        Ok(out)
    }

    fn keys(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.keys.iter().values().map(|value| value.map(|v| v.to_vec()).map_err(from_sled)).collect()
    }

    fn put_key(&self, access_key: &str, document: &[u8]) -> Result<(), StoreError> {
        self.keys.insert(access_key, document).map_err(from_sled)?;
        Ok(())
    }

    fn delete_key(&self, access_key: &str) -> Result<bool, StoreError> {
        Ok(self.keys.remove(access_key).map_err(from_sled)?.is_some())
    }

    fn update_key(
        &self,
        access_key: &str,
        change: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        loop {
            let Some(current) = self.keys.get(access_key).map_err(from_sled)? else { return Ok(None) };
            let Some(changed) = change(&current) else { return Ok(None) };
            let swapped =
                self.keys.compare_and_swap(access_key, Some(&current), Some(changed.as_slice())).map_err(from_sled)?;
            if swapped.is_ok() {
                return Ok(Some(changed));
            }
        }
    }

    fn garbage(&self) -> Result<Vec<BlobId>, StoreError> {
        self.garbage
            .iter()
            .keys()
            .map(|key| {
                let key = key.map_err(from_sled)?;
                let bytes: [u8; 16] = key.as_ref().try_into().map_err(|_| corrupt("a garbage entry"))?;
                Ok(BlobId(bytes))
            })
            .collect()
    }

    fn forget_garbage(&self, blob: BlobId) -> Result<(), StoreError> {
        self.garbage.remove(blob.0).map_err(from_sled)?;
        Ok(())
    }

    fn next_sequence(&self) -> Result<u64, StoreError> {
        let base = self.sequence_base.load(std::sync::atomic::Ordering::SeqCst);
        Ok(base + self.db.generate_id().map_err(from_sled)?)
    }

    fn note(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(format!("note/{name}")).map_err(from_sled)?.map(|bytes| bytes.to_vec()))
    }

    fn set_note(&self, name: &str, document: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(format!("note/{name}"), document).map_err(from_sled)?;
        Ok(())
    }

    fn raise_sequence(&self, seen: u64) -> Result<(), StoreError> {
        if self.next_sequence()? > seen {
            return Ok(());
        }
        let base = seen + 1;
        self.meta.insert("sequence-base", &base.to_le_bytes()[..]).map_err(from_sled)?;
        self.sequence_base.store(base, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(from_sled)?;
        self.files.sync()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::{BlobId, ObjectLock, ObjectMeta};

    fn record(sequence: u64, etag: &str) -> ObjectRecord {
        ObjectRecord {
            blob: BlobId::random(),
            size: 10,
            etag: etag.to_owned(),
            last_modified: 0,
            sequence,
            version: None,
            delete_marker: false,
            lock: ObjectLock::default(),
            full_object_checksum: false,
            checksum: None,
            meta: ObjectMeta::default(),
            parts: Vec::new(),
        }
    }

    fn queued(
        key: &str,
        record: ObjectRecord,
        condition: WriteCondition,
    ) -> (QueuedPut, Arc<Mutex<Option<PutOutcome>>>) {
        let outcome = Arc::new(Mutex::new(None));
        let put = QueuedPut {
            bucket: "bucket".into(),
            key: key.into(),
            record,
            condition,
            noncurrent: Vec::new(),
            outcome: outcome.clone(),
        };
        (put, outcome)
    }

    fn with_index(test: impl FnOnce(&SledIndex)) {
        let dir = std::env::temp_dir().join(format!("larder-index-test-{}", BlobId::random().to_hex()));
        {
            let index = SledIndex::open(&dir, 1 << 20).unwrap();
            index.create_bucket("bucket", 0).unwrap();
            test(&index);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A group whose middle upload is refused: that one hears why, the
    /// others are committed (in one transaction, run again without it),
    /// and the bucket's counts hold exactly what was committed.
    #[test]
    fn a_refused_upload_leaves_its_group_committed() {
        with_index(|index| {
            index.put_object("bucket", "b", &record(1, "old"), &WriteCondition::None).unwrap();
            let (first, first_outcome) = queued("a", record(2, "a"), WriteCondition::None);
            let (refused, refused_outcome) = queued("b", record(3, "b"), WriteCondition::Absent);
            let (last, last_outcome) = queued("c", record(4, "c"), WriteCondition::None);
            index.commit_puts(vec![first, refused, last]);
            let outcome = |slot: &Arc<Mutex<Option<PutOutcome>>>| slot.lock().unwrap().take().expect("settled");
            assert!(matches!(outcome(&first_outcome), Ok(None)));
            assert!(matches!(outcome(&refused_outcome), Err(StoreError::PreconditionFailed)));
            assert!(matches!(outcome(&last_outcome), Ok(None)));
            assert_eq!(index.object("bucket", "a").unwrap().unwrap().etag, "a");
            assert_eq!(index.object("bucket", "b").unwrap().unwrap().etag, "old", "the refused upload changed nothing");
            assert_eq!(index.object("bucket", "c").unwrap().unwrap().etag, "c");
            let totals = index.bucket("bucket").unwrap().unwrap();
            assert_eq!((totals.objects, totals.bytes), (3, 30));
        });
    }

    /// Uploads from many threads at once, each to its own key and one
    /// refused: every writer gets its own answer, and the counts add up.
    #[test]
    fn concurrent_durable_puts_each_get_their_own_answer() {
        with_index(|index| {
            index.put_object("bucket", "taken", &record(1, "old"), &WriteCondition::None).unwrap();
            std::thread::scope(|scope| {
                for n in 0..16u64 {
                    scope.spawn(move || {
                        let (key, condition) = if n == 7 {
                            ("taken".to_owned(), WriteCondition::Absent)
                        } else {
                            (format!("k{n}"), WriteCondition::None)
                        };
                        let outcome = index.put_object_durably("bucket", &key, &record(10 + n, &key), &condition);
                        if n == 7 {
                            assert!(matches!(outcome, Err(StoreError::PreconditionFailed)), "{outcome:?}");
                        } else {
                            assert!(matches!(outcome, Ok(None)), "{outcome:?}");
                        }
                    });
                }
            });
            for n in (0..16).filter(|&n| n != 7) {
                assert_eq!(index.object("bucket", &format!("k{n}")).unwrap().unwrap().etag, format!("k{n}"));
            }
            let totals = index.bucket("bucket").unwrap().unwrap();
            assert_eq!((totals.objects, totals.bytes), (16, 160));
        });
    }
}

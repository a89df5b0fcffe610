//! The index as the store uses it: sled, kept writable through a full disk.
//!
//! Once sled fails to write its log (a full disk, an I/O error), it refuses
//! every later write until it is opened again. [`ReopeningIndex`] notes the
//! first such failure (the store is then *degraded*: `/health` says why,
//! reads go on from sled's pages, writes are refused at once) and
//! [`ReopeningIndex::reopen`] replaces the failed sled with one opened from
//! what is on disk, which is everything that was acknowledged.
//!
//! A disk filled by someone else must not stop a DELETE from freeing space,
//! and a delete needs a little room in sled's log: a reserve file of
//! [`RESERVE_BYTES`] is kept beside the index, and let go before an index
//! write that might not otherwise fit.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock, RwLockReadGuard};

use super::index::{Index, SledIndex};
use super::record::{
    BlobId, BucketRecord, CompletedRecord, ObjectLock, ObjectRecord, PartRecord, UploadRecord, VersionId, Versioning,
};
use super::DeleteGuard;
use super::{StoreError, WriteCondition};

/// Room kept for the index's own writes on a full disk.
pub const RESERVE_BYTES: u64 = 8 * 1024 * 1024;

pub struct ReopeningIndex {
    dir: PathBuf,
    cache_bytes: u64,
    /// `None` only between dropping a failed sled and opening it again.
    current: RwLock<Option<SledIndex>>,
    /// Why writes are refused, since the first write sled could not make.
    failure: Mutex<Option<String>>,
    reserve: PathBuf,
}

impl ReopeningIndex {
    pub fn open(dir: &Path, reserve: PathBuf, cache_bytes: u64) -> Result<ReopeningIndex, StoreError> {
        let index = SledIndex::open(dir, cache_bytes)?;
        Ok(ReopeningIndex {
            dir: dir.to_path_buf(),
            cache_bytes,
            current: RwLock::new(Some(index)),
            failure: Mutex::new(None),
            reserve,
        })
    }

    /// Why writes are refused, if they are.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap_or_else(|poison| poison.into_inner()).clone()
    }

    /// Drops a failed sled and opens it again from disk; clears the failure
    /// if that works. Waits for operations under way.
    pub fn reopen(&self) -> Result<(), StoreError> {
        let mut current = self.current.write().unwrap_or_else(|poison| poison.into_inner());
        // sled's lock on its files goes with the last handle: the old one
        // is dropped before the new one opens.
        current.take();
        let index = SledIndex::open(&self.dir, self.cache_bytes)?;
        *current = Some(index);
        *self.failure.lock().unwrap_or_else(|poison| poison.into_inner()) = None;
        Ok(())
    }

    /// Bytes free where the index is.
    pub fn room(&self) -> u64 {
        fs2::available_space(&self.dir).unwrap_or(u64::MAX)
    }

    /// Sets the reserve file aside when there is room for it and beyond.
    pub fn keep_reserve(&self, free: u64, margin: u64) {
        if self.reserve.exists() || free < margin.saturating_add(RESERVE_BYTES) {
            return;
        }
        let made = fs::File::create(&self.reserve).and_then(|file| {
            fs2::FileExt::allocate(&file, RESERVE_BYTES)?;
            file.sync_all()
        });
        if let Err(error) = made {
            tracing::warn!(%error, "could not set aside room for the index");
            let _ = fs::remove_file(&self.reserve);
        }
    }

    fn current(&self) -> Result<RwLockReadGuard<'_, Option<SledIndex>>, StoreError> {
        let current = self.current.read().unwrap_or_else(|poison| poison.into_inner());
        if current.is_none() {
            return Err(StoreError::Degraded(self.failure().unwrap_or_else(|| "the index is closed".into())));
        }
        Ok(current)
    }

    /// A lookup. sled serves it from its pages, but tidying a page as it
    /// reads may need a write: while degraded such a read is refused as the
    /// writes are (503, which clients retry), not failed.
    fn read<T>(&self, op: impl FnOnce(&SledIndex) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let current = self.current()?;
        match op(current.as_ref().expect("checked by current()")) {
            Err(StoreError::Index(message)) if self.failure().is_some() => Err(StoreError::Degraded(message)),
            other => other,
        }
    }

    /// A change to the index: refused while degraded; a failure of sled's
    /// makes the store degraded.
    fn write<T>(&self, op: impl FnOnce(&SledIndex) -> Result<T, StoreError>) -> Result<T, StoreError> {
        if let Some(failure) = self.failure() {
            return Err(StoreError::Degraded(failure));
        }
        self.make_room();
        let current = self.current()?;
        match op(current.as_ref().expect("checked by current()")) {
            Err(StoreError::Index(message)) => Err(self.fail(message)),
            Err(StoreError::Io(error)) => Err(self.fail(error.to_string())),
            other => other,
        }
    }

    fn fail(&self, message: String) -> StoreError {
        StoreError::Degraded(self.note_failure(message))
    }

    /// Notes the first write that failed (reads only from then on) and
    /// returns why writes are refused.
    fn note_failure(&self, message: String) -> String {
        let mut failure = self.failure.lock().unwrap_or_else(|poison| poison.into_inner());
        if failure.is_none() {
            tracing::error!(
                error = %message,
                "the index could not write; serving reads only until it can be opened again (free some space)"
            );
            *failure = Some(format!("the index could not write: {message}"));
        }
        failure.clone().unwrap_or_default()
    }

    /// On a nearly full disk, gives the reserve back so the change fits.
    fn make_room(&self) {
        let free = self.room();
        if free < RESERVE_BYTES && fs::remove_file(&self.reserve).is_ok() {
            tracing::warn!(free, "the disk is full: the room set aside for the index is in use");
        }
    }
}

impl Index for ReopeningIndex {
    fn bucket(&self, name: &str) -> Result<Option<BucketRecord>, StoreError> {
        self.read(|index| index.bucket(name))
    }

    fn buckets(&self) -> Result<Vec<(String, BucketRecord)>, StoreError> {
        self.read(|index| index.buckets())
    }

    fn create_bucket(&self, name: &str, created: i64) -> Result<bool, StoreError> {
        self.write(|index| index.create_bucket(name, created))
    }

    fn delete_bucket(&self, name: &str) -> Result<(), StoreError> {
        self.write(|index| index.delete_bucket(name))
    }

    fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, StoreError> {
        self.read(|index| index.object(bucket, key))
    }

    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<Option<ObjectRecord>, StoreError> {
        self.write(|index| index.put_object(bucket, key, record, condition))
    }

    fn put_object_durably(
        &self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<Option<ObjectRecord>, StoreError> {
        match self.write(|index| index.put_object_durably(bucket, key, record, condition)) {
            // A write that failed, as in `write`, but telling the caller
            // that the change may be in the index.
            Err(StoreError::Unflushed(message)) => Err(StoreError::Unflushed(self.note_failure(message))),
            other => other,
        }
    }

    fn set_versioning(&self, bucket: &str, versioning: Versioning, object_lock: bool) -> Result<(), StoreError> {
        self.write(|index| index.set_versioning(bucket, versioning, object_lock))
    }

    fn remove_version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        guard: &DeleteGuard,
    ) -> Result<Option<ObjectRecord>, StoreError> {
        self.write(|index| index.remove_version(bucket, key, version, guard))
    }

    fn set_lock(&self, bucket: &str, key: &str, sequence: u64, lock: ObjectLock) -> Result<bool, StoreError> {
        self.write(|index| index.set_lock(bucket, key, sequence, lock))
    }

    fn version(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
    ) -> Result<Option<(ObjectRecord, bool)>, StoreError> {
        self.read(|index| index.version(bucket, key, version))
    }

    fn noncurrent(&self, bucket: &str, key: &str) -> Result<Vec<ObjectRecord>, StoreError> {
        self.read(|index| index.noncurrent(bucket, key))
    }

    fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(&[u8], Option<u64>)>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectRecord, bool)>, StoreError> {
        self.read(|index| index.list_versions(bucket, prefix, after, limit))
    }

    fn place_version(
        &self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
    ) -> Result<Option<Option<ObjectRecord>>, StoreError> {
        self.write(|index| index.place_version(bucket, key, record))
    }

    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectRecord)>, StoreError> {
        self.read(|index| index.list(bucket, prefix, after, limit))
    }

    fn create_upload(&self, id: BlobId, record: &UploadRecord) -> Result<(), StoreError> {
        self.write(|index| index.create_upload(id, record))
    }

    fn upload(&self, id: BlobId) -> Result<Option<UploadRecord>, StoreError> {
        self.read(|index| index.upload(id))
    }

    fn uploads(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, BlobId, UploadRecord)>, StoreError> {
        self.read(|index| index.uploads(bucket, prefix, after, limit))
    }

    fn uploads_started_before(&self, before: i64) -> Result<Vec<BlobId>, StoreError> {
        self.read(|index| index.uploads_started_before(before))
    }

    fn put_part(&self, id: BlobId, number: u32, part: &PartRecord) -> Result<Option<PartRecord>, StoreError> {
        self.write(|index| index.put_part(id, number, part))
    }

    fn part(&self, id: BlobId, number: u32) -> Result<Option<PartRecord>, StoreError> {
        self.read(|index| index.part(id, number))
    }

    fn parts(&self, id: BlobId, after: u32, limit: usize) -> Result<Vec<(u32, PartRecord)>, StoreError> {
        self.read(|index| index.parts(id, after, limit))
    }

    fn complete_upload(
        &self,
        id: BlobId,
        record: &ObjectRecord,
        completed: &CompletedRecord,
        condition: &WriteCondition,
    ) -> Result<Option<ObjectRecord>, StoreError> {
        self.write(|index| index.complete_upload(id, record, completed, condition))
    }

    fn abort_upload(&self, id: BlobId) -> Result<Vec<BlobId>, StoreError> {
        self.write(|index| index.abort_upload(id))
    }

    fn drop_leftover_parts(&self, id: BlobId) -> Result<Vec<BlobId>, StoreError> {
        self.write(|index| index.drop_leftover_parts(id))
    }

    fn completed(&self, id: BlobId) -> Result<Option<CompletedRecord>, StoreError> {
        self.read(|index| index.completed(id))
    }

    fn forget_completed_before(&self, before: i64) -> Result<(), StoreError> {
        self.write(|index| index.forget_completed_before(before))
    }

    fn garbage(&self) -> Result<Vec<BlobId>, StoreError> {
        self.read(|index| index.garbage())
    }

    fn bucket_config(&self, bucket: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|index| index.bucket_config(bucket, name))
    }

    fn set_bucket_config(&self, bucket: &str, name: &str, document: Option<&[u8]>) -> Result<(), StoreError> {
        self.write(|index| index.set_bucket_config(bucket, name, document))
    }

    fn keys(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(|index| index.keys())
    }

    fn named_keys(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.read(|index| index.named_keys())
    }

    fn bucket_configs(&self) -> Result<Vec<(String, String, Vec<u8>)>, StoreError> {
        self.read(|index| index.bucket_configs())
    }

    fn put_key(&self, access_key: &str, document: &[u8]) -> Result<(), StoreError> {
        self.write(|index| index.put_key(access_key, document))
    }

    fn delete_key(&self, access_key: &str) -> Result<bool, StoreError> {
        self.write(|index| index.delete_key(access_key))
    }

    fn update_key(
        &self,
        access_key: &str,
        change: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.write(|index| index.update_key(access_key, change))
    }

    fn forget_garbage(&self, blob: BlobId) -> Result<(), StoreError> {
        self.write(|index| index.forget_garbage(blob))
    }

    fn next_sequence(&self) -> Result<u64, StoreError> {
        self.write(|index| index.next_sequence())
    }

    fn raise_sequence(&self, seen: u64) -> Result<(), StoreError> {
        self.write(|index| index.raise_sequence(seen))
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.write(|index| index.flush())
    }

    fn note(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|index| index.note(name))
    }

    fn set_note(&self, name: &str, document: &[u8]) -> Result<(), StoreError> {
        self.write(|index| index.set_note(name, document))
    }
}

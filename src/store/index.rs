//! The object index: buckets, objects by `bucket \0 key` (ordered, so a
//! listing page costs O(page)), multipart uploads and their parts, and the
//! list of blobs waiting to be removed. [`Index`] is what the store needs; [`SledIndex`] keeps it in
//! sled. Every method blocks: callers run them on the blocking pool.

use std::ops::Bound;
use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::record::{BlobId, BucketRecord, CompletedRecord, ObjectRecord, PartRecord, UploadRecord};
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
    /// Inserts or replaces if `condition` holds (checked in the same
    /// transaction); the replaced record's blob joins the garbage list.
    /// Fails with NoSuchBucket, PreconditionFailed or NoSuchKey.
    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<Option<ObjectRecord>, StoreError>;
    /// Removes; the blob joins the garbage list. Fails with NoSuchBucket.
    fn delete_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, StoreError>;
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
    /// Makes every change so far durable.
    fn flush(&self) -> Result<(), StoreError>;
}

pub struct SledIndex {
    db: sled::Db,
    buckets: sled::Tree,
    objects: sled::Tree,
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
        Ok(SledIndex {
            buckets: db.open_tree("buckets").map_err(from_sled)?,
            objects: db.open_tree("objects").map_err(from_sled)?,
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
        let record = BucketRecord { created, objects: 0, bytes: 0 };
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

    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
        condition: &WriteCondition,
    ) -> Result<Option<ObjectRecord>, StoreError> {
        let id = object_key(bucket, key.as_bytes());
        let value = record.encode();
        (&self.buckets, &self.objects, &self.garbage)
            .transaction(|(buckets, objects, garbage)| {
                let Some(bytes) = buckets.get(bucket)? else {
                    return Err(Abort::Abort(StoreError::NoSuchBucket));
                };
                if *condition != WriteCondition::None {
                    let current = match objects.get(id.as_slice())? {
                        Some(old) => Some(ObjectRecord::decode(&old).map_err(|_| Abort::Abort(corrupt(key)))?),
                        None => None,
                    };
                    condition.check(current.as_ref()).map_err(Abort::Abort)?;
                }
                let mut totals = BucketRecord::decode(&bytes).map_err(|_| Abort::Abort(corrupt(bucket)))?;
                let replaced = match objects.insert(id.as_slice(), value.as_slice())? {
                    Some(old) => {
                        let old = ObjectRecord::decode(&old).map_err(|_| Abort::Abort(corrupt(key)))?;
                        for blob in old.blobs() {
                            garbage.insert(&blob.0[..], &[][..])?;
                        }
                        totals.objects -= 1;
                        totals.bytes = totals.bytes.saturating_sub(old.size);
                        Some(old)
                    }
                    None => None,
                };
                totals.objects += 1;
                totals.bytes += record.size;
                buckets.insert(bucket, &totals.encode()[..])?;
                Ok(replaced)
            })
            .map_err(from_transaction)
    }

    fn delete_object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>, StoreError> {
        let id = object_key(bucket, key.as_bytes());
        (&self.buckets, &self.objects, &self.garbage)
            .transaction(|(buckets, objects, garbage)| {
                let Some(bytes) = buckets.get(bucket)? else {
                    return Err(Abort::Abort(StoreError::NoSuchBucket));
                };
                let Some(old) = objects.remove(id.as_slice())? else {
                    return Ok(None);
                };
                let old = ObjectRecord::decode(&old).map_err(|_| Abort::Abort(corrupt(key)))?;
                let mut totals = BucketRecord::decode(&bytes).map_err(|_| Abort::Abort(corrupt(bucket)))?;
                totals.objects = totals.objects.saturating_sub(1);
                totals.bytes = totals.bytes.saturating_sub(old.size);
                buckets.insert(bucket, &totals.encode()[..])?;
                for blob in old.blobs() {
                    garbage.insert(&blob.0[..], &[][..])?;
                }
                Ok(Some(old))
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
        let value = record.encode();
        let completed_value = completed.encode();
        let trees = (
            &self.buckets,
            &self.objects,
            &self.garbage,
            &self.uploads,
            &self.upload_keys,
            &self.parts,
            &self.completed,
        );
        trees
            .transaction(|(buckets, objects, garbage, uploads, upload_keys, parts, done)| {
                if uploads.remove(&id.0[..])?.is_none() {
                    return Err(Abort::Abort(StoreError::NoSuchUpload));
                }
                let Some(bytes) = buckets.get(bucket)? else {
                    return Err(Abort::Abort(StoreError::NoSuchBucket));
                };
                let current = match objects.get(object_id.as_slice())? {
                    Some(old) => Some(ObjectRecord::decode(&old).map_err(|_| Abort::Abort(corrupt(key)))?),
                    None => None,
                };
                condition.check(current.as_ref()).map_err(Abort::Abort)?;
                let mut totals = BucketRecord::decode(&bytes).map_err(|_| Abort::Abort(corrupt(bucket)))?;
                if let Some(old) = &current {
                    for blob in old.blobs() {
                        garbage.insert(&blob.0[..], &[][..])?;
                    }
                    totals.objects -= 1;
                    totals.bytes = totals.bytes.saturating_sub(old.size);
                }
                objects.insert(object_id.as_slice(), value.as_slice())?;
                totals.objects += 1;
                totals.bytes += record.size;
                buckets.insert(bucket, &totals.encode()[..])?;
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
                Ok(current)
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
        self.db.generate_id().map_err(from_sled)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(from_sled)?;
        self.files.sync()?;
        Ok(())
    }
}

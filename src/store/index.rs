//! The object index: buckets, objects by `bucket \0 key` (ordered, so a
//! listing page costs O(page)), and the list of blobs waiting to be
//! removed. [`Index`] is what the store needs; [`SledIndex`] keeps it in
//! sled. Every method blocks: callers run them on the blocking pool.

use std::ops::Bound;
use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::record::{BlobId, BucketRecord, ObjectRecord};
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
    fn garbage(&self) -> Result<Vec<BlobId>, StoreError>;
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
        self.buckets
            .transaction(|buckets| {
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
                        garbage.insert(&old.blob.0[..], &[][..])?;
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
                garbage.insert(&old.blob.0[..], &[][..])?;
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
        for entry in self.objects.range::<Vec<u8>, _>((start, Bound::Unbounded)) {
            if out.len() >= limit {
                break;
            }
            let (id, value) = entry.map_err(from_sled)?;
            if !id.starts_with(&prefix_key) {
                break;
            }
            let key = String::from_utf8_lossy(&id[skip..]).into_owned();
            let record = ObjectRecord::decode(&value).map_err(|_| corrupt(&key))?;
            out.push((key, record));
        }
        Ok(out)
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
        Ok(())
    }
}

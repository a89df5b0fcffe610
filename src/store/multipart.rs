//! Multipart uploads in the store: each part is its own blob; completing
//! writes a small manifest blob and one index transaction, so it costs
//! work in proportion to the number of parts, never to the bytes.

use std::collections::HashMap;
use std::fs;
use std::io::BufWriter;

use sha2::{Digest, Sha256};

use crate::checksum::{Checksum, ChecksumAlgorithm, ChecksumHasher, DigestSet};
use crate::timefmt;

use super::blob;
use super::index::{upload_position, Index};
use super::record::{
    BlobId, CompletedRecord, Footer, ObjectLock, ObjectMeta, ObjectRecord, PartRecord, PartRef, UploadRecord,
};
use super::upload::{Target, Upload};
use super::{blocking, DigestKind, Inner, Store, StoreError, WriteCondition};

/// Every part but the last must be at least this large.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Part numbers run from 1 to this.
pub const MAX_PART_NUMBER: u32 = 10_000;
/// How long a completed upload is remembered for a repeated Complete.
const COMPLETED_MEMORY_SECS: i64 = 24 * 3600;

/// A part as CompleteMultipartUpload names it.
#[derive(Debug, Clone)]
pub struct CompletedPart {
    pub number: u32,
    /// Unquoted.
    pub etag: String,
    pub checksum: Option<Checksum>,
}

fn parts_digest(parts: &[CompletedPart]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(format!("{}:{}\n", part.number, part.etag).as_bytes());
    }
    hasher.finalize().into()
}

/// `"<md5 of the part MD5s>-<count>"`, unquoted.
fn multipart_etag(parts: &[&PartRecord]) -> String {
    let mut md5 = crate::checksum::Md5::new();
    for part in parts {
        let mut bytes = [0u8; 16];
        if hex::decode_to_slice(&part.etag, &mut bytes).is_ok() {
            md5.update(&bytes);
        }
    }
    format!("{}-{}", hex::encode(md5.finalize()), parts.len())
}

/// The checksum of the parts' checksums (S3's COMPOSITE type). CRC64NVME
/// is full-object only in S3, so a multipart object gets none.
/// The whole object's checksum from its parts' (S3's FULL_OBJECT type,
/// for the CRCs), combined without reading the bytes again.
fn full_object_checksum(algorithm: Option<ChecksumAlgorithm>, parts: &[&PartRecord]) -> Option<Checksum> {
    let algorithm = algorithm?;
    let mut whole: Option<Checksum> = None;
    for part in parts {
        let checksum = part.checksum.as_ref().filter(|c| c.algorithm == algorithm)?;
        whole = Some(match whole {
            None => checksum.clone(),
            Some(before) => crate::checksum::combine(&before, checksum, part.size)?,
        });
    }
    whole
}

fn composite_checksum(algorithm: Option<ChecksumAlgorithm>, parts: &[&PartRecord]) -> Option<Checksum> {
    let algorithm = algorithm.filter(|a| *a != ChecksumAlgorithm::Crc64Nvme)?;
    let mut hasher = ChecksumHasher::new(algorithm);
    for part in parts {
        let checksum = part.checksum.as_ref().filter(|c| c.algorithm == algorithm)?;
        hasher.update(&checksum.digest);
    }
    Some(hasher.finish())
}

impl Inner {
    /// The upload `id` of `bucket/key`; NoSuchUpload otherwise.
    fn upload_of(&self, id: BlobId, bucket: &str, key: &str) -> Result<UploadRecord, StoreError> {
        match self.index.upload(id)? {
            Some(upload) if upload.bucket == bucket && upload.key == key => Ok(upload),
            _ => Err(StoreError::NoSuchUpload),
        }
    }
}

impl Store {
    pub async fn create_upload(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        checksum_algorithm: Option<ChecksumAlgorithm>,
        full_object_checksum: bool,
        lock: ObjectLock,
    ) -> Result<BlobId, StoreError> {
        let inner = self.inner.clone();
        let record = UploadRecord {
            bucket: bucket.to_string(),
            key: key.to_string(),
            created: timefmt::now(),
            checksum_algorithm,
            meta,
            lock,
            full_object_checksum,
        };
        blocking(move || {
            if inner.index.bucket(&record.bucket)?.is_none() {
                return Err(StoreError::NoSuchBucket);
            }
            let id = BlobId::random();
            inner.index.create_upload(id, &record)?;
            inner.commit_index()?;
            Ok(id)
        })
        .await
    }

    pub async fn upload(&self, id: BlobId, bucket: &str, key: &str) -> Result<UploadRecord, StoreError> {
        let inner = self.inner.clone();
        let (bucket, key) = (bucket.to_string(), key.to_string());
        blocking(move || inner.upload_of(id, &bucket, &key)).await
    }

    /// Starts writing part `number` of upload `id`; fails at once if the
    /// upload does not exist.
    pub async fn begin_part(
        &self,
        id: BlobId,
        bucket: &str,
        key: &str,
        number: u32,
        digests: DigestSet,
    ) -> Result<Upload, StoreError> {
        self.upload(id, bucket, key).await?;
        let target = Target::Part { bucket: bucket.to_string(), key: key.to_string(), upload: id, number };
        Ok(Upload::start(self.inner.clone(), target, digests))
    }

    /// Parts numbered above `after`, at most `limit`.
    pub async fn list_parts(
        &self,
        id: BlobId,
        bucket: &str,
        key: &str,
        after: u32,
        limit: usize,
    ) -> Result<(UploadRecord, Vec<(u32, PartRecord)>), StoreError> {
        let inner = self.inner.clone();
        let (bucket, key) = (bucket.to_string(), key.to_string());
        blocking(move || {
            let upload = inner.upload_of(id, &bucket, &key)?;
            Ok((upload, inner.index.parts(id, after, limit)?))
        })
        .await
    }

    /// Uploads in progress in `bucket` under `prefix`, after the markers.
    pub async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: Option<String>,
        upload_id_marker: Option<BlobId>,
        limit: usize,
    ) -> Result<Vec<(BlobId, UploadRecord)>, StoreError> {
        let inner = self.inner.clone();
        let (bucket, prefix) = (bucket.to_string(), prefix.to_string());
        blocking(move || {
            if inner.index.bucket(&bucket)?.is_none() {
                return Err(StoreError::NoSuchBucket);
            }
            let after = key_marker.map(|key| {
                let marked = upload_id_marker.and_then(|id| inner.index.upload(id).ok().flatten().map(|u| (id, u)));
                match marked {
                    Some((id, upload)) if upload.key == key && upload.bucket == bucket => {
                        upload_position(&bucket, &upload, id)
                    }
                    // Past every upload of the marker key.
                    _ => {
                        let mut position = bucket.as_bytes().to_vec();
                        position.push(0);
                        position.extend_from_slice(key.as_bytes());
                        position.push(0);
                        position.extend_from_slice(&[0xFF; 25]);
                        position
                    }
                }
            });
            let found = inner.index.uploads(&bucket, &prefix, after.as_deref(), limit)?;
            Ok(found.into_iter().map(|(_, id, upload)| (id, upload)).collect())
        })
        .await
    }

    /// Completes upload `id` from `parts` (ascending part numbers with
    /// their ETags). Completing it again with the same parts answers the
    /// same object.
    pub async fn complete_upload(
        &self,
        id: BlobId,
        bucket: &str,
        key: &str,
        parts: Vec<CompletedPart>,
        condition: WriteCondition,
        expected: Option<Checksum>,
    ) -> Result<ObjectRecord, StoreError> {
        let inner = self.inner.clone();
        let (bucket, key) = (bucket.to_string(), key.to_string());
        blocking(move || {
            let digest = parts_digest(&parts);
            let upload = match inner.upload_of(id, &bucket, &key) {
                Ok(upload) => upload,
                Err(StoreError::NoSuchUpload) => {
                    let done = inner.index.completed(id)?;
                    let current = inner.index.object(&bucket, &key)?;
                    return match (done, current) {
                        (Some(done), Some(current))
                            if done.bucket == bucket
                                && done.key == key
                                && done.parts_digest == digest
                                && done.etag == current.etag =>
                        {
                            Ok(current)
                        }
                        _ => Err(StoreError::NoSuchUpload),
                    };
                }
                Err(error) => return Err(error),
            };
            if parts.windows(2).any(|pair| pair[0].number >= pair[1].number) {
                return Err(StoreError::InvalidPartOrder);
            }
            let stored: HashMap<u32, PartRecord> = inner.index.parts(id, 0, usize::MAX)?.into_iter().collect();
            let mut used: Vec<&PartRecord> = Vec::with_capacity(parts.len());
            for part in &parts {
                let record = stored.get(&part.number).ok_or(StoreError::InvalidPart)?;
                if !record.etag.eq_ignore_ascii_case(&part.etag) {
                    return Err(StoreError::InvalidPart);
                }
                if part.checksum.as_ref().is_some_and(|sent| record.checksum.as_ref() != Some(sent)) {
                    return Err(StoreError::InvalidPart);
                }
                used.push(record);
            }
            if used.iter().rev().skip(1).any(|part| part.size < MIN_PART_SIZE) {
                return Err(StoreError::EntityTooSmall);
            }
            let manifest = inner.blob_names.next();
            let sequence = inner.index.next_sequence()?;
            let record = ObjectRecord {
                blob: manifest,
                size: used.iter().map(|part| part.size).sum(),
                etag: multipart_etag(&used),
                last_modified: timefmt::now(),
                sequence,
                version: inner.new_version(&bucket, sequence)?,
                delete_marker: false,
                lock: upload.lock,
                checksum: if upload.full_object_checksum {
                    full_object_checksum(upload.checksum_algorithm, &used)
                } else {
                    composite_checksum(upload.checksum_algorithm, &used)
                },
                full_object_checksum: upload.full_object_checksum,
                meta: upload.meta.clone(),
                parts: used.iter().map(|part| PartRef { blob: part.blob, size: part.size }).collect(),
            };
            // A whole-object checksum the client sent must be the one the parts make.
            if let Some(expected) = &expected {
                if record.full_object_checksum && record.checksum.as_ref() != Some(expected) {
                    return Err(StoreError::DigestMismatch(DigestKind::Checksum(expected.algorithm)));
                }
            }
            let tmp = inner.layout.tmp_path(manifest);
            let file = BufWriter::new(blob::create_tmp(&tmp)?);
            let footer = Footer::Object { bucket: bucket.clone(), key: key.clone(), record: record.clone() };
            // From the rename to the index change (see `recovery::Background`).
            let gate = inner.background.gate();
            let path = match inner.write_blob(manifest, &tmp, file, &footer) {
                Ok(path) => path,
                Err(error) => {
                    let _ = fs::remove_file(&tmp);
                    return Err(error);
                }
            };
            let completed = CompletedRecord {
                bucket,
                key,
                etag: record.etag.clone(),
                parts_digest: digest,
                completed: record.last_modified,
            };
            let replaced = match inner.index.complete_upload(id, &record, &completed, &condition) {
                Ok(replaced) => replaced,
                Err(error) => {
                    let _ = fs::remove_file(&path);
                    return Err(error);
                }
            };
            drop(gate);
            inner.commit_index()?;
            let kept: Vec<BlobId> = record.parts.iter().map(|part| part.blob).collect();
            let leftovers = inner.index.drop_leftover_parts(id)?;
            let unused = stored.values().map(|part| part.blob).filter(|blob| !kept.contains(blob)).chain(leftovers);
            inner.remove_garbage(replaced.map(|old| old.blobs()).unwrap_or_default().into_iter().chain(unused));
            Ok(record)
        })
        .await
    }

    pub async fn abort_upload(&self, id: BlobId, bucket: &str, key: &str) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        let (bucket, key) = (bucket.to_string(), key.to_string());
        blocking(move || {
            inner.upload_of(id, &bucket, &key)?;
            let mut blobs = inner.index.abort_upload(id)?;
            blobs.extend(inner.index.drop_leftover_parts(id)?);
            inner.commit_index()?;
            inner.remove_garbage(blobs);
            Ok(())
        })
        .await
    }

    /// Aborts uploads started more than `max_age_secs` ago; returns how many.
    pub async fn expire_uploads(&self, max_age_secs: i64) -> Result<usize, StoreError> {
        let inner = self.inner.clone();
        blocking(move || {
            let now = timefmt::now();
            let mut expired = 0;
            for id in inner.index.uploads_started_before(now - max_age_secs)? {
                match inner.index.abort_upload(id) {
                    Ok(blobs) => {
                        inner.commit_index()?;
                        inner.remove_garbage(blobs);
                        expired += 1;
                    }
                    Err(StoreError::NoSuchUpload) => {}
                    Err(error) => return Err(error),
                }
            }
            inner.index.forget_completed_before(now - COMPLETED_MEMORY_SECS)?;
            Ok(expired)
        })
        .await
    }
}

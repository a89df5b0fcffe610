//! Startup repair: what a crash can leave behind, and how it goes.

use std::fs;
use std::path::{Path, PathBuf};

use super::blob;
use super::record::{BlobId, Footer};
use super::{fsync_dir_if, Store, StoreError, WriteCondition, CLEAN_SHUTDOWN_MARKER};

impl Store {
    /// Empties `tmp/`, removes blobs on the garbage list and, after an
    /// unclean stop, sweeps unreferenced blobs.
    pub(super) fn recover(&self, new_index: bool) -> Result<(), StoreError> {
        let inner = &self.inner;
        let layout = &inner.layout;
        for entry in fs::read_dir(layout.tmp_dir())? {
            fs::remove_file(entry?.path())?;
        }
        for blob in inner.index.garbage()? {
            inner.remove_garbage_now(blob);
        }
        let marker = layout.root().join(CLEAN_SHUTDOWN_MARKER);
        let clean = marker.exists();
        if clean {
            fs::remove_file(&marker)?;
        }
        if !clean || new_index {
            let sweep = self.sweep_unreferenced_blobs()?;
            if sweep != Sweep::default() {
                tracing::warn!(
                    blobs = sweep.seen,
                    rolled_forward = sweep.rolled_forward,
                    removed = sweep.removed,
                    lost_and_found = sweep.lost_and_found,
                    unreadable = sweep.unreadable,
                    "checked the blobs after an unclean stop"
                );
            }
        }
        fsync_dir_if(inner.durable(), layout.root())?;
        Ok(())
    }

    /// Is the blob `id`, whose footer says `footer`, still referred to?
    fn is_referenced(&self, id: BlobId, footer: &Footer) -> Result<bool, StoreError> {
        let index = &self.inner.index;
        match footer {
            Footer::Object { bucket, key, .. } => {
                Ok(index.object(bucket, key)?.is_some_and(|record| record.blob == id))
            }
            Footer::Part { bucket, key, upload, number, .. } => {
                if index.part(*upload, *number)?.is_some_and(|part| part.blob == id) {
                    return Ok(true);
                }
                Ok(index.object(bucket, key)?.is_some_and(|record| record.parts.iter().any(|part| part.blob == id)))
            }
        }
    }

    /// A blob nothing refers to, after an unclean stop: an upload that
    /// crashed between the rename into `blobs/` and the index update, or an
    /// index update the crash took back. Nothing is deleted on the index's
    /// word alone: a whole single-PUT object newer than what the index holds
    /// for its key (by sequence), or a part its upload still waits for, is
    /// put back into the index; an object of a bucket nobody knows is put
    /// aside. Only a blob the index has something newer for (or a multipart
    /// manifest, whose parts its upload still holds, or a part of an upload
    /// that is gone) is removed.
    fn settle_unreferenced(&self, id: BlobId, footer: Footer) -> Result<Settled, StoreError> {
        let index = &self.inner.index;
        match footer {
            Footer::Object { bucket, key, record } if record.parts.is_empty() && record.blob == id => {
                let current = index.object(&bucket, &key)?;
                if current.as_ref().is_some_and(|current| current.sequence >= record.sequence) {
                    return Ok(Settled::Superseded);
                }
                if !self.restore_bucket(&bucket)? {
                    return Ok(Settled::Orphan);
                }
                let condition = match &current {
                    None => WriteCondition::Absent,
                    Some(current) => WriteCondition::EtagMatches(current.etag.clone()),
                };
                if let Some(replaced) = index.put_object(&bucket, &key, &record, &condition)? {
                    // An older blob of the same key, rolled forward earlier in
                    // this sweep: garbage now.
                    self.inner.index.flush()?;
                    for blob in replaced.blobs() {
                        self.inner.remove_garbage_now(blob);
                    }
                }
                tracing::info!(bucket, key, "an upload the index had lost was rolled forward");
                Ok(Settled::RolledForward)
            }
            Footer::Part { upload, number, record, .. } if record.blob == id => {
                if index.upload(upload)?.is_some() && index.part(upload, number)?.is_none() {
                    index.put_part(upload, number, &record)?;
                    return Ok(Settled::RolledForward);
                }
                Ok(Settled::Superseded)
            }
            Footer::Object { .. } | Footer::Part { .. } => Ok(Settled::Superseded),
        }
    }

    /// Is `bucket` in the index, or (its marker file says it exists, and an
    /// index that lost it) put back?
    fn restore_bucket(&self, bucket: &str) -> Result<bool, StoreError> {
        let index = &self.inner.index;
        if index.bucket(bucket)?.is_some() {
            return Ok(true);
        }
        let Ok(marker) = fs::metadata(self.inner.layout.bucket_marker(bucket)) else { return Ok(false) };
        let created = marker
            .modified()
            .ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |age| i64::try_from(age.as_secs()).unwrap_or(0));
        index.create_bucket(bucket, created)?;
        tracing::info!(bucket, "a bucket the index had lost was put back from its marker file");
        Ok(true)
    }

    /// Walks `blobs/` after an unclean stop (see [`Store::settle_unreferenced`]).
    /// A blob whose footer does not read goes to `lost+found/`; an entry
    /// that cannot be read is reported and skipped, never a reason not to
    /// start.
    fn sweep_unreferenced_blobs(&self) -> Result<Sweep, StoreError> {
        let mut sweep = Sweep::default();
        let lost_and_found = self.inner.layout.root().join(LOST_AND_FOUND);
        let dirs = read_dirs(&self.inner.layout.blobs_dir(), &mut sweep);
        for first in dirs {
            for second in read_dirs(&first, &mut sweep) {
                let entries = match fs::read_dir(&second) {
                    Ok(entries) => entries,
                    Err(error) => {
                        tracing::warn!(dir = %second.display(), %error, "a blob folder does not read; skipped");
                        sweep.unreadable += 1;
                        continue;
                    }
                };
                for entry in entries {
                    let path = match entry {
                        Ok(entry) => entry.path(),
                        Err(error) => {
                            tracing::warn!(dir = %second.display(), %error, "a blob entry does not read; skipped");
                            sweep.unreadable += 1;
                            continue;
                        }
                    };
                    let Some(id) = path.file_name().and_then(|name| name.to_str()).and_then(BlobId::from_hex) else {
                        continue;
                    };
                    sweep.seen += 1;
                    if sweep.seen % 10_000 == 0 {
                        tracing::info!(blobs = sweep.seen, "checking blobs after an unclean stop");
                    }
                    match blob::read_footer(&path) {
                        Ok(Some(footer)) => {
                            if self.is_referenced(id, &footer)? {
                                continue;
                            }
                            match self.settle_unreferenced(id, footer)? {
                                Settled::RolledForward => sweep.rolled_forward += 1,
                                Settled::Superseded => {
                                    fs::remove_file(&path)?;
                                    sweep.removed += 1;
                                }
                                Settled::Orphan => {
                                    put_aside(&path, &lost_and_found, "a blob of a bucket nobody knows")?;
                                    sweep.lost_and_found += 1;
                                }
                            }
                        }
                        Ok(None) => {
                            // Torn or damaged: kept for a person to look at.
                            put_aside(&path, &lost_and_found, "a blob's footer does not read")?;
                            sweep.lost_and_found += 1;
                        }
                        Err(error) => {
                            tracing::warn!(blob = %path.display(), %error, "a blob does not read; skipped");
                            sweep.unreadable += 1;
                        }
                    }
                }
            }
        }
        if sweep.rolled_forward > 0 {
            self.inner.index.flush()?;
        }
        Ok(sweep)
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
}

/// The subfolders of `dir`; one that does not read is reported and skipped.
fn read_dirs(dir: &Path, sweep: &mut Sweep) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "a blob folder does not read; skipped");
            sweep.unreadable += 1;
            return out;
        }
    };
    for entry in entries {
        match entry.and_then(|entry| Ok((entry.file_type()?, entry.path()))) {
            Ok((kind, path)) if kind.is_dir() => out.push(path),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "a blob folder entry does not read; skipped");
                sweep.unreadable += 1;
            }
        }
    }
    out
}

//! Startup repair: what a crash can leave behind, and how it goes.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::blob;
use super::record::{BlobId, Footer};
use super::{fsync_dir_if, Store, StoreError, CLEAN_SHUTDOWN_MARKER};

impl Store {
    /// Empties `tmp/`, removes blobs on the garbage list and, after an
    /// unclean stop, sweeps unreferenced blobs.
    pub(super) fn recover(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        let layout = &inner.layout;
        for entry in fs::read_dir(layout.tmp_dir())? {
            fs::remove_file(entry?.path())?;
        }
        for blob in inner.index.garbage()? {
            inner.remove_garbage_now(blob);
        }
        let marker = layout.root().join(CLEAN_SHUTDOWN_MARKER);
        if marker.exists() {
            fs::remove_file(&marker)?;
        } else {
            let removed = self.sweep_unreferenced_blobs()?;
            if removed > 0 {
                tracing::info!(removed, "removed blobs left unreferenced by an unclean stop");
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

    /// Removes blobs nothing refers to: uploads that crashed between the
    /// rename into `blobs/` and the index update. Blobs whose footer cannot
    /// be read are kept and reported, never deleted.
    fn sweep_unreferenced_blobs(&self) -> Result<u64, StoreError> {
        let mut removed = 0;
        for first in read_dirs(&self.inner.layout.blobs_dir())? {
            for second in read_dirs(&first)? {
                for entry in fs::read_dir(&second)? {
                    let path = entry?.path();
                    let Some(id) = path.file_name().and_then(|name| name.to_str()).and_then(BlobId::from_hex) else {
                        continue;
                    };
                    match blob::read_footer(&path)? {
                        Some(footer) => {
                            if !self.is_referenced(id, &footer)? {
                                fs::remove_file(&path)?;
                                removed += 1;
                            }
                        }
                        None => tracing::warn!(path = %path.display(), "blob without a readable footer; kept"),
                    }
                }
            }
        }
        Ok(removed)
    }
}

fn read_dirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

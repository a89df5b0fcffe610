//! Writing a blob: steps 2 to 6 of the commit protocol (DESIGN.md), for
//! a whole object or one part of a multipart upload. Everything from the
//! first byte written runs in one blocking task fed through a channel, so
//! a client that goes away can never leave a commit half done.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::checksum::MultiHasher;
use crate::timefmt;

use super::blob;
use super::failpoint;
use super::index::Index;
use super::record::{BlobId, Footer, ObjectLock, ObjectMeta, ObjectRecord, PartRecord, VersionId, Versioning};
use super::{fsync_dir_if, ExpectedDigests, Inner, StoreError, WriteCondition};

/// What an upload becomes.
pub(super) enum Target {
    Object { bucket: String, key: String },
    Part { bucket: String, key: String, upload: BlobId, number: u32 },
}

enum Commit {
    Object { meta: Box<ObjectMeta>, condition: WriteCondition, lock: ObjectLock },
    Part,
}

enum Committed {
    Object(Box<ObjectRecord>),
    Part(PartRecord),
}

struct CommitRequest {
    expected: ExpectedDigests,
    commit: Commit,
    reply: oneshot::Sender<Result<Committed, StoreError>>,
}

enum Message {
    /// Body chunks: a full batch (see [`batch_is_full`]) but for the last.
    Data(Vec<Bytes>),
    Commit(Box<CommitRequest>),
    /// Give up; the sender is told once the temporary file is gone.
    Abandon(oneshot::Sender<()>),
}

/// Bodies up to this size are held in memory until the commit and written
/// by one blocking task that finds them already queued: a small PUT then
/// wakes no writer thread per chunk (256 connections hold 16 MiB at most).
const HOLD_UP_TO: u64 = 64 * 1024;

/// Body chunks go to the writer thread this many bytes at a time: one
/// wake-up of the writer per 256 KiB rather than per chunk hyper read
/// (64 KiB or less), and one vectored write of the chunks as they are.
const BATCH: u64 = 256 * 1024;

/// A batch also goes once it holds this many chunks: a client sending
/// one-byte HTTP chunks would otherwise make a batch of 262,144 of them,
/// each a handle on hyper's read buffer.
const BATCH_CHUNKS: usize = 64;

/// Is a batch of `bytes` in `chunks` ready for the writer?
fn batch_is_full(bytes: u64, chunks: usize) -> bool {
    bytes >= BATCH || chunks >= BATCH_CHUNKS
}

/// An upload in progress. Dropping it without committing abandons it:
/// the temporary file (if one was started) is removed and nothing changes.
pub struct Upload {
    state: State,
    failure: Arc<Mutex<Option<StoreError>>>,
}

enum State {
    /// No writer yet: the chunks so far, [`HOLD_UP_TO`] bytes at most.
    Holding { job: Box<Job>, held: Vec<Bytes>, size: u64 },
    Writing {
        sender: mpsc::Sender<Message>,
        /// Chunks not yet sent, not yet a full batch.
        batch: Vec<Bytes>,
        batched: u64,
    },
    /// Between the two, for the moment of the handover.
    Starting,
}

impl Upload {
    pub(super) fn start(inner: Arc<Inner>, target: Target, digests: crate::checksum::DigestSet) -> Upload {
        let failure = Arc::new(Mutex::new(None));
        let job = Job { inner, target, hasher: MultiHasher::new(digests), failure: failure.clone(), abandoned: None };
        Upload { state: State::Holding { job: Box::new(job), held: Vec::new(), size: 0 }, failure }
    }

    fn failed(&self) -> StoreError {
        self.failure
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take()
            .unwrap_or_else(|| StoreError::Io(io::Error::other("the upload writer stopped")))
    }

    /// Starts the writer with `then` already queued for it, the held
    /// chunks becoming the first batch. Only from [`State::Holding`].
    fn start_writer(&mut self, then: Option<Message>) {
        let State::Holding { job, held, size } = std::mem::replace(&mut self.state, State::Starting) else {
            return;
        };
        // One batch queued while the writer works on another (or the
        // held chunks and the commit): three batches in memory at most.
        let (sender, receiver) = mpsc::channel(if then.is_some() { 2 } else { 1 });
        if let Some(message) = then {
            // Room was made just above, and the receiver is not gone
            // before the job runs.
            let _ = sender.try_send(Message::Data(held));
            let _ = sender.try_send(message);
            self.state = State::Writing { sender, batch: Vec::new(), batched: 0 };
        } else {
            self.state = State::Writing { sender, batch: held, batched: size };
        }
        tokio::task::spawn_blocking(move || job.run(receiver));
    }

    pub async fn write(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        if let State::Holding { held, size, .. } = &mut self.state {
            let fits = *size + chunk.len() as u64 <= HOLD_UP_TO;
            *size += chunk.len() as u64;
            held.push(chunk);
            if !fits {
                self.start_writer(None);
                return self.send_batch(false).await;
            }
            return Ok(());
        }
        if let State::Writing { batch, batched, .. } = &mut self.state {
            *batched += chunk.len() as u64;
            batch.push(chunk);
        }
        self.send_batch(false).await
    }

    /// Sends the chunks gathered so far once they make a batch (see
    /// [`batch_is_full`]), or (`all`) whatever there is.
    async fn send_batch(&mut self, all: bool) -> Result<(), StoreError> {
        let chunks = match &mut self.state {
            State::Writing { batch, batched, .. }
                if batch_is_full(*batched, batch.len()) || (all && !batch.is_empty()) =>
            {
                *batched = 0;
                std::mem::take(batch)
            }
            State::Writing { .. } => return Ok(()),
            _ => return Err(self.failed()),
        };
        self.send(Message::Data(chunks)).await
    }

    async fn send(&self, message: Message) -> Result<(), StoreError> {
        match &self.state {
            State::Writing { sender, .. } if sender.send(message).await.is_ok() => Ok(()),
            _ => Err(self.failed()),
        }
    }

    /// Gives the upload up and waits until its temporary file is removed,
    /// so that nothing of it remains once the client hears the error.
    pub async fn abandon(self) {
        // Held chunks were never written anywhere.
        if let State::Writing { sender, .. } = &self.state {
            let (done, gone) = oneshot::channel();
            if sender.send(Message::Abandon(done)).await.is_ok() {
                let _ = gone.await;
            }
        }
    }

    async fn finish(mut self, expected: ExpectedDigests, commit: Commit) -> Result<Committed, StoreError> {
        let (reply, answer) = oneshot::channel();
        let request = Message::Commit(Box::new(CommitRequest { expected, commit, reply }));
        match self.state {
            State::Holding { .. } => self.start_writer(Some(request)),
            State::Writing { .. } | State::Starting => {
                self.send_batch(true).await?;
                self.send(request).await?
            }
        }
        answer.await.unwrap_or_else(|_| Err(self.failed()))
    }

    /// Checks the digests, makes the object durable and visible, and
    /// returns its record. On a digest mismatch nothing is stored.
    pub async fn commit(self, meta: ObjectMeta, expected: ExpectedDigests) -> Result<ObjectRecord, StoreError> {
        self.commit_if(meta, expected, WriteCondition::None).await
    }

    /// [`Upload::commit`], if `condition` holds when the index is updated;
    /// otherwise nothing is stored.
    pub async fn commit_if(
        self,
        meta: ObjectMeta,
        expected: ExpectedDigests,
        condition: WriteCondition,
    ) -> Result<ObjectRecord, StoreError> {
        self.commit_locked(meta, expected, condition, ObjectLock::default()).await
    }

    /// [`Upload::commit_if`], the new version locked with `lock` (Object Lock).
    pub async fn commit_locked(
        self,
        meta: ObjectMeta,
        expected: ExpectedDigests,
        condition: WriteCondition,
        lock: ObjectLock,
    ) -> Result<ObjectRecord, StoreError> {
        match self.finish(expected, Commit::Object { meta: Box::new(meta), condition, lock }).await? {
            Committed::Object(record) => Ok(*record),
            Committed::Part(_) => Err(StoreError::Io(io::Error::other("an object upload committed a part"))),
        }
    }

    /// Commits a part of a multipart upload.
    pub async fn commit_part(self, expected: ExpectedDigests) -> Result<PartRecord, StoreError> {
        match self.finish(expected, Commit::Part).await? {
            Committed::Part(record) => Ok(record),
            Committed::Object(_) => Err(StoreError::Io(io::Error::other("a part upload committed an object"))),
        }
    }
}

struct Job {
    inner: Arc<Inner>,
    target: Target,
    hasher: MultiHasher,
    failure: Arc<Mutex<Option<StoreError>>>,
    abandoned: Option<oneshot::Sender<()>>,
}

impl Job {
    fn run(mut self, mut receiver: mpsc::Receiver<Message>) {
        let id = self.inner.blob_names.next();
        let (inner, failure_slot) = (self.inner.clone(), self.failure.clone());
        let tmp = inner.layout.tmp_path(id);
        let failure = match self.receive(&tmp, &mut receiver) {
            Ok(Some((file, size, request))) => {
                let request = *request;
                match self.commit(id, &tmp, file, size, request.expected, request.commit) {
                    Ok((committed, garbage)) => {
                        let _ = request.reply.send(Ok(committed));
                        inner.remove_garbage_after_answer(garbage);
                        return;
                    }
                    Err(error) => {
                        // Nothing may be left behind once the client hears of it.
                        let _ = fs::remove_file(&tmp);
                        let _ = request.reply.send(Err(error));
                        return;
                    }
                }
            }
            Ok(None) => None,
            Err(error) => Some(error),
        };
        let _ = fs::remove_file(&tmp);
        if let Some(done) = self.abandoned.take() {
            let _ = done.send(());
        }
        if let Some(error) = failure {
            *failure_slot.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(error);
        }
    }

    /// Step 2: stream the body into `tmp/<id>`, hashing as it goes. Returns
    /// `None` if the sender went away without committing.
    #[allow(clippy::type_complexity)]
    fn receive(
        &mut self,
        tmp: &Path,
        receiver: &mut mpsc::Receiver<Message>,
    ) -> Result<Option<(BufWriter<File>, u64, Box<CommitRequest>)>, StoreError> {
        // Body batches reach the file as they are (see `write_all_vectored`):
        // the buffer only gathers the footer and a small body, and a large
        // one per upload was a 128 KiB block each of 16 small PUTs kept.
        let mut file = BufWriter::with_capacity(8 * 1024, blob::create_tmp(tmp)?);
        let mut size = 0u64;
        while let Some(message) = receiver.blocking_recv() {
            match message {
                Message::Data(chunks) => {
                    for chunk in &chunks {
                        self.hasher.update(chunk);
                        size += chunk.len() as u64;
                    }
                    write_all_vectored(&mut file, &chunks)?;
                }
                Message::Commit(request) => return Ok(Some((file, size, request))),
                Message::Abandon(done) => {
                    self.abandoned = Some(done);
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }

    /// Steps 3 to 5: check digests, footer and fsync, rename, index.
    /// Returns what was committed and the blobs it replaced.
    fn commit(
        self,
        id: BlobId,
        tmp: &Path,
        file: BufWriter<File>,
        size: u64,
        expected: ExpectedDigests,
        commit: Commit,
    ) -> Result<(Committed, Vec<BlobId>), StoreError> {
        let inner = &self.inner;
        let digests = self.hasher.finish();
        expected.check(&digests)?;
        let now = timefmt::now();
        // From the rename to the index change (see `recovery::Background`).
        let gate = inner.background.gate();
        // Whether the index change came back already durable (see
        // `Index::put_object_durably`), or still needs its flush.
        let (path, indexed, committed, flushed) = match (self.target, commit) {
            (Target::Object { bucket, key }, Commit::Object { meta, condition, lock }) => {
                let sequence = inner.index.next_sequence()?;
                let record = ObjectRecord {
                    blob: id,
                    size,
                    etag: hex::encode(digests.md5),
                    last_modified: now,
                    sequence,
                    version: inner.new_version(&bucket, sequence)?,
                    delete_marker: false,
                    lock,
                    full_object_checksum: false,
                    checksum: digests.checksum,
                    meta: *meta,
                    parts: Vec::new(),
                };
                let footer = Footer::Object { bucket: bucket.clone(), key: key.clone(), record: record.clone() };
                let path = inner.write_blob(id, tmp, file, &footer)?;
                let flushed = inner.durable();
                let indexed = if flushed {
                    inner.index.put_object_durably(&bucket, &key, &record, &condition)
                } else {
                    inner.index.put_object(&bucket, &key, &record, &condition)
                };
                let garbage = indexed.map(|replaced| replaced.map(|old| old.blobs()));
                (path, garbage, Committed::Object(Box::new(record)), flushed)
            }
            (Target::Part { bucket, key, upload, number }, Commit::Part) => {
                let record = PartRecord {
                    blob: id,
                    size,
                    etag: hex::encode(digests.md5),
                    last_modified: now,
                    checksum: digests.checksum,
                };
                let footer = Footer::Part { bucket, key, upload, number, record: record.clone() };
                let path = inner.write_blob(id, tmp, file, &footer)?;
                let indexed = inner.index.put_part(upload, number, &record);
                (path, indexed.map(|replaced| replaced.map(|old| vec![old.blob])), Committed::Part(record), false)
            }
            _ => return Err(StoreError::Io(io::Error::other("upload target and commit disagree"))),
        };
        let garbage = match indexed {
            Ok(garbage) => garbage.unwrap_or_default(),
            Err(StoreError::Unflushed(why)) => {
                // The index took the change but failed to flush it: the
                // blob stays, and the sweep that runs once the index opens
                // again places it or removes it.
                return Err(StoreError::Degraded(why));
            }
            Err(error) => {
                // Refused (a failed condition): the blob must not come back
                // after a power cut, or the startup sweep would roll it
                // forward.
                let _ = fs::remove_file(&path);
                if let (true, Some(dir)) = (inner.durable(), path.parent()) {
                    let _ = blob::fsync_dir(dir);
                }
                return Err(error);
            }
        };
        drop(gate);
        if flushed {
            failpoint::hit("after-index-commit");
        } else {
            inner.commit_index()?;
        }
        Ok((committed, garbage))
    }
}

/// Writes all of `chunks`, in as few calls as the file takes them: a
/// batch larger than the buffer goes to the file as it is, uncopied.
fn write_all_vectored(file: &mut BufWriter<File>, chunks: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<io::IoSlice<'_>> = chunks.iter().map(|chunk| io::IoSlice::new(chunk)).collect();
    let mut slices = &mut slices[..];
    io::IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => io::IoSlice::advance_slices(&mut slices, written),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

impl Inner {
    /// The version id a new object in `bucket` gets: one when versioning
    /// is enabled, else none (the null version). Read before the footer is
    /// written, so the blob names its version.
    pub(super) fn new_version(&self, bucket: &str, sequence: u64) -> Result<Option<VersionId>, StoreError> {
        let record = self.index.bucket(bucket)?.ok_or(StoreError::NoSuchBucket)?;
        Ok((record.versioning == Versioning::Enabled).then(|| VersionId::new(sequence)))
    }

    /// Step 4: footer and trailer, fsync, rename into `blobs/`, fsync the
    /// directory. Returns the blob's path.
    pub(super) fn write_blob(
        &self,
        id: BlobId,
        tmp: &Path,
        file: BufWriter<File>,
        footer: &Footer,
    ) -> Result<std::path::PathBuf, StoreError> {
        let mut file = file.into_inner().map_err(|error| error.into_error())?;
        blob::append_footer(&mut file, &footer.encode())?;
        if self.durable() {
            crate::metrics::timed_sync(|| file.sync_all())?;
        }
        drop(file);
        failpoint::hit("after-blob-fsync");
        let path = self.layout.blob_path(id);
        let dir = path.parent().expect("blob paths have a parent");
        blob::create_dir_durably(dir, self.durable())?;
        fs::rename(tmp, &path)?;
        fsync_dir_if(self.durable(), dir)?;
        failpoint::hit("after-rename");
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_bounded_in_bytes_and_in_chunks() {
        assert!(!batch_is_full(BATCH - 1, BATCH_CHUNKS - 1));
        assert!(batch_is_full(BATCH, 1), "four 64 KiB chunks");
        // One-byte chunks: the batch goes at 64 of them, not at 262,144.
        assert!(batch_is_full(BATCH_CHUNKS as u64, BATCH_CHUNKS));
    }
}

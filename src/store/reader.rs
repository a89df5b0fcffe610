//! Reading an object: its blobs streamed in order, for any byte range.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::blob::Layout;
use super::record::{BlobId, PartRef};
use super::Inner;

/// Read size for GETs, by measurement (GET 64 MiB, 4 clients, server CPU
/// per GB): 64 KiB 0.78-0.82 s, 128 KiB 0.66-0.80, 256 KiB 0.54-0.60, at
/// 0.75 MiB held per download (a chunk read, one queued, one sending).
const READ_CHUNK: usize = 256 * 1024;

/// Objects up to this size are read whole when they are opened (on the
/// request's own thread, see `Store::open_version`): a small GET then
/// costs no thread switch and no channel.
pub const READ_WHOLE_UP_TO: u64 = 64 * 1024;

/// An object's blobs, the first already open so that a concurrent
/// overwrite or delete cannot pull a single-blob object away mid-read.
/// The parts of a multipart object after the first are opened as the
/// read reaches them, and held (see [`Pins`]) until it ends.
pub struct ObjectFile {
    pub(super) layout: Layout,
    pub(super) segments: Vec<PartRef>,
    pub(super) first: File,
    pub(super) _pin: Option<Pin>,
    /// A small object's bytes, read when it was opened.
    pub(super) whole: Option<Bytes>,
}

/// Blobs that reads hold, and whether they became garbage meanwhile.
#[derive(Default)]
pub struct Pins {
    held: Mutex<HashMap<BlobId, Held>>,
}

#[derive(Default)]
struct Held {
    readers: usize,
    /// Garbage now: removed when the last reader lets go.
    doomed: bool,
}

impl Pins {
    /// If a reader holds `blob`, marks it for removal when the last one
    /// lets go and returns true; else false (remove it now).
    pub fn doom_if_pinned(&self, blob: BlobId) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|poison| poison.into_inner());
        match held.get_mut(&blob) {
            Some(entry) => {
                entry.doomed = true;
                true
            }
            None => false,
        }
    }
}

/// One read's hold on a multipart object's parts.
pub struct Pin {
    inner: Arc<Inner>,
    blobs: Vec<BlobId>,
}

impl Pin {
    pub(super) fn new(inner: &Arc<Inner>, segments: &[PartRef]) -> Pin {
        let blobs: Vec<BlobId> = segments.iter().map(|segment| segment.blob).collect();
        let mut held = inner.pins.held.lock().unwrap_or_else(|poison| poison.into_inner());
        for blob in &blobs {
            held.entry(*blob).or_default().readers += 1;
        }
        Pin { inner: inner.clone(), blobs }
    }
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut doomed = Vec::new();
        {
            let mut held = self.inner.pins.held.lock().unwrap_or_else(|poison| poison.into_inner());
            for blob in &self.blobs {
                if let Some(entry) = held.get_mut(blob) {
                    entry.readers -= 1;
                    if entry.readers == 0 {
                        if entry.doomed {
                            doomed.push(*blob);
                        }
                        held.remove(blob);
                    }
                }
            }
        }
        if doomed.is_empty() {
            return;
        }
        let inner = self.inner.clone();
        let remove = move || inner.unlink_garbage(doomed);
        // File and index work belongs on the blocking pool.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

impl ObjectFile {
    /// Opens a single-blob object's file, reading it whole if it is small.
    pub(super) fn open_single(layout: &Layout, segment: PartRef) -> io::Result<ObjectFile> {
        let mut first = File::open(layout.blob_path(segment.blob))?;
        let whole = if segment.size <= READ_WHOLE_UP_TO {
            // The position is left where it is: streaming seeks first.
            let len = usize::try_from(segment.size).expect("at most READ_WHOLE_UP_TO");
            Some(Bytes::from(read_exactly(&mut first, len)?))
        } else {
            None
        };
        Ok(ObjectFile { layout: layout.clone(), segments: vec![segment], first, _pin: None, whole })
    }

    /// Bytes `[start, end)` if they were read when the object was opened.
    pub fn already_read(&self, start: u64, end: u64) -> Option<Bytes> {
        let whole = self.whole.as_ref()?;
        Some(whole.slice(usize::try_from(start).ok()?..usize::try_from(end).ok()?))
    }

    /// Streams bytes `[start, end)` in [`READ_CHUNK`]s read on the blocking
    /// pool, one queued ahead; reading stops when the receiver is dropped.
    pub fn stream(self, start: u64, end: u64) -> mpsc::Receiver<io::Result<Bytes>> {
        let (sender, receiver) = mpsc::channel(1);
        if let Some(bytes) = self.already_read(start, end) {
            let _ = sender.try_send(Ok(bytes));
            return receiver;
        }
        tokio::task::spawn_blocking(move || {
            if let Err(error) = self.send_range(start, end, &sender) {
                let _ = sender.blocking_send(Err(error));
            }
        });
        receiver
    }

    fn send_range(self, start: u64, end: u64, sender: &mpsc::Sender<io::Result<Bytes>>) -> io::Result<()> {
        let mut first = Some(self.first);
        let mut buffers = ReadBuffers::default();
        let mut segment_start = 0u64;
        for segment in &self.segments {
            let segment_end = segment_start + segment.size;
            let opened = first.take();
            if segment_end <= start {
                segment_start = segment_end;
                continue;
            }
            if segment_start >= end {
                break;
            }
            let mut file = match opened {
                Some(file) => file,
                None => File::open(self.layout.blob_path(segment.blob))?,
            };
            let mut position = start.max(segment_start);
            let stop = end.min(segment_end);
            file.seek(SeekFrom::Start(position - segment_start))?;
            while position < stop {
                let len = usize::try_from((stop - position).min(READ_CHUNK as u64)).expect("at most READ_CHUNK");
                let mut buffer = buffers.take();
                read_into(&mut file, len, &mut buffer)?;
                let chunk = Bytes::from(buffer);
                buffers.keep(&chunk);
                if sender.blocking_send(Ok(chunk)).is_err() {
                    return Ok(());
                }
                position += len as u64;
            }
            segment_start = segment_end;
        }
        Ok(())
    }
}

/// One download's read buffers, each used again once the chunk read into
/// it has been sent and dropped. A fresh 256 KiB buffer per chunk cost a
/// page fault per 4 KiB, and under musl (which maps such blocks) an mmap
/// and munmap each: 0.9 CPU-s per GB against 0.5 with glibc.
#[derive(Default)]
struct ReadBuffers {
    /// Handles on chunks sent lately; a chunk whose handle here is the
    /// last one has left, and its buffer is free. As many as can be in
    /// flight (one queued, two in hyper's write queue) and one more.
    sent: Vec<Bytes>,
}

impl ReadBuffers {
    const MOST: usize = 4;

    /// An empty buffer with room for a chunk: a sent chunk's, else new.
    /// Its capacity is not zeroed: reading a file fills it directly.
    fn take(&mut self) -> Vec<u8> {
        while let Some(at) = self.sent.iter().position(Bytes::is_unique) {
            if let Ok(mut freed) = self.sent.swap_remove(at).try_into_mut() {
                freed.clear();
                let buffer = Vec::from(freed);
                if buffer.capacity() >= READ_CHUNK {
                    return buffer;
                }
            }
        }
        Vec::with_capacity(READ_CHUNK)
    }

    fn keep(&mut self, chunk: &Bytes) {
        if self.sent.len() < Self::MOST {
            self.sent.push(chunk.clone());
        }
    }
}

fn blob_too_short() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "a blob is shorter than its record")
}

/// The next `len` bytes of a blob, read into fresh capacity: nothing is
/// zeroed that the read overwrites.
fn read_exactly(file: &mut File, len: usize) -> io::Result<Vec<u8>> {
    let mut buffer = Vec::with_capacity(len);
    read_into(file, len, &mut buffer)?;
    Ok(buffer)
}

/// Appends the next `len` bytes of a blob to `buffer`.
fn read_into(file: &mut File, len: usize, buffer: &mut Vec<u8>) -> io::Result<()> {
    let before = buffer.len();
    file.take(len as u64).read_to_end(buffer)?;
    if buffer.len() - before != len {
        return Err(blob_too_short());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_buffer_is_used_again_only_once_its_chunk_is_gone() {
        let mut buffers = ReadBuffers::default();
        let mut first = buffers.take();
        first.resize(READ_CHUNK, 1);
        let first_address = first.as_ptr();
        let sending = Bytes::from(first);
        buffers.keep(&sending);
        // The chunk is still being sent: its memory must not be written.
        let mut second = buffers.take();
        second.resize(READ_CHUNK, 2);
        assert_ne!(second.as_ptr(), first_address);
        assert!(sending.iter().all(|&byte| byte == 1));
        drop(sending);
        let third = buffers.take();
        assert_eq!(third.as_ptr(), first_address, "sent and dropped: reused");
        assert!(third.is_empty() && third.capacity() >= READ_CHUNK);
    }
}

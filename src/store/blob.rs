//! Blob files: the object bytes from offset 0, then a footer (the encoded
//! record with bucket and key), then a fixed 20-byte trailer:
//! footer length (u32 LE), CRC32 of the footer (u32 LE), format version
//! (u32 LE), magic `LARDBLOB`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::record::{BlobId, Footer};

const MAGIC: &[u8; 8] = b"LARDBLOB";
const FORMAT_VERSION: u32 = 1;
const TRAILER_LEN: u64 = 20;

/// Where things live inside the data folder.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        Layout { root: root.to_path_buf() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn buckets_dir(&self) -> PathBuf {
        self.root.join("buckets")
    }

    pub fn index_dir(&self) -> PathBuf {
        self.root.join("index")
    }

    /// `blobs/ab/cd/<id>`: two levels of 256 keep directories small.
    pub fn blob_path(&self, id: BlobId) -> PathBuf {
        // The rest appended to one buffer: every GET asks for a path, and
        // a join per level was an allocation each.
        let name = id.to_hex();
        let mut path = self.blobs_dir().into_os_string();
        path.reserve(40);
        for part in ["/", &name[..2], "/", &name[2..4], "/", &name] {
            path.push(part);
        }
        PathBuf::from(path)
    }

    /// `locks/<blob>`: a version's Object Lock as changed after its blob
    /// was written (the blob's footer holds the lock it was written with).
    pub fn lock_file(&self, blob: BlobId) -> PathBuf {
        self.root.join("locks").join(blob.to_hex())
    }

    pub fn tmp_path(&self, id: BlobId) -> PathBuf {
        self.tmp_dir().join(id.to_hex())
    }

    /// Bucket names are checked against S3's rules before they get here,
    /// so one is always a safe file name.
    pub fn bucket_marker(&self, bucket: &str) -> PathBuf {
        self.buckets_dir().join(bucket)
    }

    /// `config/keys/<hex of the access key>`: each key document, kept as a
    /// file too, so that the index can be rebuilt without losing keys.
    pub fn key_file(&self, access_key: &str) -> PathBuf {
        self.root.join("config").join("keys").join(hex::encode(access_key))
    }

    /// `config/<name>/<bucket>`: a bucket's policy or CORS document.
    pub fn bucket_config_file(&self, bucket: &str, name: &str) -> PathBuf {
        self.root.join("config").join(name).join(bucket)
    }
}

/// Names for new blobs: random, except that the first two bytes (the
/// blob's directory, see [`Layout::blob_path`]) stay the same for
/// [`BlobNames::PER_DIRECTORY`] names in a row. A burst of uploads into
/// a fresh data folder then creates and fsyncs a directory once per that
/// many blobs instead of for nearly every one (65,536 directories fill
/// slowly); the directories still fill evenly over time, and the 112
/// random bits left keep names unique.
#[derive(Default)]
pub struct BlobNames {
    /// The directory prefix in use and how many more names may take it.
    current: std::sync::Mutex<([u8; 2], u32)>,
}

impl BlobNames {
    const PER_DIRECTORY: u32 = 64;

    pub fn next(&self) -> BlobId {
        let mut id = BlobId::random();
        let mut current = self.current.lock().unwrap_or_else(|poison| poison.into_inner());
        if current.1 == 0 {
            // The fresh id's own first bytes are as random as any.
            *current = ([id.0[0], id.0[1]], Self::PER_DIRECTORY);
        }
        current.1 -= 1;
        id.0[..2].copy_from_slice(&current.0);
        id
    }
}

/// Replaces `path` with `bytes` atomically: a temporary file, synced,
/// renamed over it, the folder synced (when `durable`). Mode 0600.
pub fn write_file_atomically(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let dir = path.parent().expect("config files have a folder");
    create_dir_durably(dir, durable)?;
    let tmp = path.with_extension("tmp");
    let mut file =
        std::os::unix::fs::OpenOptionsExt::mode(OpenOptions::new().write(true).create(true).truncate(true), 0o600)
            .open(&tmp)?;
    file.write_all(bytes)?;
    if durable {
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if durable {
        fsync_dir(dir)?;
    }
    Ok(())
}

/// Removes `path` if it exists, durably (when `durable`).
pub fn remove_file_durably(path: &Path, durable: bool) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) if durable => fsync_dir(path.parent().expect("config files have a folder")),
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// Makes a directory entry durable.
/// `syncfs(2)` on the file system holding `path`: every write to it so
/// far, data and names, is on disk when this returns.
pub fn sync_file_system(path: &Path) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let dir = fs::File::open(path)?;
    // SAFETY: `syncfs` takes a file descriptor and nothing else; `dir` is
    // open for the whole call, so the descriptor is valid, and the call
    // reads and writes no memory of ours.
    let result = unsafe { libc::syncfs(dir.as_raw_fd()) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub fn fsync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Creates `dir` and any missing parents, fsyncing each parent whose
/// entries changed, so a later rename into `dir` survives a power cut.
pub fn create_dir_durably(dir: &Path, durable: bool) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().expect("blob directories have parents");
    create_dir_durably(parent, durable)?;
    match std::os::unix::fs::DirBuilderExt::mode(&mut fs::DirBuilder::new(), 0o700).create(dir) {
        Ok(()) => {
            if durable {
                fsync_dir(parent)?;
            }
            Ok(())
        }
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// Appends footer and trailer to a blob whose bytes are written.
pub fn append_footer(file: &mut File, footer: &[u8]) -> io::Result<()> {
    let len = u32::try_from(footer.len()).map_err(|_| io::Error::other("footer too large"))?;
    let mut trailer = Vec::with_capacity(TRAILER_LEN as usize);
    trailer.extend_from_slice(&len.to_le_bytes());
    trailer.extend_from_slice(&crc32fast::hash(footer).to_le_bytes());
    trailer.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    trailer.extend_from_slice(MAGIC);
    file.write_all(footer)?;
    file.write_all(&trailer)
}

/// Reads a blob's footer: `None` if the file is not a whole blob (no magic,
/// a bad CRC, a record that does not decode).
pub fn read_footer(path: &Path) -> io::Result<Option<Footer>> {
    let mut file = File::open(path)?;
    let file_len = file.metadata()?.len();
    if file_len < TRAILER_LEN {
        return Ok(None);
    }
    let mut trailer = [0u8; TRAILER_LEN as usize];
    file.seek(SeekFrom::Start(file_len - TRAILER_LEN))?;
    file.read_exact(&mut trailer)?;
    let footer_len = u64::from(u32::from_le_bytes(trailer[0..4].try_into().expect("4 bytes")));
    let footer_crc = u32::from_le_bytes(trailer[4..8].try_into().expect("4 bytes"));
    let version = u32::from_le_bytes(trailer[8..12].try_into().expect("4 bytes"));
    if &trailer[12..] != MAGIC || version != FORMAT_VERSION || footer_len + TRAILER_LEN > file_len {
        return Ok(None);
    }
    let mut footer = vec![0u8; footer_len as usize];
    file.seek(SeekFrom::Start(file_len - TRAILER_LEN - footer_len))?;
    file.read_exact(&mut footer)?;
    if crc32fast::hash(&footer) != footer_crc {
        return Ok(None);
    }
    match Footer::decode(&footer) {
        Ok(footer) if footer.data_len() == file_len - TRAILER_LEN - footer_len => Ok(Some(footer)),
        _ => Ok(None),
    }
}

/// Opens a new temporary file for an upload.
pub fn create_tmp(path: &Path) -> io::Result<File> {
    // Only larder reads what clients stored.
    std::os::unix::fs::OpenOptionsExt::mode(OpenOptions::new().write(true).create_new(true), 0o600).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::record::{ObjectMeta, ObjectRecord};

    #[test]
    fn blob_paths_are_two_folders_deep_under_any_root() {
        let id = BlobId([0xab, 0xcd, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0xfe, 0xff]);
        for root in ["/var/lib/larder", "/var/lib/larder/", "data", ""] {
            let expected = Path::new(root).join("blobs").join("ab").join("cd").join("abcd0102030405060708090a0b0cfeff");
            assert_eq!(Layout::new(Path::new(root)).blob_path(id), expected, "root {root:?}");
        }
    }

    #[test]
    fn footer_round_trip_and_damage() {
        let dir = std::env::temp_dir().join(format!("larder-blob-test-{}", BlobId::random().to_hex()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("blob");
        let record = ObjectRecord {
            blob: BlobId::random(),
            size: 5,
            etag: "e".into(),
            last_modified: 1,
            sequence: 2,
            version: None,
            delete_marker: false,
            lock: Default::default(),
            full_object_checksum: false,
            checksum: None,
            meta: ObjectMeta::default(),
            parts: Vec::new(),
        };
        let footer = Footer::Object { bucket: "bkt".into(), key: "k".into(), record };
        let mut file = create_tmp(&path).unwrap();
        file.write_all(b"hello").unwrap();
        append_footer(&mut file, &footer.encode()).unwrap();
        drop(file);
        assert_eq!(read_footer(&path).unwrap(), Some(footer));

        let mut bytes = fs::read(&path).unwrap();
        bytes[7] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        assert!(read_footer(&path).unwrap().is_none(), "a damaged footer must be refused");
        fs::write(&path, b"short").unwrap();
        assert!(read_footer(&path).unwrap().is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn new_blobs_share_a_directory_for_a_while_and_stay_unique() {
        let names = BlobNames::default();
        let ids: Vec<BlobId> = (0..BlobNames::PER_DIRECTORY * 64).map(|_| names.next()).collect();
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        let runs: Vec<_> = ids.chunks(BlobNames::PER_DIRECTORY as usize).collect();
        for run in &runs {
            assert!(run.iter().all(|id| id.0[..2] == run[0].0[..2]), "one directory per run");
        }
        let directories: std::collections::HashSet<_> = runs.iter().map(|run| [run[0].0[0], run[0].0[1]]).collect();
        assert!(directories.len() > 32, "runs move on to other directories: {}", directories.len());
    }
}

//! Object and bucket records, and their byte layout. The same encoding is
//! the value in the index and the footer of each blob file, so the blobs
//! alone can rebuild the index (see DESIGN.md, "Blob files describe
//! themselves").
//!
//! Layout: a version byte, then fields in a fixed order; integers are
//! little-endian, strings and byte strings are a u32 length then the bytes,
//! optional fields a presence byte first.

use crate::checksum::{Checksum, ChecksumAlgorithm};

const RECORD_VERSION: u8 = 1;
/// An object record with a version id or a delete marker: version 1's
/// fields, then a flags byte and the optional version id. Records of
/// unversioned objects keep version 1.
const VERSIONED_RECORD_VERSION: u8 = 2;

/// A 128-bit random blob name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BlobId(pub [u8; 16]);

impl BlobId {
    pub fn random() -> BlobId {
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes).expect("the OS random source works");
        BlobId(bytes)
    }

    pub fn to_hex(self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(32);
        for byte in self.0 {
            text.push(char::from(HEX[usize::from(byte >> 4)]));
            text.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        text
    }

    pub fn from_hex(text: &str) -> Option<BlobId> {
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(BlobId(bytes))
    }
}

/// An object version's id: its sequence (so a key's versions sort by age)
/// then 8 random bytes (so that an id is never handed out twice). Written
/// as 32 hex digits; the null version (unversioned and suspended buckets)
/// has no id and is written `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionId(pub [u8; 16]);

impl VersionId {
    pub fn new(sequence: u64) -> VersionId {
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&sequence.to_be_bytes());
        getrandom::getrandom(&mut bytes[8..]).expect("the OS random source works");
        VersionId(bytes)
    }

    pub fn parse(text: &str) -> Option<VersionId> {
        let mut bytes = [0u8; 16];
        if text.len() != 32 || text.bytes().any(|byte| byte.is_ascii_uppercase()) {
            return None;
        }
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(VersionId(bytes))
    }

    /// The sequence of the record it names.
    pub fn sequence(self) -> u64 {
        u64::from_be_bytes(self.0[..8].try_into().expect("8 bytes"))
    }
}

impl std::fmt::Display for VersionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Object Lock's retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Yields to a key with the bypass-governance right that asks to.
    Governance,
    /// Yields to nobody until its date; can be extended, never shortened.
    Compliance,
}

/// A version's Object Lock: a retention (mode and date) and a legal hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ObjectLock {
    /// The mode and the retain-until date (Unix seconds).
    pub retention: Option<(LockMode, i64)>,
    pub legal_hold: bool,
}

impl ObjectLock {
    pub fn is_none(&self) -> bool {
        *self == ObjectLock::default()
    }

    /// `mode until hold`: the lock file (`locks/<blob>`), which records a
    /// change made after the blob was written.
    pub fn to_text(self) -> String {
        let (mode, until) = match self.retention {
            None => ("none", 0),
            Some((LockMode::Governance, until)) => ("GOVERNANCE", until),
            Some((LockMode::Compliance, until)) => ("COMPLIANCE", until),
        };
        format!("{mode} {until} {}\n", if self.legal_hold { "ON" } else { "OFF" })
    }

    pub fn from_text(text: &str) -> Option<ObjectLock> {
        let mut words = text.split_whitespace();
        let (mode, until, hold) = (words.next()?, words.next()?.parse().ok()?, words.next()?);
        let retention = match mode {
            "none" => None,
            "GOVERNANCE" => Some((LockMode::Governance, until)),
            "COMPLIANCE" => Some((LockMode::Compliance, until)),
            _ => return None,
        };
        Some(ObjectLock { retention, legal_hold: hold == "ON" })
    }
}

/// The headers S3 stores with an object and returns on GET and HEAD.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    pub expires: Option<String>,
    /// `x-amz-meta-*` pairs, names lower-case and without the prefix;
    /// values are the bytes the client sent (non-ASCII ones too).
    pub user: Vec<(String, Vec<u8>)>,
}

/// Everything the index knows about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    pub blob: BlobId,
    pub size: u64,
    /// The ETag without quotes: hex MD5 for a single PUT.
    pub etag: String,
    /// Unix seconds.
    pub last_modified: i64,
    /// Orders records of one key when the index is rebuilt from blobs, and
    /// a key's versions.
    pub sequence: u64,
    /// `None` for the null version.
    pub version: Option<VersionId>,
    /// A delete marker: no bytes, no blob data; it hides the versions
    /// below it.
    pub delete_marker: bool,
    /// Object Lock: what the version's writer set (a later change is in
    /// the lock file, see [`ObjectLock::to_text`]).
    pub lock: ObjectLock,
    /// For a multipart object: `checksum` is of the whole object (S3's
    /// FULL_OBJECT type), not of the parts' checksums (COMPOSITE).
    pub full_object_checksum: bool,
    /// For a multipart upload, the checksum over the parts' checksums.
    pub checksum: Option<Checksum>,
    pub meta: ObjectMeta,
    /// Empty for a single PUT, whose bytes are in `blob`. A completed
    /// multipart upload keeps its bytes in its part blobs, in order, and
    /// `blob` holds only the record (a manifest).
    pub parts: Vec<PartRef>,
}

/// One part of a completed multipart object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartRef {
    pub blob: BlobId,
    pub size: u64,
}

impl ObjectRecord {
    /// The bytes the `blob` file itself holds before its footer.
    pub fn blob_data_len(&self) -> u64 {
        if self.parts.is_empty() {
            self.size
        } else {
            0
        }
    }

    /// Every blob the object owns: removed together when it goes.
    pub fn blobs(&self) -> Vec<BlobId> {
        std::iter::once(self.blob).chain(self.parts.iter().map(|part| part.blob)).collect()
    }

    /// Where the object's bytes are: (blob, length) in order.
    pub fn segments(&self) -> Vec<PartRef> {
        if self.parts.is_empty() {
            vec![PartRef { blob: self.blob, size: self.size }]
        } else {
            self.parts.clone()
        }
    }
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub bucket: String,
    pub key: String,
    /// Unix seconds.
    pub created: i64,
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    pub meta: ObjectMeta,
    /// The lock the object gets when the upload completes.
    pub lock: ObjectLock,
    /// The completed object's checksum is of the whole object (FULL_OBJECT).
    pub full_object_checksum: bool,
}

/// One uploaded part of a multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    pub blob: BlobId,
    pub size: u64,
    /// Hex MD5, unquoted.
    pub etag: String,
    pub last_modified: i64,
    pub checksum: Option<Checksum>,
}

/// A completed upload, remembered for a while so that completing it again
/// with the same parts succeeds, as in S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedRecord {
    pub bucket: String,
    pub key: String,
    pub etag: String,
    /// SHA-256 of the completed part list (numbers and ETags).
    pub parts_digest: [u8; 32],
    pub completed: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketRecord {
    pub created: i64,
    /// Every version and delete marker counts: a bucket is empty only
    /// without them.
    pub objects: u64,
    pub bytes: u64,
    pub versioning: Versioning,
    /// Created with Object Lock (which keeps versioning enabled).
    pub object_lock: bool,
}

/// A bucket's versioning state. A bucket never returns to `Unversioned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Versioning {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

impl Versioning {
    fn code(self) -> u8 {
        match self {
            Versioning::Unversioned => 0,
            Versioning::Enabled => 1,
            Versioning::Suspended => 2,
        }
    }

    fn from_code(code: u8) -> Option<Versioning> {
        Some(match code {
            0 => Versioning::Unversioned,
            1 => Versioning::Enabled,
            2 => Versioning::Suspended,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError;

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, value: u8) {
        self.0.push(value);
    }
    fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    fn bytes(&mut self, value: &[u8]) {
        let len = u32::try_from(value.len()).expect("record fields are small");
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(value);
    }
    fn opt_str(&mut self, value: &Option<String>) {
        match value {
            Some(text) => {
                self.u8(1);
                self.bytes(text.as_bytes());
            }
            None => self.u8(0),
        }
    }
    fn checksum(&mut self, checksum: &Option<Checksum>) {
        match checksum {
            Some(checksum) => {
                self.u8(checksum.algorithm.code());
                self.bytes(&checksum.digest);
            }
            None => self.u8(0),
        }
    }
    fn lock(&mut self, lock: &ObjectLock) {
        let (mode, until) = match lock.retention {
            None => (0, 0),
            Some((LockMode::Governance, until)) => (1, until),
            Some((LockMode::Compliance, until)) => (2, until),
        };
        self.u8(mode);
        self.u64(until as u64);
        self.u8(u8::from(lock.legal_hold));
    }
    fn meta(&mut self, meta: &ObjectMeta) {
        for field in [
            &meta.content_type,
            &meta.content_encoding,
            &meta.content_disposition,
            &meta.content_language,
            &meta.cache_control,
            &meta.expires,
        ] {
            self.opt_str(field);
        }
        self.u64(meta.user.len() as u64);
        for (name, value) in &meta.user {
            self.bytes(name.as_bytes());
            self.bytes(value);
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < len {
            return Err(DecodeError);
        }
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| DecodeError)?))
    }
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| DecodeError)?);
        self.take(usize::try_from(len).map_err(|_| DecodeError)?)
    }
    fn string(&mut self) -> Result<String, DecodeError> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| DecodeError)
    }
    fn opt_str(&mut self) -> Result<Option<String>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.string()?)),
            _ => Err(DecodeError),
        }
    }
    fn blob(&mut self) -> Result<BlobId, DecodeError> {
        Ok(BlobId(self.take(16)?.try_into().map_err(|_| DecodeError)?))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(self.u64()? as i64)
    }
    fn checksum(&mut self) -> Result<Option<Checksum>, DecodeError> {
        match self.u8()? {
            0 => Ok(None),
            code => Ok(Some(Checksum {
                algorithm: ChecksumAlgorithm::from_code(code).ok_or(DecodeError)?,
                digest: self.bytes()?.to_vec(),
            })),
        }
    }
    fn lock(&mut self) -> Result<ObjectLock, DecodeError> {
        let mode = self.u8()?;
        let until = self.i64()?;
        let retention = match mode {
            0 if until == 0 => None,
            1 => Some((LockMode::Governance, until)),
            2 => Some((LockMode::Compliance, until)),
            _ => return Err(DecodeError),
        };
        let legal_hold = match self.u8()? {
            0 => false,
            1 => true,
            _ => return Err(DecodeError),
        };
        Ok(ObjectLock { retention, legal_hold })
    }
    fn meta(&mut self) -> Result<ObjectMeta, DecodeError> {
        let mut meta = ObjectMeta {
            content_type: self.opt_str()?,
            content_encoding: self.opt_str()?,
            content_disposition: self.opt_str()?,
            content_language: self.opt_str()?,
            cache_control: self.opt_str()?,
            expires: self.opt_str()?,
            user: Vec::new(),
        };
        let count = self.u64()?;
        for _ in 0..count {
            meta.user.push((self.string()?, self.bytes()?.to_vec()));
        }
        Ok(meta)
    }
    fn end(&self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError)
        }
    }
}

impl ObjectRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer(Vec::with_capacity(128));
        let versioned =
            self.version.is_some() || self.delete_marker || !self.lock.is_none() || self.full_object_checksum;
        out.u8(if versioned { VERSIONED_RECORD_VERSION } else { RECORD_VERSION });
        out.0.extend_from_slice(&self.blob.0);
        out.u64(self.size);
        out.bytes(self.etag.as_bytes());
        out.u64(self.last_modified as u64);
        out.u64(self.sequence);
        out.checksum(&self.checksum);
        let meta = &self.meta;
        out.meta(meta);
        out.u64(self.parts.len() as u64);
        for part in &self.parts {
            out.0.extend_from_slice(&part.blob.0);
            out.u64(part.size);
        }
        if versioned {
            out.u8(u8::from(self.delete_marker) | (u8::from(self.full_object_checksum) << 1));
            match self.version {
                Some(version) => {
                    out.u8(1);
                    out.0.extend_from_slice(&version.0);
                }
                None => out.u8(0),
            }
            out.lock(&self.lock);
        }
        out.0
    }

    pub fn decode(bytes: &[u8]) -> Result<ObjectRecord, DecodeError> {
        let mut input = Reader(bytes);
        let format = input.u8()?;
        if format != RECORD_VERSION && format != VERSIONED_RECORD_VERSION {
            return Err(DecodeError);
        }
        let blob = input.blob()?;
        let size = input.u64()?;
        let etag = input.string()?;
        let last_modified = input.u64()? as i64;
        let sequence = input.u64()?;
        let checksum = input.checksum()?;
        let meta = input.meta()?;
        let count = input.u64()?;
        let mut parts = Vec::new();
        for _ in 0..count {
            parts.push(PartRef { blob: input.blob()?, size: input.u64()? });
        }
        let (mut version, mut delete_marker, mut lock, mut full_object_checksum) =
            (None, false, ObjectLock::default(), false);
        if format == VERSIONED_RECORD_VERSION {
            let flags = input.u8()?;
            if flags & !3 != 0 {
                return Err(DecodeError);
            }
            (delete_marker, full_object_checksum) = (flags & 1 != 0, flags & 2 != 0);
            version = match input.u8()? {
                0 => None,
                1 => Some(VersionId(input.take(16)?.try_into().map_err(|_| DecodeError)?)),
                _ => return Err(DecodeError),
            };
            lock = input.lock()?;
            // The long form is written only when it says something.
            if version.is_none() && !delete_marker && !full_object_checksum && lock.is_none() {
                return Err(DecodeError);
            }
        }
        input.end()?;
        Ok(ObjectRecord {
            blob,
            size,
            etag,
            last_modified,
            sequence,
            version,
            delete_marker,
            lock,
            full_object_checksum,
            checksum,
            meta,
            parts,
        })
    }
}

impl BucketRecord {
    pub fn new(created: i64) -> BucketRecord {
        BucketRecord { created, objects: 0, bytes: 0, versioning: Versioning::Unversioned, object_lock: false }
    }

    /// Three u64 (created, objects, bytes); then, when versioning was ever
    /// set, its code and the Object Lock flag.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(26);
        out.extend_from_slice(&(self.created as u64).to_le_bytes());
        out.extend_from_slice(&self.objects.to_le_bytes());
        out.extend_from_slice(&self.bytes.to_le_bytes());
        if self.versioning != Versioning::Unversioned || self.object_lock {
            out.push(self.versioning.code());
            out.push(u8::from(self.object_lock));
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<BucketRecord, DecodeError> {
        let field = |i: usize| -> Result<u64, DecodeError> {
            Ok(u64::from_le_bytes(bytes.get(i * 8..i * 8 + 8).ok_or(DecodeError)?.try_into().map_err(|_| DecodeError)?))
        };
        let (versioning, object_lock) = match bytes.len() {
            24 => (Versioning::Unversioned, false),
            26 => {
                let versioning = Versioning::from_code(bytes[24]).ok_or(DecodeError)?;
                let object_lock = match bytes[25] {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError),
                };
                // The long form is written only when it says something.
                if versioning == Versioning::Unversioned && !object_lock {
                    return Err(DecodeError);
                }
                (versioning, object_lock)
            }
            _ => return Err(DecodeError),
        };
        Ok(BucketRecord { created: field(0)? as i64, objects: field(1)?, bytes: field(2)?, versioning, object_lock })
    }

    /// The bucket's marker file (`buckets/<name>`): empty for a bucket
    /// that was never versioned, else its state, so that a rebuilt index
    /// gets it back.
    pub fn marker_text(&self) -> String {
        let versioning = match self.versioning {
            Versioning::Unversioned => return String::new(),
            Versioning::Enabled => "Enabled",
            Versioning::Suspended => "Suspended",
        };
        format!("versioning = {versioning}\nobject-lock = {}\n", self.object_lock)
    }

    /// Reads [`BucketRecord::marker_text`] back (unknown lines ignored).
    pub fn from_marker_text(created: i64, text: &str) -> BucketRecord {
        let mut record = BucketRecord::new(created);
        for line in text.lines() {
            match line.split_once(" = ") {
                Some(("versioning", "Enabled")) => record.versioning = Versioning::Enabled,
                Some(("versioning", "Suspended")) => record.versioning = Versioning::Suspended,
                Some(("object-lock", "true")) => record.object_lock = true,
                _ => {}
            }
        }
        record
    }
}

impl PartRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer(Vec::with_capacity(96));
        out.u8(RECORD_VERSION);
        out.0.extend_from_slice(&self.blob.0);
        out.u64(self.size);
        out.bytes(self.etag.as_bytes());
        out.u64(self.last_modified as u64);
        out.checksum(&self.checksum);
        out.0
    }

    pub fn decode(bytes: &[u8]) -> Result<PartRecord, DecodeError> {
        let mut input = Reader(bytes);
        if input.u8()? != RECORD_VERSION {
            return Err(DecodeError);
        }
        let record = PartRecord {
            blob: input.blob()?,
            size: input.u64()?,
            etag: input.string()?,
            last_modified: input.i64()?,
            checksum: input.checksum()?,
        };
        input.end()?;
        Ok(record)
    }
}

impl UploadRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer(Vec::with_capacity(96));
        out.u8(RECORD_VERSION);
        out.bytes(self.bucket.as_bytes());
        out.bytes(self.key.as_bytes());
        out.u64(self.created as u64);
        out.u8(self.checksum_algorithm.map_or(0, ChecksumAlgorithm::code));
        out.meta(&self.meta);
        // Older records end here.
        if !self.lock.is_none() || self.full_object_checksum {
            out.lock(&self.lock);
            out.u8(u8::from(self.full_object_checksum));
        }
        out.0
    }

    pub fn decode(bytes: &[u8]) -> Result<UploadRecord, DecodeError> {
        let mut input = Reader(bytes);
        if input.u8()? != RECORD_VERSION {
            return Err(DecodeError);
        }
        let record = UploadRecord {
            bucket: input.string()?,
            key: input.string()?,
            created: input.i64()?,
            checksum_algorithm: match input.u8()? {
                0 => None,
                code => Some(ChecksumAlgorithm::from_code(code).ok_or(DecodeError)?),
            },
            meta: input.meta()?,
            lock: ObjectLock::default(),
            full_object_checksum: false,
        };
        if input.0.is_empty() {
            return Ok(record);
        }
        let lock = input.lock()?;
        let full_object_checksum = match input.u8()? {
            0 => false,
            1 => true,
            _ => return Err(DecodeError),
        };
        // The tail is written only when it says something.
        if lock.is_none() && !full_object_checksum {
            return Err(DecodeError);
        }
        let record = UploadRecord { lock, full_object_checksum, ..record };
        input.end()?;
        Ok(record)
    }
}

impl CompletedRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer(Vec::with_capacity(96));
        out.u8(RECORD_VERSION);
        out.bytes(self.bucket.as_bytes());
        out.bytes(self.key.as_bytes());
        out.bytes(self.etag.as_bytes());
        out.0.extend_from_slice(&self.parts_digest);
        out.u64(self.completed as u64);
        out.0
    }

    pub fn decode(bytes: &[u8]) -> Result<CompletedRecord, DecodeError> {
        let mut input = Reader(bytes);
        if input.u8()? != RECORD_VERSION {
            return Err(DecodeError);
        }
        let record = CompletedRecord {
            bucket: input.string()?,
            key: input.string()?,
            etag: input.string()?,
            parts_digest: input.take(32)?.try_into().map_err(|_| DecodeError)?,
            completed: input.i64()?,
        };
        input.end()?;
        Ok(record)
    }
}

/// What a blob's footer says it is. Read one at a time: the size of the
/// object variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Footer {
    /// An object (a single PUT's bytes, or a multipart manifest).
    Object { bucket: String, key: String, record: ObjectRecord },
    /// Part `number` of multipart upload `upload`, for `bucket/key`.
    Part { bucket: String, key: String, upload: BlobId, number: u32, record: PartRecord },
}

impl Footer {
    /// The bytes the blob holds before its footer.
    pub fn data_len(&self) -> u64 {
        match self {
            Footer::Object { record, .. } => record.blob_data_len(),
            Footer::Part { record, .. } => record.size,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer(Vec::with_capacity(192));
        match self {
            Footer::Object { bucket, key, record } => {
                out.u8(0);
                out.bytes(bucket.as_bytes());
                out.bytes(key.as_bytes());
                out.bytes(&record.encode());
            }
            Footer::Part { bucket, key, upload, number, record } => {
                out.u8(1);
                out.bytes(bucket.as_bytes());
                out.bytes(key.as_bytes());
                out.0.extend_from_slice(&upload.0);
                out.u64(u64::from(*number));
                out.bytes(&record.encode());
            }
        }
        out.0
    }

    pub fn decode(bytes: &[u8]) -> Result<Footer, DecodeError> {
        let mut input = Reader(bytes);
        let kind = input.u8()?;
        let bucket = input.string()?;
        let key = input.string()?;
        let footer = match kind {
            0 => Footer::Object { bucket, key, record: ObjectRecord::decode(input.bytes()?)? },
            1 => {
                let upload = input.blob()?;
                let number = u32::try_from(input.u64()?).map_err(|_| DecodeError)?;
                Footer::Part { bucket, key, upload, number, record: PartRecord::decode(input.bytes()?)? }
            }
            _ => return Err(DecodeError),
        };
        input.end()?;
        Ok(footer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> ObjectRecord {
        ObjectRecord {
            blob: BlobId::random(),
            size: 5 << 32,
            etag: "0123456789abcdef0123456789abcdef".into(),
            last_modified: 1_700_000_000,
            sequence: 42,
            version: None,
            delete_marker: false,
            lock: ObjectLock::default(),
            full_object_checksum: false,
            checksum: Some(Checksum { algorithm: ChecksumAlgorithm::Crc32, digest: vec![1, 2, 3, 4] }),
            meta: ObjectMeta {
                content_type: Some("text/plain".into()),
                cache_control: Some("no-cache".into()),
                user: vec![("colour".into(), b"bl\xe9u".to_vec())],
                ..ObjectMeta::default()
            },
            parts: vec![PartRef { blob: BlobId::random(), size: 5 << 20 }],
        }
    }

    #[test]
    fn record_round_trip() {
        let record = sample();
        assert_eq!(ObjectRecord::decode(&record.encode()).unwrap(), record);
        assert_eq!(record.encode()[0], RECORD_VERSION, "unversioned records keep the first format");
        let versioned = ObjectRecord { version: Some(VersionId::new(42)), ..sample() };
        assert_eq!(ObjectRecord::decode(&versioned.encode()).unwrap(), versioned);
        let marker = ObjectRecord { delete_marker: true, ..sample() };
        assert_eq!(ObjectRecord::decode(&marker.encode()).unwrap(), marker);
        let full = ObjectRecord { full_object_checksum: true, ..sample() };
        assert_eq!(ObjectRecord::decode(&full.encode()).unwrap(), full);
        let lock = ObjectLock { retention: Some((LockMode::Compliance, 1_900_000_000)), legal_hold: true };
        let locked = ObjectRecord { version: Some(VersionId::new(3)), lock, ..sample() };
        assert_eq!(ObjectRecord::decode(&locked.encode()).unwrap(), locked);
        assert_eq!(ObjectLock::from_text(&lock.to_text()), Some(lock));
        assert_eq!(ObjectLock::from_text(&ObjectLock::default().to_text()), Some(ObjectLock::default()));
        let id = VersionId::new(42);
        assert_eq!(VersionId::parse(&id.to_string()), Some(id));
        assert_eq!(id.sequence(), 42);
        assert!(VersionId::new(43).to_string() > VersionId::new(42).to_string(), "ids sort by age");
        let bucket = BucketRecord { versioning: Versioning::Suspended, object_lock: true, ..BucketRecord::new(7) };
        assert_eq!(BucketRecord::decode(&bucket.encode()).unwrap(), bucket);
        assert_eq!(BucketRecord::from_marker_text(7, &bucket.marker_text()), BucketRecord { objects: 0, ..bucket });
        assert_eq!(BucketRecord::decode(&BucketRecord::new(7).encode()).unwrap().versioning, Versioning::Unversioned);
        let footer = Footer::Object { bucket: "b".into(), key: "a/ሴ key".into(), record };
        assert_eq!(Footer::decode(&footer.encode()).unwrap(), footer);
        let part = PartRecord {
            blob: BlobId::random(),
            size: 6 << 30,
            etag: "e".into(),
            last_modified: 3,
            checksum: Some(Checksum { algorithm: ChecksumAlgorithm::Sha256, digest: vec![7; 32] }),
        };
        assert_eq!(PartRecord::decode(&part.encode()).unwrap(), part);
        let footer = Footer::Part {
            bucket: "b".into(),
            key: "k".into(),
            upload: BlobId::random(),
            number: 10_000,
            record: part,
        };
        assert_eq!(Footer::decode(&footer.encode()).unwrap(), footer);
        let upload = UploadRecord {
            bucket: "b".into(),
            key: "k".into(),
            created: 9,
            checksum_algorithm: Some(ChecksumAlgorithm::Crc32c),
            meta: ObjectMeta { content_type: Some("x/y".into()), ..ObjectMeta::default() },
            lock: ObjectLock::default(),
            full_object_checksum: false,
        };
        assert_eq!(UploadRecord::decode(&upload.encode()).unwrap(), upload);
        let full = UploadRecord { full_object_checksum: true, ..upload.clone() };
        assert_eq!(UploadRecord::decode(&full.encode()).unwrap(), full);
        let locked = UploadRecord { lock: ObjectLock { retention: None, legal_hold: true }, ..upload };
        assert_eq!(UploadRecord::decode(&locked.encode()).unwrap(), locked);
        let completed = CompletedRecord {
            bucket: "b".into(),
            key: "k".into(),
            etag: "abc-2".into(),
            parts_digest: [3; 32],
            completed: 11,
        };
        assert_eq!(CompletedRecord::decode(&completed.encode()).unwrap(), completed);
    }

    /// Encodings are canonical (the fuzzer checks decode-then-encode gives
    /// the same bytes): a long form that says nothing beyond the short one
    /// is refused, as are flag bytes other than 0 and 1.
    #[test]
    fn padded_forms_are_refused() {
        let mut bucket = BucketRecord::new(7).encode();
        bucket.extend_from_slice(&[0, 0]);
        assert!(BucketRecord::decode(&bucket).is_err());
        let mut bucket = BucketRecord { versioning: Versioning::Enabled, ..BucketRecord::new(7) }.encode();
        bucket[25] = 2;
        assert!(BucketRecord::decode(&bucket).is_err());

        let mut object = sample().encode();
        object[0] = VERSIONED_RECORD_VERSION;
        object.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(ObjectRecord::decode(&object).is_err());
        let held = ObjectRecord { lock: ObjectLock { retention: None, legal_hold: true }, ..sample() }.encode();
        let mut stray_date = held.clone();
        let until = held.len() - 9;
        stray_date[until] = 1;
        assert!(ObjectRecord::decode(&stray_date).is_err(), "a date without a retention mode");

        let upload = UploadRecord {
            bucket: "b".into(),
            key: "k".into(),
            created: 9,
            checksum_algorithm: None,
            meta: ObjectMeta::default(),
            lock: ObjectLock::default(),
            full_object_checksum: false,
        };
        let mut padded = upload.encode();
        padded.extend_from_slice(&[0; 11]);
        assert!(UploadRecord::decode(&padded).is_err());
        let mut flag = UploadRecord { full_object_checksum: true, ..upload }.encode();
        *flag.last_mut().unwrap() = 2;
        assert!(UploadRecord::decode(&flag).is_err());
    }

    #[test]
    fn truncated_records_are_refused() {
        let versioned = ObjectRecord { version: Some(VersionId::new(1)), delete_marker: true, ..sample() };
        let bytes = versioned.encode();
        for len in 0..bytes.len() {
            assert!(ObjectRecord::decode(&bytes[..len]).is_err(), "{len}");
        }
    }
}

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
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Option<BlobId> {
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(BlobId(bytes))
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
    /// `x-amz-meta-*` pairs, names lower-case and without the prefix.
    pub user: Vec<(String, String)>,
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
    /// Orders records of one key when the index is rebuilt from blobs.
    pub sequence: u64,
    pub checksum: Option<Checksum>,
    pub meta: ObjectMeta,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketRecord {
    pub created: i64,
    pub objects: u64,
    pub bytes: u64,
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
}

impl ObjectRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer(Vec::with_capacity(128));
        out.u8(RECORD_VERSION);
        out.0.extend_from_slice(&self.blob.0);
        out.u64(self.size);
        out.bytes(self.etag.as_bytes());
        out.u64(self.last_modified as u64);
        out.u64(self.sequence);
        match &self.checksum {
            Some(checksum) => {
                out.u8(checksum.algorithm.code());
                out.bytes(&checksum.digest);
            }
            None => out.u8(0),
        }
        let meta = &self.meta;
        for field in [
            &meta.content_type,
            &meta.content_encoding,
            &meta.content_disposition,
            &meta.content_language,
            &meta.cache_control,
            &meta.expires,
        ] {
            out.opt_str(field);
        }
        out.u64(meta.user.len() as u64);
        for (name, value) in &meta.user {
            out.bytes(name.as_bytes());
            out.bytes(value.as_bytes());
        }
        out.0
    }

    pub fn decode(bytes: &[u8]) -> Result<ObjectRecord, DecodeError> {
        let mut input = Reader(bytes);
        if input.u8()? != RECORD_VERSION {
            return Err(DecodeError);
        }
        let blob = BlobId(input.take(16)?.try_into().map_err(|_| DecodeError)?);
        let size = input.u64()?;
        let etag = input.string()?;
        let last_modified = input.u64()? as i64;
        let sequence = input.u64()?;
        let checksum = match input.u8()? {
            0 => None,
            code => Some(Checksum {
                algorithm: ChecksumAlgorithm::from_code(code).ok_or(DecodeError)?,
                digest: input.bytes()?.to_vec(),
            }),
        };
        let mut meta = ObjectMeta {
            content_type: input.opt_str()?,
            content_encoding: input.opt_str()?,
            content_disposition: input.opt_str()?,
            content_language: input.opt_str()?,
            cache_control: input.opt_str()?,
            expires: input.opt_str()?,
            user: Vec::new(),
        };
        let count = input.u64()?;
        for _ in 0..count {
            meta.user.push((input.string()?, input.string()?));
        }
        if !input.0.is_empty() {
            return Err(DecodeError);
        }
        Ok(ObjectRecord { blob, size, etag, last_modified, sequence, checksum, meta })
    }
}

impl BucketRecord {
    pub fn encode(&self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&(self.created as u64).to_le_bytes());
        out[8..16].copy_from_slice(&self.objects.to_le_bytes());
        out[16..].copy_from_slice(&self.bytes.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<BucketRecord, DecodeError> {
        let field = |i: usize| -> Result<u64, DecodeError> {
            Ok(u64::from_le_bytes(bytes.get(i * 8..i * 8 + 8).ok_or(DecodeError)?.try_into().map_err(|_| DecodeError)?))
        };
        if bytes.len() != 24 {
            return Err(DecodeError);
        }
        Ok(BucketRecord { created: field(0)? as i64, objects: field(1)?, bytes: field(2)? })
    }
}

/// The footer of a blob file: where the object belongs, and its record.
pub fn encode_footer(bucket: &str, key: &str, record: &ObjectRecord) -> Vec<u8> {
    let mut out = Writer(Vec::with_capacity(160 + key.len()));
    out.bytes(bucket.as_bytes());
    out.bytes(key.as_bytes());
    out.bytes(&record.encode());
    out.0
}

pub fn decode_footer(bytes: &[u8]) -> Result<(String, String, ObjectRecord), DecodeError> {
    let mut input = Reader(bytes);
    let bucket = input.string()?;
    let key = input.string()?;
    let record = ObjectRecord::decode(input.bytes()?)?;
    Ok((bucket, key, record))
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
            checksum: Some(Checksum { algorithm: ChecksumAlgorithm::Crc32, digest: vec![1, 2, 3, 4] }),
            meta: ObjectMeta {
                content_type: Some("text/plain".into()),
                cache_control: Some("no-cache".into()),
                user: vec![("colour".into(), "blue".into())],
                ..ObjectMeta::default()
            },
        }
    }

    #[test]
    fn record_round_trip() {
        let record = sample();
        assert_eq!(ObjectRecord::decode(&record.encode()).unwrap(), record);
        let (bucket, key, decoded) = decode_footer(&encode_footer("b", "a/ሴ key", &record)).unwrap();
        assert_eq!((bucket.as_str(), key.as_str(), decoded), ("b", "a/ሴ key", record));
    }

    #[test]
    fn truncated_records_are_refused() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(ObjectRecord::decode(&bytes[..len]).is_err(), "{len}");
        }
    }
}

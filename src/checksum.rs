//! The digests S3 clients send and expect: Content-MD5 and the
//! `x-amz-checksum-*` family. Computed in one pass over each chunk.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use sha1::Sha1;
use sha2::{Digest, Sha256};

mod md5;
pub use self::md5::Md5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// The name S3 uses in `x-amz-checksum-algorithm` and in messages.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// The header that carries it: `x-amz-checksum-crc32` and so on.
    pub fn header_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    pub fn from_name(name: &str) -> Option<ChecksumAlgorithm> {
        Self::ALL.into_iter().find(|algorithm| algorithm.name().eq_ignore_ascii_case(name))
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }

    pub fn code(self) -> u8 {
        match self {
            ChecksumAlgorithm::Crc32 => 1,
            ChecksumAlgorithm::Crc32c => 2,
            ChecksumAlgorithm::Crc64Nvme => 3,
            ChecksumAlgorithm::Sha1 => 4,
            ChecksumAlgorithm::Sha256 => 5,
        }
    }

    pub fn from_code(code: u8) -> Option<ChecksumAlgorithm> {
        Self::ALL.into_iter().find(|algorithm| algorithm.code() == code)
    }
}

/// A checksum value: an algorithm and its big-endian digest bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: ChecksumAlgorithm,
    pub digest: Vec<u8>,
}

impl Checksum {
    /// Reads the base64 header form; `None` if it is not valid base64 of
    /// the right length.
    pub fn from_base64(algorithm: ChecksumAlgorithm, text: &str) -> Option<Checksum> {
        let digest = BASE64.decode(text.trim()).ok()?;
        (digest.len() == algorithm.digest_len()).then_some(Checksum { algorithm, digest })
    }

    pub fn to_base64(&self) -> String {
        BASE64.encode(&self.digest)
    }
}

const CRC64_NVME: crc::Crc<u64, crc::Table<16>> = crc::Crc::<u64, crc::Table<16>>::new(&crc::CRC_64_NVME);

/// A running checksum of one algorithm.
pub enum ChecksumHasher {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64Nvme(crc::Digest<'static, u64, crc::Table<16>>),
    Sha1(Sha1),
    Sha256(Sha256),
}

impl ChecksumHasher {
    pub fn new(algorithm: ChecksumAlgorithm) -> ChecksumHasher {
        match algorithm {
            ChecksumAlgorithm::Crc32 => ChecksumHasher::Crc32(crc32fast::Hasher::new()),
            ChecksumAlgorithm::Crc32c => ChecksumHasher::Crc32c(0),
            ChecksumAlgorithm::Crc64Nvme => ChecksumHasher::Crc64Nvme(CRC64_NVME.digest()),
            ChecksumAlgorithm::Sha1 => ChecksumHasher::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => ChecksumHasher::Sha256(Sha256::new()),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            ChecksumHasher::Crc32(hasher) => hasher.update(data),
            ChecksumHasher::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, data),
            ChecksumHasher::Crc64Nvme(digest) => digest.update(data),
            ChecksumHasher::Sha1(hasher) => hasher.update(data),
            ChecksumHasher::Sha256(hasher) => hasher.update(data),
        }
    }

    pub fn finish(self) -> Checksum {
        let (algorithm, digest) = match self {
            ChecksumHasher::Crc32(hasher) => (ChecksumAlgorithm::Crc32, hasher.finalize().to_be_bytes().to_vec()),
            ChecksumHasher::Crc32c(crc) => (ChecksumAlgorithm::Crc32c, crc.to_be_bytes().to_vec()),
            ChecksumHasher::Crc64Nvme(digest) => {
                (ChecksumAlgorithm::Crc64Nvme, digest.finalize().to_be_bytes().to_vec())
            }
            ChecksumHasher::Sha1(hasher) => (ChecksumAlgorithm::Sha1, hasher.finalize().to_vec()),
            ChecksumHasher::Sha256(hasher) => (ChecksumAlgorithm::Sha256, hasher.finalize().to_vec()),
        };
        Checksum { algorithm, digest }
    }
}

/// The CRC of `a` then `b` from the CRCs of `a` and `b` and the length of
/// `b`: a multipart upload's whole-object checksum (S3's FULL_OBJECT) from
/// its parts' checksums, without reading a byte again. `None` for the
/// algorithms that do not combine (SHA-1, SHA-256) or digests of the
/// wrong length.
pub fn combine(first: &Checksum, second: &Checksum, second_len: u64) -> Option<Checksum> {
    // Reflected polynomials; all three start from and end with all ones,
    // which is what makes the combination a shift and an XOR.
    let (poly, width) = match first.algorithm {
        ChecksumAlgorithm::Crc32 => (0xEDB8_8320u64, 32),
        ChecksumAlgorithm::Crc32c => (0x82F6_3B78, 32),
        ChecksumAlgorithm::Crc64Nvme => (0x9A6C_9329_AC4B_C9B5, 64),
        ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => return None,
    };
    if second.algorithm != first.algorithm {
        return None;
    }
    let read = |digest: &[u8]| -> Option<u64> {
        (digest.len() * 8 == width).then(|| digest.iter().fold(0u64, |value, byte| (value << 8) | u64::from(*byte)))
    };
    let (a, b) = (read(&first.digest)?, read(&second.digest)?);
    // Multiplication modulo the polynomial, bit (width - 1) being x^0.
    let multiply = |a: u64, mut b: u64| -> u64 {
        let mut product = 0u64;
        let mut bit = 1u64 << (width - 1);
        while bit != 0 {
            if a & bit != 0 {
                product ^= b;
            }
            b = if b & 1 != 0 { (b >> 1) ^ poly } else { b >> 1 };
            bit >>= 1;
        }
        product
    };
    // x^(8 * second_len), by squaring.
    let (mut power, mut square, mut n) = (1u64 << (width - 1), 1u64 << (width - 1 - 8), second_len);
    while n > 0 {
        if n & 1 != 0 {
            power = multiply(power, square);
        }
        square = multiply(square, square);
        n >>= 1;
    }
    let combined = multiply(power, a) ^ b;
    let digest = combined.to_be_bytes()[8 - width / 8..].to_vec();
    Some(Checksum { algorithm: first.algorithm, digest })
}

/// Which digests an upload needs besides the MD5 (always computed: it is the ETag).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DigestSet {
    /// The SHA-256 of the payload, when the request signed it.
    pub sha256: bool,
    pub checksum: Option<ChecksumAlgorithm>,
}

/// Computes, in one pass, every digest an upload needs.
pub struct MultiHasher {
    md5: Md5,
    sha256: Option<Sha256>,
    checksum: Option<ChecksumHasher>,
}

/// What [`MultiHasher`] computed.
#[derive(Debug, Clone)]
pub struct Digests {
    pub md5: [u8; 16],
    pub sha256: Option<[u8; 32]>,
    pub checksum: Option<Checksum>,
}

impl MultiHasher {
    pub fn new(set: DigestSet) -> MultiHasher {
        MultiHasher {
            md5: Md5::new(),
            // A SHA-256 checksum and a signed payload share one hasher.
            sha256: set.sha256.then(Sha256::new),
            checksum: set.checksum.map(ChecksumHasher::new),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        if let Some(sha256) = &mut self.sha256 {
            sha256.update(data);
        }
        if let Some(checksum) = &mut self.checksum {
            checksum.update(data);
        }
    }

    pub fn finish(self) -> Digests {
        Digests {
            md5: self.md5.finalize(),
            sha256: self.sha256.map(|hasher| hasher.finalize().into()),
            checksum: self.checksum.map(ChecksumHasher::finish),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checksum_of(algorithm: ChecksumAlgorithm, data: &[u8]) -> String {
        let mut hasher = ChecksumHasher::new(algorithm);
        hasher.update(&data[..3]);
        hasher.update(&data[3..]);
        hasher.finish().to_base64()
    }

    /// Reference values of "hello world" as the AWS SDKs compute them.
    #[test]
    fn known_values() {
        let data = b"hello world";
        assert_eq!(checksum_of(ChecksumAlgorithm::Crc32, data), "DUoRhQ==");
        assert_eq!(checksum_of(ChecksumAlgorithm::Crc32c, data), "yZRlqg==");
        assert_eq!(checksum_of(ChecksumAlgorithm::Crc64Nvme, data), "jSnVw/bqjr4=");
        assert_eq!(checksum_of(ChecksumAlgorithm::Sha1, data), "Kq5sNclPz7QV2+lfQIuc6R7oRu0=");
        assert_eq!(checksum_of(ChecksumAlgorithm::Sha256, data), "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=");
    }

    /// The CRC of a whole from its pieces' CRCs equals the CRC of the
    /// whole, for every CRC and for pieces of every kind of length.
    #[test]
    fn crcs_combine() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let of = |algorithm, bytes: &[u8]| {
            let mut hasher = ChecksumHasher::new(algorithm);
            hasher.update(bytes);
            hasher.finish()
        };
        for algorithm in [ChecksumAlgorithm::Crc32, ChecksumAlgorithm::Crc32c, ChecksumAlgorithm::Crc64Nvme] {
            for split in [0, 1, 7, 4096, 65_537, 70_000] {
                let (a, b) = data.split_at(split);
                let combined = combine(&of(algorithm, a), &of(algorithm, b), b.len() as u64).unwrap();
                assert_eq!(combined, of(algorithm, &data), "{algorithm:?} split at {split}");
            }
        }
        let sha = of(ChecksumAlgorithm::Sha256, b"x");
        assert!(combine(&sha, &sha, 1).is_none());
    }

    #[test]
    fn base64_length_is_checked() {
        assert!(Checksum::from_base64(ChecksumAlgorithm::Crc32, "DUoRhQ==").is_some());
        assert!(Checksum::from_base64(ChecksumAlgorithm::Crc32, "DUoRhQAA").is_none());
        assert!(Checksum::from_base64(ChecksumAlgorithm::Crc32, "not base64!").is_none());
    }
}

//! Blob files and records (store/blob.rs, store/record.rs): the footer and
//! trailer of a blob file as startup repair reads them, and each record
//! decoder over the same bytes. Whatever decodes must encode back to the
//! very bytes it came from: the encodings are canonical.
//!
//! Input: a blob file (data, footer, 20-byte trailer) or an encoded record.

#![no_main]

use larder::fuzzing::{encode_blob, read_blob_footer, CompletedRecord, Footer};
use larder::store::{BucketRecord, ObjectRecord, PartRecord, UploadRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match read_blob_footer(data) {
        Ok(Some(footer)) => {
            let footer_len = footer.encode().len() as u64;
            let data_len = footer.data_len();
            assert_eq!(data_len + footer_len + 20, data.len() as u64);
            let blob = encode_blob(&data[..data_len as usize], &footer).expect("a scratch file");
            assert!(blob == data, "the blob does not encode back");
        }
        Ok(None) => {}
        Err(error) => panic!("scratch file: {error}"),
    }

    if let Ok(footer) = Footer::decode(data) {
        assert!(footer.encode() == data);
    }
    if let Ok(record) = ObjectRecord::decode(data) {
        assert!(record.encode() == data);
    }
    if let Ok(record) = PartRecord::decode(data) {
        assert!(record.encode() == data);
    }
    if let Ok(record) = UploadRecord::decode(data) {
        assert!(record.encode() == data);
    }
    if let Ok(record) = CompletedRecord::decode(data) {
        assert!(record.encode() == data);
    }
    if let Ok(record) = BucketRecord::decode(data) {
        assert!(record.encode() == data);
    }
});

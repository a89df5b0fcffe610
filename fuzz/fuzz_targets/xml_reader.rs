//! The bounded XML element tree reader (s3/xml.rs) and what reads its
//! trees: the CompleteMultipartUpload part list, the DeleteObjects key
//! list (walked as delete_objects.rs walks it) and the CORS configuration,
//! which must read back what larder writes of it.
//!
//! Input: an XML document.

#![no_main]

use larder::fuzzing::{parse_completed_parts, parse_xml, CorsConfig, Element};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(root) = parse_xml(data) else {
        assert!(parse_completed_parts(data).is_err());
        assert!(CorsConfig::parse(data).is_err());
        return;
    };
    let mut elements = 0;
    let depth = walk(&root, &mut elements);
    // 16 open elements, and an empty one in the innermost.
    assert!(depth <= 17, "the tree is {depth} deep");
    assert!(elements <= 60_000, "the tree has {elements} elements");

    if let Ok(parts) = parse_completed_parts(data) {
        assert_eq!(root.name, "CompleteMultipartUpload");
        assert!(!parts.is_empty());
    }

    // DeleteObjects.
    if root.name == "Delete" {
        let _quiet = root.child("Quiet").is_some_and(|q| q.text.trim().eq_ignore_ascii_case("true"));
        for object in root.children_named("Object") {
            let _key = object.child("Key").map(|key| key.text.len());
            let _version = object.child("VersionId").map(|v| v.text.as_str() != "null");
        }
    }

    if let Ok(cors) = CorsConfig::parse(data) {
        // GetBucketCors answers with this; PutBucketCors must take it back.
        let written = cors.to_xml();
        match CorsConfig::parse(written.as_bytes()) {
            Ok(again) => assert_eq!(again, cors, "{written}"),
            Err(error) => panic!("larder's own CORS document does not read back ({}): {written}", error.code),
        }
    }
});

/// The depth of the tree; counts its elements.
fn walk(element: &Element, count: &mut usize) -> usize {
    *count += 1;
    1 + element.children.iter().map(|child| walk(child, count)).max().unwrap_or(0)
}

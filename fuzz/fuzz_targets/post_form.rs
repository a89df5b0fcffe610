//! POST Object (s3/post.rs, s3/form_data.rs): the boundary of the
//! Content-Type, the multipart/form-data form read as larder reads it
//! (fields, file, the parts after it, within the form's limits), the policy
//! document (base64 JSON: expiration and conditions) checked against the
//! fields, the credential field, and the file name made safe for upload
//! links.
//!
//! Input: a frame length byte (0: the body in one frame), a limit byte (0:
//! no limit on the form's bytes, else 16 bytes per unit), the Content-Type
//! line, then the body. A `policy` field that is not base64 is taken as the
//! JSON itself, so the fuzzer reaches the policy parser directly too.
//!
//! Without a limit, the form must read the same however it is framed.

#![no_main]

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use larder::fuzzing::{post_form, post_policy, sanitize_file_name};
use larder_fuzz::{frames, Choices};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut choices = Choices(data);
    let frame = usize::from(choices.byte());
    let limit = choices.byte();
    let max_total = if limit == 0 { u64::MAX } else { u64::from(limit) * 16 };
    let rest = choices.rest();
    let (content_type, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(end) => (&rest[..end], &rest[end + 1..]),
        None => (rest, &[][..]),
    };
    let content_type = String::from_utf8_lossy(content_type.strip_suffix(b"\r").unwrap_or(content_type));
    let framed = if frame == 0 { frames(body, []) } else { frames(body, std::iter::repeat(frame)) };
    let form = post_form(&content_type, framed, max_total);
    if limit == 0 {
        let whole = post_form(&content_type, frames(body, []), max_total);
        assert_eq!(
            form.as_ref().map_err(|error| error.code),
            whole.as_ref().map_err(|error| error.code),
            "the framing changed the form"
        );
    }
    let Ok(form) = form else {
        return;
    };
    let field = |name: &str| form.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());

    // Upload links store the file under this name.
    let name = sanitize_file_name(&form.file_name);
    assert!(!name.is_empty() && name.chars().count() <= 200, "{name:?}");
    assert!(!name.contains(['/', '\\']), "{name:?}");
    assert!(!name.starts_with('.') && name.trim() == name, "{name:?}");
    if let Some(key) = field("key") {
        let _ = key.replace("${filename}", &form.file_name);
    }

    if let Some(credential) = field("x-amz-credential") {
        if let Ok((access_key, scope)) = larder::sigv4::parse_credential(credential) {
            assert!(!access_key.is_empty() && scope.date.len() == 8);
        }
    }

    if let Some(policy) = field("policy") {
        let document = BASE64.decode(policy.trim()).unwrap_or_else(|_| policy.as_bytes().to_vec());
        let _ = post_policy(&document, form.fields.clone(), "bucket");
    }
});

//! DeleteObjects: up to 1000 keys in one XML request, quiet or verbose.

use crate::store::Selector;

use super::error::S3Error;
use super::headers::expected_digests;
use super::xml::{self, XmlWriter};
use super::{xml_response, RequestContext, S3Result, MAX_KEY_BYTES, S3};

const MAX_KEYS_PER_REQUEST: usize = 1000;
/// 1000 keys of 1024 bytes, escaped, with room for the markup.
const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

pub async fn delete_objects(s3: &S3, context: &mut RequestContext) -> S3Result {
    let (expected, _) = expected_digests(&context.headers, context.auth.as_ref())?;
    if expected.md5.is_none() && expected.checksum.is_none() {
        return Err(S3Error::invalid_request(
            "Missing required header for this request: Content-MD5 OR x-amz-checksum-*",
        ));
    }
    // The body was bound to its digests before this handler ran: a
    // document that does not match them fails here, unread.
    let document = context.body.read_to_end(MAX_DOCUMENT_BYTES).await?;

    let root = xml::parse(&document).map_err(|_| S3Error::malformed_xml())?;
    if root.name != "Delete" {
        return Err(S3Error::malformed_xml());
    }
    let quiet = root.child("Quiet").is_some_and(|q| q.text.trim().eq_ignore_ascii_case("true"));
    let objects: Vec<&xml::Element> = root.children_named("Object").collect();
    if objects.is_empty() || objects.len() > MAX_KEYS_PER_REQUEST {
        return Err(S3Error::malformed_xml());
    }
    let mut targets = Vec::with_capacity(objects.len());
    for object in objects {
        let key = object.child("Key").ok_or_else(S3Error::malformed_xml)?.text.clone();
        let version = object.child("VersionId").map(|v| v.text.clone());
        targets.push((key, version));
    }
    s3.store.bucket(&context.bucket).await?;

    let mut out = XmlWriter::new("DeleteResult");
    for (key, version) in targets {
        let which = super::object::selector(version.as_deref());
        let outcome = if key.is_empty() || key.len() > MAX_KEY_BYTES || key.contains('\0') {
            Err(("InvalidArgument", "Invalid key"))
        } else if s3.authorize(context, super::access::DELETE_OBJECT, &context.bucket, &key).await.is_err() {
            Err(("AccessDenied", "Access Denied"))
        } else {
            let deleted = match which {
                Err(_) => Err(("NoSuchVersion", "The specified version does not exist.")),
                Ok(Selector::Current) => Ok(s3.store.delete_object(&context.bucket, &key).await),
                Ok(Selector::Version(id)) => {
                    let guard = super::object_lock::delete_guard(s3, context, &context.bucket, &key).await;
                    Ok(s3.store.delete_version(&context.bucket, &key, id, guard).await)
                }
            };
            match deleted {
                Err(refusal) => Err(refusal),
                Ok(Ok(deleted)) => Ok(deleted),
                Ok(Err(crate::store::StoreError::ObjectLocked)) => {
                    Err(("AccessDenied", "Access Denied because object protected by object lock."))
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, "delete failed");
                    Err(("InternalError", "We encountered an internal error. Please try again."))
                }
            }
        };
        match outcome {
            Ok(_) if quiet => {}
            Ok(deleted) => {
                out.open("Deleted").element("Key", &key);
                if let Some(version) = &version {
                    out.element("VersionId", version);
                }
                if deleted.delete_marker {
                    out.element("DeleteMarker", "true")
                        .element("DeleteMarkerVersionId", &super::object::version_text(deleted.version));
                }
                out.close("Deleted");
            }
            Err((code, message)) => {
                out.open("Error").element("Key", &key);
                if let Some(version) = &version {
                    out.element("VersionId", version);
                }
                out.element("Code", code).element("Message", message).close("Error");
            }
        }
    }
    xml_response(out.finish("DeleteResult"))
}

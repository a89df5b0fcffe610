//! Subresources larder keeps no configuration for, answered as S3 answers
//! a bucket that never had any: tools probe these (`?acl`, `?lifecycle`,
//! `?tagging`, ...) and expect "not configured", not an error. ACLs are
//! always the owner's full control; only the `private` canned ACL can be
//! set (a bucket policy is how larder shares).

use http::StatusCode;

use super::bucket::{owner_id, write_owner};
use super::error::S3Error;
use super::headers::header;
use super::xml::XmlWriter;
use super::{empty_response, xml_response, RequestContext, S3Result, S3};

/// How S3 answers a GET of a subresource that was never configured.
enum Unconfigured {
    Missing(&'static str, &'static str),
    Empty(&'static str),
}

fn unconfigured(name: &str) -> Option<Unconfigured> {
    use Unconfigured::*;
    Some(match name {
        "encryption" => Missing(
            "ServerSideEncryptionConfigurationNotFoundError",
            "The server side encryption configuration was not found",
        ),
        "tagging" => Missing("NoSuchTagSet", "The TagSet does not exist"),
        "website" => {
            Missing("NoSuchWebsiteConfiguration", "The specified bucket does not have a website configuration")
        }
        "replication" => {
            Missing("ReplicationConfigurationNotFoundError", "The replication configuration was not found")
        }
        "publicAccessBlock" => {
            Missing("NoSuchPublicAccessBlockConfiguration", "The public access block configuration was not found")
        }
        "ownershipControls" => {
            Missing("OwnershipControlsNotFoundError", "The bucket ownership controls were not found")
        }
        "logging" => Empty("BucketLoggingStatus"),
        "notification" => Empty("NotificationConfiguration"),
        "accelerate" => Empty("AccelerateConfiguration"),
        _ => return None,
    })
}

/// Is `name` a bucket subresource answered here on GET?
pub fn answers_bucket_get(name: &str) -> bool {
    unconfigured(name).is_some()
}

pub async fn get_bucket_subresource(s3: &S3, context: &mut RequestContext, name: &'static str) -> S3Result {
    s3.store.bucket(&context.bucket).await?;
    match unconfigured(name) {
        Some(Unconfigured::Missing(code, message)) => {
            Err(S3Error::new(code, StatusCode::NOT_FOUND, message).with("BucketName", context.bucket.clone()))
        }
        Some(Unconfigured::Empty(root)) => xml_response(XmlWriter::new(root).finish(root)),
        None => Err(S3Error::not_implemented()),
    }
}

/// An object's tags: always none.
pub async fn get_object_tagging(s3: &S3, context: &mut RequestContext) -> S3Result {
    s3.store.head_object(&context.bucket, &context.key).await?;
    let mut out = XmlWriter::new("Tagging");
    out.open("TagSet").close("TagSet");
    xml_response(out.finish("Tagging"))
}

/// The ACL of a bucket or object: the owner has full control. An
/// object's ACL needs read access to the object, so it tells nobody else
/// whether the object exists.
pub async fn get_acl(s3: &S3, context: &mut RequestContext) -> S3Result {
    if context.key.is_empty() {
        s3.store.bucket(&context.bucket).await?;
    } else {
        s3.authorize(context, super::access::READ_OBJECT, &context.bucket, &context.key).await?;
        s3.store.head_object(&context.bucket, &context.key).await?;
    }
    let mut out = XmlWriter::new("AccessControlPolicy");
    write_owner(&mut out, &context.principal);
    out.open("AccessControlList").open("Grant");
    out.raw("<Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"CanonicalUser\">");
    out.element("ID", &owner_id(&context.principal)).element("DisplayName", "larder").close("Grantee");
    out.element("Permission", "FULL_CONTROL").close("Grant").close("AccessControlList");
    xml_response(out.finish("AccessControlPolicy"))
}

/// Setting an ACL: `private` (what every object already is) is accepted;
/// anything else is answered NotImplemented, pointing at bucket policies.
pub async fn put_acl(s3: &S3, context: &mut RequestContext) -> S3Result {
    if context.key.is_empty() {
        s3.store.bucket(&context.bucket).await?;
    } else {
        s3.store.head_object(&context.bucket, &context.key).await?;
    }
    match header(&context.headers, "x-amz-acl") {
        Some("private") | Some("bucket-owner-full-control") => empty_response(StatusCode::OK),
        _ => Err(S3Error::not_implemented()
            .with("Operation", "ACLs other than private; share through a bucket policy instead")),
    }
}

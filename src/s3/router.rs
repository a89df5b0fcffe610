//! From method, path and query to one S3 operation (path-style URLs).

use http::{HeaderMap, Method};

use crate::sigv4::QueryParam;

use super::error::S3Error;

/// The decoded query string.
pub struct Query(pub Vec<QueryParam>);

impl Query {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|param| param.name == name).map(|param| param.value.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|param| param.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListVersion {
    V1,
    V2,
    Versions,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    ListBuckets,
    CreateBucket,
    DeleteBucket,
    HeadBucket,
    GetBucketLocation,
    GetBucketVersioning,
    PutBucketVersioning,
    PutBucketPolicy,
    GetBucketPolicy,
    DeleteBucketPolicy,
    PutBucketCors,
    GetBucketCors,
    DeleteBucketCors,
    ListObjects(ListVersion),
    DeleteObjects,
    ListMultipartUploads,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    PutObject,
    CopyObject,
    GetObject,
    HeadObject,
    DeleteObject,
    /// A CORS preflight; answered without authentication.
    Options,
    /// The STS API (AssumeRole, GetSessionToken): `POST /` with a form.
    Sts,
    /// A browser form upload: `POST /bucket`, multipart/form-data.
    PostObject,
    GetAcl,
    PutAcl,
    /// A GET of a bucket subresource larder keeps no configuration for.
    GetBucketSubresource(&'static str),
    GetObjectTagging,
    GetObjectAttributes,
    PutBucketLifecycle,
    GetBucketLifecycle,
    DeleteBucketLifecycle,
    PutObjectLockConfiguration,
    GetObjectLockConfiguration,
    PutObjectRetention,
    GetObjectRetention,
    PutObjectLegalHold,
    GetObjectLegalHold,
    /// An S3 operation larder does not offer (yet); names the subresource.
    NotImplemented(&'static str),
}

/// Subresources that select an S3 operation larder does not implement.
impl Operation {
    /// The operation's name, as metrics and logs label it.
    pub fn name(&self) -> &'static str {
        use Operation::*;
        match self {
            ListBuckets => "ListBuckets",
            CreateBucket => "CreateBucket",
            DeleteBucket => "DeleteBucket",
            HeadBucket => "HeadBucket",
            GetBucketLocation => "GetBucketLocation",
            GetBucketVersioning => "GetBucketVersioning",
            PutBucketVersioning => "PutBucketVersioning",
            PutBucketPolicy => "PutBucketPolicy",
            GetBucketPolicy => "GetBucketPolicy",
            DeleteBucketPolicy => "DeleteBucketPolicy",
            PutBucketCors => "PutBucketCors",
            GetBucketCors => "GetBucketCors",
            DeleteBucketCors => "DeleteBucketCors",
            DeleteObjects => "DeleteObjects",
            ListMultipartUploads => "ListMultipartUploads",
            CreateMultipartUpload => "CreateMultipartUpload",
            UploadPart => "UploadPart",
            UploadPartCopy => "UploadPartCopy",
            CompleteMultipartUpload => "CompleteMultipartUpload",
            AbortMultipartUpload => "AbortMultipartUpload",
            ListParts => "ListParts",
            PutObject => "PutObject",
            CopyObject => "CopyObject",
            GetObject => "GetObject",
            HeadObject => "HeadObject",
            DeleteObject => "DeleteObject",
            Options => "Options",
            Sts => "Sts",
            PostObject => "PostObject",
            GetAcl => "GetAcl",
            PutAcl => "PutAcl",
            GetObjectTagging => "GetObjectTagging",
            GetObjectAttributes => "GetObjectAttributes",
            PutBucketLifecycle => "PutBucketLifecycleConfiguration",
            GetBucketLifecycle => "GetBucketLifecycleConfiguration",
            DeleteBucketLifecycle => "DeleteBucketLifecycle",
            PutObjectLockConfiguration => "PutObjectLockConfiguration",
            GetObjectLockConfiguration => "GetObjectLockConfiguration",
            PutObjectRetention => "PutObjectRetention",
            GetObjectRetention => "GetObjectRetention",
            PutObjectLegalHold => "PutObjectLegalHold",
            GetObjectLegalHold => "GetObjectLegalHold",
            ListObjects(ListVersion::V1) => "ListObjects",
            ListObjects(ListVersion::V2) => "ListObjectsV2",
            ListObjects(ListVersion::Versions) => "ListObjectVersions",
            GetBucketSubresource(_) => "GetBucketSubresource",
            NotImplemented(_) => "NotImplemented",
        }
    }
}

const BUCKET_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "lifecycle",
    "logging",
    "metadataTable",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "tagging",
    "website",
];
const OBJECT_SUBRESOURCES: &[&str] =
    &["acl", "attributes", "legal-hold", "restore", "retention", "select", "tagging", "torrent"];

fn subresource(query: &Query, names: &[&'static str]) -> Option<&'static str> {
    names.iter().copied().find(|name| query.has(name))
}

/// Picks the operation; `bucket` and `key` are what the path named.
pub fn route(
    method: &Method,
    bucket: Option<&str>,
    key: Option<&str>,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Operation, S3Error> {
    use Operation::*;
    if method == Method::OPTIONS {
        return Ok(Options);
    }
    let Some(_bucket) = bucket else {
        let is_form = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
        return match *method {
            Method::GET => Ok(ListBuckets),
            Method::POST if is_form || query.has("Action") => Ok(Sts),
            _ => Err(S3Error::method_not_allowed()),
        };
    };
    let Some(_key) = key else {
        let unsupported = subresource(query, BUCKET_SUBRESOURCES);
        return Ok(match (method.clone(), unsupported) {
            (Method::GET, _) if query.has("location") => GetBucketLocation,
            (Method::GET, _) if query.has("versioning") => GetBucketVersioning,
            (Method::PUT, _) if query.has("versioning") => PutBucketVersioning,
            (Method::PUT, _) if query.has("object-lock") => PutObjectLockConfiguration,
            (Method::PUT, _) if query.has("lifecycle") => PutBucketLifecycle,
            (Method::GET, _) if query.has("lifecycle") => GetBucketLifecycle,
            (Method::DELETE, _) if query.has("lifecycle") => DeleteBucketLifecycle,
            (Method::GET, _) if query.has("object-lock") => GetObjectLockConfiguration,
            (Method::GET, _) if query.has("versions") => ListObjects(ListVersion::Versions),
            (Method::GET, _) if query.has("acl") => GetAcl,
            (Method::PUT, _) if query.has("acl") => PutAcl,
            (Method::GET, Some(name)) if super::subresource::answers_bucket_get(name) => GetBucketSubresource(name),
            (Method::PUT, _) if query.has("cors") => PutBucketCors,
            (Method::GET, _) if query.has("cors") => GetBucketCors,
            (Method::DELETE, _) if query.has("cors") => DeleteBucketCors,
            (Method::PUT, _) if query.has("policy") => PutBucketPolicy,
            (Method::GET, _) if query.has("policy") => GetBucketPolicy,
            (Method::DELETE, _) if query.has("policy") => DeleteBucketPolicy,
            (Method::GET, _) if query.has("uploads") => ListMultipartUploads,
            (Method::POST, _) if query.has("delete") => DeleteObjects,
            (Method::GET | Method::PUT | Method::DELETE | Method::POST, Some(name)) => NotImplemented(name),
            (Method::GET, None) => match query.get("list-type") {
                Some("2") => ListObjects(ListVersion::V2),
                None => ListObjects(ListVersion::V1),
                Some(_) => return Err(S3Error::invalid_argument("Invalid List Type specified in Request")),
            },
            (Method::HEAD, _) => HeadBucket,
            (Method::PUT, None) => CreateBucket,
            (Method::DELETE, None) => DeleteBucket,
            (Method::POST, None) => PostObject,
            _ => return Err(S3Error::method_not_allowed()),
        });
    };
    let unsupported = subresource(query, OBJECT_SUBRESOURCES);
    let copy = headers.contains_key("x-amz-copy-source");
    Ok(match (method.clone(), unsupported) {
        (Method::POST, _) if query.has("uploads") => CreateMultipartUpload,
        (Method::POST, _) if query.has("uploadId") => CompleteMultipartUpload,
        (Method::PUT, _) if query.has("uploadId") && copy => UploadPartCopy,
        (Method::PUT, _) if query.has("uploadId") => UploadPart,
        (Method::GET, _) if query.has("uploadId") => ListParts,
        (Method::DELETE, _) if query.has("uploadId") => AbortMultipartUpload,
        (Method::GET, _) if query.has("acl") => GetAcl,
        (Method::PUT, _) if query.has("acl") => PutAcl,
        (Method::GET, _) if query.has("tagging") => GetObjectTagging,
        (Method::GET, _) if query.has("attributes") => GetObjectAttributes,
        (Method::PUT, _) if query.has("retention") => PutObjectRetention,
        (Method::GET, _) if query.has("retention") => GetObjectRetention,
        (Method::PUT, _) if query.has("legal-hold") => PutObjectLegalHold,
        (Method::GET, _) if query.has("legal-hold") => GetObjectLegalHold,
        (Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::POST, Some(name)) => NotImplemented(name),
        (Method::GET, None) => GetObject,
        (Method::HEAD, None) => HeadObject,
        (Method::PUT, None) if copy => CopyObject,
        (Method::PUT, None) => PutObject,
        (Method::DELETE, None) => DeleteObject,
        _ => return Err(S3Error::method_not_allowed()),
    })
}

/// Splits a decoded path into bucket and key: `/` is the service,
/// `/bucket` or `/bucket/` a bucket, `/bucket/any/key` an object.
pub fn split_path(path: &str) -> (Option<&str>, Option<&str>) {
    let rest = path.strip_prefix('/').unwrap_or(path);
    match rest.split_once('/') {
        _ if rest.is_empty() => (None, None),
        None => (Some(rest), None),
        Some((bucket, "")) => (Some(bucket), None),
        Some((bucket, key)) => (Some(bucket), Some(key)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigv4::parse_query;

    fn op(method: Method, path: &str, query: &str) -> Result<Operation, S3Error> {
        let (bucket, key) = split_path(path);
        route(&method, bucket, key, &Query(parse_query(query).unwrap()), &HeaderMap::new())
    }

    #[test]
    fn paths_split_into_bucket_and_key() {
        assert_eq!(split_path("/"), (None, None));
        assert_eq!(split_path("/b"), (Some("b"), None));
        assert_eq!(split_path("/b/"), (Some("b"), None));
        assert_eq!(split_path("/b//k/../"), (Some("b"), Some("/k/../")));
    }

    #[test]
    fn routes() {
        assert_eq!(op(Method::GET, "/", "").unwrap(), Operation::ListBuckets);
        assert_eq!(op(Method::POST, "/b/k", "uploads").unwrap(), Operation::CreateMultipartUpload);
        assert_eq!(op(Method::PUT, "/b/k", "partNumber=1&uploadId=x").unwrap(), Operation::UploadPart);
        assert_eq!(op(Method::GET, "/b", "uploads").unwrap(), Operation::ListMultipartUploads);
        assert_eq!(op(Method::GET, "/b", "list-type=2&prefix=a").unwrap(), Operation::ListObjects(ListVersion::V2));
        assert_eq!(op(Method::GET, "/b", "").unwrap(), Operation::ListObjects(ListVersion::V1));
        assert_eq!(op(Method::POST, "/b", "delete").unwrap(), Operation::DeleteObjects);
        assert_eq!(op(Method::GET, "/b/k", "x-id=GetObject").unwrap(), Operation::GetObject);
        assert_eq!(op(Method::GET, "/b/k", "tagging").unwrap(), Operation::GetObjectTagging);
        assert_eq!(op(Method::PUT, "/b/k", "tagging").unwrap(), Operation::NotImplemented("tagging"));
        assert_eq!(op(Method::PUT, "/b", "policy").unwrap(), Operation::PutBucketPolicy);
        assert_eq!(op(Method::PUT, "/b", "cors").unwrap(), Operation::PutBucketCors);
        assert_eq!(op(Method::PATCH, "/b/k", "").unwrap_err().code, "MethodNotAllowed");
        assert_eq!(op(Method::GET, "/b", "list-type=3").unwrap_err().code, "InvalidArgument");
    }
}

//! The S3 error table: every error any layer can raise is mapped here,
//! once, to AWS's code, HTTP status and extra elements.

use http::StatusCode;

use crate::iam::IamError;
use crate::sigv4::{AuthKind, SigError};
use crate::store::{DigestKind, StoreError};
use crate::timefmt;

use super::xml::escape;

/// The XML namespace of STS answers (errors included).
pub const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

#[derive(Debug, Clone)]
pub struct S3Error {
    pub code: &'static str,
    pub status: StatusCode,
    pub message: String,
    /// Further elements of the error body, in order.
    pub extra: Vec<(&'static str, String)>,
    /// STS answers errors in the AWS query-protocol document.
    pub sts: bool,
    /// Response headers the refusal carries (a delete marker's, say).
    pub headers: Vec<(&'static str, String)>,
}

impl S3Error {
    pub fn new(code: &'static str, status: StatusCode, message: impl Into<String>) -> S3Error {
        S3Error { code, status, message: message.into(), extra: Vec::new(), sts: false, headers: Vec::new() }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.headers.push((name, value.into()));
        self
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> S3Error {
        self.extra.push((name, value.into()));
        self
    }

    pub fn has(&self, name: &str) -> bool {
        self.extra.iter().any(|(n, _)| *n == name)
    }

    pub fn access_denied() -> S3Error {
        S3Error::new("AccessDenied", StatusCode::FORBIDDEN, "Access Denied")
    }

    pub fn invalid_argument(message: impl Into<String>) -> S3Error {
        S3Error::new("InvalidArgument", StatusCode::BAD_REQUEST, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> S3Error {
        S3Error::new("InvalidRequest", StatusCode::BAD_REQUEST, message)
    }

    pub fn malformed_xml() -> S3Error {
        S3Error::new(
            "MalformedXML",
            StatusCode::BAD_REQUEST,
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    }

    pub fn not_implemented() -> S3Error {
        S3Error::new(
            "NotImplemented",
            StatusCode::NOT_IMPLEMENTED,
            "A header you provided implies functionality that is not implemented",
        )
    }

    pub fn method_not_allowed() -> S3Error {
        S3Error::new(
            "MethodNotAllowed",
            StatusCode::METHOD_NOT_ALLOWED,
            "The specified method is not allowed against this resource.",
        )
    }

    pub fn no_such_bucket() -> S3Error {
        S3Error::new("NoSuchBucket", StatusCode::NOT_FOUND, "The specified bucket does not exist")
    }

    pub fn no_such_key() -> S3Error {
        S3Error::new("NoSuchKey", StatusCode::NOT_FOUND, "The specified key does not exist.")
    }

    pub fn invalid_uri() -> S3Error {
        S3Error::new("InvalidURI", StatusCode::BAD_REQUEST, "Couldn't parse the specified URI.")
    }

    pub fn precondition_failed(condition: &str) -> S3Error {
        S3Error::new(
            "PreconditionFailed",
            StatusCode::PRECONDITION_FAILED,
            "At least one of the pre-conditions you specified did not hold",
        )
        .with("Condition", condition)
    }

    pub fn internal() -> S3Error {
        S3Error::new(
            "InternalError",
            StatusCode::INTERNAL_SERVER_ERROR,
            "We encountered an internal error. Please try again.",
        )
    }

    /// No room on the disk for what a write declared.
    pub fn no_such_upload(id: &str) -> S3Error {
        S3Error::new(
            "NoSuchUpload",
            StatusCode::NOT_FOUND,
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
        .with("UploadId", id)
    }

    pub fn insufficient_storage() -> S3Error {
        S3Error::new(
            "InsufficientStorage",
            StatusCode::INSUFFICIENT_STORAGE,
            "There is not enough free space on the server to store this object.",
        )
    }

    /// A body that does not hash to what the request declared.
    pub fn digest_mismatch(kind: DigestKind) -> S3Error {
        match kind {
            DigestKind::PayloadSha256 => S3Error::new(
                "XAmzContentSHA256Mismatch",
                StatusCode::BAD_REQUEST,
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ),
            DigestKind::Md5 => S3Error::bad_digest("The Content-MD5 you specified did not match what we received."),
            DigestKind::Checksum(algorithm) => S3Error::bad_digest(format!(
                "The {} you specified did not match the calculated checksum.",
                algorithm.name()
            )),
        }
    }

    pub fn bad_digest(message: impl Into<String>) -> S3Error {
        S3Error::new("BadDigest", StatusCode::BAD_REQUEST, message)
    }

    /// The same error as STS words and shapes it.
    pub fn for_sts(mut self) -> S3Error {
        if self.code == "InvalidAccessKeyId" {
            self.code = "InvalidClientTokenId";
            self.message = "The security token included in the request is invalid.".into();
        }
        self.sts = true;
        self
    }

    /// The error document, with the resource and request id.
    pub fn to_xml(&self, resource: &str, request_id: &str) -> String {
        if self.sts {
            let kind = if self.status.is_server_error() { "Receiver" } else { "Sender" };
            return format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
                STS_NAMESPACE,
                self.code,
                escape(&self.message)
            );
        }
        let mut out = String::with_capacity(256);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
        out.push_str(self.code);
        out.push_str("</Code><Message>");
        out.push_str(&escape(&self.message));
        out.push_str("</Message>");
        for (name, value) in &self.extra {
            out.push_str(&format!("<{name}>{}</{name}>", escape(value)));
        }
        out.push_str("<Resource>");
        out.push_str(&escape(resource));
        out.push_str("</Resource><RequestId>");
        out.push_str(request_id);
        out.push_str("</RequestId></Error>");
        out
    }
}

impl From<SigError> for S3Error {
    fn from(error: SigError) -> S3Error {
        let bad_request = StatusCode::BAD_REQUEST;
        match error {
            SigError::HeaderMalformed(message) => S3Error::new("AuthorizationHeaderMalformed", bad_request, message),
            SigError::QueryMalformed(message) => S3Error::new("AuthorizationQueryParametersError", bad_request, message),
            SigError::WrongRegion { kind: AuthKind::Header, got, expected } => S3Error::new(
                "AuthorizationHeaderMalformed",
                bad_request,
                format!("The authorization header is malformed; the region '{got}' is wrong; expecting '{expected}'"),
            )
            .with("Region", expected),
            SigError::WrongRegion { kind: AuthKind::Query, got, expected } => S3Error::new(
                "AuthorizationQueryParametersError",
                bad_request,
                format!("Error parsing the X-Amz-Credential parameter; the region '{got}' is wrong; expecting '{expected}'"),
            )
            .with("Region", expected),
            SigError::UnsupportedAuthorization => S3Error::invalid_argument("Unsupported Authorization Type"),
            SigError::SigV2 => S3Error::invalid_request(
                "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256. \
                 (This larder refuses Signature Version 2 (sigv2 = false); with boto3 set \
                 Config(signature_version='s3v4'), with the AWS CLI set `s3 = signature_version = s3v4` in \
                 ~/.aws/config.)",
            ),
            SigError::MissingDate => S3Error::new(
                "AccessDenied",
                StatusCode::FORBIDDEN,
                "AWS authentication requires a valid Date or x-amz-date header",
            ),
            SigError::MissingContentSha256 => {
                S3Error::invalid_request("Missing required header for this request: x-amz-content-sha256")
            }
            SigError::InvalidContentSha256 => S3Error::invalid_argument(
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
            ),
            SigError::TooSkewed { request_time, server_time } => S3Error::new(
                "RequestTimeTooSkewed",
                StatusCode::FORBIDDEN,
                "The difference between the request time and the current time is too large.",
            )
            .with("RequestTime", timefmt::format_amz_date(request_time))
            .with("ServerTime", timefmt::format_iso8601(server_time))
            .with("MaxAllowedSkewMilliseconds", "900000"),
            SigError::Expired { expires_secs, expired_at, server_time } => {
                S3Error::new("AccessDenied", StatusCode::FORBIDDEN, "Request has expired")
                    .with("X-Amz-Expires", expires_secs.to_string())
                    .with("Expires", timefmt::format_iso8601(expired_at))
                    .with("ServerTime", timefmt::format_iso8601(server_time))
            }
            SigError::NotYetValid => S3Error::new("AccessDenied", StatusCode::FORBIDDEN, "Request is not valid yet"),
            SigError::HeadersNotSigned(headers) => S3Error::new(
                "AccessDenied",
                StatusCode::FORBIDDEN,
                "There were headers present in the request which were not signed",
            )
            .with("HeadersNotSigned", headers.join(", ")),
            SigError::SignatureDoesNotMatch { access_key, string_to_sign, canonical_request, signature_provided } => {
                S3Error::new(
                    "SignatureDoesNotMatch",
                    StatusCode::FORBIDDEN,
                    "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
                )
                .with("AWSAccessKeyId", access_key)
                .with("StringToSign", string_to_sign)
                .with("SignatureProvided", signature_provided)
                .with("CanonicalRequest", canonical_request)
            }
        }
    }
}

impl From<IamError> for S3Error {
    fn from(error: IamError) -> S3Error {
        match error {
            IamError::UnknownAccessKey(key) => S3Error::new(
                "InvalidAccessKeyId",
                StatusCode::FORBIDDEN,
                "The AWS Access Key Id you provided does not exist in our records.",
            )
            .with("AWSAccessKeyId", key),
            IamError::ExpiredKey(key) => S3Error::new(
                "InvalidAccessKeyId",
                StatusCode::FORBIDDEN,
                "The AWS Access Key Id you provided has expired.",
            )
            .with("AWSAccessKeyId", key),
            IamError::ExpiredToken => {
                S3Error::new("ExpiredToken", StatusCode::BAD_REQUEST, "The provided token has expired.")
            }
            IamError::InvalidToken => S3Error::new(
                "InvalidToken",
                StatusCode::BAD_REQUEST,
                "The provided token is malformed or otherwise invalid.",
            ),
            IamError::AccessDenied => S3Error::access_denied(),
        }
    }
}

impl From<StoreError> for S3Error {
    fn from(error: StoreError) -> S3Error {
        match error {
            StoreError::NoSuchBucket => S3Error::no_such_bucket(),
            StoreError::NoSuchKey => S3Error::no_such_key(),
            StoreError::ObjectLocked => S3Error::new(
                "AccessDenied",
                StatusCode::FORBIDDEN,
                "Access Denied because object protected by object lock.",
            ),
            StoreError::InvalidBucketState => S3Error::new(
                "InvalidBucketState",
                StatusCode::CONFLICT,
                "The request is not valid with the current state of the bucket.",
            ),
            StoreError::NoSuchVersion => {
                S3Error::new("NoSuchVersion", StatusCode::NOT_FOUND, "The specified version does not exist.")
            }
            // The current version is a delete marker: the key looks absent,
            // and says why. Asked for by version id: 405, as S3 answers.
            StoreError::DeleteMarker { record, current } => {
                let error = if current { S3Error::no_such_key() } else { S3Error::method_not_allowed() };
                let version = record.version.map_or_else(|| "null".to_string(), |id| id.to_string());
                let error = error.with_header("x-amz-delete-marker", "true").with_header("x-amz-version-id", version);
                if current {
                    error
                } else {
                    error.with_header("last-modified", timefmt::format_http_date(record.last_modified))
                }
            }
            StoreError::BucketAlreadyOwnedByYou => S3Error::new(
                "BucketAlreadyOwnedByYou",
                StatusCode::CONFLICT,
                "Your previous request to create the named bucket succeeded and you already own it.",
            ),
            StoreError::NoSuchUpload => S3Error::no_such_upload(""),
            StoreError::InvalidPart => S3Error::new(
                "InvalidPart",
                StatusCode::BAD_REQUEST,
                "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.",
            ),
            StoreError::InvalidPartOrder => S3Error::new(
                "InvalidPartOrder",
                StatusCode::BAD_REQUEST,
                "The list of parts was not in ascending order. Parts must be ordered by part number.",
            ),
            StoreError::EntityTooSmall => S3Error::new(
                "EntityTooSmall",
                StatusCode::BAD_REQUEST,
                "Your proposed upload is smaller than the minimum allowed object size.",
            ),
            StoreError::PreconditionFailed => S3Error::precondition_failed("If-Match / If-None-Match"),
            StoreError::BucketNotEmpty => {
                S3Error::new("BucketNotEmpty", StatusCode::CONFLICT, "The bucket you tried to delete is not empty")
            }
            StoreError::DigestMismatch(kind) => S3Error::digest_mismatch(kind),
            StoreError::Degraded(why) => S3Error::new(
                "ServiceUnavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                format!("The server cannot store changes right now ({why}); reads still work. Please retry later."),
            ),
            StoreError::Io(error) if error.raw_os_error() == Some(libc::ENOSPC) => {
                tracing::warn!("the disk is full");
                S3Error::insufficient_storage()
            }
            other => {
                tracing::error!(error = %other, "storage failure");
                S3Error::internal()
            }
        }
    }
}

//! PutBucketPolicy, GetBucketPolicy, DeleteBucketPolicy.

use http::{Response, StatusCode};

use crate::iam::{Policy, MAX_POLICY_BYTES};

use super::body;
use super::error::S3Error;
use super::{empty_response, RequestContext, S3Result, S3};

/// The name the policy is kept under in the bucket's configuration.
pub const CONFIG_NAME: &str = "policy";

pub async fn put_bucket_policy(s3: &S3, context: &mut RequestContext) -> S3Result {
    let document = context.body.read_to_end(MAX_POLICY_BYTES + 1).await?;
    Policy::parse(&document, &context.bucket)
        .map_err(|message| S3Error::new("MalformedPolicy", StatusCode::BAD_REQUEST, message))?;
    s3.store.set_bucket_config(&context.bucket, CONFIG_NAME, Some(document.to_vec())).await?;
    s3.forget_policy(&context.bucket);
    empty_response(StatusCode::NO_CONTENT)
}

pub async fn get_bucket_policy(s3: &S3, context: &mut RequestContext) -> S3Result {
    let document = s3.store.bucket_config(&context.bucket, CONFIG_NAME).await?.ok_or_else(|| {
        S3Error::new("NoSuchBucketPolicy", StatusCode::NOT_FOUND, "The bucket policy does not exist")
            .with("BucketName", context.bucket.clone())
    })?;
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body::full(document))
        .map_err(|_| S3Error::internal())
}

pub async fn delete_bucket_policy(s3: &S3, context: &mut RequestContext) -> S3Result {
    s3.store.set_bucket_config(&context.bucket, CONFIG_NAME, None).await?;
    s3.forget_policy(&context.bucket);
    empty_response(StatusCode::NO_CONTENT)
}

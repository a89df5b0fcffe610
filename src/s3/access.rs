//! Authorization of S3 operations: the key's grants (`iam`), then the
//! bucket's policy, evaluated as S3 does: an explicit Deny wins, then an
//! Allow from the grants or the policy, else AccessDenied.

use std::sync::Arc;

use crate::iam::{Access, Action, IamError, Policy, PolicyRequest, Principal, Verdict};
use crate::store::StoreError;

use super::error::S3Error;
use super::router::{ListVersion, Operation};
use super::{RequestContext, S3};

/// What an operation needs: a right in larder's terms and the S3 action
/// name a bucket policy speaks of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub action: Action,
    pub name: &'static str,
}

const fn needs(action: Action, name: &'static str) -> Option<Permission> {
    Some(Permission { action, name })
}

pub const READ_OBJECT: Permission = Permission { action: Action::Read, name: "s3:GetObject" };
pub const DELETE_OBJECT: Permission = Permission { action: Action::Delete, name: "s3:DeleteObject" };
pub const LIST_BUCKET: Permission = Permission { action: Action::List, name: "s3:ListBucket" };

/// Checked before an operation runs. DeleteObjects and the copies check
/// permissions for each object they touch as well.
pub fn required(operation: &Operation) -> Option<Permission> {
    use Operation::*;
    match operation {
        ListBuckets => needs(Action::ListBuckets, "s3:ListAllMyBuckets"),
        CreateBucket => needs(Action::CreateBucket, "s3:CreateBucket"),
        DeleteBucket => needs(Action::DeleteBucket, "s3:DeleteBucket"),
        HeadBucket => needs(Action::InspectBucket, "s3:ListBucket"),
        GetBucketLocation => needs(Action::InspectBucket, "s3:GetBucketLocation"),
        GetBucketVersioning => needs(Action::InspectBucket, "s3:GetBucketVersioning"),
        PutBucketVersioning => needs(Action::ConfigureBucket, "s3:PutBucketVersioning"),
        PutBucketPolicy => needs(Action::ConfigureBucket, "s3:PutBucketPolicy"),
        GetBucketPolicy => needs(Action::ConfigureBucket, "s3:GetBucketPolicy"),
        DeleteBucketPolicy => needs(Action::ConfigureBucket, "s3:DeleteBucketPolicy"),
        PutBucketCors | DeleteBucketCors => needs(Action::ConfigureBucket, "s3:PutBucketCORS"),
        GetBucketCors => needs(Action::ConfigureBucket, "s3:GetBucketCORS"),
        ListObjects(ListVersion::Versions) => needs(Action::List, "s3:ListBucketVersions"),
        ListObjects(_) => needs(Action::List, "s3:ListBucket"),
        ListMultipartUploads => needs(Action::List, "s3:ListBucketMultipartUploads"),
        // Checked for each object, so a policy on objects alone can allow it.
        DeleteObjects => None,
        PutObject | CopyObject | CreateMultipartUpload | UploadPart | UploadPartCopy | CompleteMultipartUpload => {
            needs(Action::Write, "s3:PutObject")
        }
        AbortMultipartUpload => needs(Action::Write, "s3:AbortMultipartUpload"),
        ListParts => needs(Action::Write, "s3:ListMultipartUploadParts"),
        GetObject | HeadObject => Some(READ_OBJECT),
        DeleteObject => Some(DELETE_OBJECT),
        GetAcl => needs(Action::InspectBucket, "s3:GetBucketAcl"),
        PutAcl => needs(Action::ConfigureBucket, "s3:PutBucketAcl"),
        GetBucketSubresource(_) => needs(Action::InspectBucket, "s3:GetBucketConfiguration"),
        GetObjectTagging => Some(READ_OBJECT),
        GetObjectAttributes => needs(Action::Read, "s3:GetObjectAttributes"),
        PutBucketLifecycle | DeleteBucketLifecycle => needs(Action::ConfigureBucket, "s3:PutLifecycleConfiguration"),
        GetBucketLifecycle => needs(Action::InspectBucket, "s3:GetLifecycleConfiguration"),
        PutObjectLockConfiguration => needs(Action::ConfigureBucket, "s3:PutBucketObjectLockConfiguration"),
        GetObjectLockConfiguration => needs(Action::InspectBucket, "s3:GetBucketObjectLockConfiguration"),
        PutObjectRetention => needs(Action::Write, "s3:PutObjectRetention"),
        GetObjectRetention => needs(Action::Read, "s3:GetObjectRetention"),
        PutObjectLegalHold => needs(Action::Write, "s3:PutObjectLegalHold"),
        GetObjectLegalHold => needs(Action::Read, "s3:GetObjectLegalHold"),
        // The form carries its own signature; the handler authorizes.
        PostObject => None,
        Options | Sts | NotImplemented(_) => None,
    }
}

/// Policy operations stay open to the root key whatever a policy says,
/// so that a policy can never lock the owner out.
fn is_policy_action(name: &str) -> bool {
    matches!(name, "s3:PutBucketPolicy" | "s3:GetBucketPolicy" | "s3:DeleteBucketPolicy")
}

impl S3 {
    /// The bucket's policy, parsed once and kept until it changes. A
    /// stored policy that no longer parses fails closed: it denies
    /// everything but mending it.
    pub(super) async fn bucket_policy(&self, bucket: &str) -> Result<Option<Arc<Policy>>, S3Error> {
        let (cached, generation) = self.policies.get(bucket);
        if let Some(cached) = cached {
            return Ok(cached);
        }
        let policy = match self.store.bucket_config(bucket, super::policy::CONFIG_NAME).await {
            Ok(Some(document)) => Some(Arc::new(Policy::parse(&document, bucket).unwrap_or_else(|error| {
                tracing::error!(bucket, %error, "a stored bucket policy does not parse; denying all but policy changes");
                Policy::deny_everything()
            }))),
            Ok(None) => None,
            Err(StoreError::NoSuchBucket) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        self.policies.fill(bucket, policy.clone(), generation);
        Ok(policy)
    }

    pub(super) fn forget_policy(&self, bucket: &str) {
        self.policies.forget(bucket);
    }

    /// Drops every cached configuration of `bucket` (policy, CORS).
    pub(super) fn forget_bucket_config(&self, bucket: &str) {
        self.forget_policy(bucket);
        self.forget_cors(bucket);
    }

    /// May the request's principal have `permission` on `bucket` and `key`
    /// (the listed prefix, for listings)?
    pub async fn authorize(
        &self,
        context: &RequestContext,
        permission: Permission,
        bucket: &str,
        key: &str,
    ) -> Result<(), S3Error> {
        let access = Access {
            action: permission.action,
            name: permission.name,
            bucket,
            key,
            source: context.client,
            secure: context.secure,
        };
        let granted = match self.keyring.authorize(&context.principal, &access, self.clock.now()) {
            Ok(()) => true,
            Err(IamError::AccessDenied) => false,
            // Who the caller is comes before what it may do.
            Err(error) => return Err(error.into()),
        };
        let policy = if bucket.is_empty() { None } else { self.bucket_policy(bucket).await? };
        let Some(policy) = policy else {
            return if granted { Ok(()) } else { Err(S3Error::access_denied()) };
        };
        let (name, issuer) = match &context.principal {
            Principal::Key(access_key) => (Some(self.keyring.name_of(access_key)), self.keyring.issuer_of(access_key)),
            Principal::Anonymous => (None, None),
        };
        let resource = access.resource();
        let principal = match (&context.principal, &name) {
            (Principal::Key(access_key), Some(name)) => Some((access_key.as_str(), name.as_str())),
            _ => None,
        };
        let request = PolicyRequest {
            principal,
            issuer: issuer.as_ref().map(|(key, name)| (key.as_str(), name.as_str())),
            action: permission.name,
            resource: &resource,
            source: context.client,
            secure: context.secure,
        };
        match policy.evaluate(&request) {
            Verdict::Deny if self.keyring.is_root(&context.principal) && is_policy_action(permission.name) => Ok(()),
            Verdict::Deny => Err(S3Error::access_denied()),
            Verdict::Allow => Ok(()),
            Verdict::Silent if granted => Ok(()),
            Verdict::Silent => Err(S3Error::access_denied()),
        }
    }
}

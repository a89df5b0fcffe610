"""Object Lock with real clients: boto3 (a COMPLIANCE object that neither
root nor a governance bypass can delete, GOVERNANCE with a bypass, legal
holds, default retention) and the MinIO Python SDK (versioning, retention
and legal-hold calls)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from botocore.exceptions import ClientError

minio = pytest.importorskip("minio")
from minio.commonconfig import COMPLIANCE, ENABLED, GOVERNANCE  # noqa: E402
from minio.objectlockconfig import DAYS, ObjectLockConfig  # noqa: E402
from minio.retention import Retention  # noqa: E402
from minio.versioningconfig import VersioningConfig  # noqa: E402


def _code(error: ClientError) -> str:
    return error.response["Error"]["Code"]


@pytest.fixture
def locked_bucket(s3, bucket_name):
    name = bucket_name("locked")
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name  # a locked bucket cannot be emptied: it is left behind


def test_boto3_compliance_cannot_be_deleted(s3, locked_bucket):
    assert s3.get_bucket_versioning(Bucket=locked_bucket)["Status"] == "Enabled"
    until = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    put = s3.put_object(
        Bucket=locked_bucket, Key="backup.tar", Body=b"nightly backup",
        ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until,
    )
    version = put["VersionId"]
    head = s3.head_object(Bucket=locked_bucket, Key="backup.tar")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert abs((head["ObjectLockRetainUntilDate"] - until).total_seconds()) < 1
    for bypass in (False, True):
        with pytest.raises(ClientError) as error:
            s3.delete_object(Bucket=locked_bucket, Key="backup.tar", VersionId=version, BypassGovernanceRetention=bypass)
        assert _code(error.value) == "AccessDenied"
    # Shortening is refused; the object is still there, byte for byte.
    with pytest.raises(ClientError) as error:
        s3.put_object_retention(
            Bucket=locked_bucket, Key="backup.tar", VersionId=version, BypassGovernanceRetention=True,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until - dt.timedelta(minutes=30)},
        )
    assert _code(error.value) == "AccessDenied"
    got = s3.get_object(Bucket=locked_bucket, Key="backup.tar", VersionId=version)
    assert got["Body"].read() == b"nightly backup"
    retention = s3.get_object_retention(Bucket=locked_bucket, Key="backup.tar", VersionId=version)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"


def test_boto3_governance_legal_hold_and_default(s3, locked_bucket):
    s3.put_object_lock_configuration(
        Bucket=locked_bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    config = s3.get_object_lock_configuration(Bucket=locked_bucket)["ObjectLockConfiguration"]
    assert config["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 1}
    version = s3.put_object(Bucket=locked_bucket, Key="daily", Body=b"x")["VersionId"]
    assert s3.get_object_retention(Bucket=locked_bucket, Key="daily")["Retention"]["Mode"] == "GOVERNANCE"
    with pytest.raises(ClientError) as error:
        s3.delete_object(Bucket=locked_bucket, Key="daily", VersionId=version)
    assert _code(error.value) == "AccessDenied"
    # The root key may bypass GOVERNANCE when it asks to.
    s3.delete_object(Bucket=locked_bucket, Key="daily", VersionId=version, BypassGovernanceRetention=True)

    held = s3.put_object(Bucket=locked_bucket, Key="evidence", Body=b"y", ObjectLockLegalHoldStatus="ON")["VersionId"]
    assert s3.get_object_legal_hold(Bucket=locked_bucket, Key="evidence")["LegalHold"]["Status"] == "ON"
    with pytest.raises(ClientError):
        s3.delete_object(Bucket=locked_bucket, Key="evidence", VersionId=held, BypassGovernanceRetention=True)
    s3.put_object_legal_hold(Bucket=locked_bucket, Key="evidence", VersionId=held, LegalHold={"Status": "OFF"})
    # Still under the bucket's default GOVERNANCE retention: a bypass now suffices.
    s3.delete_object(Bucket=locked_bucket, Key="evidence", VersionId=held, BypassGovernanceRetention=True)


def test_minio_sdk_versioning_and_retention(larder, bucket_name):
    client = minio.Minio(
        larder.endpoint.split("://", 1)[1], access_key=larder.access_key, secret_key=larder.secret_key, secure=False,
    )
    plain = bucket_name("minio-versions")
    client.make_bucket(plain)
    client.set_bucket_versioning(plain, VersioningConfig(ENABLED))
    assert client.get_bucket_versioning(plain).status == ENABLED
    first = client.put_object(plain, "doc", io.BytesIO(b"one"), 3).version_id
    second = client.put_object(plain, "doc", io.BytesIO(b"two"), 3).version_id
    listed = [(o.version_id, o.is_latest) for o in client.list_objects(plain, include_version=True)]
    assert listed == [(second, "true"), (first, "false")] or listed == [(second, True), (first, False)]
    assert client.get_object(plain, "doc", version_id=first).read() == b"one"
    client.remove_object(plain, "doc", version_id=first)
    client.remove_object(plain, "doc", version_id=second)
    client.remove_bucket(plain)

    locked = bucket_name("minio-locked")
    client.make_bucket(locked, object_lock=True)
    client.set_object_lock_config(locked, ObjectLockConfig(GOVERNANCE, 1, DAYS))
    assert client.get_object_lock_config(locked).mode == GOVERNANCE
    until = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(days=2)
    version = client.put_object(locked, "kept", io.BytesIO(b"kept"), 4).version_id
    client.set_object_retention(locked, "kept", Retention(COMPLIANCE, until), version_id=version)
    retention = client.get_object_retention(locked, "kept", version_id=version)
    assert retention.mode == COMPLIANCE and retention.retain_until_date == until
    client.enable_object_legal_hold(locked, "kept", version_id=version)
    assert client.is_object_legal_hold_enabled(locked, "kept", version_id=version)
    with pytest.raises(minio.error.S3Error) as error:
        client.remove_object(locked, "kept", version_id=version)
    assert error.value.code == "AccessDenied"

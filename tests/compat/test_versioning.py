"""Object versioning with real clients: boto3 (versions, delete markers,
paginated ListObjectVersions, copies from a version) and rclone
(`--s3-versions` listings, `--s3-version-at` restores)."""

from __future__ import annotations

import datetime as dt
import shutil
import time

import pytest
from botocore.exceptions import ClientError

from conftest import empty_and_delete_bucket

RCLONE = shutil.which("rclone")


@pytest.fixture
def versioned(s3, bucket):
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


def test_boto3_versions_and_delete_markers(s3, versioned):
    assert s3.get_bucket_versioning(Bucket=versioned)["Status"] == "Enabled"
    ids = [s3.put_object(Bucket=versioned, Key="notes.txt", Body=f"draft {n}".encode())["VersionId"] for n in range(3)]
    assert len(set(ids)) == 3
    for n, version in enumerate(ids):
        got = s3.get_object(Bucket=versioned, Key="notes.txt", VersionId=version)
        assert got["Body"].read() == f"draft {n}".encode()
        assert got["VersionId"] == version

    marker = s3.delete_object(Bucket=versioned, Key="notes.txt")
    assert marker["DeleteMarker"] is True
    with pytest.raises(ClientError) as error:
        s3.get_object(Bucket=versioned, Key="notes.txt")
    assert error.value.response["Error"]["Code"] == "NoSuchKey"
    assert error.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amz-delete-marker"] == "true"

    listing = s3.list_object_versions(Bucket=versioned)
    assert [v["VersionId"] for v in listing["Versions"]] == ids[::-1]
    assert [v["IsLatest"] for v in listing["Versions"]] == [False, False, False]
    assert [(m["VersionId"], m["IsLatest"]) for m in listing["DeleteMarkers"]] == [(marker["VersionId"], True)]

    # Undelete: remove the marker.
    s3.delete_object(Bucket=versioned, Key="notes.txt", VersionId=marker["VersionId"])
    assert s3.get_object(Bucket=versioned, Key="notes.txt")["Body"].read() == b"draft 2"
    # Restore an old draft by copying it over the key.
    copied = s3.copy_object(
        Bucket=versioned, Key="notes.txt", CopySource={"Bucket": versioned, "Key": "notes.txt", "VersionId": ids[0]}
    )
    assert copied["CopySourceVersionId"] == ids[0]
    assert s3.get_object(Bucket=versioned, Key="notes.txt")["Body"].read() == b"draft 0"

    with pytest.raises(ClientError) as error:
        s3.get_object(Bucket=versioned, Key="notes.txt", VersionId="not-a-version-id")
    assert error.value.response["Error"]["Code"] == "InvalidArgument"


def test_boto3_paginates_versions(s3, versioned):
    expected = []
    for key in ("a", "b/c", "b/d", "e"):
        for n in range(4):
            expected.append((key, s3.put_object(Bucket=versioned, Key=key, Body=b"x" * n)["VersionId"]))
    # Newest first within a key.
    expected.sort(key=lambda pair: (pair[0], [-ord(c) for c in pair[1]]))
    seen = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=versioned, PaginationConfig={"PageSize": 3}):
        seen.extend((v["Key"], v["VersionId"]) for v in page.get("Versions", []))
    assert seen == expected
    rolled = s3.list_object_versions(Bucket=versioned, Delimiter="/")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["b/"]
    assert {v["Key"] for v in rolled["Versions"]} == {"a", "e"}
    # A suspended bucket writes the null version.
    s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket=versioned, Key="a", Body=b"null one")
    got = s3.get_object(Bucket=versioned, Key="a", VersionId="null")
    assert got["Body"].read() == b"null one"


@pytest.mark.skipif(RCLONE is None, reason="rclone is not installed (CI installs Debian's rclone)")
def test_rclone_lists_versions_and_restores_a_point_in_time(larder, run, s3, bucket_name, tmp_path):
    bucket = bucket_name("rclone-versions")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    def rclone(*args):
        return run(
            [RCLONE, "--config", larder.rclone_config_path, "--retries", "1", *args],
            env={**larder.client_env(), "TZ": "UTC"},
            timeout=120,
        )

    try:
        local = tmp_path / "tree"
        local.mkdir()
        (local / "report.txt").write_bytes(b"monday's report\n")
        (local / "kept.txt").write_bytes(b"unchanged\n")
        rclone("sync", str(local), f"larder:{bucket}")
        # S3's times have one-second resolution: the point in time falls between.
        time.sleep(1.5)
        monday = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        time.sleep(1.5)
        (local / "report.txt").write_bytes(b"tuesday's report, longer\n")
        rclone("sync", str(local), f"larder:{bucket}")

        listed = rclone("lsf", "--s3-versions", f"larder:{bucket}").stdout.decode().splitlines()
        older = [name for name in listed if name.startswith("report-v") and name.endswith(".txt")]
        assert "report.txt" in listed and len(older) == 1, listed

        back = tmp_path / "monday"
        rclone("copy", "--s3-version-at", monday, f"larder:{bucket}", str(back))
        assert (back / "report.txt").read_bytes() == b"monday's report\n"
        assert (back / "kept.txt").read_bytes() == b"unchanged\n"
    finally:
        empty_and_delete_bucket(s3, bucket)

"""The AWS CLI v1 (`aws s3 ...`) against a real larder server."""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.parse

import pytest
import requests

SIZES = {"empty.bin": 0, "one-kib.bin": 1024, "five-mib.bin": 5 * 1024 * 1024}


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def out(proc) -> str:
    return proc.stdout.decode("utf-8", "replace")


def err(proc) -> str:
    return proc.stderr.decode("utf-8", "replace")


@pytest.fixture
def cli_bucket(aws, s3, bucket_name):
    """A bucket made with `aws s3 mb`; removed afterwards if a test left it."""
    from conftest import empty_and_delete_bucket

    name = bucket_name("cli")
    proc = aws("s3", "mb", f"s3://{name}")
    assert f"make_bucket: {name}" in out(proc)
    yield name
    if name in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        empty_and_delete_bucket(s3, name)


def test_mb_cp_both_ways_ls_rm_rb(aws, s3, cli_bucket, tmp_path):
    bucket = cli_bucket
    assert s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200

    up = tmp_path / "up"
    up.mkdir()
    originals = {}
    for name, size in SIZES.items():
        data = os.urandom(size)
        (up / name).write_bytes(data)
        originals[name] = data
        proc = aws("s3", "cp", up / name, f"s3://{bucket}/files/{name}")
        assert "upload: " in out(proc) and f"s3://{bucket}/files/{name}" in out(proc)

    # What the server stored: exact sizes, MD5 ETags (single-part uploads).
    for name, data in originals.items():
        head = s3.head_object(Bucket=bucket, Key=f"files/{name}")
        assert head["ContentLength"] == len(data)
        assert head["ETag"] == f'"{md5(data)}"'

    down = tmp_path / "down"
    down.mkdir()
    for name, data in originals.items():
        proc = aws("s3", "cp", f"s3://{bucket}/files/{name}", down / name)
        assert "download: " in out(proc)
        back = (down / name).read_bytes()
        assert len(back) == len(data)
        assert md5(back) == md5(data)

    # Listing buckets, then objects (one level, then recursive).
    listing = out(aws("s3", "ls"))
    assert any(line.split()[-1] == bucket for line in listing.splitlines())

    aws("s3", "cp", up / "one-kib.bin", f"s3://{bucket}/top level.txt")
    level = out(aws("s3", "ls", f"s3://{bucket}/"))
    prefixes = [line.split(maxsplit=1)[1] for line in level.splitlines() if line.split()[:1] == ["PRE"]]
    objects = {
        line.split(maxsplit=3)[3]: int(line.split(maxsplit=3)[2])
        for line in level.splitlines()
        if line.strip() and line.split()[0] != "PRE"
    }
    assert prefixes == ["files/"]
    assert objects == {"top level.txt": 1024}

    recursive = out(aws("s3", "ls", "--recursive", f"s3://{bucket}/files/"))
    sizes = {}
    for line in recursive.splitlines():
        date, clock, size, key = line.split(maxsplit=3)
        sizes[key] = int(size)
    assert sizes == {f"files/{name}": size for name, size in SIZES.items()}

    # rb refuses a bucket that still has objects.
    refused = aws("s3", "rb", f"s3://{bucket}", check=False)
    assert refused.returncode != 0
    assert "BucketNotEmpty" in err(refused)

    proc = aws("s3", "rm", f"s3://{bucket}/top level.txt")
    assert f"delete: s3://{bucket}/top level.txt" in out(proc)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert "top level.txt" not in keys and len(keys) == 3

    proc = aws("s3", "rm", "--recursive", f"s3://{bucket}/files/")
    assert out(proc).count("delete: ") == 3
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0

    proc = aws("s3", "rb", f"s3://{bucket}")
    assert f"remove_bucket: {bucket}" in out(proc)
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_presign_then_plain_get(aws, s3, cli_bucket, tmp_path):
    data = os.urandom(4321)
    source = tmp_path / "shared file.bin"
    source.write_bytes(data)
    aws("s3", "cp", source, f"s3://{cli_bucket}/dir/shared file.bin")

    url = out(aws("s3", "presign", f"s3://{cli_bucket}/dir/shared file.bin", "--expires-in", "300")).strip()
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"], url
    assert query["X-Amz-Expires"] == ["300"]
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.content == data

    # The same URL for a key that is not there: an S3 error, not data.
    missing = out(aws("s3", "presign", f"s3://{cli_bucket}/dir/absent.bin")).strip()
    response = requests.get(missing, timeout=30)
    assert response.status_code == 404
    assert b"<Code>NoSuchKey</Code>" in response.content


def test_sync_both_ways(aws, s3, cli_bucket, tmp_path):
    tree = tmp_path / "tree"
    files = {
        "a.txt": b"alpha\n",
        "sub/b.txt": b"bravo\n" * 100,
        "sub/deeper/c d.bin": os.urandom(10_000),
        "unicode/ñ-日本.txt": "ünï\n".encode(),
    }
    for rel, data in files.items():
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        # Older than the upload by far: S3 dates have one-second precision,
        # and sync re-uploads a file whose mtime is newer than LastModified.
        past = time.time() - 3600
        os.utime(path, (past, past))
    proc = aws("s3", "sync", tree, f"s3://{cli_bucket}/synced")
    assert out(proc).count("upload: ") == len(files)
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=cli_bucket)["Contents"])
    assert listed == sorted(f"synced/{rel}" for rel in files)

    # A second sync finds nothing to do.
    again = aws("s3", "sync", tree, f"s3://{cli_bucket}/synced")
    assert "upload: " not in out(again)

    back = tmp_path / "back"
    proc = aws("s3", "sync", f"s3://{cli_bucket}/synced", back)
    assert out(proc).count("download: ") == len(files)
    for rel, data in files.items():
        assert (back / rel).read_bytes() == data


def test_s3api_put_and_head_object(aws, cli_bucket, tmp_path):
    body = tmp_path / "body.json"
    body.write_bytes(b'{"hello": "larder"}')
    put = json.loads(
        out(
            aws(
                "s3api", "put-object", "--bucket", cli_bucket, "--key", "meta/obj.json", "--body", body,
                "--content-type", "application/json", "--metadata", "owner=cli,purpose=test",
            )
        )
    )
    assert put["ETag"] == f'"{md5(body.read_bytes())}"'
    head = json.loads(out(aws("s3api", "head-object", "--bucket", cli_bucket, "--key", "meta/obj.json")))
    assert head["ContentLength"] == len(body.read_bytes())
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {"owner": "cli", "purpose": "test"}

    missing = aws("s3api", "head-object", "--bucket", cli_bucket, "--key", "meta/none", check=False)
    assert missing.returncode != 0
    assert "404" in err(missing)

"""rclone (s3 backend, provider Other) against a real larder server."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from pathlib import Path

import pytest

from conftest import empty_and_delete_bucket

RCLONE = shutil.which("rclone")

pytestmark = pytest.mark.skipif(RCLONE is None, reason="rclone is not installed (CI installs Debian's rclone)")


def make_tree(root: Path) -> dict[str, bytes]:
    """About fifty small files in nested folders; returns {relative path: bytes}."""
    rng = random.Random(20240601)
    files: dict[str, bytes] = {}
    for d in range(4):
        for s in range(3):
            for f in range(4):
                rel = f"dir{d}/sub{s}/file{f}.dat"
                files[rel] = rng.randbytes(rng.choice([0, 1, 100, 4096, 65_537, 200_000]))
    files["top.txt"] = b"top level\n"
    files["with space/a file name with spaces.txt"] = b"spaces\n" * 10
    files["ünïcødé/日本語 ファイル.txt"] = "こんにちは\n".encode()
    files["plus+and%percent/x+y%z.txt"] = b"odd characters\n"
    files["deep/er/and/deeper/still/leaf.bin"] = rng.randbytes(12_345)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


@pytest.fixture
def rclone(larder, run):
    def call(*args, check=True, timeout=120):
        return run(
            [
                RCLONE, "--config", larder.rclone_config_path,
                "--retries", "1", "--low-level-retries", "2",
                "--s3-upload-cutoff", "64M",
                "--checkers", "4", "--transfers", "4",
                *args,
            ],
            env={**larder.client_env(), "TZ": "UTC"},
            timeout=timeout,
            check=check,
        )

    return call


def text(proc) -> str:
    return proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")


def test_rclone_copy_check_lsf_and_back(rclone, s3, bucket_name, tmp_path):
    bucket = bucket_name("rclone")
    local = tmp_path / "local"
    files = make_tree(local)
    assert 45 <= len(files) <= 60
    try:
        # rclone creates the bucket itself.
        rclone("copy", local, f"larder:{bucket}")
        assert s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200

        # Every key stored with its exact bytes (single-part: ETag is the MD5).
        stored = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                stored[obj["Key"]] = obj
        assert sorted(stored) == sorted(files)
        for rel, data in files.items():
            assert stored[rel]["Size"] == len(data)
            assert stored[rel]["ETag"] == '"' + hashlib.md5(data).hexdigest() + '"'
        # rclone keeps the modification time as user metadata.
        head = s3.head_object(Bucket=bucket, Key="top.txt")
        assert "mtime" in head["Metadata"]

        check = rclone("check", local, f"larder:{bucket}", check=False)
        assert check.returncode == 0, text(check)
        assert "0 differences found" in text(check)
        assert f"{len(files)} matching files" in text(check)

        listed = rclone("lsf", "-R", "--files-only", f"larder:{bucket}")
        names = listed.stdout.decode("utf-8").splitlines()
        assert sorted(names) == sorted(files)

        dirs = rclone("lsf", f"larder:{bucket}", "--dirs-only").stdout.decode("utf-8").splitlines()
        assert sorted(dirs) == sorted({rel.split("/")[0] + "/" for rel in files if "/" in rel})

        back = tmp_path / "back"
        rclone("copy", f"larder:{bucket}", back)
        got = {
            str(path.relative_to(back)): path.read_bytes() for path in back.rglob("*") if path.is_file()
        }
        assert sorted(got) == sorted(files)
        for rel, data in files.items():
            assert got[rel] == data, rel

        # A content change and a deletion, then `rclone sync`: check agrees again.
        (local / "top.txt").write_bytes(b"changed contents\n")
        (local / "dir0/sub0/file0.dat").unlink()
        rclone("sync", local, f"larder:{bucket}")
        assert s3.get_object(Bucket=bucket, Key="top.txt")["Body"].read() == b"changed contents\n"
        keys = {o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                for o in page.get("Contents", [])}
        assert "dir0/sub0/file0.dat" not in keys
        assert len(keys) == len(files) - 1
        check = rclone("check", local, f"larder:{bucket}", check=False)
        assert check.returncode == 0, text(check)
        assert "0 differences found" in text(check)

        # A changed modification time alone: rclone updates the metadata in place
        # (a server-side copy onto itself with the REPLACE directive).
        stamp = 1_600_000_000.5
        os.utime(local / "top.txt", (stamp, stamp))
        rclone("sync", local, f"larder:{bucket}")
        lsl = rclone("lsl", f"larder:{bucket}/top.txt").stdout.decode("utf-8")
        assert "2020-09-13 12:26:40.5" in lsl, lsl
        assert s3.get_object(Bucket=bucket, Key="top.txt")["Body"].read() == b"changed contents\n"

        # purge removes the objects and the bucket.
        rclone("purge", f"larder:{bucket}")
        assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    finally:
        if bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
            empty_and_delete_bucket(s3, bucket)

"""Backup and file tools, for real, against a real larder: restic (init,
backup of a tree with a few thousand files and one 200 MiB file, check
--read-data, forget --prune, restore) and s3fs (FUSE: a bucket mounted,
a tree copied in and read back)."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import empty_and_delete_bucket

RESTIC = shutil.which("restic")
S3FS = shutil.which("s3fs")


def make_tree(root: Path, files: int, big_mib: int) -> dict[str, str]:
    """`files` small files in nested folders and one big one; returns {path: sha256}."""
    rng = random.Random(1234)
    digests = {}
    for n in range(files):
        path = root / f"d{n % 20}" / f"s{n % 7}" / f"file-{n}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(rng.choice([0, 10, 300, 5000]))
        path.write_bytes(data)
        digests[str(path.relative_to(root))] = hashlib.sha256(data).hexdigest()
    big = root / "disk-image.bin"
    with open(big, "wb") as out:
        digest = hashlib.sha256()
        for _ in range(big_mib):
            block = rng.randbytes(1 << 20)
            out.write(block)
            digest.update(block)
    digests["disk-image.bin"] = digest.hexdigest()
    return digests


def tree_digests(root: Path) -> dict[str, str]:
    out = {}
    for path in root.rglob("*"):
        if path.is_file():
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            out[str(path.relative_to(root))] = digest.hexdigest()
    return out


@pytest.mark.skipif(RESTIC is None, reason="restic is not installed (CI installs Debian's restic)")
def test_restic_backup_check_prune_restore(larder, s3, bucket_name, tmp_path):
    bucket = bucket_name("restic")
    source = tmp_path / "source"
    digests = make_tree(source, files=3000, big_mib=200)
    env = {
        **larder.client_env(),
        "RESTIC_REPOSITORY": f"s3:{larder.endpoint}/{bucket}",
        "RESTIC_PASSWORD": "larder restic test",
        "RESTIC_CACHE_DIR": str(tmp_path / "cache"),
    }

    def restic(*args, timeout=600):
        result = subprocess.run([RESTIC, *args], env=env, capture_output=True, timeout=timeout)
        assert result.returncode == 0, f"restic {' '.join(args)}: {result.stderr.decode(errors='replace')}"
        return result.stdout.decode()

    try:
        restic("init")
        restic("backup", "--host", "pi", str(source))
        # A second snapshot after a change, then the first one pruned away.
        (source / "d0" / "s0" / "file-0.txt").write_bytes(b"changed\n")
        digests["d0/s0/file-0.txt"] = hashlib.sha256(b"changed\n").hexdigest()
        restic("backup", "--host", "pi", str(source))
        restic("check", "--read-data")
        restic("forget", "--keep-last", "1", "--prune")
        snapshots = restic("snapshots", "--json")
        assert snapshots.count('"short_id"') == 1, snapshots
        restic("check", "--read-data")
        target = tmp_path / "restored"
        restic("restore", "latest", "--target", str(target))
        restored = tree_digests(target / source.relative_to("/"))
        assert restored == digests
    finally:
        empty_and_delete_bucket(s3, bucket)


@pytest.mark.skipif(S3FS is None or os.geteuid() != 0 or not Path("/dev/fuse").exists(),
                    reason="s3fs needs root and /dev/fuse (CI runs as root)")
def test_s3fs_mount_copy_and_read_back(larder, s3, bucket_name, tmp_path):
    bucket = bucket_name("s3fs")
    s3.create_bucket(Bucket=bucket)
    source = tmp_path / "source"
    digests = make_tree(source, files=200, big_mib=20)
    mount = tmp_path / "mnt"
    mount.mkdir()
    passwd = tmp_path / "passwd"
    passwd.write_text(f"{larder.access_key}:{larder.secret_key}\n")
    passwd.chmod(0o600)
    command = [
        S3FS, bucket, str(mount), "-o", f"url={larder.endpoint}", "-o", "use_path_request_style",
        "-o", f"passwd_file={passwd}", "-o", "sigv4", "-o", f"endpoint={larder.region}", "-o", "dbglevel=warn",
    ]
    subprocess.run(command, check=True, timeout=60)
    try:
        deadline = time.time() + 20
        while not os.path.ismount(mount):
            assert time.time() < deadline, "s3fs did not mount"
            time.sleep(0.2)
        shutil.copytree(source, mount / "tree")
        subprocess.run(["sync"], check=True)
        # What s3fs wrote is in the bucket, byte for byte...
        got = s3.get_object(Bucket=bucket, Key="tree/disk-image.bin")["Body"].read()
        assert hashlib.sha256(got).hexdigest() == digests["disk-image.bin"]
        # ...and reads back through the mount.
        assert tree_digests(mount / "tree") == digests
    finally:
        subprocess.run(["fusermount", "-u", str(mount)], check=False, timeout=60)
        subprocess.run(["umount", "-l", str(mount)], check=False, timeout=60)
        empty_and_delete_bucket(s3, bucket)

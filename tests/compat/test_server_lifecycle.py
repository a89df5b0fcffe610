"""Stopping and restarting larder: what clients stored must still be there."""

from __future__ import annotations

import hashlib
import os

import pytest

from conftest import STOP_TIMEOUT_S, LarderServer


def store_some(server: LarderServer, bucket: str) -> dict[str, bytes]:
    s3 = server.client()
    s3.create_bucket(Bucket=bucket)
    objects = {
        "small.txt": b"small\n",
        "dir/one-mib.bin": os.urandom(1024 * 1024),
        "unicode/ñ 日本.txt": "ünï\n".encode(),
        "empty": b"",
    }
    for key, data in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data, Metadata={"md5": hashlib.md5(data).hexdigest()})
    s3.delete_object(Bucket=bucket, Key="empty")
    del objects["empty"]
    return objects


def check_stored(server: LarderServer, bucket: str, objects: dict[str, bytes]) -> None:
    s3 = server.client()
    assert bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert listed == sorted(objects)
    for key, data in objects.items():
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == data
        assert got["Metadata"] == {"md5": hashlib.md5(data).hexdigest()}


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_objects_survive_a_restart(larder, tmp_path, how):
    # `larder` only to have the cleaned client environment in this process.
    first = LarderServer(tmp_path / "first")
    first.start()
    try:
        s3 = first.client()
        objects = store_some(first, "survivors")
        # An idle keep-alive connection stays open while the server stops.
        s3.list_buckets()
    except BaseException:
        first.stop()
        raise
    if how == "sigterm":
        status = first.stop()
        assert not first.killed_after_timeout, f"no exit within {STOP_TIMEOUT_S} s of SIGTERM:\n{first.read_stderr()}"
        assert status == 0, first.read_stderr()
    else:
        # Every acknowledged PUT and DELETE must already be durable.
        first.kill()

    second = LarderServer(
        tmp_path / "second", data_dir=first.data_dir, access_key=first.access_key, secret_key=first.secret_key
    )
    second.start()
    try:
        check_stored(second, "survivors", objects)
        assert second.alive()
    finally:
        status = second.stop()
    assert status == 0, second.read_stderr()

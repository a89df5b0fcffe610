"""boto3 (default settings, path-style, SigV4) against a real larder server."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import os
import time
import urllib.parse
import xml.etree.ElementTree as ET
import zlib
from concurrent.futures import ThreadPoolExecutor

import botocore
import botocore.auth
import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, ParamValidationError

from conftest import empty_and_delete_bucket
from helpers import expect_error, quoted_md5


# -- helpers ------------------------------------------------------------------





def xml_error(response: requests.Response) -> tuple[str, str]:
    """(Code, Message) of an S3 error document."""
    root = ET.fromstring(response.content)
    return root.findtext("Code"), root.findtext("Message")


def put_many(s3, bucket: str, keys, body=lambda key: key.encode()) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=body(key)), keys):
            pass


def status_of(response) -> int:
    return response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def s3_pool(larder):
    """A client with room for eight concurrent connections."""
    return larder.client(max_pool_connections=16)


# -- buckets ------------------------------------------------------------------


def test_bucket_lifecycle(s3, bucket_name):
    name = bucket_name()
    created = s3.create_bucket(Bucket=name)
    assert status_of(created) == 200
    assert status_of(s3.head_bucket(Bucket=name)) == 200

    listed = s3.list_buckets()
    mine = [b for b in listed["Buckets"] if b["Name"] == name]
    assert len(mine) == 1
    assert isinstance(mine[0]["CreationDate"], dt.datetime)
    age = dt.datetime.now(dt.timezone.utc) - mine[0]["CreationDate"]
    assert abs(age.total_seconds()) < 300
    assert listed["Owner"]["ID"]

    location = s3.get_bucket_location(Bucket=name)
    # us-east-1 is reported as an empty LocationConstraint.
    assert location.get("LocationConstraint") in (None, "")

    s3.put_object(Bucket=name, Key="blocker", Body=b"x")
    expect_error("BucketNotEmpty", 409, s3.delete_bucket, Bucket=name)
    assert status_of(s3.head_bucket(Bucket=name)) == 200

    s3.delete_object(Bucket=name, Key="blocker")
    deleted = s3.delete_bucket(Bucket=name)
    assert status_of(deleted) == 204

    expect_error("404", 404, s3.head_bucket, Bucket=name)
    expect_error("NoSuchBucket", 404, s3.delete_bucket, Bucket=name)
    assert name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_create_existing_bucket_is_already_owned_by_you(s3, bucket):
    expect_error("BucketAlreadyOwnedByYou", 409, s3.create_bucket, Bucket=bucket)
    # The bucket and its contents are untouched.
    assert status_of(s3.head_bucket(Bucket=bucket)) == 200


@pytest.mark.parametrize(
    "name",
    [
        "ab",  # too short
        "a" * 64,  # too long
        "Upper-Case-Bucket",
        "under_score",
        "-leading-hyphen",
        "trailing-hyphen-",
        "double..dots",
        "192.168.5.4",  # formatted as an IP address
    ],
)
def test_invalid_bucket_names(s3, name):
    expect_error("InvalidBucketName", 400, s3.create_bucket, Bucket=name)


def test_missing_bucket_errors(s3, bucket_name):
    name = bucket_name("missing")
    expect_error("NoSuchBucket", 404, s3.list_objects_v2, Bucket=name)
    expect_error("NoSuchBucket", 404, s3.list_objects, Bucket=name)
    expect_error("NoSuchBucket", 404, s3.get_object, Bucket=name, Key="k")
    expect_error("NoSuchBucket", 404, s3.put_object, Bucket=name, Key="k", Body=b"data")
    expect_error("NoSuchBucket", 404, s3.get_bucket_location, Bucket=name)
    expect_error("404", 404, s3.head_object, Bucket=name, Key="k")


def test_bucket_versioning_and_versions(s3, bucket):
    versioning = s3.get_bucket_versioning(Bucket=bucket)
    assert status_of(versioning) == 200
    # Never enabled: no Status element at all.
    assert "Status" not in versioning

    bodies = {"a.txt": b"alpha", "dir/b.txt": b"bravo!"}
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    versions = s3.list_object_versions(Bucket=bucket)
    entries = versions["Versions"]
    assert sorted(v["Key"] for v in entries) == sorted(bodies)
    for entry in entries:
        assert entry["VersionId"] == "null"
        assert entry["IsLatest"] is True
        assert entry["Size"] == len(bodies[entry["Key"]])
        assert entry["ETag"] == quoted_md5(bodies[entry["Key"]])
    assert not versions.get("DeleteMarkers")


# -- objects ------------------------------------------------------------------


def test_put_get_head_delete_with_metadata_and_headers(s3, bucket):
    data = gzip.compress(b"hello larder\n" * 100)
    expires = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    put = s3.put_object(
        Bucket=bucket,
        Key="docs/report.txt",
        Body=data,
        Metadata={"color": "blue", "Mixed-Case": "Value With Spaces", "empty": ""},
        ContentType="text/plain; charset=utf-8",
        ContentEncoding="gzip",
        ContentDisposition='attachment; filename="report.txt"',
        ContentLanguage="en-GB",
        CacheControl="max-age=60, must-revalidate",
        Expires=expires,
    )
    assert status_of(put) == 200
    assert put["ETag"] == quoted_md5(data)

    def check(response):
        assert response["ContentLength"] == len(data)
        assert response["ETag"] == quoted_md5(data)
        assert response["ContentType"] == "text/plain; charset=utf-8"
        assert response["ContentEncoding"] == "gzip"
        assert response["ContentDisposition"] == 'attachment; filename="report.txt"'
        assert response["ContentLanguage"] == "en-GB"
        assert response["CacheControl"] == "max-age=60, must-revalidate"
        assert response.get("ExpiresString", "Thu, 02 Jan 2031 03:04:05 GMT") == "Thu, 02 Jan 2031 03:04:05 GMT"
        assert response["Expires"] == expires
        # Metadata names come back lower-cased.
        assert response["Metadata"] == {"color": "blue", "mixed-case": "Value With Spaces", "empty": ""}
        modified = response["LastModified"]
        assert abs((dt.datetime.now(dt.timezone.utc) - modified).total_seconds()) < 300
        assert response["ResponseMetadata"]["HTTPHeaders"].get("accept-ranges") == "bytes"

    got = s3.get_object(Bucket=bucket, Key="docs/report.txt")
    assert got["Body"].read() == data
    check(got)
    head = s3.head_object(Bucket=bucket, Key="docs/report.txt")
    check(head)

    deleted = s3.delete_object(Bucket=bucket, Key="docs/report.txt")
    assert status_of(deleted) == 204
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=bucket, Key="docs/report.txt")
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="docs/report.txt")
    # Deleting a missing key is not an error.
    assert status_of(s3.delete_object(Bucket=bucket, Key="docs/report.txt")) == 204


def test_overwrite_and_empty_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"first version", ContentType="text/x-one", Metadata={"v": "1"})
    s3.put_object(Bucket=bucket, Key="k", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b""
    assert got["ContentLength"] == 0
    assert got["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'
    # Nothing of the first version survives an overwrite.
    assert got["Metadata"] == {}
    assert got["ContentType"] in ("binary/octet-stream", "application/octet-stream")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]


def test_user_metadata_limit(s3, bucket):
    # S3 allows 2 KB of user metadata: the UTF-8 bytes of names and values.
    fits = {"a": "x" * 1023, "b": "y" * 1023}
    s3.put_object(Bucket=bucket, Key="fits", Body=b"", Metadata=fits)
    assert s3.head_object(Bucket=bucket, Key="fits")["Metadata"] == fits
    too_big = {"a": "x" * 1023, "b": "y" * 1024}
    expect_error("MetadataTooLarge", 400, s3.put_object, Bucket=bucket, Key="too-big", Body=b"", Metadata=too_big)
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="too-big")


def test_transfer_manager_round_trip(s3, bucket, tmp_path):
    data = os.urandom(5 * 1024 * 1024 + 17)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=64 * 1024 * 1024)
    s3.upload_file(str(source), bucket, "big/blob.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="big/blob.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == quoted_md5(data)
    target = tmp_path / "back.bin"
    s3.download_file(bucket, "big/blob.bin", str(target), Config=config)
    assert target.read_bytes() == data


ODD_KEYS = [
    "with space.txt",
    "  leading and trailing spaces  ",
    "plus+sign+key",
    "percent%literal",
    "percent%2Fencoded-looking",
    "100%",
    "a/../b",
    "../up",
    "./here",
    "dir/./x",
    "..",
    "unicode/ñandú/日本語.txt",
    "emoji-🎉-Ünïcödé",
    "q?x=1&y=2#frag",
    "tilde~,semicolon;colon:at@dollar$excl!star*paren()",
    "brackets[]{}<>|^`",
    "quote'double\"backslash\\",
    "double//slash",
    "trailing/",
    "/leading-slash",
    "equals=sign",
]


@pytest.mark.parametrize("key", ODD_KEYS)
def test_odd_keys_round_trip(s3, bucket, key):
    body = ("body of " + key).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"k": "v"})
    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == body
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(body)

    # Listed under exactly its own name (boto3 lists with encoding-type=url).
    listed = s3.list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed["Contents"]] == [key]
    listed_v1 = s3.list_objects(Bucket=bucket)
    assert [o["Key"] for o in listed_v1["Contents"]] == [key]
    by_prefix = s3.list_objects_v2(Bucket=bucket, Prefix=key)
    assert [o["Key"] for o in by_prefix["Contents"]] == [key]

    # CopySource must be URL-encoded by the client and decoded by the server.
    s3.copy_object(Bucket=bucket, Key=key + ".copy", CopySource={"Bucket": bucket, "Key": key})
    assert s3.get_object(Bucket=bucket, Key=key + ".copy")["Body"].read() == body

    assert status_of(s3.delete_object(Bucket=bucket, Key=key)) == 204
    expect_error("NoSuchKey", 404, s3.get_object, Bucket=bucket, Key=key)
    s3.delete_object(Bucket=bucket, Key=key + ".copy")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_key_length_limit(s3, bucket):
    longest = "k" * 1024
    s3.put_object(Bucket=bucket, Key=longest, Body=b"ok")
    assert s3.get_object(Bucket=bucket, Key=longest)["Body"].read() == b"ok"
    expect_error("KeyTooLongError", 400, s3.put_object, Bucket=bucket, Key="k" * 1025, Body=b"no")

    # The limit is 1024 bytes of UTF-8, not 1024 characters.
    longest_utf8 = "é" * 512
    assert len(longest_utf8.encode()) == 1024
    s3.put_object(Bucket=bucket, Key=longest_utf8, Body=b"ok")
    assert s3.get_object(Bucket=bucket, Key=longest_utf8)["Body"].read() == b"ok"
    too_long_utf8 = "é" * 512 + "a"
    expect_error("KeyTooLongError", 400, s3.put_object, Bucket=bucket, Key=too_long_utf8, Body=b"no")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == sorted([longest, longest_utf8])


def test_missing_key(s3, bucket):
    error = expect_error("NoSuchKey", 404, s3.get_object, Bucket=bucket, Key="nope/never")
    assert error.response["Error"].get("Key") in (None, "nope/never")
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="nope/never")


# -- ranges and conditions ----------------------------------------------------


@pytest.fixture
def thousand(s3, bucket):
    data = os.urandom(1000)
    s3.put_object(Bucket=bucket, Key="r.bin", Body=data)
    return bucket, "r.bin", data


@pytest.mark.parametrize(
    "header,start,end",
    [
        ("bytes=0-9", 0, 9),
        ("bytes=10-10", 10, 10),
        ("bytes=990-", 990, 999),
        ("bytes=-10", 990, 999),
        ("bytes=995-2000", 995, 999),  # end past the object: clamped
        ("bytes=0-", 0, 999),
        ("bytes=-5000", 0, 999),  # suffix longer than the object: all of it
    ],
)
def test_range_get(s3, thousand, header, start, end):
    bucket, key, data = thousand
    got = s3.get_object(Bucket=bucket, Key=key, Range=header)
    assert status_of(got) == 206
    assert got["ContentRange"] == f"bytes {start}-{end}/1000"
    assert got["ContentLength"] == end - start + 1
    assert got["Body"].read() == data[start : end + 1]
    assert got["ETag"] == quoted_md5(data)
    head = s3.head_object(Bucket=bucket, Key=key, Range=header)
    assert status_of(head) == 206
    assert head["ContentRange"] == f"bytes {start}-{end}/1000"
    assert head["ContentLength"] == end - start + 1


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=1000-1001", "bytes=5000-6000"])
def test_unsatisfiable_range(s3, thousand, header):
    bucket, key, _ = thousand
    error = expect_error("InvalidRange", 416, s3.get_object, Bucket=bucket, Key=key, Range=header)
    assert error.response["Error"].get("ActualObjectSize") in (None, "1000")


def test_conditional_get(s3, thousand):
    bucket, key, data = thousand
    etag = quoted_md5(data)
    modified = s3.head_object(Bucket=bucket, Key=key)["LastModified"]
    past = modified - dt.timedelta(days=1)
    future = modified + dt.timedelta(days=1)

    # If-None-Match on the current ETag: 304 Not Modified.
    expect_error("304", 304, s3.get_object, Bucket=bucket, Key=key, IfNoneMatch=etag)
    expect_error("304", 304, s3.get_object, Bucket=bucket, Key=key, IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key=key, IfNoneMatch='"0123"')["Body"].read() == data

    # If-Match on another ETag: 412 PreconditionFailed.
    expect_error("PreconditionFailed", 412, s3.get_object, Bucket=bucket, Key=key, IfMatch='"0123"')
    assert s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"].read() == data
    assert s3.get_object(Bucket=bucket, Key=key, IfMatch="*")["Body"].read() == data

    # Dates.
    expect_error("304", 304, s3.get_object, Bucket=bucket, Key=key, IfModifiedSince=future)
    assert s3.get_object(Bucket=bucket, Key=key, IfModifiedSince=past)["Body"].read() == data
    expect_error("PreconditionFailed", 412, s3.get_object, Bucket=bucket, Key=key, IfUnmodifiedSince=past)
    assert s3.get_object(Bucket=bucket, Key=key, IfUnmodifiedSince=future)["Body"].read() == data

    # S3's documented combinations: If-Match true wins over a false
    # If-Unmodified-Since; a false If-None-Match with a true If-Modified-Since is 304.
    assert s3.get_object(Bucket=bucket, Key=key, IfMatch=etag, IfUnmodifiedSince=past)["Body"].read() == data
    expect_error(
        "304", 304, s3.get_object, Bucket=bucket, Key=key, IfNoneMatch=etag, IfModifiedSince=past
    )

    # HEAD answers the same way, without a body.
    expect_error("304", 304, s3.head_object, Bucket=bucket, Key=key, IfNoneMatch=etag)
    expect_error("412", 412, s3.head_object, Bucket=bucket, Key=key, IfMatch='"0123"')
    assert s3.head_object(Bucket=bucket, Key=key, IfMatch=etag)["ETag"] == etag


def test_response_header_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="o.json", Body=b'{"a": 1}', ContentType="application/json")
    got = s3.get_object(
        Bucket=bucket,
        Key="o.json",
        ResponseContentType="text/x-override",
        ResponseContentDisposition='attachment; filename="x.json"',
        ResponseContentLanguage="fr",
        ResponseCacheControl="no-store",
        ResponseContentEncoding="identity",
        ResponseExpires=dt.datetime(2030, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc),
    )
    assert got["Body"].read() == b'{"a": 1}'
    assert got["ContentType"] == "text/x-override"
    assert got["ContentDisposition"] == 'attachment; filename="x.json"'
    assert got["ContentLanguage"] == "fr"
    assert got["CacheControl"] == "no-store"
    assert got["ContentEncoding"] == "identity"
    assert got["Expires"] == dt.datetime(2030, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    # The stored object is unchanged.
    assert s3.head_object(Bucket=bucket, Key="o.json")["ContentType"] == "application/json"


# -- listing ------------------------------------------------------------------

LIST_DIRS = 5
LIST_SUBS = 10
LIST_FILES = 2500
LIST_EXTRA = ["top-a.txt", "top-b.txt", "space dir/a b.txt", "space dir/c d.txt", "plus+dir/c+d.txt"]


def list_key(i: int) -> str:
    return f"dir{i % LIST_DIRS}/sub{(i // LIST_DIRS) % LIST_SUBS}/file{i:05d}.txt"


@pytest.fixture(scope="module")
def listing_bucket(larder):
    """One bucket with 2,505 keys, shared by the read-only listing tests."""
    s3 = larder.client(max_pool_connections=16)
    name = "list-" + os.urandom(8).hex()
    s3.create_bucket(Bucket=name)
    keys = [list_key(i) for i in range(LIST_FILES)] + LIST_EXTRA
    # Upload in a scrambled order so the listing order is the server's doing.
    scrambled = sorted(keys, key=lambda k: hashlib.sha1(k.encode()).digest())
    put_many(s3, name, scrambled, body=lambda key: b"")
    yield name, sorted(keys)
    empty_and_delete_bucket(s3, name)


def test_list_v2_paginator_all_keys_once_in_order(s3, listing_bucket):
    bucket, expected = listing_bucket
    assert len(expected) == 2505
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket))
    assert len(pages) == 3  # max-keys defaults to 1000
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert keys == expected
    for page in pages[:-1]:
        assert page["IsTruncated"] is True
        assert page["KeyCount"] == 1000
        assert page["NextContinuationToken"]
    assert pages[-1]["IsTruncated"] is False
    assert pages[-1]["KeyCount"] == 505
    assert "NextContinuationToken" not in pages[-1]

    small = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 333}))
    assert [o["Key"] for page in small for o in page.get("Contents", [])] == expected
    assert len(small) == 8
    assert all(page["KeyCount"] == 333 for page in small[:-1])


def test_list_v2_delimiter(s3, listing_bucket):
    bucket, expected = listing_bucket
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == [
        "dir0/", "dir1/", "dir2/", "dir3/", "dir4/", "plus+dir/", "space dir/",
    ]
    assert [o["Key"] for o in top["Contents"]] == ["top-a.txt", "top-b.txt"]
    assert top["KeyCount"] == 9
    assert top["IsTruncated"] is False
    assert top["Delimiter"] == "/"

    subs = s3.list_objects_v2(Bucket=bucket, Prefix="dir3/", Delimiter="/")
    assert [p["Prefix"] for p in subs["CommonPrefixes"]] == [f"dir3/sub{j}/" for j in range(LIST_SUBS)]
    assert "Contents" not in subs
    assert subs["Prefix"] == "dir3/"

    leaf = s3.list_objects_v2(Bucket=bucket, Prefix="dir3/sub7/", Delimiter="/")
    assert [o["Key"] for o in leaf["Contents"]] == [k for k in expected if k.startswith("dir3/sub7/")]
    assert len(leaf["Contents"]) == LIST_FILES // (LIST_DIRS * LIST_SUBS)
    assert "CommonPrefixes" not in leaf

    spaced = s3.list_objects_v2(Bucket=bucket, Prefix="space dir/", Delimiter="/")
    assert [o["Key"] for o in spaced["Contents"]] == ["space dir/a b.txt", "space dir/c d.txt"]

    # A delimiter other than '/'.
    by_dot = s3.list_objects_v2(Bucket=bucket, Prefix="dir0/sub0/", Delimiter=".")
    assert [p["Prefix"] for p in by_dot["CommonPrefixes"]] == [
        k[: k.index(".") + 1] for k in expected if k.startswith("dir0/sub0/")
    ]

    # Common prefixes count toward max-keys and are never repeated across pages.
    pages = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 2}
        )
    )
    prefixes = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert prefixes == ["dir0/", "dir1/", "dir2/", "dir3/", "dir4/", "plus+dir/", "space dir/"]
    assert keys == ["top-a.txt", "top-b.txt"]
    assert len(pages) == 5
    for page in pages:
        assert len(page.get("CommonPrefixes", [])) + len(page.get("Contents", [])) <= 2


def test_list_v2_max_keys_continuation_and_start_after(s3, listing_bucket):
    bucket, expected = listing_bucket
    first = s3.list_objects_v2(Bucket=bucket, MaxKeys=7)
    assert [o["Key"] for o in first["Contents"]] == expected[:7]
    assert first["KeyCount"] == 7
    assert first["MaxKeys"] == 7
    assert first["IsTruncated"] is True
    second = s3.list_objects_v2(Bucket=bucket, MaxKeys=7, ContinuationToken=first["NextContinuationToken"])
    assert [o["Key"] for o in second["Contents"]] == expected[7:14]
    assert second["ContinuationToken"] == first["NextContinuationToken"]

    after = expected[1234]
    started = s3.list_objects_v2(Bucket=bucket, StartAfter=after, MaxKeys=5)
    assert [o["Key"] for o in started["Contents"]] == expected[1235:1240]
    assert started["StartAfter"] == after

    # start-after between two keys, and past the last one.
    between = s3.list_objects_v2(Bucket=bucket, StartAfter="dir2/sub5/file00000.txt0", MaxKeys=1)
    assert between["Contents"][0]["Key"] == next(k for k in expected if k > "dir2/sub5/file00000.txt0")
    past = s3.list_objects_v2(Bucket=bucket, StartAfter="zzz")
    assert past["KeyCount"] == 0
    assert "Contents" not in past
    assert past["IsTruncated"] is False

    # Objects carry size, ETag and a date.
    obj = first["Contents"][0]
    assert obj["Size"] == 0
    assert obj["ETag"] == quoted_md5(b"")
    assert isinstance(obj["LastModified"], dt.datetime)
    assert obj.get("StorageClass") == "STANDARD"
    # ListObjectsV2 names owners only when asked to.
    assert "Owner" not in obj
    owned = s3.list_objects_v2(Bucket=bucket, MaxKeys=1, FetchOwner=True)["Contents"][0]
    assert owned["Owner"]["ID"]


def test_list_v1_paginator_and_marker(s3, listing_bucket):
    bucket, expected = listing_bucket
    pages = list(s3.get_paginator("list_objects").paginate(Bucket=bucket))
    assert [o["Key"] for page in pages for o in page.get("Contents", [])] == expected
    assert len(pages) == 3
    assert pages[0]["IsTruncated"] is True
    assert pages[-1]["IsTruncated"] is False

    # With a delimiter, S3 returns NextMarker and the paginator follows it.
    delimited = list(
        s3.get_paginator("list_objects").paginate(
            Bucket=bucket, Prefix="dir1/", Delimiter="/", PaginationConfig={"PageSize": 4}
        )
    )
    prefixes = [p["Prefix"] for page in delimited for p in page.get("CommonPrefixes", [])]
    assert prefixes == [f"dir1/sub{j}/" for j in range(LIST_SUBS)]
    assert len(delimited) == 3
    for page in delimited[:-1]:
        assert page["IsTruncated"] is True
        assert page["NextMarker"] == page["CommonPrefixes"][-1]["Prefix"]

    marked = s3.list_objects(Bucket=bucket, Marker=expected[99], MaxKeys=3)
    assert [o["Key"] for o in marked["Contents"]] == expected[100:103]
    assert marked["Marker"] == expected[99]
    assert marked["MaxKeys"] == 3
    assert marked["IsTruncated"] is True


def test_list_encoding_type_url(s3, listing_bucket):
    bucket, expected = listing_bucket
    # Asked for explicitly, boto3 leaves the encoded names alone.
    for call in (s3.list_objects_v2, s3.list_objects):
        raw = call(Bucket=bucket, Prefix="space dir/", Delimiter="/", EncodingType="url")
        assert raw["EncodingType"] == "url"
        raw_keys = [o["Key"] for o in raw["Contents"]]
        assert "space dir/a b.txt" not in raw_keys  # encoded, so no literal space
        assert [urllib.parse.unquote_plus(k) for k in raw_keys] == ["space dir/a b.txt", "space dir/c d.txt"]
        assert urllib.parse.unquote_plus(raw["Prefix"]) == "space dir/"

        plus = call(Bucket=bucket, Prefix="plus+dir/", EncodingType="url")
        raw_plus = [o["Key"] for o in plus["Contents"]]
        assert [urllib.parse.unquote_plus(k) for k in raw_plus] == ["plus+dir/c+d.txt"]

        top = call(Bucket=bucket, Delimiter="/", EncodingType="url")
        decoded = [urllib.parse.unquote_plus(p["Prefix"]) for p in top["CommonPrefixes"]]
        assert "space dir/" in decoded and "plus+dir/" in decoded


# -- copy ---------------------------------------------------------------------


def test_copy_object_copy_and_replace(s3, bucket, bucket_name):
    data = os.urandom(4096)
    s3.put_object(
        Bucket=bucket,
        Key="src.bin",
        Body=data,
        ContentType="application/x-source",
        CacheControl="max-age=5",
        Metadata={"origin": "source", "n": "1"},
    )

    copied = s3.copy_object(Bucket=bucket, Key="copy.bin", CopySource={"Bucket": bucket, "Key": "src.bin"})
    assert copied["CopyObjectResult"]["ETag"] == quoted_md5(data)
    assert isinstance(copied["CopyObjectResult"]["LastModified"], dt.datetime)
    got = s3.get_object(Bucket=bucket, Key="copy.bin")
    assert got["Body"].read() == data
    assert got["Metadata"] == {"origin": "source", "n": "1"}
    assert got["ContentType"] == "application/x-source"
    assert got["CacheControl"] == "max-age=5"

    s3.copy_object(
        Bucket=bucket,
        Key="replaced.bin",
        CopySource={"Bucket": bucket, "Key": "src.bin"},
        MetadataDirective="REPLACE",
        Metadata={"fresh": "yes"},
        ContentType="text/x-replaced",
    )
    got = s3.get_object(Bucket=bucket, Key="replaced.bin")
    assert got["Body"].read() == data
    assert got["Metadata"] == {"fresh": "yes"}
    assert got["ContentType"] == "text/x-replaced"
    assert "CacheControl" not in got

    # Explicit COPY with new metadata given: the new metadata is ignored.
    s3.copy_object(
        Bucket=bucket,
        Key="explicit-copy.bin",
        CopySource={"Bucket": bucket, "Key": "src.bin"},
        MetadataDirective="COPY",
        Metadata={"ignored": "yes"},
    )
    assert s3.head_object(Bucket=bucket, Key="explicit-copy.bin")["Metadata"] == {"origin": "source", "n": "1"}

    # Across buckets.
    other = bucket_name()
    s3.create_bucket(Bucket=other)
    try:
        s3.copy_object(Bucket=other, Key="far/away.bin", CopySource=f"{bucket}/src.bin")
        assert s3.get_object(Bucket=other, Key="far/away.bin")["Body"].read() == data
    finally:
        empty_and_delete_bucket(s3, other)

    # The source is untouched.
    head = s3.head_object(Bucket=bucket, Key="src.bin")
    assert head["Metadata"] == {"origin": "source", "n": "1"}
    assert head["ContentType"] == "application/x-source"


def test_copy_onto_itself(s3, bucket):
    s3.put_object(Bucket=bucket, Key="self", Body=b"me", Metadata={"v": "1"})
    expect_error(
        "InvalidRequest", 400, s3.copy_object, Bucket=bucket, Key="self", CopySource={"Bucket": bucket, "Key": "self"}
    )
    s3.copy_object(
        Bucket=bucket,
        Key="self",
        CopySource={"Bucket": bucket, "Key": "self"},
        MetadataDirective="REPLACE",
        Metadata={"v": "2"},
    )
    got = s3.get_object(Bucket=bucket, Key="self")
    assert got["Body"].read() == b"me"
    assert got["Metadata"] == {"v": "2"}


def test_copy_missing_source(s3, bucket, bucket_name):
    expect_error(
        "NoSuchKey", 404, s3.copy_object, Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "nothing"}
    )
    expect_error(
        "NoSuchBucket", 404, s3.copy_object, Bucket=bucket, Key="dst",
        CopySource={"Bucket": bucket_name("missing"), "Key": "nothing"},
    )


# -- DeleteObjects --------------------------------------------------------------


def test_delete_objects_verbose_1000(s3_pool, bucket):
    s3 = s3_pool
    keys = [f"del/{i:04d} key" for i in range(1000)]
    put_many(s3, bucket, keys)
    assert len(list(k for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for k in p["Contents"])) == 1000
    response = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert status_of(response) == 200
    assert sorted(d["Key"] for d in response["Deleted"]) == keys
    assert not response.get("Errors")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_delete_objects_quiet_and_missing_keys(s3, bucket):
    keys = ["q/a", "q/b c", "q/ünï"]
    put_many(s3, bucket, keys)
    quiet = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys + ["q/never-existed"]], "Quiet": True}
    )
    assert status_of(quiet) == 200
    assert not quiet.get("Deleted")
    assert not quiet.get("Errors")
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0

    # Missing keys are reported as deleted in verbose mode.
    verbose = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "q/ghost"}, {"Key": "q/ghost 2"}]})
    assert sorted(d["Key"] for d in verbose["Deleted"]) == ["q/ghost", "q/ghost 2"]
    assert not verbose.get("Errors")


def signed_raw_request(larder, method: str, path_and_query: str, body: bytes, headers: dict) -> requests.Response:
    url = larder.endpoint + path_and_query
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    S3SigV4Auth(Credentials(larder.access_key, larder.secret_key), "s3", larder.region).add_auth(request)
    return requests.request(method, url, data=body, headers=dict(request.headers.items()), timeout=60)


def test_delete_objects_1001_keys_is_malformed(s3, larder, bucket):
    s3.put_object(Bucket=bucket, Key="survivor", Body=b"x")
    objects = [{"Key": f"k{i}"} for i in range(1000)] + [{"Key": "survivor"}]
    try:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": objects})
    except ClientError as error:
        assert (error.response["Error"]["Code"], status_of(error.response)) == ("MalformedXML", 400)
    except ParamValidationError:
        # botocore may refuse to send it; send the same document signed by hand.
        body = (
            "<Delete>" + "".join(f"<Object><Key>{o['Key']}</Key></Object>" for o in objects) + "</Delete>"
        ).encode()
        response = signed_raw_request(
            larder, "POST", f"/{bucket}?delete", body,
            {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(), "Content-Type": "application/xml"},
        )
        assert response.status_code == 400
        assert xml_error(response)[0] == "MalformedXML"
    else:
        pytest.fail("DeleteObjects with 1001 keys succeeded; S3 answers 400 MalformedXML")
    # Nothing was deleted.
    assert s3.get_object(Bucket=bucket, Key="survivor")["Body"].read() == b"x"


# -- checksums ------------------------------------------------------------------


def test_checksum_sha256_round_trip(s3, bucket):
    data = os.urandom(70_000)
    expected = base64.b64encode(hashlib.sha256(data).digest()).decode()
    put = s3.put_object(Bucket=bucket, Key="sum.bin", Body=data, ChecksumAlgorithm="SHA256")
    assert put["ChecksumSHA256"] == expected
    got = s3.get_object(Bucket=bucket, Key="sum.bin", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ChecksumSHA256"] == expected
    head = s3.head_object(Bucket=bucket, Key="sum.bin", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == expected


def test_default_crc32_checksum_is_kept(s3, bucket):
    data = os.urandom(12_345)
    expected = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    put = s3.put_object(Bucket=bucket, Key="crc.bin", Body=data)  # boto3 adds x-amz-checksum-crc32
    assert put.get("ChecksumCRC32") == expected
    got = s3.get_object(Bucket=bucket, Key="crc.bin", ChecksumMode="ENABLED")
    assert got["Body"].read() == data
    assert got["ChecksumCRC32"] == expected


def test_wrong_checksums_are_refused(s3, bucket):
    data = b"the real payload"
    wrong_sha = base64.b64encode(hashlib.sha256(b"something else").digest()).decode()
    expect_error("BadDigest", 400, s3.put_object, Bucket=bucket, Key="bad", Body=data, ChecksumSHA256=wrong_sha)
    wrong_md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    expect_error("BadDigest", 400, s3.put_object, Bucket=bucket, Key="bad", Body=data, ContentMD5=wrong_md5)
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="bad")
    right_md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    s3.put_object(Bucket=bucket, Key="good", Body=data, ContentMD5=right_md5)
    assert s3.get_object(Bucket=bucket, Key="good")["Body"].read() == data


# -- presigned URLs and authentication ------------------------------------------


def test_presigned_get(s3, bucket):
    data = os.urandom(2048)
    s3.put_object(Bucket=bucket, Key="shared/file name+1.bin", Body=data)
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "shared/file name+1.bin"}, ExpiresIn=300
    )
    assert "X-Amz-Signature=" in url and "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.content == data
    assert response.headers["ETag"] == quoted_md5(data)

    with_override = s3.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": "shared/file name+1.bin", "ResponseContentDisposition": "attachment"},
        ExpiresIn=300,
    )
    response = requests.get(with_override, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == "attachment"

    ranged = requests.get(url, headers={"Range": "bytes=0-99"}, timeout=30)
    assert ranged.status_code == 206
    assert ranged.content == data[:100]


def test_presigned_put(s3, bucket):
    data = os.urandom(3000)
    url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up/loaded.bin"}, ExpiresIn=300)
    response = requests.put(url, data=data, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == quoted_md5(data)
    assert s3.get_object(Bucket=bucket, Key="up/loaded.bin")["Body"].read() == data


def test_presigned_url_expires(s3, bucket):
    s3.put_object(Bucket=bucket, Key="soon", Body=b"gone soon")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "soon"}, ExpiresIn=1)
    time.sleep(2.2)
    response = requests.get(url, timeout=30)
    assert response.status_code == 403
    code, message = xml_error(response)
    assert code == "AccessDenied"
    assert "expired" in message.lower()


def test_presigned_url_lifetime_limit(s3, bucket):
    s3.put_object(Bucket=bucket, Key="week", Body=b"seven days")
    week = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "week"}, ExpiresIn=604800)
    response = requests.get(week, timeout=30)
    assert response.status_code == 200
    assert response.content == b"seven days"
    longer = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "week"}, ExpiresIn=604801)
    response = requests.get(longer, timeout=30)
    assert response.status_code == 400
    assert xml_error(response)[0] == "AuthorizationQueryParametersError"


def test_request_time_too_skewed(larder, bucket, monkeypatch):
    if not hasattr(botocore.auth, "get_current_datetime"):
        pytest.skip("this botocore signs with datetime.utcnow(); no clock hook to skew")
    client = larder.client(retries={"total_max_attempts": 1})
    skewed = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=20)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *args, **kwargs: skewed)
    expect_error("RequestTimeTooSkewed", 403, client.list_objects_v2, Bucket=bucket)
    expect_error("RequestTimeTooSkewed", 403, client.put_object, Bucket=bucket, Key="late", Body=b"x")
    monkeypatch.undo()
    expect_error("404", 404, client.head_object, Bucket=bucket, Key="late")


def test_tampered_presigned_url_and_anonymous_requests(s3, larder, bucket):
    s3.put_object(Bucket=bucket, Key="secret", Body=b"classified")
    s3.put_object(Bucket=bucket, Key="other", Body=b"also classified")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "secret"}, ExpiresIn=300)
    tampered = url.replace("/secret?", "/other?")
    assert tampered != url
    response = requests.get(tampered, timeout=30)
    assert response.status_code == 403
    assert xml_error(response)[0] == "SignatureDoesNotMatch"
    assert b"classified" not in response.content

    anonymous = requests.get(f"{larder.endpoint}/{bucket}/secret", timeout=30)
    assert anonymous.status_code == 403
    assert xml_error(anonymous)[0] == "AccessDenied"
    assert b"classified" not in anonymous.content
    anonymous_put = requests.put(f"{larder.endpoint}/{bucket}/planted", data=b"x", timeout=30)
    assert anonymous_put.status_code == 403
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="planted")


def test_wrong_secret_is_signature_does_not_match(larder, bucket):
    bad = larder.client(secret_key=larder.secret_key[:-1] + ("A" if larder.secret_key[-1] != "A" else "B"))
    expect_error("SignatureDoesNotMatch", 403, bad.list_buckets)
    expect_error("SignatureDoesNotMatch", 403, bad.put_object, Bucket=bucket, Key="k", Body=b"x")
    expect_error("SignatureDoesNotMatch", 403, bad.list_objects_v2, Bucket=bucket)


def test_unknown_access_key_is_invalid_access_key_id(larder, bucket):
    unknown = larder.client(access_key="AKIAUNKNOWNUNKNOWN00", secret_key=larder.secret_key)
    expect_error("InvalidAccessKeyId", 403, unknown.list_buckets)
    expect_error("InvalidAccessKeyId", 403, unknown.get_object, Bucket=bucket, Key="k")


def test_list_buckets_pages_with_max_buckets_and_prefix(s3, bucket_name):
    """boto3's ListBuckets paginator (MaxBuckets, ContinuationToken, Prefix)."""
    stem = bucket_name("pg")
    names = [f"{stem}-{i}" for i in range(5)]
    for name in names:
        s3.create_bucket(Bucket=name)
    try:
        pages = list(s3.get_paginator("list_buckets").paginate(Prefix=stem, PaginationConfig={"PageSize": 2}))
        assert [len(page["Buckets"]) for page in pages] == [2, 2, 1]
        assert [b["Name"] for page in pages for b in page["Buckets"]] == names
        assert all(page.get("Prefix") == stem for page in pages)
        assert "ContinuationToken" not in pages[-1]
    finally:
        for name in names:
            empty_and_delete_bucket(s3, name)


def test_get_object_attributes(s3, bucket):
    """GetObjectAttributes for a single PUT and a multipart object, paged parts."""
    body = b"attributes" * 1000
    s3.put_object(Bucket=bucket, Key="single", Body=body, ChecksumAlgorithm="CRC32")
    got = s3.get_object_attributes(
        Bucket=bucket, Key="single", ObjectAttributes=["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"]
    )
    assert got["ETag"] == hashlib.md5(body).hexdigest()
    assert got["ObjectSize"] == len(body)
    assert got["StorageClass"] == "STANDARD"
    assert got["Checksum"]["ChecksumCRC32"] == base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    assert "ObjectParts" not in got

    upload = s3.create_multipart_upload(Bucket=bucket, Key="parts", ChecksumAlgorithm="CRC32")["UploadId"]
    sizes = [5 * 1024 * 1024, 5 * 1024 * 1024, 1234]
    parts = []
    for number, size in enumerate(sizes, start=1):
        answer = s3.upload_part(
            Bucket=bucket, Key="parts", UploadId=upload, PartNumber=number, Body=bytes([number]) * size,
            ChecksumAlgorithm="CRC32",
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": answer["ChecksumCRC32"]})
    s3.complete_multipart_upload(Bucket=bucket, Key="parts", UploadId=upload, MultipartUpload={"Parts": parts})
    got = s3.get_object_attributes(Bucket=bucket, Key="parts", ObjectAttributes=["ObjectParts", "ObjectSize"], MaxParts=2)
    assert got["ObjectSize"] == sum(sizes)
    assert got["ObjectParts"]["TotalPartsCount"] == 3
    assert got["ObjectParts"]["IsTruncated"] is True
    assert [p["Size"] for p in got["ObjectParts"]["Parts"]] == sizes[:2]
    # Each part's own checksum, as it was uploaded.
    assert [p["ChecksumCRC32"] for p in got["ObjectParts"]["Parts"]] == [p["ChecksumCRC32"] for p in parts[:2]]
    rest = s3.get_object_attributes(
        Bucket=bucket, Key="parts", ObjectAttributes=["ObjectParts"], PartNumberMarker=got["ObjectParts"]["NextPartNumberMarker"]
    )
    assert [p["PartNumber"] for p in rest["ObjectParts"]["Parts"]] == [3]
    assert rest["ObjectParts"]["Parts"][0]["ChecksumCRC32"] == parts[2]["ChecksumCRC32"]
    with pytest.raises(ClientError) as error:
        s3.get_object_attributes(Bucket=bucket, Key="missing", ObjectAttributes=["ETag"])
    assert error.value.response["Error"]["Code"] == "NoSuchKey"


def test_full_object_crc32_multipart(s3, bucket):
    """ChecksumType FULL_OBJECT: boto3 sends the whole object's CRC32 on Complete."""
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1000)]
    whole = base64.b64encode(zlib.crc32(b"".join(parts)).to_bytes(4, "big")).decode()
    upload = s3.create_multipart_upload(Bucket=bucket, Key="full", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    assert upload["ChecksumType"] == "FULL_OBJECT"
    done_parts = []
    for number, body in enumerate(parts, start=1):
        answer = s3.upload_part(
            Bucket=bucket, Key="full", UploadId=upload["UploadId"], PartNumber=number, Body=body, ChecksumAlgorithm="CRC32"
        )
        done_parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": answer["ChecksumCRC32"]})
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="full", UploadId=upload["UploadId"], ChecksumCRC32=whole, ChecksumType="FULL_OBJECT",
        MultipartUpload={"Parts": done_parts},
    )
    assert done["ChecksumCRC32"] == whole
    assert done["ChecksumType"] == "FULL_OBJECT"
    head = s3.head_object(Bucket=bucket, Key="full", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == whole and head["ChecksumType"] == "FULL_OBJECT"

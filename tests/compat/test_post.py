"""Browser form uploads (POST Object): boto3's generate_presigned_post
output used unchanged with a plain multipart form post."""

import hashlib

import requests


def test_generate_presigned_post_works_unchanged(larder, s3, bucket):
    post = s3.generate_presigned_post(
        Bucket=bucket,
        Key="uploads/${filename}",
        Fields={"Content-Type": "text/plain", "success_action_status": "201"},
        Conditions=[
            ["starts-with", "$key", "uploads/"],
            {"Content-Type": "text/plain"},
            {"success_action_status": "201"},
            ["content-length-range", 1, 1024],
        ],
        ExpiresIn=300,
    )
    body = b"posted through a form"
    answer = requests.post(post["url"], data=post["fields"], files={"file": ("note.txt", body)}, timeout=30)
    assert answer.status_code == 201, answer.text
    assert "<Key>uploads/note.txt</Key>" in answer.text
    got = s3.get_object(Bucket=bucket, Key="uploads/note.txt")
    assert got["Body"].read() == body
    assert got["ContentType"] == "text/plain"
    assert got["ETag"] == '"%s"' % hashlib.md5(body).hexdigest()


def test_presigned_post_conditions_are_enforced(larder, s3, bucket):
    post = s3.generate_presigned_post(
        Bucket=bucket,
        Key="limited.bin",
        Conditions=[["content-length-range", 1, 10]],
        ExpiresIn=300,
    )
    too_big = requests.post(post["url"], data=post["fields"], files={"file": ("x", b"x" * 11)}, timeout=30)
    assert too_big.status_code == 400 and "<Code>EntityTooLarge</Code>" in too_big.text
    other_key = dict(post["fields"], key="elsewhere.bin")
    refused = requests.post(post["url"], data=other_key, files={"file": ("x", b"x")}, timeout=30)
    assert refused.status_code == 403 and "Invalid according to Policy" in refused.text
    listed = s3.list_objects_v2(Bucket=bucket)
    assert listed.get("KeyCount", 0) == 0
    fine = requests.post(post["url"], data=post["fields"], files={"file": ("x", b"0123456789")}, timeout=30)
    assert fine.status_code == 204, fine.text
    assert s3.get_object(Bucket=bucket, Key="limited.bin")["Body"].read() == b"0123456789"

"""Signature Version 2, as clients make it with their defaults: boto3's
presigned URLs for us-east-1 and a custom endpoint, `aws s3 presign`
without the s3v4 setting, and boto3 signing every request with "s3"."""

from __future__ import annotations

import time
import urllib.parse

import boto3
import requests
from botocore.config import Config

from conftest import aws_cli_command, run_tool


def default_client(larder, monkeypatch, tmp_path, **config):
    """boto3 as a tutorial sets it up: no signature_version, no config file."""
    empty = tmp_path / "aws-config-empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    return boto3.session.Session().client(
        "s3",
        endpoint_url=larder.endpoint,
        aws_access_key_id=larder.access_key,
        aws_secret_access_key=larder.secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, **config),
    )


def test_boto3_default_presigned_urls(larder, s3, bucket_name, monkeypatch, tmp_path):
    bucket = bucket_name("sigv2")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="dir/photo 1.jpg", Body=b"sigv2 bytes")
    client = default_client(larder, monkeypatch, tmp_path)
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "dir/photo 1.jpg"}, ExpiresIn=300)
    assert "AWSAccessKeyId=" in url and "Signature=" in url, url
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.content == b"sigv2 bytes"

    # A response override is a signed subresource.
    url = client.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": "dir/photo 1.jpg", "ResponseContentDisposition": "attachment"},
        ExpiresIn=300,
    )
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200 and answer.headers["content-disposition"] == "attachment", answer.text

    # Tampered: another object with the same signature.
    tampered = url.replace("photo%201.jpg", "photo%202.jpg")
    answer = requests.get(tampered, timeout=10)
    assert answer.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in answer.text, answer.text
    tampered = url.replace("response-content-disposition=attachment", "response-content-disposition=inline")
    assert requests.get(tampered, timeout=10).status_code == 403

    # A presigned PUT with the defaults.
    put_url = client.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "up.txt"}, ExpiresIn=300)
    assert requests.put(put_url, data=b"put by v2", timeout=10).status_code == 200
    assert s3.get_object(Bucket=bucket, Key="up.txt")["Body"].read() == b"put by v2"

    # Expired.
    short = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "up.txt"}, ExpiresIn=1)
    time.sleep(2.5)
    answer = requests.get(short, timeout=10)
    assert answer.status_code == 403 and "Request has expired" in answer.text, answer.text

    # More than 7 days ahead is refused.
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    query["Expires"] = str(int(time.time()) + 8 * 86400)
    far = url.split("?")[0] + "?" + urllib.parse.urlencode(query)
    assert requests.get(far, timeout=10).status_code in (400, 403)


def test_boto3_signing_every_request_with_v2(larder, bucket_name, monkeypatch, tmp_path):
    client = default_client(larder, monkeypatch, tmp_path, signature_version="s3")
    bucket = bucket_name("sigv2h")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="k", Body=b"header v2", Metadata={"who": "v2"})
    got = client.get_object(Bucket=bucket, Key="k")
    assert got["Body"].read() == b"header v2" and got["Metadata"] == {"who": "v2"}
    assert [o["Key"] for o in client.list_objects(Bucket=bucket)["Contents"]] == ["k"]
    client.delete_object(Bucket=bucket, Key="k")


def test_aws_cli_presign_without_s3v4(larder, s3, bucket_name, tmp_path):
    bucket = bucket_name("sigv2cli")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="cli.txt", Body=b"from the cli")
    config = tmp_path / "aws-config-default"
    config.write_text("[default]\nregion = us-east-1\n")
    env = larder.client_env()
    env["AWS_CONFIG_FILE"] = str(config)
    presigned = run_tool(
        [*aws_cli_command(), "--endpoint-url", larder.endpoint, "s3", "presign", f"s3://{bucket}/cli.txt"], env=env
    )
    url = presigned.stdout.decode().strip()
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200 and answer.content == b"from the cli", (url, answer.text)

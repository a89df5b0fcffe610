"""Access control with real clients: STS, access keys, bucket policies, CORS.

* boto3's `sts` client gets temporary credentials from larder (AssumeRole,
  GetSessionToken); boto3 S3 calls and presigned URLs (X-Amz-Security-Token)
  work with them; a session policy narrows them;
* a key made with `larder key create` reads but cannot write; `larder key
  revoke` kills the presigned URLs it signed;
* the AWS CLI round-trips bucket policies and CORS rules; a public-read
  policy opens GETs to anonymous clients and nothing else; unsupported
  policy elements are refused with MalformedPolicy;
* a real browser (headless Chromium, driven with Playwright) on a second
  loopback origin (127.0.0.2) PUTs a file through a presigned URL: allowed
  by the bucket's CORS rules, blocked by the browser without them.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import re
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import empty_and_delete_bucket, larder_cli
from helpers import expect_error, quoted_md5

ROLE_ARN = "arn:aws:iam::000000000000:role/anything"
# The page's origin: another loopback address than larder's 127.0.0.1.
PAGE_HOST = "127.0.0.2"
BROWSER_TIMEOUT_MS = 15_000


# -- helpers ------------------------------------------------------------------





def xml_code(response: requests.Response) -> str | None:
    """The Code of an S3 error document (None when the body is not one)."""
    try:
        return ET.fromstring(response.content).findtext("Code")
    except ET.ParseError:
        return None


def text_of(proc) -> str:
    return proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")


def sts_client(larder, access_key=None, secret_key=None, session_token=None):
    """boto3's STS client pointed at larder (the root key unless told)."""
    return boto3.session.Session().client(
        "sts",
        endpoint_url=larder.endpoint,
        region_name=larder.region,
        aws_access_key_id=access_key or larder.access_key,
        aws_secret_access_key=secret_key or larder.secret_key,
        aws_session_token=session_token,
        config=Config(retries={"total_max_attempts": 1}),
    )


def s3_with(larder, access_key, secret_key, session_token=None):
    """A boto3 S3 client with the given (possibly temporary) credentials."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=larder.endpoint,
        region_name=larder.region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      retries={"total_max_attempts": 1}),
    )


def s3_with_credentials(larder, credentials: dict):
    """A client with the Credentials block of an STS answer."""
    return s3_with(larder, credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"])


def presigned(client, method: str, bucket: str, key: str, expires: int = 300) -> str:
    return client.generate_presigned_url(method, Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires)


def assert_fresh_credentials(credentials: dict, duration: int) -> None:
    assert credentials["AccessKeyId"] and credentials["SecretAccessKey"] and credentials["SessionToken"], credentials
    left = (credentials["Expiration"] - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert duration - 120 < left <= duration + 5, (credentials["Expiration"], duration)


def cli_field(output: str, label: str) -> str:
    match = re.search(rf"^{label}:\s*(\S+)\s*$", output, re.MULTILINE)
    assert match, f"no '{label}:' line in:\n{output}"
    return match.group(1)


# -- 1. STS with boto3 ------------------------------------------------------------


def test_sts_assume_role_credentials_for_calls_and_presigned_urls(larder, s3, bucket):
    answer = sts_client(larder).assume_role(RoleArn=ROLE_ARN, RoleSessionName="compat-assume", DurationSeconds=900)
    credentials = answer["Credentials"]
    assert_fresh_credentials(credentials, 900)
    assert credentials["AccessKeyId"] != larder.access_key

    temp = s3_with_credentials(larder, credentials)
    data = b"written with AssumeRole credentials\n" + os.urandom(512)
    put = temp.put_object(Bucket=bucket, Key="sts/assumed.bin", Body=data)
    assert put["ETag"] == quoted_md5(data)
    assert temp.get_object(Bucket=bucket, Key="sts/assumed.bin")["Body"].read() == data
    assert s3.get_object(Bucket=bucket, Key="sts/assumed.bin")["Body"].read() == data  # really stored

    # Presigned URLs signed with temporary credentials carry the token.
    url = presigned(temp, "get_object", bucket, "sts/assumed.bin")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["X-Amz-Security-Token"] == [credentials["SessionToken"]], url
    assert query["X-Amz-Credential"][0].startswith(credentials["AccessKeyId"] + "/"), url
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.content == data

    upload = b"presigned PUT with a session token"
    response = requests.put(presigned(temp, "put_object", bucket, "sts/presigned-put.txt"), data=upload, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == quoted_md5(upload)
    assert s3.get_object(Bucket=bucket, Key="sts/presigned-put.txt")["Body"].read() == upload

    # The token is part of the credentials: without it the key is unknown.
    untokened = s3_with(larder, credentials["AccessKeyId"], credentials["SecretAccessKey"])
    expect_error("InvalidAccessKeyId", 403, untokened.get_object, Bucket=bucket, Key="sts/assumed.bin")


def test_sts_get_session_token_credentials(larder, s3, bucket):
    answer = sts_client(larder).get_session_token(DurationSeconds=1800)
    credentials = answer["Credentials"]
    assert_fresh_credentials(credentials, 1800)

    temp = s3_with_credentials(larder, credentials)
    data = os.urandom(4096)
    temp.put_object(Bucket=bucket, Key="sts/session.bin", Body=data)
    got = temp.get_object(Bucket=bucket, Key="sts/session.bin")
    assert got["Body"].read() == data
    assert got["ETag"] == quoted_md5(data)
    listed = temp.list_objects_v2(Bucket=bucket, Prefix="sts/")
    assert [o["Key"] for o in listed.get("Contents", [])] == ["sts/session.bin"]

    response = requests.get(presigned(temp, "get_object", bucket, "sts/session.bin"), timeout=30)
    assert response.status_code == 200, response.text
    assert response.content == data


def test_sts_assume_role_answer_and_duration_limits(larder):
    sts = sts_client(larder)
    # larder's documented bounds: 900 s to 36 h, for both calls.
    for call, kwargs in [
        (sts.assume_role, {"RoleArn": ROLE_ARN, "RoleSessionName": "too-long"}),
        (sts.get_session_token, {}),
    ]:
        expect_error("ValidationError", 400, call, DurationSeconds=129601, **kwargs)
    assert_fresh_credentials(sts.get_session_token(DurationSeconds=129600)["Credentials"], 129600)

    answer = sts.assume_role(RoleArn=ROLE_ARN, RoleSessionName="shape-check", DurationSeconds=129600)
    assert_fresh_credentials(answer["Credentials"], 129600)
    user = answer["AssumedRoleUser"]
    # As STS answers: "<role id>:<session name>", and the assumed-role ARN
    # in the sts namespace (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION),
    # not the role's IAM ARN with the session name appended.
    assert user["AssumedRoleId"].endswith(":shape-check"), user
    assert user["Arn"] == "arn:aws:sts::000000000000:assumed-role/anything/shape-check", user


def test_sts_session_policy_narrows_to_get_on_one_prefix(larder, s3, bucket):
    s3.put_object(Bucket=bucket, Key="shared/readable.txt", Body=b"inside the prefix")
    s3.put_object(Bucket=bucket, Key="private/hidden.txt", Body=b"outside the prefix")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/shared/*",
        }],
    }
    answer = sts_client(larder).assume_role(
        RoleArn=ROLE_ARN, RoleSessionName="narrow", DurationSeconds=900, Policy=json.dumps(policy)
    )
    temp = s3_with_credentials(larder, answer["Credentials"])

    # What the policy allows works ...
    assert temp.get_object(Bucket=bucket, Key="shared/readable.txt")["Body"].read() == b"inside the prefix"
    response = requests.get(presigned(temp, "get_object", bucket, "shared/readable.txt"), timeout=30)
    assert response.status_code == 200 and response.content == b"inside the prefix", response.text

    # ... nothing else does.
    expect_error("AccessDenied", 403, temp.put_object, Bucket=bucket, Key="shared/new.txt", Body=b"no")
    expect_error("AccessDenied", 403, temp.get_object, Bucket=bucket, Key="private/hidden.txt")
    expect_error("AccessDenied", 403, temp.delete_object, Bucket=bucket, Key="shared/readable.txt")
    response = requests.get(presigned(temp, "get_object", bucket, "private/hidden.txt"), timeout=30)
    assert response.status_code == 403 and xml_code(response) == "AccessDenied", response.text
    response = requests.put(presigned(temp, "put_object", bucket, "shared/by-url.txt"), data=b"no", timeout=30)
    assert response.status_code == 403 and xml_code(response) == "AccessDenied", response.text

    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="shared/new.txt")
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="shared/by-url.txt")
    assert s3.get_object(Bucket=bucket, Key="shared/readable.txt")["Body"].read() == b"inside the prefix"


def test_sts_session_policy_with_resource_star(larder, s3, bucket):
    """`"Resource": "*"` is the most common way to write a session policy;
    STS takes it (the policy then narrows by action only)."""
    s3.put_object(Bucket=bucket, Key="star/readable.txt", Body=b"star")
    policy = {"Version": "2012-10-17",
              "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}]}
    answer = sts_client(larder).assume_role(
        RoleArn=ROLE_ARN, RoleSessionName="star", DurationSeconds=900, Policy=json.dumps(policy))
    temp = s3_with_credentials(larder, answer["Credentials"])
    assert temp.get_object(Bucket=bucket, Key="star/readable.txt")["Body"].read() == b"star"
    expect_error("AccessDenied", 403, temp.put_object, Bucket=bucket, Key="star/new.txt", Body=b"no")


def test_cli_key_reads_not_writes_and_revoke_kills_its_presigned_urls(larder, s3, bucket):
    s3.put_object(Bucket=bucket, Key="docs/readme.txt", Body=b"read me")
    created = larder_cli(larder, "key", "create", "compat-reader", "--grant", f"{bucket}:read", "--expires", "1h")
    output = text_of(created)
    access_key = cli_field(output, "access key")
    secret_key = cli_field(output, "secret key")
    assert access_key != larder.access_key

    reader = s3_with(larder, access_key, secret_key)
    assert reader.get_object(Bucket=bucket, Key="docs/readme.txt")["Body"].read() == b"read me"
    expect_error("AccessDenied", 403, reader.put_object, Bucket=bucket, Key="docs/new.txt", Body=b"nope")
    expect_error("AccessDenied", 403, reader.delete_object, Bucket=bucket, Key="docs/readme.txt")
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="docs/new.txt")

    url = presigned(reader, "get_object", bucket, "docs/readme.txt")
    response = requests.get(url, timeout=30)
    assert response.status_code == 200 and response.content == b"read me", response.text

    # Its temporary credentials hold its rights at most, whatever their
    # session policy allows.
    everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*",
                                                            "Resource": "arn:aws:s3:::*"}]}
    session = sts_client(larder, access_key, secret_key).assume_role(
        RoleArn=ROLE_ARN, RoleSessionName="reader-session", DurationSeconds=900, Policy=json.dumps(everything))
    temp = s3_with_credentials(larder, session["Credentials"])
    assert temp.get_object(Bucket=bucket, Key="docs/readme.txt")["Body"].read() == b"read me"
    expect_error("AccessDenied", 403, temp.put_object, Bucket=bucket, Key="docs/new.txt", Body=b"nope")

    revoked = larder_cli(larder, "key", "revoke", access_key)
    assert access_key in text_of(revoked)

    response = requests.get(url, timeout=30)
    assert response.status_code == 403, response.text
    assert xml_code(response) == "InvalidAccessKeyId", response.text
    expect_error("InvalidAccessKeyId", 403, reader.get_object, Bucket=bucket, Key="docs/readme.txt")
    # Revoking it again: the key is gone.
    again = larder_cli(larder, "key", "revoke", access_key, check=False)
    assert again.returncode != 0, text_of(again)


# -- 2. bucket policies and CORS with the AWS CLI -----------------------------------


def aws_error_code(proc) -> str | None:
    match = re.search(r"An error occurred \((\w+)\)", proc.stderr.decode("utf-8", "replace"))
    return match.group(1) if match else None


def public_read_policy(bucket: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Id": "compat-public-read",
        "Statement": [
            {
                "Sid": "PublicRead",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/public/*",
            },
            {
                "Sid": "LoopbackOnly",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"NotIpAddress": {"aws:SourceIp": ["127.0.0.0/8"]}},
            },
        ],
    }


@pytest.fixture
def policy_cleanup(s3):
    """Buckets whose policy is removed after the test (before the bucket goes)."""
    names: list[str] = []
    yield names
    for name in names:
        try:
            s3.delete_bucket_policy(Bucket=name)
        except ClientError:
            pass


def test_awscli_bucket_policy_round_trip_and_public_read(aws, larder, s3, bucket, tmp_path, policy_cleanup):
    s3.put_object(Bucket=bucket, Key="public/hello.txt", Body=b"hello, world")
    s3.put_object(Bucket=bucket, Key="private.txt", Body=b"not for you")
    object_url = f"{larder.endpoint}/{bucket}/public/hello.txt"

    # Before: anonymous requests get nothing.
    response = requests.get(object_url, timeout=30)
    assert response.status_code == 403 and xml_code(response) == "AccessDenied", response.text

    document = public_read_policy(bucket)
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(document, indent=2))
    policy_cleanup.append(bucket)
    aws("s3api", "put-bucket-policy", "--bucket", bucket, "--policy", f"file://{policy_file}")

    got = aws("s3api", "get-bucket-policy", "--bucket", bucket, "--output", "json")
    returned = json.loads(json.loads(got.stdout)["Policy"])
    assert returned["Statement"] == document["Statement"]
    assert returned == document

    # Anonymous GET of an object the policy opens: the bytes.
    response = requests.get(object_url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.content == b"hello, world"
    assert response.headers["ETag"] == quoted_md5(b"hello, world")
    # Everything else stays closed to strangers.
    response = requests.put(f"{larder.endpoint}/{bucket}/public/new.txt", data=b"graffiti", timeout=30)
    assert response.status_code == 403 and xml_code(response) == "AccessDenied", response.text
    response = requests.put(object_url, data=b"overwritten", timeout=30)
    assert response.status_code == 403 and xml_code(response) == "AccessDenied", response.text
    response = requests.delete(object_url, timeout=30)
    assert response.status_code == 403 and xml_code(response) == "AccessDenied", response.text
    response = requests.get(f"{larder.endpoint}/{bucket}/private.txt", timeout=30)
    assert response.status_code == 403 and xml_code(response) == "AccessDenied", response.text
    response = requests.get(f"{larder.endpoint}/{bucket}?list-type=2", timeout=30)
    assert response.status_code == 403 and xml_code(response) == "AccessDenied", response.text
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="public/new.txt")
    assert s3.get_object(Bucket=bucket, Key="public/hello.txt")["Body"].read() == b"hello, world"

    aws("s3api", "delete-bucket-policy", "--bucket", bucket)
    missing = aws("s3api", "get-bucket-policy", "--bucket", bucket, check=False)
    assert missing.returncode != 0 and aws_error_code(missing) == "NoSuchBucketPolicy", text_of(missing)
    response = requests.get(object_url, timeout=30)
    assert response.status_code == 403 and xml_code(response) == "AccessDenied", response.text


def test_anonymous_get_of_missing_key_is_denied_without_list_permission(aws, larder, s3, bucket, tmp_path,
                                                                        policy_cleanup):
    """S3 answers 403, not 404, for a missing key when the requester may not
    list the bucket, so public-read buckets do not reveal which keys exist."""
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(json.dumps(public_read_policy(bucket)))
    policy_cleanup.append(bucket)
    aws("s3api", "put-bucket-policy", "--bucket", bucket, "--policy", f"file://{policy_file}")
    s3.put_object(Bucket=bucket, Key="public/present.txt", Body=b"here")
    assert requests.get(f"{larder.endpoint}/{bucket}/public/present.txt", timeout=30).status_code == 200
    response = requests.get(f"{larder.endpoint}/{bucket}/public/absent.txt", timeout=30)
    assert response.status_code == 403 and xml_code(response) == "AccessDenied", (response.status_code, response.text)


def test_deleted_bucket_takes_its_policy_and_cors_along(larder, s3, bucket_name):
    """A bucket deleted and made again under the same name starts with no
    policy and no CORS rules, as in S3: the old ones must not keep working."""
    name = bucket_name("gone")
    origin = "http://127.0.0.2:8123"
    object_url = f"{larder.endpoint}/{name}/public/file.txt"

    def preflight():
        return requests.options(object_url, timeout=30,
                                headers={"Origin": origin, "Access-Control-Request-Method": "PUT"})

    s3.create_bucket(Bucket=name)
    try:
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps(public_read_policy(name)))
        s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": [
            {"AllowedOrigins": [origin], "AllowedMethods": ["PUT"]}]})
        s3.put_object(Bucket=name, Key="public/file.txt", Body=b"first life")
        # Both are in force (and larder has read them).
        assert requests.get(object_url, timeout=30).content == b"first life"
        assert preflight().status_code == 200

        s3.delete_object(Bucket=name, Key="public/file.txt")
        s3.delete_bucket(Bucket=name)
        s3.create_bucket(Bucket=name)
        s3.put_object(Bucket=name, Key="public/file.txt", Body=b"second life")

        expect_error("NoSuchBucketPolicy", 404, s3.get_bucket_policy, Bucket=name)
        expect_error("NoSuchCORSConfiguration", 404, s3.get_bucket_cors, Bucket=name)
        anonymous = requests.get(object_url, timeout=30)
        cors = preflight()
        problems = []
        if (anonymous.status_code, xml_code(anonymous)) != (403, "AccessDenied"):
            problems.append("the old policy still applies: anonymous GET answered "
                            f"{anonymous.status_code} {anonymous.content[:100]!r}, not 403 AccessDenied")
        if (cors.status_code, xml_code(cors)) != (403, "AccessForbidden"):
            problems.append(f"the old CORS rules still apply: the preflight answered {cors.status_code} "
                            f"(Access-Control-Allow-Origin: {cors.headers.get('Access-Control-Allow-Origin')}), "
                            "not 403 AccessForbidden")
        assert not problems, "in the re-created bucket " + "; ".join(problems)
    finally:
        for cleanup in (s3.delete_bucket_policy, s3.delete_bucket_cors):
            try:
                cleanup(Bucket=name)
            except ClientError:
                pass
        empty_and_delete_bucket(s3, name)


def test_awscli_put_bucket_policy_refuses_unsupported_elements(aws, s3, bucket, tmp_path, policy_cleanup):
    valid = public_read_policy(bucket)
    statement = valid["Statement"][0]
    not_principal = {"Version": "2012-10-17", "Statement": [
        {**{k: v for k, v in statement.items() if k != "Principal"},
         "Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::000000000000:user/admin"}},
    ]}
    string_like = {"Version": "2012-10-17", "Statement": [
        {**statement, "Condition": {"StringLike": {"aws:Referer": ["http://127.0.0.2/*"]}}},
    ]}

    good_file = tmp_path / "good.json"
    good_file.write_text(json.dumps(valid))
    policy_cleanup.append(bucket)
    aws("s3api", "put-bucket-policy", "--bucket", bucket, "--policy", f"file://{good_file}")

    for name, document in [("not-principal", not_principal), ("string-like", string_like)]:
        bad_file = tmp_path / f"{name}.json"
        bad_file.write_text(json.dumps(document))
        refused = aws("s3api", "put-bucket-policy", "--bucket", bucket, "--policy", f"file://{bad_file}", check=False)
        assert refused.returncode != 0, f"{name}: accepted\n{text_of(refused)}"
        assert aws_error_code(refused) == "MalformedPolicy", f"{name}:\n{text_of(refused)}"

    # The refused documents replaced nothing.
    got = aws("s3api", "get-bucket-policy", "--bucket", bucket, "--output", "json")
    assert json.loads(json.loads(got.stdout)["Policy"]) == valid


def test_awscli_bucket_cors_round_trip_and_preflight(aws, larder, s3, bucket, tmp_path):
    origin = "http://127.0.0.2:8123"
    rules = {"CORSRules": [
        {
            "ID": "uploads-from-the-app",
            "AllowedHeaders": ["*"],
            "AllowedMethods": ["PUT", "GET"],
            "AllowedOrigins": [origin],
            "ExposeHeaders": ["ETag", "x-amz-request-id"],
            "MaxAgeSeconds": 600,
        },
        {
            "AllowedMethods": ["GET"],
            "AllowedOrigins": ["*"],
        },
    ]}
    cors_file = tmp_path / "cors.json"
    cors_file.write_text(json.dumps(rules))
    missing = aws("s3api", "get-bucket-cors", "--bucket", bucket, check=False)
    assert missing.returncode != 0 and aws_error_code(missing) == "NoSuchCORSConfiguration", text_of(missing)

    aws("s3api", "put-bucket-cors", "--bucket", bucket, "--cors-configuration", f"file://{cors_file}")
    got = aws("s3api", "get-bucket-cors", "--bucket", bucket, "--output", "json")
    assert json.loads(got.stdout) == rules

    object_url = f"{larder.endpoint}/{bucket}/upload/target.txt"
    preflight = requests.options(object_url, timeout=30, headers={
        "Origin": origin, "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type,x-amz-meta-note",
    })
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers.get("Access-Control-Allow-Origin") == origin, preflight.headers
    assert "PUT" in preflight.headers.get("Access-Control-Allow-Methods", ""), preflight.headers
    allowed_headers = preflight.headers.get("Access-Control-Allow-Headers", "").lower()
    assert "content-type" in allowed_headers and "x-amz-meta-note" in allowed_headers, preflight.headers
    assert preflight.headers.get("Access-Control-Max-Age") == "600", preflight.headers

    other = requests.options(object_url, timeout=30, headers={
        "Origin": "http://127.0.0.3:8123", "Access-Control-Request-Method": "PUT"})
    assert other.status_code == 403 and xml_code(other) == "AccessForbidden", other.text
    no_origin = requests.options(object_url, timeout=30, headers={"Access-Control-Request-Method": "PUT"})
    assert no_origin.status_code == 400, no_origin.text

    # An actual (signed) request from the allowed origin gets the CORS headers.
    s3.put_object(Bucket=bucket, Key="upload/target.txt", Body=b"cors")
    signed = requests.get(presigned(s3, "get_object", bucket, "upload/target.txt"), headers={"Origin": origin},
                          timeout=30)
    assert signed.status_code == 200 and signed.content == b"cors"
    assert signed.headers.get("Access-Control-Allow-Origin") == origin, signed.headers
    assert "etag" in signed.headers.get("Access-Control-Expose-Headers", "").lower(), signed.headers

    aws("s3api", "delete-bucket-cors", "--bucket", bucket)
    missing = aws("s3api", "get-bucket-cors", "--bucket", bucket, check=False)
    assert missing.returncode != 0 and aws_error_code(missing) == "NoSuchCORSConfiguration", text_of(missing)
    after = requests.options(object_url, timeout=30, headers={"Origin": origin, "Access-Control-Request-Method": "PUT"})
    assert after.status_code == 403 and xml_code(after) == "AccessForbidden", after.text


# -- 3. a real browser on another origin -----------------------------------------------

UPLOAD_PAGE = """<!doctype html>
<html>
<head><meta charset="utf-8"><title>larder CORS upload</title></head>
<body>
<h1>Upload to larder through a presigned URL</h1>
<p>From <code id="origin"></code></p>
<pre id="result" data-state="running">running</pre>
<script>
(async () => {
  const params = new URLSearchParams(location.search);
  const out = document.getElementById("result");
  document.getElementById("origin").textContent = location.origin;
  const report = (data) => { out.textContent = JSON.stringify(data, null, 1); out.dataset.state = "done"; };
  try {
    const body = new Blob([params.get("text")], {type: "text/plain"});
    const response = await fetch(params.get("target"), {method: "PUT", body});
    report({ok: true, status: response.status, etag: response.headers.get("ETag"), body: await response.text()});
  } catch (error) {
    report({ok: false, error: String(error)});
  }
})();
</script>
</body>
</html>
"""


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        if urllib.parse.urlsplit(self.path).path != "/upload.html":
            self.send_error(404)
            return
        page = UPLOAD_PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, format, *args):  # keep pytest's output quiet
        pass


@pytest.fixture(scope="module")
def page_origin():
    """A tiny web server on 127.0.0.2 serving the upload page; its origin."""
    try:
        server = http.server.ThreadingHTTPServer((PAGE_HOST, 0), _PageHandler)
    except OSError as error:
        pytest.fail(f"cannot listen on {PAGE_HOST} for the page's origin: {error!r}", pytrace=False)
    thread = threading.Thread(target=server.serve_forever, name="page-server", daemon=True)
    thread.start()
    try:
        yield f"http://{PAGE_HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class BrowserRun:
    """One visit of the upload page: its result, console and failed requests."""

    def __init__(self, result: dict, console: list[str], failed: list[str], screenshot: Path):
        self.result = result
        self.console = console
        self.failed = failed
        self.screenshot = screenshot

    def describe(self) -> str:
        return (f"result: {self.result}\nconsole:\n  " + "\n  ".join(self.console)
                + "\nfailed requests:\n  " + "\n  ".join(self.failed) + f"\nscreenshot: {self.screenshot}")


def upload_from_page(chromium, page_origin: str, target: str, text: str, screenshot: Path) -> BrowserRun:
    """Opens the page (a fresh context: no cached preflights) and lets it PUT
    `text` to `target`; returns what it reported."""
    context = chromium.new_context()
    console: list[str] = []
    failed: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("requestfailed", lambda request: failed.append(f"{request.method} {request.url}: {request.failure}"))
        query = urllib.parse.urlencode({"target": target, "text": text})
        page.goto(f"{page_origin}/upload.html?{query}", timeout=BROWSER_TIMEOUT_MS)
        page.wait_for_selector('#result[data-state="done"]', timeout=BROWSER_TIMEOUT_MS)
        result = json.loads(page.inner_text("#result"))
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
    finally:
        context.close()
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"no screenshot at {screenshot}"
    return BrowserRun(result, console, failed, screenshot)


def test_browser_put_through_presigned_url_needs_cors(larder, s3, bucket, chromium, page_origin, tmp_path,
                                                      record_property):
    artefacts = tmp_path / "artefacts"
    text = "uploaded by Chromium from another origin \u2713\n"
    data = text.encode("utf-8")

    # 1. With a rule for the page's origin: the upload works and the page
    #    reads the ETag through Access-Control-Expose-Headers.
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": [page_origin],
        "AllowedMethods": ["PUT"],
        "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag"],
    }]})
    url = presigned(s3, "put_object", bucket, "browser/allowed.txt")
    allowed = upload_from_page(chromium, page_origin, url, text, artefacts / "cors-allowed.png")
    record_property("screenshot_allowed", str(allowed.screenshot))
    assert allowed.result.get("ok") is True, allowed.describe()
    assert allowed.result["status"] == 200, allowed.describe()
    assert allowed.result["etag"] == quoted_md5(data), allowed.describe()
    got = s3.get_object(Bucket=bucket, Key="browser/allowed.txt")
    assert got["Body"].read() == data
    assert got["ContentType"] == "text/plain"

    # 2. A rule for another origin only: the preflight is refused and the
    #    browser never sends the PUT.
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": ["http://127.0.0.3:1"], "AllowedMethods": ["PUT"], "AllowedHeaders": ["*"],
    }]})
    url = presigned(s3, "put_object", bucket, "browser/other-origin.txt")
    other = upload_from_page(chromium, page_origin, url, text, artefacts / "cors-other-origin.png")
    record_property("screenshot_other_origin", str(other.screenshot))
    assert other.result.get("ok") is False, other.describe()
    assert "Failed to fetch" in other.result["error"], other.describe()
    assert any("CORS policy" in line for line in other.console), other.describe()
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="browser/other-origin.txt")

    # 3. No rules at all (delete-bucket-cors): the same.
    s3.delete_bucket_cors(Bucket=bucket)
    url = presigned(s3, "put_object", bucket, "browser/no-cors.txt")
    refused = upload_from_page(chromium, page_origin, url, text, artefacts / "cors-refused.png")
    record_property("screenshot_refused", str(refused.screenshot))
    assert refused.result.get("ok") is False, refused.describe()
    assert "Failed to fetch" in refused.result["error"], refused.describe()
    assert any("CORS policy" in line for line in refused.console), refused.describe()
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="browser/no-cors.txt")
    # What the browser ran into: larder refuses the preflight.
    preflight = requests.options(url, headers={"Origin": page_origin, "Access-Control-Request-Method": "PUT"},
                                 timeout=30)
    assert preflight.status_code == 403 and xml_code(preflight) == "AccessForbidden", preflight.text
    assert "Access-Control-Allow-Origin" not in preflight.headers, preflight.headers

    # The presigned URL itself was fine: without a browser it stores the bytes.
    direct = requests.put(url, data=data, headers={"Content-Type": "text/plain"}, timeout=30)
    assert direct.status_code == 200 and direct.headers["ETag"] == quoted_md5(data), direct.text

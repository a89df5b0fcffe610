"""`larder presign`: its URLs have the form boto3's have, and curl takes them."""

import subprocess
from urllib.parse import parse_qsl, urlsplit

from conftest import larder_cli


def larder_presign(larder, *args, env_extra=None):
    return larder_cli(larder, "presign", *args, env_extra=env_extra).stdout.decode().strip()


def test_presign_urls_match_boto3_and_work_with_curl(larder, s3, bucket):
    s3.put_object(Bucket=bucket, Key="docs/a file.txt", Body=b"for curl")
    ours = larder_presign(larder, "get", f"s3://{bucket}/docs/a file.txt", "--expires", "1h")
    theirs = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "docs/a file.txt"}, ExpiresIn=3600)
    ours_parts, theirs_parts = urlsplit(ours), urlsplit(theirs)
    assert (ours_parts.scheme, ours_parts.netloc, ours_parts.path) == (theirs_parts.scheme, theirs_parts.netloc, theirs_parts.path)
    ours_query, theirs_query = parse_qsl(ours_parts.query), parse_qsl(theirs_parts.query)
    assert [name for name, _ in ours_query] == [name for name, _ in theirs_query]
    for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Expires", "X-Amz-SignedHeaders"):
        assert dict(ours_query)[name] == dict(theirs_query)[name], name
    fetched = subprocess.run(["curl", "-sS", "-f", ours], capture_output=True, timeout=30, check=True)
    assert fetched.stdout == b"for curl"


def test_presign_with_an_aws_profile(larder, s3, bucket, tmp_path):
    s3.put_object(Bucket=bucket, Key="k", Body=b"profiled")
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[default]\naws_access_key_id = nobody\naws_secret_access_key = nothing\n\n"
        f"[nas]\naws_access_key_id = {larder.access_key}\naws_secret_access_key = {larder.secret_key}\n"
    )
    url = larder_presign(larder, "get", f"s3://{bucket}/k", "--profile", "nas",
                         env_extra={"AWS_SHARED_CREDENTIALS_FILE": str(credentials)})
    assert f"X-Amz-Credential={larder.access_key}%2F" in url
    fetched = subprocess.run(["curl", "-sS", "-f", url], capture_output=True, timeout=30, check=True)
    assert fetched.stdout == b"profiled"

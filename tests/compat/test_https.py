"""HTTPS built in (`tls = "self-signed"`): boto3 and the AWS CLI trust the
certificate file larder made, and refuse the server without it."""

from __future__ import annotations

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from conftest import LarderServer, aws_cli_command, run_tool


@pytest.fixture
def https_larder(tmp_path):
    server = LarderServer(tmp_path / "https")
    # Found by larder's configuration discovery (./larder.toml in its folder).
    (server.workdir / "larder.toml").write_text('tls = "self-signed"\n')
    server.start()
    server.endpoint = f"https://127.0.0.1:{server.port}"
    server._write_client_configs()
    try:
        yield server
    finally:
        server.stop()


def test_boto3_and_aws_cli_over_https(https_larder, tmp_path):
    server = https_larder
    ca = server.data_dir / "tls" / "self-signed.pem"
    assert ca.is_file()

    def client(verify):
        return boto3.session.Session().client(
            "s3",
            endpoint_url=server.endpoint,
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            region_name=server.region,
            verify=verify,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    s3 = client(str(ca))
    s3.create_bucket(Bucket="secure")
    s3.put_object(Bucket="secure", Key="hello.txt", Body=b"over https")
    assert s3.get_object(Bucket="secure", Key="hello.txt")["Body"].read() == b"over https"
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "secure", "Key": "hello.txt"}, ExpiresIn=300)
    assert url.startswith("https://127.0.0.1:")
    with pytest.raises(botocore.exceptions.SSLError):
        client(True).list_buckets()

    local = tmp_path / "upload.bin"
    local.write_bytes(b"x" * 100_000)
    env = server.client_env()
    base = [*aws_cli_command(), "--endpoint-url", server.endpoint]
    run_tool([*base, "--ca-bundle", ca, "s3", "cp", local, "s3://secure/upload.bin"], env=env)
    listed = run_tool([*base, "--ca-bundle", ca, "s3", "ls", "s3://secure/"], env=env)
    assert b"upload.bin" in listed.stdout and b"hello.txt" in listed.stdout
    refused = run_tool([*base, "s3", "ls", "s3://secure/"], env=env, check=False)
    assert refused.returncode != 0 and b"certificate" in (refused.stderr + refused.stdout).lower()

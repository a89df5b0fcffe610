"""Multipart uploads, aws-chunked bodies and conditional writes, with real clients.

* boto3 with its default settings over HTTPS (a socat TLS relay on loopback in
  front of larder), where it sends aws-chunked bodies with a CRC32 trailer,
  for single PUTs and for a transfer-manager multipart upload;
* `aws s3 cp` (100 MiB) and rclone (50 MiB) multipart uploads over plain HTTP;
* the low-level multipart API (boto3 over HTTP), its errors, UploadPartCopy;
* conditional writes (If-None-Match: *, If-Match) on PutObject and
  CompleteMultipartUpload.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import zlib
from pathlib import Path

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from conftest import empty_and_delete_bucket
from helpers import expect_error, quoted_md5

MiB = 1024 * 1024
RELAY_READY_TIMEOUT_S = 15.0


# -- helpers ------------------------------------------------------------------


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def multipart_etag(parts: list[bytes]) -> str:
    """S3's multipart ETag: the MD5 of the concatenated binary part MD5s, "-N"."""
    digests = b"".join(hashlib.md5(part).digest() for part in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def composite_crc32(parts: list[bytes]) -> str:
    """S3's COMPOSITE CRC32: the CRC32 of the concatenated binary part CRC32s, "-N"."""
    joined = b"".join(zlib.crc32(part).to_bytes(4, "big") for part in parts)
    return f"{crc32_b64(joined)}-{len(parts)}"


def file_chunks(path: Path, size: int):
    with open(path, "rb") as f:
        while True:
            block = f.read(size)
            if not block:
                return
            yield block


def file_md5_hex(path: Path) -> str:
    h = hashlib.md5()
    for block in file_chunks(path, MiB):
        h.update(block)
    return h.hexdigest()


def file_multipart_etag(path: Path, chunk: int) -> tuple[str, int]:
    digests = [hashlib.md5(block).digest() for block in file_chunks(path, chunk)]
    return f'"{hashlib.md5(b"".join(digests)).hexdigest()}-{len(digests)}"', len(digests)


def file_composite_crc32(path: Path, chunk: int) -> str:
    crcs = [zlib.crc32(block).to_bytes(4, "big") for block in file_chunks(path, chunk)]
    return f"{crc32_b64(b''.join(crcs))}-{len(crcs)}"


def write_random_file(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 4 * MiB)
            f.write(os.urandom(n))
            left -= n
    return path




def status_of(response) -> int:
    return response["ResponseMetadata"]["HTTPStatusCode"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HeaderRecorder:
    """Records the headers of every request boto3 sends for the given operations."""

    def __init__(self, client, operations):
        self.sent: list[tuple[str, dict[str, str]]] = []
        self.failures: list[str] = []
        for op in operations:
            client.meta.events.register(f"before-send.s3.{op}", self._hook)
            client.meta.events.register(f"response-received.s3.{op}", self._received)

    def _received(self, event_name, response_dict=None, exception=None, **kwargs):
        if exception is not None:
            self.failures.append(f"{event_name}: {exception!r}")
        elif response_dict is not None and response_dict.get("status_code", 0) >= 500:
            self.failures.append(f"{event_name}: HTTP {response_dict['status_code']}")

    def _hook(self, request, event_name, **kwargs):
        headers = {}
        for name, value in request.headers.items():
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            headers[name.lower()] = value
        self.sent.append((event_name.rsplit(".", 1)[-1], headers))

    def of(self, op: str) -> list[dict[str, str]]:
        return [headers for name, headers in self.sent if name == op]

    def assert_no_retries(self) -> None:
        """Every request went out once: no connection errors, no retried attempts."""
        assert self.failures == [], f"attempts that failed (boto3 retried them): {self.failures}"
        attempts = [h.get("amz-sdk-request", "") for _, h in self.sent]
        assert all(a.startswith("attempt=1;") for a in attempts), f"retried attempts: {attempts}"


def assert_aws_chunked_crc32_trailer(headers: dict[str, str], decoded_length: int | None = None) -> None:
    encodings = [e.strip() for e in headers.get("content-encoding", "").split(",")]
    assert "aws-chunked" in encodings, headers
    assert headers.get("x-amz-content-sha256") == "STREAMING-UNSIGNED-PAYLOAD-TRAILER", headers
    assert headers.get("x-amz-trailer", "").lower() == "x-amz-checksum-crc32", headers
    assert "x-amz-checksum-crc32" not in headers, headers  # in the trailer, not a header
    if decoded_length is not None:
        assert headers.get("x-amz-decoded-content-length") == str(decoded_length), headers


# -- the HTTPS relay ------------------------------------------------------------


class TlsRelay:
    def __init__(self, url: str, cert: Path, proc: subprocess.Popen, log: Path):
        self.url = url
        self.cert = cert
        self.proc = proc
        self.log = log


def _wait_for_tls(port: int, cert: Path, proc: subprocess.Popen, log: Path) -> None:
    context = ssl.create_default_context(cafile=str(cert))
    deadline = time.monotonic() + RELAY_READY_TIMEOUT_S
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"socat exited with status {proc.returncode} before accepting connections:\n"
                f"{log.read_text(errors='replace')}",
                pytrace=False,
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
                with context.wrap_socket(raw, server_hostname="127.0.0.1"):
                    return
        except OSError as error:  # refused, or the handshake failed
            last_error = error
            time.sleep(0.1)
    pytest.fail(f"TLS relay on 127.0.0.1:{port} not ready after {RELAY_READY_TIMEOUT_S:.0f} s: {last_error!r}",
                pytrace=False)


@pytest.fixture(scope="module")
def tls_relay(larder, tmp_path_factory):
    """socat terminating TLS on a free loopback port, relaying to larder."""
    socat = shutil.which("socat")
    openssl = shutil.which("openssl")
    if socat is None or openssl is None:
        pytest.fail("socat and openssl are needed for the HTTPS tests (scripts/install-deps.sh installs them)",
                    pytrace=False)
    workdir = tmp_path_factory.mktemp("tls")
    key, cert = workdir / "key.pem", workdir / "cert.pem"
    made = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
    )
    assert made.returncode == 0, made.stderr.decode("utf-8", "replace")
    port = free_port()
    log = workdir / "socat.log"
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            [socat,
             f"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={cert},key={key},verify=0",
             f"TCP:127.0.0.1:{larder.port}"],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
            start_new_session=True,  # its own process group: the forked children go with it
        )
    try:
        _wait_for_tls(port, cert, proc, log)
        yield TlsRelay(f"https://127.0.0.1:{port}", cert, proc, log)
    finally:
        # The group is the one socat (started above) leads; its id is socat's pid.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture
def https_s3(larder, tls_relay):
    """boto3 with default settings (path-style, SigV4) through the TLS relay."""
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=tls_relay.url,
        aws_access_key_id=larder.access_key,
        aws_secret_access_key=larder.secret_key,
        region_name=larder.region,
        verify=str(tls_relay.cert),
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    # Nothing in the environment changed the checksum defaults.
    assert client.meta.config.request_checksum_calculation == "when_supported"
    yield client
    client.close()


# -- 1. boto3 defaults over HTTPS: aws-chunked with a CRC32 trailer ---------------


def test_https_put_object_sends_aws_chunked_with_crc32_trailer(https_s3, bucket):
    recorder = HeaderRecorder(https_s3, ["PutObject"])
    small = os.urandom(3 * 1024 + 7)
    large = os.urandom(MiB + 4321)

    # Several requests in a row on the client's kept-alive connection.
    puts = []
    for round_ in range(4):
        puts.append((f"chunked/small-{round_}.bin", small,
                     https_s3.put_object(Bucket=bucket, Key=f"chunked/small-{round_}.bin", Body=small)))
        puts.append((f"chunked/large-{round_}.bin", large,
                     https_s3.put_object(Bucket=bucket, Key=f"chunked/large-{round_}.bin", Body=io.BytesIO(large))))

    # Each PUT went out once, aws-chunked with a CRC32 trailer (and, the
    # body being a stream, with Expect: 100-continue); a retry would mean the
    # server dropped a request or the kept-alive connection.
    recorder.assert_no_retries()
    sent = recorder.of("PutObject")
    assert len(sent) == len(puts)
    for headers, (_, data, _) in zip(sent, puts):
        assert_aws_chunked_crc32_trailer(headers, len(data))
        assert headers.get("expect") == "100-continue", headers

    for key, data, put in puts:
        assert put["ETag"] == quoted_md5(data)
        # The server read the trailer and echoes the checksum it verified.
        assert put.get("ChecksumCRC32") == crc32_b64(data), put

    for key, data, _ in puts[:2]:
        got = https_s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert got["Body"].read() == data
        assert got["ContentLength"] == len(data)
        assert got["ETag"] == quoted_md5(data)
        assert got.get("ChecksumCRC32") == crc32_b64(data), {k: v for k, v in got.items() if k != "Body"}


def test_https_transfer_manager_multipart_with_crc32_trailers(https_s3, bucket, tmp_path):
    recorder = HeaderRecorder(
        https_s3, ["PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"]
    )
    source = write_random_file(tmp_path / "forty.bin", 40 * MiB)
    chunk = 8 * MiB  # boto3's default TransferConfig: 8 MiB threshold and part size
    expected_etag, parts = file_multipart_etag(source, chunk)
    assert parts == 5
    expected_crc = file_composite_crc32(source, chunk)

    https_s3.upload_file(str(source), bucket, "big/forty.bin")  # default TransferConfig

    recorder.assert_no_retries()
    assert recorder.of("PutObject") == []
    assert len(recorder.of("CreateMultipartUpload")) == 1
    assert recorder.of("CreateMultipartUpload")[0].get("x-amz-checksum-algorithm") == "CRC32"
    uploads = recorder.of("UploadPart")
    assert len(uploads) == parts
    for headers in uploads:
        assert_aws_chunked_crc32_trailer(headers, chunk)
    assert len(recorder.of("CompleteMultipartUpload")) == 1

    head = https_s3.head_object(Bucket=bucket, Key="big/forty.bin", ChecksumMode="ENABLED")
    assert head["ContentLength"] == 40 * MiB
    assert head["ETag"] == expected_etag
    assert head.get("ChecksumCRC32") == expected_crc, head
    assert head.get("ChecksumType") == "COMPOSITE", head

    got = https_s3.get_object(Bucket=bucket, Key="big/forty.bin", ChecksumMode="ENABLED")
    assert got.get("ChecksumCRC32") == expected_crc
    assert got["ETag"] == expected_etag
    digest = hashlib.sha256()
    for block in got["Body"].iter_chunks(MiB):
        digest.update(block)
    assert digest.hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()

    target = tmp_path / "forty.back"
    https_s3.download_file(bucket, "big/forty.bin", str(target))
    assert target.stat().st_size == 40 * MiB
    assert file_md5_hex(target) == file_md5_hex(source)
    assert https_s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


# -- 1b. the same body shape at the wire level (plain HTTP, no relay) --------------


def _signed_trailer_put_head(larder, path: str, decoded_length: int) -> bytes:
    """Request line and headers of a SigV4 PUT with an aws-chunked body
    (STREAMING-UNSIGNED-PAYLOAD-TRAILER, CRC32 trailer) sent with
    Transfer-Encoding: chunked, as botocore sends it."""
    request = AWSRequest(
        method="PUT",
        url=f"{larder.endpoint}{path}",
        headers={
            "Content-Encoding": "aws-chunked",
            "Transfer-Encoding": "chunked",
            "X-Amz-Trailer": "x-amz-checksum-crc32",
            "X-Amz-Decoded-Content-Length": str(decoded_length),
        },
    )
    # What botocore's trailer checksums set: the signer then signs the
    # STREAMING-UNSIGNED-PAYLOAD-TRAILER payload marker.
    request.context["checksum"] = {"request_algorithm": {"in": "trailer", "algorithm": "crc32"}}
    S3SigV4Auth(Credentials(larder.access_key, larder.secret_key), "s3", larder.region).add_auth(request)
    assert request.headers["X-Amz-Content-SHA256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    lines = [f"PUT {path} HTTP/1.1", f"Host: 127.0.0.1:{larder.port}"]
    for name, value in request.headers.items():
        if name.lower() != "host":
            lines.append(f"{name}: {value.decode() if isinstance(value, bytes) else value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_response_head(sock) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        block = sock.recv(65536)
        if not block:
            raise AssertionError(f"connection closed before a full response head: {data!r}")
        data += block
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"content-length: 0" in head.lower(), head  # no response body to skip
    assert rest == b"", rest
    return head


def test_keep_alive_after_aws_chunked_body_whose_last_http_chunk_comes_late(larder, bucket):
    """The wire-level form of what boto3 over HTTPS does: the aws-chunked
    payload (data chunks, final chunk, trailer) in one HTTP/1.1 chunk, and
    the terminating zero-length HTTP chunk in a later TCP segment.  The
    connection must stay usable for the next request."""
    data = os.urandom(3079)
    payload = (f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n"
               + f"x-amz-checksum-crc32:{crc32_b64(data)}\r\n\r\n".encode())
    with socket.create_connection(("127.0.0.1", larder.port), timeout=10) as sock:
        for attempt in range(2):
            sock.settimeout(10)
            sock.sendall(_signed_trailer_put_head(larder, f"/{bucket}/wire-{attempt}", len(data)))
            sock.sendall(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            time.sleep(0.2)  # the terminating chunk arrives separately
            sock.sendall(b"0\r\n\r\n")
            head = _read_response_head(sock)
            assert head.startswith(b"HTTP/1.1 200 "), head
            assert f"x-amz-checksum-crc32: {crc32_b64(data)}".encode() in head, head
            assert b"connection: close" not in head.lower(), head
            # Still open: nothing, in particular no EOF, within a short wait.
            sock.settimeout(1.0)
            try:
                leftover = sock.recv(1)
            except socket.timeout:
                leftover = None
            assert leftover is None, (
                f"request {attempt + 1}: the server closed the connection after answering 200 "
                f"without Connection: close (read {leftover!r})"
            )
    s3 = larder.client()
    for attempt in range(2):
        assert s3.get_object(Bucket=bucket, Key=f"wire-{attempt}")["Body"].read() == data


# -- 2. aws s3 cp and rclone over HTTP ------------------------------------------


def cli_transfer_defaults() -> tuple[int, int]:
    """(multipart_threshold, multipart_chunksize) of the AWS CLI in this environment."""
    proc = subprocess.run(
        [sys.executable, "-c",
         "from awscli.customizations.s3.transferconfig import DEFAULTS as d;"
         "print(d['multipart_threshold'], d['multipart_chunksize'])"],
        capture_output=True, timeout=60, check=True,
    )
    threshold, chunk = proc.stdout.decode().split()
    return int(threshold), int(chunk)


@pytest.fixture
def cleanup_bucket(s3):
    """Buckets a client created itself; emptied and deleted afterwards."""
    names: list[str] = []
    yield names
    existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    for name in names:
        if name in existing:
            for upload in s3.list_multipart_uploads(Bucket=name).get("Uploads", []):
                s3.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
            empty_and_delete_bucket(s3, name)


def test_awscli_cp_100_mib_multipart_both_ways(aws, s3, bucket, tmp_path):
    size = 100 * MiB
    threshold, chunk = cli_transfer_defaults()
    assert size > threshold
    source = write_random_file(tmp_path / "up" / "hundred.bin", size)
    expected_etag, parts = file_multipart_etag(source, chunk)
    assert parts == math.ceil(size / chunk)  # 13 with the default 8 MiB
    expected_crc = file_composite_crc32(source, chunk)

    aws("s3", "cp", source, f"s3://{bucket}/cli/hundred.bin", timeout=300)

    head = s3.head_object(Bucket=bucket, Key="cli/hundred.bin", ChecksumMode="ENABLED")
    assert head["ContentLength"] == size
    assert head["ETag"] == expected_etag
    assert head["ETag"].endswith(f'-{parts}"')
    # The CLI (v1) sends a CRC32 per part by default.
    assert head.get("ChecksumCRC32") == expected_crc, head
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    target = tmp_path / "down" / "hundred.bin"
    aws("s3", "cp", f"s3://{bucket}/cli/hundred.bin", target, timeout=300)
    assert target.stat().st_size == size
    assert file_md5_hex(target) == file_md5_hex(source)


RCLONE = shutil.which("rclone")


@pytest.mark.skipif(RCLONE is None, reason="rclone is not installed (CI installs Debian's rclone)")
def test_rclone_multipart_copy_check_and_back(larder, run, s3, bucket_name, cleanup_bucket, tmp_path):
    def rclone(*args, check=True):
        return run(
            [RCLONE, "--config", larder.rclone_config_path,
             "--retries", "1", "--low-level-retries", "2",
             "--s3-upload-cutoff", "10M", "--s3-chunk-size", "10M",
             *args],
            env={**larder.client_env(), "TZ": "UTC"},
            timeout=300,
            check=check,
        )

    def text(proc) -> str:
        return proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")

    bucket = bucket_name("rcmp")
    cleanup_bucket.append(bucket)
    local = tmp_path / "local"
    source = write_random_file(local / "fifty.bin", 50 * MiB)
    expected_etag, parts = file_multipart_etag(source, 10 * MiB)
    assert parts == 5

    rclone("copy", local, f"larder:{bucket}")

    head = s3.head_object(Bucket=bucket, Key="fifty.bin")
    assert head["ContentLength"] == 50 * MiB
    assert head["ETag"] == expected_etag  # really a 5-part multipart upload
    # rclone keeps the whole file's MD5 as metadata on multipart objects.
    md5_hex = file_md5_hex(source)
    assert head["Metadata"].get("md5chksum") == base64.b64encode(bytes.fromhex(md5_hex)).decode(), head

    check = rclone("check", local, f"larder:{bucket}", check=False)
    assert check.returncode == 0, text(check)
    assert "0 differences found" in text(check), text(check)
    assert "1 matching files" in text(check), text(check)
    assert "could not be checked" not in text(check), text(check)

    back = tmp_path / "back"
    rclone("copy", f"larder:{bucket}", back)
    assert sorted(p.name for p in back.iterdir()) == ["fifty.bin"]
    assert file_md5_hex(back / "fifty.bin") == md5_hex


# -- 3. the low-level multipart API (boto3 over HTTP) ----------------------------


def upload_parts(s3, bucket, key, upload_id, datas, start=1, **kwargs):
    """Uploads parts start, start+1, ...; returns the Parts list for completing."""
    parts = []
    for number, data in enumerate(datas, start=start):
        response = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data, **kwargs
        )
        assert response["ETag"] == quoted_md5(data)
        part = {"PartNumber": number, "ETag": response["ETag"]}
        if "ChecksumCRC32" in response:
            part["ChecksumCRC32"] = response["ChecksumCRC32"]
        parts.append(part)
    return parts


def test_multipart_upload_lifecycle(s3, bucket):
    key = "mp/three parts+ünï.bin"
    datas = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1024)]
    whole = b"".join(datas)
    expected_etag = multipart_etag(datas)
    expected_crc = composite_crc32(datas)

    created = s3.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32",
        ContentType="application/x-larder-test", Metadata={"origin": "compat"},
    )
    upload_id = created["UploadId"]
    assert created["Bucket"] == bucket and created["Key"] == key and upload_id
    assert created.get("ChecksumAlgorithm") == "CRC32", created

    parts = upload_parts(s3, bucket, key, upload_id, datas, ChecksumAlgorithm="CRC32")
    for part, data in zip(parts, datas):
        assert part.get("ChecksumCRC32") == crc32_b64(data), part

    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
    assert listed["UploadId"] == upload_id and listed["Key"] == key
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]
    assert [p["Size"] for p in listed["Parts"]] == [5 * MiB, 5 * MiB, 1024]
    assert [p["ETag"] for p in listed["Parts"]] == [quoted_md5(d) for d in datas]
    assert [p.get("ChecksumCRC32") for p in listed["Parts"]] == [crc32_b64(d) for d in datas]
    assert listed.get("IsTruncated") is False

    # Paging through the parts.
    first = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id, MaxParts=2)
    assert [p["PartNumber"] for p in first["Parts"]] == [1, 2]
    assert first["IsTruncated"] is True
    rest = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id,
                         PartNumberMarker=int(first["NextPartNumberMarker"]))
    assert [p["PartNumber"] for p in rest["Parts"]] == [3]

    in_progress = s3.list_multipart_uploads(Bucket=bucket)
    assert [(u["Key"], u["UploadId"]) for u in in_progress.get("Uploads", [])] == [(key, upload_id)]
    # Not visible as an object yet.
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key=key)

    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert done["ETag"] == expected_etag
    assert done["Key"] == key and done["Bucket"] == bucket
    assert done.get("ChecksumCRC32") == expected_crc, done
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []

    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ContentLength"] == len(whole)
    assert head["ETag"] == expected_etag
    assert head["ContentType"] == "application/x-larder-test"
    assert head["Metadata"] == {"origin": "compat"}
    assert head.get("ChecksumCRC32") == expected_crc, head
    assert head.get("ChecksumType") == "COMPOSITE", head

    got = s3.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == whole
    assert got["ETag"] == expected_etag

    # GET and HEAD by part number.
    second = s3.get_object(Bucket=bucket, Key=key, PartNumber=2)
    assert status_of(second) == 206
    assert second["Body"].read() == datas[1]
    assert second["ContentLength"] == 5 * MiB
    assert second["PartsCount"] == 3
    assert second["ContentRange"] == f"bytes {5 * MiB}-{10 * MiB - 1}/{len(whole)}"
    assert second["ETag"] == expected_etag
    third = s3.head_object(Bucket=bucket, Key=key, PartNumber=3)
    assert third["ContentLength"] == 1024
    assert third["PartsCount"] == 3
    assert third["ContentRange"] == f"bytes {10 * MiB}-{len(whole) - 1}/{len(whole)}"
    expect_error("InvalidPartNumber", 416, s3.get_object, Bucket=bucket, Key=key, PartNumber=4)

    # Completing again with the same parts succeeds and changes nothing.
    again = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert again["ETag"] == expected_etag
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == whole


def test_multipart_complete_errors(s3, bucket):
    key = "mp/errors.bin"
    datas = [os.urandom(5 * MiB), os.urandom(5 * MiB)]
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = upload_parts(s3, bucket, key, upload_id, datas)

    def complete(part_list):
        return s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": part_list}
        )

    wrong_etag = [parts[0], {"PartNumber": 2, "ETag": quoted_md5(b"not this part")}]
    expect_error("InvalidPart", 400, complete, wrong_etag)
    never_uploaded = [*parts, {"PartNumber": 3, "ETag": quoted_md5(b"nothing")}]
    expect_error("InvalidPart", 400, complete, never_uploaded)
    expect_error("InvalidPartOrder", 400, complete, [parts[1], parts[0]])
    expect_error("InvalidPartOrder", 400, complete, [parts[0], parts[0], parts[1]])
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key=key)

    # The failed attempts left the upload as it was.
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]] == [1, 2]
    done = complete(parts)
    assert done["ETag"] == multipart_etag(datas)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"".join(datas)


def test_multipart_entity_too_small_and_abort(s3, bucket):
    key = "mp/small.bin"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = upload_parts(s3, bucket, key, upload_id, [os.urandom(1024), os.urandom(1024)])
    expect_error(
        "EntityTooSmall", 400, s3.complete_multipart_upload,
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts},
    )
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key=key)

    aborted = s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    assert status_of(aborted) == 204
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    expect_error("NoSuchUpload", 404, s3.list_parts, Bucket=bucket, Key=key, UploadId=upload_id)
    expect_error("NoSuchUpload", 404, s3.upload_part,
                 Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=3, Body=b"late")
    expect_error("NoSuchUpload", 404, s3.complete_multipart_upload,
                 Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    expect_error("NoSuchUpload", 404, s3.abort_multipart_upload, Bucket=bucket, Key=key, UploadId=upload_id)
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key=key)


def test_upload_part_copy_with_ranges(s3, bucket):
    source = os.urandom(5 * MiB + 1000)
    s3.put_object(Bucket=bucket, Key="copy/source.bin", Body=source)
    key = "copy/assembled.bin"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]

    def copy_part(number, copy_range=None):
        extra = {"CopySourceRange": copy_range} if copy_range is not None else {}
        response = s3.upload_part_copy(
            Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
            CopySource={"Bucket": bucket, "Key": "copy/source.bin"}, **extra,
        )
        return {"PartNumber": number, "ETag": response["CopyPartResult"]["ETag"]}

    datas = [source[: 5 * MiB], source, source[1000:2000]]
    parts = [
        copy_part(1, f"bytes=0-{5 * MiB - 1}"),
        copy_part(2),  # the whole source
        copy_part(3, "bytes=1000-1999"),  # the last part may be small
    ]
    assert [p["ETag"] for p in parts] == [quoted_md5(d) for d in datas]

    listed = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [p["Size"] for p in listed] == [len(d) for d in datas]
    assert [p["ETag"] for p in listed] == [quoted_md5(d) for d in datas]

    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    assert done["ETag"] == multipart_etag(datas)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"".join(datas)
    assert s3.get_object(Bucket=bucket, Key=key, PartNumber=3)["Body"].read() == datas[2]
    # The source is untouched.
    assert s3.get_object(Bucket=bucket, Key="copy/source.bin")["Body"].read() == source


# -- 4. conditional writes ------------------------------------------------------


def test_conditional_put_object(s3, bucket):
    first = s3.put_object(Bucket=bucket, Key="cond/obj", Body=b"first", IfNoneMatch="*")
    assert first["ETag"] == quoted_md5(b"first")
    expect_error("PreconditionFailed", 412, s3.put_object,
                 Bucket=bucket, Key="cond/obj", Body=b"second", IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key="cond/obj")["Body"].read() == b"first"

    second = s3.put_object(Bucket=bucket, Key="cond/obj", Body=b"second", IfMatch=first["ETag"])
    assert second["ETag"] == quoted_md5(b"second")
    expect_error("PreconditionFailed", 412, s3.put_object,
                 Bucket=bucket, Key="cond/obj", Body=b"third", IfMatch=first["ETag"])
    assert s3.get_object(Bucket=bucket, Key="cond/obj")["Body"].read() == b"second"

    # If-Match on a key that does not exist.
    expect_error("NoSuchKey", 404, s3.put_object,
                 Bucket=bucket, Key="cond/absent", Body=b"x", IfMatch=first["ETag"])
    expect_error("404", 404, s3.head_object, Bucket=bucket, Key="cond/absent")


def test_conditional_complete_multipart_upload(s3, bucket):
    key = "cond/mp"

    def one_part_upload(data: bytes):
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        return upload_id, upload_parts(s3, bucket, key, upload_id, [data])

    # If-None-Match: * on a new key: completes.
    upload_id, parts = one_part_upload(b"one")
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
    )
    assert done["ETag"] == multipart_etag([b"one"])

    # ... and on an existing key: 412, the object is unchanged.
    upload_id, parts = one_part_upload(b"two")
    expect_error("PreconditionFailed", 412, s3.complete_multipart_upload,
                 Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, IfNoneMatch="*")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"one"

    # If-Match with a stale ETag: 412; with the current one: completes.
    expect_error("PreconditionFailed", 412, s3.complete_multipart_upload,
                 Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts},
                 IfMatch=quoted_md5(b"stale"))
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"one"
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, IfMatch=done["ETag"]
    )
    assert done["ETag"] == multipart_etag([b"two"])
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"two"

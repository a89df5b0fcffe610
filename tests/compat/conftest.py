"""Fixtures for the client compatibility suite.

One real ``larder serve`` process is started per test session, on a free
loopback port with a fresh data folder and a random root key.  Tests drive
it with boto3, the AWS CLI (v1) and rclone.

Environment:
  LARDER_BIN     the server binary (default: <repo>/target/debug/larder)
  LARDER_RUNNER  a command that runs it (e.g. ``qemu-aarch64 -L /usr/aarch64-linux-gnu``
                 for an ARM build); words split on spaces
  LARDER_ENDPOINT  a server already running elsewhere (e.g. in a VM), used
                 instead of starting one, with LARDER_ROOT_ACCESS_KEY and
                 LARDER_ROOT_SECRET_KEY its root key
"""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import signal
import string
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
READY_PREFIX = "larder listening on "
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0

# Variables that could point the clients somewhere else or change how they
# sign; removed from both this process and every child process.
_SCRUBBED_PREFIXES = ("AWS_", "RCLONE_", "BOTO_")
_SCRUBBED_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def _random_access_key() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(20))


def _random_secret_key() -> str:
    # Real AWS secrets use this alphabet, '/' and '+' included.
    alphabet = string.ascii_letters + string.digits + "/+"
    return "".join(secrets.choice(alphabet) for _ in range(40))


class LarderServer:
    """A running larder process and the client configuration to reach it."""

    def __init__(self, workdir: Path, data_dir: Path | None = None, access_key: str | None = None,
                 secret_key: str | None = None):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir or workdir / "data"
        self.data_dir.mkdir(exist_ok=True)
        self.stderr_path = workdir / "larder.stderr.log"
        self.stdout_path = workdir / "larder.stdout.log"
        self.access_key = access_key or _random_access_key()
        self.secret_key = secret_key or _random_secret_key()
        self.stop_seconds: float | None = None
        self.killed_after_timeout = False
        self.region = REGION
        self.binary = Path(os.environ.get("LARDER_BIN") or REPO / "target" / "debug" / "larder")
        # What runs the binary: the runner's words, then the binary.
        self.command = [*os.environ.get("LARDER_RUNNER", "").split(), str(self.binary)]
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.endpoint: str = ""
        self.aws_config_path = workdir / "aws-config"
        self.aws_credentials_path = workdir / "aws-credentials-unused"
        self.rclone_config_path = workdir / "rclone.conf"

    # -- lifecycle -----------------------------------------------------

    def attach(self, endpoint: str, access_key: str, secret_key: str) -> None:
        """Uses a server that runs elsewhere (LARDER_ENDPOINT)."""
        self.endpoint = endpoint.rstrip("/")
        self.port = int(self.endpoint.rpartition(":")[2])
        self.access_key, self.secret_key = access_key, secret_key
        self._write_client_configs()

    def start(self) -> None:
        if not self.binary.is_file():
            pytest.fail(
                f"larder binary not found at {self.binary}; run `cargo build` or set LARDER_BIN",
                pytrace=False,
            )
        env = clean_env()
        env.update(
            LARDER_ROOT_ACCESS_KEY=self.access_key,
            LARDER_ROOT_SECRET_KEY=self.secret_key,
            NO_COLOR="1",
            RUST_BACKTRACE="1",
        )
        env.pop("LARDER_CONFIG", None)
        env.pop("LARDER_LISTEN", None)
        env.pop("LARDER_DATA_DIR", None)
        env.pop("LARDER_REGION", None)
        self._stderr_file = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [*self.command, "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr_file,
            env=env,
            cwd=self.workdir,
        )
        lines: queue.Queue = queue.Queue()

        def pump() -> None:
            # Reads stdout for the whole life of the process, so the pipe never
            # fills; hands every line to the waiter and keeps a copy on disk.
            assert self.proc is not None and self.proc.stdout is not None
            with open(self.stdout_path, "ab") as copy:
                for raw in self.proc.stdout:
                    copy.write(raw)
                    copy.flush()
                    lines.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
            lines.put(None)

        threading.Thread(target=pump, name="larder-stdout", daemon=True).start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        seen: list[str] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._fail_start(f"no '{READY_PREFIX}HOST:PORT' line within {READY_TIMEOUT_S:.0f} s", seen)
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=5)
                self._fail_start(f"larder exited with status {self.proc.returncode} before it was ready", seen)
            seen.append(line)
            if line.startswith(READY_PREFIX):
                addr = line[len(READY_PREFIX):].strip()
                host, _, port = addr.rpartition(":")
                if host != "127.0.0.1" or not port.isdigit():
                    self._fail_start(f"unexpected listen address {addr!r}", seen)
                self.port = int(port)
                break
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._write_client_configs()

    def _fail_start(self, why: str, stdout_lines: list[str]) -> None:
        self.stop()
        pytest.fail(
            f"larder did not start: {why}\n"
            f"command: {' '.join(self.command)} serve --listen 127.0.0.1:0 --data-dir {self.data_dir}\n"
            f"--- stdout ---\n" + "\n".join(stdout_lines) + "\n"
            f"--- stderr ---\n{self.read_stderr()}",
            pytrace=False,
        )

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            began = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.killed_after_timeout = True
                self.proc.kill()
                self.proc.wait(timeout=5)
                sys.stderr.write(f"larder did not exit within {STOP_TIMEOUT_S:.0f} s of SIGTERM; killed it\n")
            self.stop_seconds = time.monotonic() - began
        self._stderr_file.close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=5)
        self._stderr_file.close()

    def alive(self) -> bool:
        if self.proc is None and self.endpoint:
            # A server elsewhere (LARDER_ENDPOINT): alive while it answers.
            import urllib.request
            try:
                with urllib.request.urlopen(f"{self.endpoint}/_larder/health", timeout=30) as answer:
                    return answer.status == 200
            except OSError:
                return False
        return self.proc is not None and self.proc.poll() is None

    # -- logs ----------------------------------------------------------

    def stderr_size(self) -> int:
        try:
            return self.stderr_path.stat().st_size
        except FileNotFoundError:
            return 0

    def read_stderr(self, offset: int = 0, limit: int = 20000) -> str:
        try:
            with open(self.stderr_path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return "(no stderr file)"
        text = data.decode("utf-8", "replace")
        if len(text) > limit:
            text = f"... ({len(text) - limit} characters cut) ...\n" + text[-limit:]
        return text

    # -- client configuration -----------------------------------------

    def _write_client_configs(self) -> None:
        self.aws_config_path.write_text(
            "[default]\n"
            f"region = {self.region}\n"
            "s3 =\n"
            "    signature_version = s3v4\n"
            "    addressing_style = path\n"
        )
        self.rclone_config_path.write_text(
            "[larder]\n"
            "type = s3\n"
            "provider = Other\n"
            "env_auth = false\n"
            f"access_key_id = {self.access_key}\n"
            f"secret_access_key = {self.secret_key}\n"
            f"endpoint = {self.endpoint}\n"
            f"region = {self.region}\n"
        )

    def client_env(self) -> dict[str, str]:
        """The environment for the aws CLI and rclone child processes."""
        env = clean_env()
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
            AWS_DEFAULT_REGION=self.region,
            AWS_CONFIG_FILE=str(self.aws_config_path),
            # A file that does not exist: no stray ~/.aws/credentials.
            AWS_SHARED_CREDENTIALS_FILE=str(self.aws_credentials_path),
            AWS_EC2_METADATA_DISABLED="true",
            AWS_PAGER="",
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
        )
        return env

    def client(self, access_key: str | None = None, secret_key: str | None = None, **config_kwargs):
        """A boto3 S3 client with default settings apart from path-style."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=access_key if access_key is not None else self.access_key,
            aws_secret_access_key=secret_key if secret_key is not None else self.secret_key,
            region_name=self.region,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, **config_kwargs),
        )


def clean_env() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_SCRUBBED_PREFIXES) and name not in _SCRUBBED_NAMES
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


_SERVER: LarderServer | None = None
_LOG_OFFSET = pytest.StashKey[int]()


@pytest.fixture(scope="session")
def larder(tmp_path_factory):
    """The running server (one per session)."""
    global _SERVER
    workdir = tmp_path_factory.mktemp("larder")
    server = LarderServer(workdir)
    elsewhere = os.environ.get("LARDER_ENDPOINT")
    root = (os.environ.get("LARDER_ROOT_ACCESS_KEY"), os.environ.get("LARDER_ROOT_SECRET_KEY"))
    # boto3 in this process must not read the machine's AWS settings either.
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(_SCRUBBED_PREFIXES) or name in _SCRUBBED_NAMES:
            del os.environ[name]
    if elsewhere:
        server.attach(elsewhere, *root)
    else:
        server.start()
    os.environ["AWS_CONFIG_FILE"] = str(server.aws_config_path)
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(server.aws_credentials_path)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    _SERVER = server
    try:
        yield server
    finally:
        _SERVER = None
        status = server.stop()
        os.environ.clear()
        os.environ.update(saved)
        if server.killed_after_timeout or status not in (0, None):
            # A teardown error: the run fails, with the server's own words.
            pytest.fail(
                f"larder did not shut down cleanly on SIGTERM (status {status}, "
                f"killed after {STOP_TIMEOUT_S:.0f} s: {server.killed_after_timeout}); "
                f"stderr tail:\n{server.read_stderr(limit=5000)}",
                pytrace=False,
            )


@pytest.fixture(autouse=True)
def _server_still_running(request):
    yield
    server = _SERVER
    if server is not None and "larder" in request.fixturenames and not server.alive():
        pytest.fail(
            f"larder died during this test (status {server.proc.returncode}); stderr:\n{server.read_stderr()}",
            pytrace=False,
        )


@pytest.fixture
def s3(larder):
    return larder.client()


@pytest.fixture
def bucket_name():
    """A fresh, valid bucket name per call (not created)."""

    def make(prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:20]}"

    return make


@pytest.fixture
def bucket(larder, s3, bucket_name):
    """A fresh, created bucket; emptied and deleted afterwards (best effort)."""
    name = bucket_name()
    s3.create_bucket(Bucket=name)
    yield name
    empty_and_delete_bucket(s3, name)


def empty_and_delete_bucket(s3, name: str) -> None:
    try:
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=name):
            keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        # A versioned bucket keeps older versions and delete markers.
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
            versions = page.get("Versions", []) + page.get("DeleteMarkers", [])
            targets = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions]
            if targets:
                s3.delete_objects(Bucket=name, Delete={"Objects": targets, "Quiet": True})
        s3.delete_bucket(Bucket=name)
    except Exception as error:  # cleanup must not hide the test's own outcome
        sys.stderr.write(f"cleanup of bucket {name} failed: {error!r}\n")


def run_tool(args, env, timeout=120, check=True, cwd=None):
    """Runs a client command line, returning the CompletedProcess."""
    proc = subprocess.run(
        [str(a) for a in args],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"command failed with status {proc.returncode}: {' '.join(map(str, args))}\n"
            f"--- stdout ---\n{proc.stdout.decode('utf-8', 'replace')}\n"
            f"--- stderr ---\n{proc.stderr.decode('utf-8', 'replace')}",
            pytrace=False,
        )
    return proc


def larder_cli(larder, *args, check=True, env_extra=None):
    """`larder ARGS --endpoint ...` with the root key in the environment."""
    env = clean_env()
    for name in ("LARDER_ENDPOINT", "LARDER_DATA_DIR", "LARDER_REGION", "LARDER_CONFIG"):
        env.pop(name, None)
    env.update(LARDER_ROOT_ACCESS_KEY=larder.access_key, LARDER_ROOT_SECRET_KEY=larder.secret_key, NO_COLOR="1")
    env.update(env_extra or {})
    return run_tool([*larder.command, *args, "--endpoint", larder.endpoint], env=env, timeout=60, check=check)


@pytest.fixture
def run():
    return run_tool


def aws_cli_command() -> list[str]:
    """The AWS CLI from this Python environment (never a system-wide one)."""
    return [sys.executable, "-m", "awscli"]


@pytest.fixture
def aws(larder):
    """Runs `aws --endpoint-url ... ARGS`, returning the CompletedProcess."""

    def call(*args, check=True, timeout=120, cwd=None):
        return run_tool(
            [*aws_cli_command(), "--endpoint-url", larder.endpoint, *args],
            env=larder.client_env(),
            timeout=timeout,
            check=check,
            cwd=cwd,
        )

    return call


def pytest_runtest_setup(item):
    server = _SERVER
    item.stash[_LOG_OFFSET] = server.stderr_size() if server is not None else 0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    server = _SERVER
    if report.failed and server is not None:
        offset = item.stash.get(_LOG_OFFSET, 0)
        report.sections.append(
            (f"larder stderr during {report.when}", server.read_stderr(offset) or "(nothing)")
        )


def which(name: str) -> str | None:
    return shutil.which(name)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium():
    """Headless Debian Chromium driven by Playwright (no downloaded browsers)."""
    try:
        from playwright.sync_api import Error as PlaywrightError, sync_playwright
    except ImportError as error:
        pytest.fail(f"the playwright package is missing ({error}); "
                    "pip install -r tests/compat/requirements.txt", pytrace=False)
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium; scripts/install-deps.sh)", pytrace=False)
    manager = sync_playwright().start()
    try:
        try:
            browser = manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        except PlaywrightError as error:
            pytest.fail(f"Chromium did not start: {error}", pytrace=False)
        yield browser
        browser.close()
    finally:
        manager.stop()

"""Upload links (`larder share --upload`) in a real browser.

Headless Debian Chromium, driven with Playwright, opens the link printed by
`larder share --upload s3://BUCKET/PREFIX/ --max-size 1M --type image/* --uses 3`
and chooses files on its upload page:

* two small images are posted (XHR) and land under the prefix with the same
  bytes; a second file of an existing name gets " (1)" before its extension;
* a file over the size limit and a text file are refused on the page (and
  nothing is stored for them); once the link's uses are spent, another image
  is refused with "This link has been used up.";
* after `larder share revoke ID` the open page can no longer upload, and
  reloading it shows "This link has expired".

Screenshots are kept under tmp_path/artefacts.
"""

from __future__ import annotations

import os
import re
import struct
import uuid
import zlib
from pathlib import Path


from conftest import empty_and_delete_bucket, larder_cli
from helpers import expect_error

BROWSER_TIMEOUT_MS = 15_000
MAX_SIZE = 1024 * 1024  # --max-size 1M
PREFIX = "inbox/"


# -- helpers ------------------------------------------------------------------


def text_of(proc) -> str:
    return proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")


def cli_field(output: str, label: str) -> str:
    match = re.search(rf"^\s*{label}:\s*(\S+)\s*$", output, re.MULTILINE)
    assert match, f"no '{label}:' line in:\n{output}"
    return match.group(1)


def png_bytes(width: int, height: int) -> bytes:
    """A valid PNG of random RGB pixels (incompressible: a few KB)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + os.urandom(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def jpeg_like_bytes(size: int) -> bytes:
    """JPEG markers around random bytes (the browser types files by extension)."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(size) + b"\xff\xd9"


class Visit:
    """One browser tab on the upload page, with what it logged."""

    def __init__(self, page, screenshots: Path):
        self.page = page
        self.screenshots = screenshots
        self.console: list[str] = []
        self.failed: list[str] = []
        page.on("console", lambda message: self.console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error}"))
        page.on("requestfailed", lambda request: self.failed.append(f"{request.method} {request.url}: {request.failure}"))

    def items(self) -> list[dict]:
        """The page's file list: name, class, note and progress of each <li>."""
        return self.page.eval_on_selector_all("#list > li", """items => items.map(li => ({
            name: (li.querySelector('.name') || {}).textContent,
            cls: li.className,
            note: (li.querySelector('.note') || {}).textContent,
            progress: li.querySelector('progress') ? li.querySelector('progress').value : null,
        }))""")

    def choose(self, paths: list[Path], settled: int) -> list[dict]:
        """Sets `paths` on #files and waits until the first `settled` list
        items are done or failed; returns the whole list."""
        self.page.set_input_files("#files", [str(p) for p in paths])
        try:
            self.page.wait_for_function(
                """n => { const items = document.querySelectorAll('#list > li');
                          return items.length >= n && Array.from(items).slice(0, n)
                              .every(li => li.classList.contains('done') || li.classList.contains('error')); }""",
                arg=settled, timeout=BROWSER_TIMEOUT_MS)
        except Exception as error:
            raise AssertionError(f"the list did not settle: {error}\n{self.describe()}") from None
        return self.items()

    def shot(self, name: str) -> Path:
        path = self.screenshots / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=True)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"no screenshot at {path}"
        return path

    def describe(self) -> str:
        try:
            items = self.items()
        except Exception as error:  # the page may be gone
            items = f"(unreadable: {error})"
        return (f"url: {self.page.url}\nlist: {items}\nconsole:\n  " + "\n  ".join(self.console)
                + "\nfailed requests:\n  " + "\n  ".join(self.failed))


# -- the test -----------------------------------------------------------------------


def test_upload_link_in_browser_uploads_refuses_and_expires(larder, s3, chromium, tmp_path, record_property):
    bucket = f"up-{uuid.uuid4().hex[:20]}"
    artefacts = tmp_path / "artefacts"
    files = tmp_path / "files"
    files.mkdir()
    a_png, b_jpg = files / "a.png", files / "b.jpg"
    a_png.write_bytes(png_bytes(40, 30))
    b_jpg.write_bytes(jpeg_like_bytes(3000))
    second = files / "again"
    second.mkdir()
    a_again = second / "a.png"  # same name, other bytes
    a_again.write_bytes(png_bytes(20, 20))
    big_png = files / "big.png"
    big_png.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(MAX_SIZE + 1000))
    notes_txt = files / "notes.txt"
    notes_txt.write_bytes(b"plain text, not an image\n")
    c_png = files / "c.png"
    c_png.write_bytes(png_bytes(10, 10))
    d_png = files / "d.png"
    d_png.write_bytes(png_bytes(12, 12))

    made = larder_cli(larder, "share", "--upload", f"s3://{bucket}/{PREFIX}", "--expires", "2h",
                      "--max-size", "1M", "--type", "image/*", "--uses", "3")
    output = text_of(made)
    link, link_id = cli_field(output, "link"), cli_field(output, "id")
    assert link.startswith(larder.endpoint + "/"), output
    record_property("upload_link", link)

    context = chromium.new_context()
    try:
        page = context.new_page()
        visit = Visit(page, artefacts)
        response = page.goto(link, timeout=BROWSER_TIMEOUT_MS)
        assert response is not None and response.status == 200, \
            f"{response and response.status}\n{response and response.text()[:2000]}\n{visit.describe()}"
        assert page.title() == "Upload files", visit.describe()
        assert page.get_attribute("#files", "type") == "file"
        assert page.get_attribute("#files", "multiple") is not None
        assert page.locator("#list > li").count() == 0

        # 1. Two images: both uploaded, progress at 100, stored byte for byte.
        items = visit.choose([a_png, b_jpg], settled=2)
        assert [(i["name"], i["cls"], i["note"], i["progress"]) for i in items] == [
            ("a.png", "done", "Done", 100), ("b.jpg", "done", "Done", 100)], visit.describe()
        record_property("screenshot_uploaded", str(visit.shot("uploaded.png")))
        a_obj = s3.get_object(Bucket=bucket, Key=f"{PREFIX}a.png")
        assert a_obj["Body"].read() == a_png.read_bytes()
        assert a_obj["ContentType"] == "image/png"
        b_obj = s3.get_object(Bucket=bucket, Key=f"{PREFIX}b.jpg")
        assert b_obj["Body"].read() == b_jpg.read_bytes()
        assert b_obj["ContentType"] == "image/jpeg"

        # 2. The same name again: stored next to the first, not over it.
        items = visit.choose([a_again], settled=3)
        assert (items[2]["name"], items[2]["cls"], items[2]["note"], items[2]["progress"]) == \
            ("a.png", "done", "Done", 100), visit.describe()
        assert s3.get_object(Bucket=bucket, Key=f"{PREFIX}a (1).png")["Body"].read() == a_again.read_bytes()
        assert s3.get_object(Bucket=bucket, Key=f"{PREFIX}a.png")["Body"].read() == a_png.read_bytes()

        # 3. Too big, and not an image: refused on the page, nothing sent.
        items = visit.choose([big_png, notes_txt], settled=5)
        assert [(i["name"], i["cls"], i["note"]) for i in items[3:]] == [
            ("big.png", "error", "Too big: the limit is 1.0 MiB."),
            ("notes.txt", "error", "Wrong type: only image/* files."),
        ], visit.describe()
        record_property("screenshot_refused", str(visit.shot("refused.png")))
        # The script ran cleanly under the page's Content-Security-Policy.
        broken = [line for line in visit.console
                  if line.startswith("pageerror:") or "Content Security Policy" in line]
        assert not broken, visit.describe()

        # 4. Three uploads were allowed (--uses 3): the fourth is refused.
        items = visit.choose([c_png], settled=6)
        assert (items[5]["name"], items[5]["cls"], items[5]["note"]) == \
            ("c.png", "error", "This link has been used up."), visit.describe()

        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
        assert keys == [f"{PREFIX}a (1).png", f"{PREFIX}a.png", f"{PREFIX}b.jpg"], keys

        # 5. Revoked: the open page cannot upload any more, and reloading it
        #    shows the expired page.
        revoked = larder_cli(larder, "share", "revoke", link_id)
        assert revoked.returncode == 0, text_of(revoked)
        items = visit.choose([d_png], settled=7)
        assert (items[6]["name"], items[6]["cls"], items[6]["note"]) == \
            ("d.png", "error", "This link has expired."), visit.describe()
        expect_error("404", 404, s3.head_object, Bucket=bucket, Key=f"{PREFIX}d.png")

        reloaded = page.reload(timeout=BROWSER_TIMEOUT_MS)
        record_property("screenshot_expired", str(visit.shot("expired.png")))
        assert reloaded is not None and 400 <= reloaded.status < 500, \
            f"status {reloaded and reloaded.status}\n{visit.describe()}"
        assert page.inner_text("h1") == "This link has expired", \
            f"{page.content()[:2000]}\n{visit.describe()}"
        assert page.locator("#files").count() == 0, visit.describe()

        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
        assert keys == [f"{PREFIX}a (1).png", f"{PREFIX}a.png", f"{PREFIX}b.jpg"], keys
    finally:
        context.close()
        empty_and_delete_bucket(s3, bucket)

"""`patchline feeds update`: OSV-layout archives from a local HTTP server, fetched, revalidated, verified."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchline.advisories import OsvFeed
from patchline.advisories._feeds import (
    STATE_FILE,
    UpdateOutcome,
    archive_url,
    check_mirror,
    feed_status,
    update_feeds,
    verify_archive,
)
from patchline.errors import FeedError
from tests.support.clock import freeze_clock  # noqa: F401  (fixture)
from tests.unit.advisories.conftest import PYPI_RECORDS

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def osv_zip(records: dict[str, object]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, doc in records.items():
            archive.writestr(name, doc if isinstance(doc, bytes) else json.dumps(doc))
    return buffer.getvalue()


def pypi_zip() -> bytes:
    """The shipped PyPI records, as OSV publishes them: one <ID>.json per record."""
    import yaml

    docs = {}
    for path in sorted(PYPI_RECORDS.rglob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        docs[f"{doc['id']}.json"] = json.loads(json.dumps(doc, default=str))
    return osv_zip(docs)


@dataclass
class Mirror:
    """What the test server serves: path -> body; ``mode`` breaks the next responses."""

    files: dict[str, bytes] = field(default_factory=dict)
    mode: str = "normal"  # "normal", "cut" (closes half-way through the body)
    requests: list[dict[str, str]] = field(default_factory=list)
    base: str = ""


@pytest.fixture
def mirror() -> Iterator[Mirror]:
    state = Mirror()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append({k.lower(): v for k, v in self.headers.items()} | {"path": self.path})
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", "Sun, 01 Mar 2026 10:00:00 GMT")
            self.end_headers()
            if state.mode == "cut":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}/osv#allow_http"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def update(mirror: Mirror, tmp_path: Path, freeze_clock: Callable[[dt.datetime], None]) -> Callable[..., list]:  # noqa: F811
    freeze_clock(NOW)

    def run(*ecosystems: str) -> list:
        return update_feeds(mirror=mirror.base, ecosystems=ecosystems or ("PyPI",), directory=tmp_path / "feeds")

    return run


def test_first_fetch_then_304_then_a_new_revision(mirror: Mirror, update: Callable[..., list], tmp_path: Path) -> None:
    mirror.files["/osv/PyPI/all.zip"] = first = pypi_zip()
    (result,) = update()
    assert (result.outcome, result.reason) == (UpdateOutcome.UPDATED, None)
    archive = tmp_path / "feeds" / "PyPI" / "all.zip"
    assert archive.read_bytes() == first
    assert result.revision.records == 36 + 1  # every shipped record, the withdrawn one too
    assert result.revision.sha256 == hashlib.sha256(first).hexdigest()
    assert result.revision.fetched_at == "2026-03-01T12:00:00Z"
    state = json.loads((tmp_path / "feeds" / STATE_FILE).read_text())
    assert state["feeds"]["PyPI"]["etag"] == result.revision.etag
    assert state["feeds"]["PyPI"]["last_modified"] == "Sun, 01 Mar 2026 10:00:00 GMT"
    # The feed is what an assessment reads, with the same revision.
    assert OsvFeed(archive).revision == result.revision.revision
    assert "if-none-match" not in mirror.requests[0]

    (again,) = update()
    assert again.outcome is UpdateOutcome.UNCHANGED
    assert mirror.requests[-1]["if-none-match"] == result.revision.etag
    assert mirror.requests[-1]["if-modified-since"] == "Sun, 01 Mar 2026 10:00:00 GMT"
    assert again.revision.sha256 == result.revision.sha256

    mirror.files["/osv/PyPI/all.zip"] = second = osv_zip({"PYSEC-1.json": {"id": "PYSEC-1", "modified": "2026"}})
    (changed,) = update()
    assert (changed.outcome, changed.revision.records) == (UpdateOutcome.UPDATED, 1)
    assert archive.read_bytes() == second
    assert feed_status(tmp_path / "feeds")["PyPI"].sha256 == hashlib.sha256(second).hexdigest()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"PK\x03\x04 not really a zip", "not a whole zip archive"),
        (osv_zip({"A.json": b"{not json"}), "not valid JSON"),
        (osv_zip({"A.json": {"no": "id"}}), "not an OSV record"),
        (osv_zip({"README.txt": b"hello"}), "not a JSON record"),
        (osv_zip({}), "holds no OSV record"),
    ],
)
def test_a_bad_archive_is_refused_and_the_old_feed_kept(
    mirror: Mirror, update: Callable[..., list], tmp_path: Path, body: bytes, why: str
) -> None:
    mirror.files["/osv/PyPI/all.zip"] = good = pypi_zip()
    (first,) = update()
    mirror.files["/osv/PyPI/all.zip"] = body
    (result,) = update()
    assert result.outcome is UpdateOutcome.FAILED
    assert why in (result.reason or "")
    assert (tmp_path / "feeds" / "PyPI" / "all.zip").read_bytes() == good
    assert result.revision == first.revision  # the feed in place, unchanged
    assert feed_status(tmp_path / "feeds")["PyPI"].sha256 == first.revision.sha256
    assert [p.name for p in (tmp_path / "feeds").iterdir() if p.name.startswith(".part-")] == []


def test_a_corrupt_member_fails_its_crc(tmp_path: Path) -> None:
    data = bytearray(osv_zip({"A.json": {"id": "A", "modified": "2026", "details": "x" * 200}}))
    offset = data.index(b"A.json") + len("A.json") + 5  # inside the first member's compressed data
    data[offset] ^= 0xFF
    path = tmp_path / "all.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(FeedError):
        verify_archive(path)


def test_a_server_gone_mid_download_keeps_the_old_feed(
    mirror: Mirror, update: Callable[..., list], tmp_path: Path
) -> None:
    mirror.files["/osv/PyPI/all.zip"] = good = pypi_zip()
    update()
    mirror.files["/osv/PyPI/all.zip"] = pypi_zip() + b"changed"
    mirror.mode = "cut"
    (result,) = update()
    assert result.outcome is UpdateOutcome.FAILED
    assert "cannot download" in (result.reason or "")
    assert (tmp_path / "feeds" / "PyPI" / "all.zip").read_bytes() == good


def test_one_failing_ecosystem_does_not_stop_the_others(mirror: Mirror, update: Callable[..., list]) -> None:
    mirror.files["/osv/PyPI/all.zip"] = pypi_zip()
    missing, pypi = update("Maven", "PyPI")
    assert (missing.outcome, missing.revision) == (UpdateOutcome.FAILED, None)
    assert "HTTP 404" in (missing.reason or "")
    assert pypi.outcome is UpdateOutcome.UPDATED


def test_mirror_urls_are_checked() -> None:
    assert check_mirror("https://mirror.invalid/osv/") == ("https://mirror.invalid/osv", False)
    with pytest.raises(FeedError, match="plain http"):
        check_mirror("http://mirror.invalid/osv")
    with pytest.raises(FeedError, match="sha256"):
        check_mirror("https://mirror.invalid/osv#sha256=" + "0" * 64)
    assert archive_url("https://m.invalid/osv", "Red Hat") == "https://m.invalid/osv/Red%20Hat/all.zip"
    with pytest.raises(FeedError):
        archive_url("https://m.invalid/osv", "../etc")
    with pytest.raises(FeedError, match="no OSV ecosystems"):
        update_feeds(mirror="https://m.invalid/osv", ecosystems=(), directory=Path("/nonexistent"))


def test_cli_update_and_status(
    mirror: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, freeze_clock: Callable[[dt.datetime], None]  # noqa: F811
) -> None:
    from patchline.cli import app

    freeze_clock(NOW)
    mirror.files["/osv/PyPI/all.zip"] = pypi_zip()
    config = tmp_path / "patchline.toml"
    config.write_text(f'[advisories]\nmirror = "{mirror.base}"\necosystems = ["PyPI", "npm"]\n'
                      f'feeds_dir = "{tmp_path / "feeds"}"\n')
    runner = CliRunner()
    result = runner.invoke(app, ["--config", str(config), "feeds", "update", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [(u["ecosystem"], u["outcome"]) for u in doc["updates"]] == [("PyPI", "updated"), ("npm", "failed")]
    assert doc["feeds"]["PyPI"]["records"] == 37
    strict = runner.invoke(app, ["--config", str(config), "feeds", "update", "--strict"])
    assert strict.exit_code == 1
    status = runner.invoke(app, ["--config", str(config), "feeds", "status", "--json"])
    assert json.loads(status.stdout)["feeds"]["PyPI"]["revision"].startswith("sha256:")
    # Every assessment reads the fetched feeds.
    from patchline._config import load_config
    from patchline.assess import options_from_config

    assert str(tmp_path / "feeds" / "PyPI" / "all.zip") in options_from_config(load_config(config)).feeds

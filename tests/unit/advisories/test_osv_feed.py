"""OSV feeds: real PyPI records (directory), an all.zip, a URL, and a corpus of bad records."""

from __future__ import annotations

import http.server
import json
import shutil
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from patchline.advisories import Advisory, OsvFeed
from patchline.advisories.osv import MAX_RECORD_BYTES
from patchline.assess.model import AssessSkip
from patchline.errors import FeedError
from tests.unit.advisories.conftest import DATA


def _split(records: list[Advisory | AssessSkip]) -> tuple[list[Advisory], list[AssessSkip]]:
    return [r for r in records if isinstance(r, Advisory)], [r for r in records if isinstance(r, AssessSkip)]


def test_shipped_pypi_records_load_cold_and_warm(pypi_records: Path, tmp_path: Path) -> None:
    cache = tmp_path / "osv-cache"
    cold = list(OsvFeed(pypi_records, cache_dir=cache).records())
    warm_feed = OsvFeed(pypi_records, cache_dir=cache)
    warm = list(warm_feed.records())
    assert warm == cold
    advisories, skips = _split(cold)
    assert sum(1 for _ in pypi_records.rglob("*.yaml")) == 37
    assert len(advisories) == 34  # 37 files: 2 skips, 1 withdrawn (loguru PYSEC-2022-15)
    assert sorted((Path(s.what).name, s.reason.split(":", 1)[1].strip()) for s in skips) == [
        ("PYSEC-2019-125.yaml", "affected[0].ranges[0].events[1] fixed version '2019-09-12' is not valid "
                                "(pep440): invalid PEP 440 version '2019-09-12'"),
        ("PYSEC-2021-371.yaml", "affected[0].ranges[1].events[1] fixed version '0.2.0-n653' is not valid "
                                "(pep440): invalid PEP 440 version '0.2.0-n653'"),
    ]  # fmt: skip
    assert warm_feed.revision == "2024-07-11T17:21:37.216928Z"  # the newest `modified` of the records
    assert all(a.affected and a.modified for a in advisories)


def test_whole_pypi_snapshot_loads_cold_and_warm(pypi_snapshot: Path, tmp_path: Path) -> None:
    """Whole-snapshot test: every record of the shared PyPI snapshot, and how long loading takes."""
    cache = tmp_path / "osv-cache"
    start = time.perf_counter()
    cold = list(OsvFeed(pypi_snapshot, cache_dir=cache).records())
    cold_s = time.perf_counter() - start
    start = time.perf_counter()
    warm_feed = OsvFeed(pypi_snapshot, cache_dir=cache)
    warm = list(warm_feed.records())
    warm_s = time.perf_counter() - start
    advisories, skips = _split(cold)
    files = sum(1 for _ in pypi_snapshot.rglob("*.yaml"))
    print(
        f"\nPyPI snapshot: {files} files, {len(advisories)} advisories, {len(skips)} skips, "
        f"{files - len(advisories) - len(skips)} withdrawn; load cold {cold_s:.2f}s, warm {warm_s:.2f}s"
    )
    for skip in skips:
        print("  skip:", skip.what, "-", skip.reason)
    assert warm == cold
    assert len(advisories) > 2500
    assert all(s.reason.strip() for s in skips)
    assert len(skips) < 10  # only the handful of records with non-PEP 440 versions in their ranges
    assert warm_feed.revision.startswith("2024-10-10")
    assert all(a.affected and a.modified for a in advisories)


def test_withdrawn_records_are_dropped(pypi_records: Path, tmp_path: Path) -> None:
    feed = OsvFeed(pypi_records / "loguru", cache_dir=tmp_path)
    ids = {r.id for r in feed.records() if isinstance(r, Advisory)}
    assert ids == {"PYSEC-2022-14"}  # PYSEC-2022-15 is withdrawn: "This CVE has been rejected"


def test_unquoted_yaml_scalars_stay_strings(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "id: PYSEC-0000-9\nmodified: 2023-11-03T16:28:41.53834Z\naffected:\n"
        "- package: {name: foo, ecosystem: PyPI}\n  versions: [1.10, 2.0]\n"
    )
    (advisory,) = OsvFeed(tmp_path, cache_dir=tmp_path / "c").records()
    assert isinstance(advisory, Advisory)
    assert advisory.modified == "2023-11-03T16:28:41.53834Z"
    assert advisory.affected[0].versions == ("1.10", "2.0")  # not the float 1.1


BAD = DATA / "bad"


@pytest.mark.parametrize(
    ("filename", "reason"),
    [
        ("not-json.json", "not valid JSON"),
        ("not-yaml.yaml", "not valid YAML"),
        ("top-level-list.json", "must be an object, this is a list"),
        ("missing-id.json", "record has no id"),
        ("unknown-range-type.json", "unknown range type 'SEMVERISH'"),
        ("event-two-keys.yaml", "must have exactly one key, has 2"),
        ("affected-without-package.json", "affected[0] has no package"),
        ("invalid-fixed-version.json", "fixed version 'not a version!' is not valid (pep440)"),
    ],
)
def test_bad_record_is_a_skip_with_its_reason(filename: str, reason: str, tmp_path: Path) -> None:
    shutil.copy(BAD / filename, tmp_path / filename)
    records = list(OsvFeed(tmp_path, cache_dir=tmp_path / "cache").records())
    assert len(records) == 1
    (skip,) = records
    assert isinstance(skip, AssessSkip)
    assert reason in skip.reason
    assert filename in skip.what


def test_bad_corpus_as_one_feed_goes_on(tmp_path: Path) -> None:
    feed_dir = tmp_path / "feed"
    shutil.copytree(BAD, feed_dir)
    shutil.copy(DATA / "debian" / "DSA-5514-1.json", feed_dir)
    advisories, skips = _split(list(OsvFeed(feed_dir, cache_dir=tmp_path / "cache").records()))
    assert [a.id for a in advisories] == ["DSA-5514-1"]
    assert len(skips) == len(list(BAD.iterdir()))


def test_huge_record_is_skipped_unparsed(tmp_path: Path) -> None:
    huge = tmp_path / "HUGE-1.json"
    with huge.open("w") as out:
        out.write('{"id": "HUGE-1", "modified": "2024-01-01T00:00:00Z", "details": "')
        out.write("x" * (MAX_RECORD_BYTES + 1))
        out.write('"}')
    (skip,) = OsvFeed(tmp_path, cache_dir=tmp_path / "cache").records()
    assert isinstance(skip, AssessSkip)
    assert "over the" in skip.reason and "limit" in skip.reason


def _all_zip(feed_dir: Path, dest: Path, packages: tuple[str, ...]) -> list[str]:
    """A zip in OSV's <ECOSYSTEM>/all.zip layout: one <ID>.json per advisory at the top level."""
    ids = []
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for package in packages:
            for path in sorted((feed_dir / package).glob("*.yaml")):
                doc = yaml.load(path.read_bytes(), Loader=yaml.CBaseLoader)  # every scalar a string
                z.writestr(f"{doc['id']}.json", json.dumps(doc))
                ids.append(doc["id"])
        z.writestr("BROKEN-1.json", "{not json")
    return ids


def test_zip_feed_in_all_zip_layout(pypi_records: Path, tmp_path: Path) -> None:
    ids = _all_zip(pypi_records, tmp_path / "all.zip", ("urllib3", "requests"))
    assert len(ids) == 16
    feed = OsvFeed(tmp_path / "all.zip", cache_dir=tmp_path / "cache")
    advisories, skips = _split(list(feed.records()))
    assert sorted(a.id for a in advisories) == sorted(ids)
    assert [s.what for s in skips] == [f"{tmp_path / 'all.zip'}!BROKEN-1.json"]
    assert feed.revision.startswith("sha256:")


def test_a_file_that_is_not_a_zip_is_a_feed_error(tmp_path: Path) -> None:
    (tmp_path / "all.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(FeedError, match="not a readable zip"):
        list(OsvFeed(tmp_path / "all.zip").records())


def test_missing_feed_is_a_feed_error(tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="does not exist"):
        list(OsvFeed(tmp_path / "nowhere").records())


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    root = tmp_path / "www"
    root.mkdir()
    log: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            log.append(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root, log
    finally:
        server.shutdown()
        server.server_close()


def test_http_zip_feed_is_cached_and_revalidated(
    pypi_records: Path, tmp_path: Path, http_root: tuple[str, Path, list[str]]
) -> None:
    base, root, log = http_root
    ids = _all_zip(pypi_records, root / "all.zip", ("jinja2",))
    assert len(ids) == 5
    cache = tmp_path / "cache"
    first = OsvFeed(f"{base}/all.zip", allow_http=True, cache_dir=cache)
    assert sorted(r.id for r in first.records() if isinstance(r, Advisory)) == sorted(ids)
    second = OsvFeed(f"{base}/all.zip", allow_http=True, cache_dir=cache)
    assert list(second.records()) == list(first.records())
    assert second.revision == first.revision
    assert [entry.split()[-1] for entry in log] == ["200", "304"]  # Last-Modified revalidation


def test_http_single_json_record(tmp_path: Path, http_root: tuple[str, Path, list[str]]) -> None:
    base, root, _ = http_root
    shutil.copy(DATA / "debian" / "DSA-5514-1.json", root / "DSA-5514-1.json")
    (advisory,) = OsvFeed(f"{base}/DSA-5514-1.json", allow_http=True, cache_dir=tmp_path / "cache").records()
    assert isinstance(advisory, Advisory) and advisory.id == "DSA-5514-1"


def test_http_error_is_a_feed_error(tmp_path: Path, http_root: tuple[str, Path, list[str]]) -> None:
    base, _, _ = http_root
    with pytest.raises(FeedError, match="HTTP 404"):
        list(OsvFeed(f"{base}/missing.zip", allow_http=True, cache_dir=tmp_path / "cache").records())

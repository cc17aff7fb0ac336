"""A suite that answered before and now answers 404 is unreadable, not absent: its pending updates must not
vanish with it. A suite that never answered (a release with no -updates) is still planned without.

The mirror is a local HTTP server of hand-written, unsigned indexes (read with unsafe_skip_signature)."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from patchline.assess import AssessOptions, UpdateSuiteSpec, unchecked_sources
from patchline.errors import SuiteMissing, UpdateSourceError
from patchline.fleet._refresh import refresh_updates
from patchline.store import Store, open_store
from patchline.updates import AptSuite, FetchOptions, load_sources
from patchline.updates.apt import fetch_release, last_answered
from tests.support.fleetdata import deb, image

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


class Archive:
    def __init__(self, root: Path, url: str) -> None:
        self.root, self.url = root, url

    def publish(self, suite: str, *, version: str = "1.1") -> None:
        """``dists/SUITE`` with one component and a Packages index offering libfoo ``version``."""
        dists = self.root / "dists" / suite
        binary = dists / "main" / "binary-amd64"
        binary.mkdir(parents=True, exist_ok=True)
        packages = (f"Package: libfoo\nVersion: {version}\nArchitecture: amd64\nSource: foo\n"
                    f"Filename: pool/main/f/foo/libfoo_{version}_amd64.deb\nSize: 1000\nSHA256: {'0' * 64}\n\n")
        (binary / "Packages").write_text(packages)
        digest = hashlib.sha256(packages.encode()).hexdigest()
        (dists / "Release").write_text(
            f"Suite: {suite}\nCodename: {suite}\nDate: Sat, 05 Dec 2026 00:00:00 UTC\nComponents: main\n"
            f"Architectures: amd64\nSHA256:\n {digest} {len(packages)} main/binary-amd64/Packages\n")

    def withdraw(self, suite: str) -> None:
        shutil.rmtree(self.root / "dists" / suite)

    def suite(self, name: str) -> AptSuite:
        return AptSuite(self.url, name, ("main",))


@pytest.fixture
def archive(mirror: tuple[str, Path]) -> Archive:
    url, root = mirror
    return Archive(root / "debian", url)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, freeze_clock: Callable[[dt.datetime], None]) -> Path:
    """The apt cache (where answered suites are remembered), private to the test; the clock frozen at NOW."""
    freeze_clock(NOW)
    monkeypatch.setenv("PATCHLINE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "apt"


def options(cache: Path) -> FetchOptions:
    return FetchOptions(unsafe_skip_signature=True, cache_dir=cache)


def test_a_suite_that_answered_before_and_is_gone_is_unreadable(archive: Archive, cache: Path) -> None:
    updates = archive.suite("bookworm-updates")
    archive.publish("bookworm-updates")
    assert len(load_sources([updates], options(cache)).indexes) == 1
    assert last_answered(cache, updates) == "2026-12-05"

    archive.withdraw("bookworm-updates")
    with pytest.raises(UpdateSourceError) as caught:
        load_sources([updates], options(cache), strict=True)
    assert not isinstance(caught.value, SuiteMissing)
    assert "no InRelease or Release" in str(caught.value) and "it answered on 2026-12-05" in str(caught.value)
    loaded = load_sources([updates], options(cache))
    assert loaded.missing == () and [s.what for s in loaded.unread] == [updates.label]
    # What a rebuild's verification and the fleet refresh check: the suite's updates cannot be checked.
    [reason] = unchecked_sources([updates], loaded)
    assert reason.startswith(updates.label) and "it answered on 2026-12-05" in reason


def test_a_suite_that_never_answered_is_still_missing(archive: Archive, cache: Path) -> None:
    archive.publish("bookworm-updates")
    backports = archive.suite("bookworm-backports")  # this release has none
    with httpx.Client() as client, pytest.raises(SuiteMissing):
        fetch_release(backports, options(cache), client=client)
    loaded = load_sources([archive.suite("bookworm-updates"), backports], options(cache))
    assert loaded.missing == (backports.label,) and loaded.unread == ()
    assert unchecked_sources([archive.suite("bookworm-updates"), backports], loaded) == []
    assert last_answered(cache, backports) is None


def test_suites_are_remembered_by_mirror_and_name(archive: Archive, cache: Path) -> None:
    archive.publish("bookworm-updates")
    load_sources([archive.suite("bookworm-updates")], options(cache))
    elsewhere = AptSuite("http://127.0.0.1:9/debian", "bookworm-updates", ("main",))
    assert last_answered(cache, elsewhere) is None
    assert last_answered(cache, AptSuite(archive.url + "/", "bookworm-updates", ("main",))) == "2026-12-05"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'p.db'}") as s:
        yield s


def test_the_fleet_keeps_the_pending_updates_of_a_suite_that_went_missing(archive: Archive, cache: Path,
                                                                          store: Store) -> None:
    inv = image("localhost/app", ["a"], [deb("libfoo", "1.0", source="foo")])
    digest = inv.image.config_digest
    store.record_image(inv, refs=[("localhost/app", "1", None)], seen_at=NOW)
    assess = AssessOptions(suites=(UpdateSuiteSpec(archive.url, "bookworm-updates"),), unsafe_skip_signature=True,
                           changelogs=False, today=NOW.date())
    archive.publish("bookworm-updates")
    refreshed = refresh_updates(store, assess)
    assert refreshed.pending == 1 and refreshed.unknown == ()
    assert [p.name for p in store.pending_for([digest])[digest]] == ["libfoo"]

    archive.withdraw("bookworm-updates")
    refreshed = refresh_updates(store, assess)
    # Before: the suite was dropped, libfoo 1.1 vanished and the image looked patched.
    assert refreshed.kept == (digest,)
    [(unknown, reason)] = refreshed.unknown
    assert unknown == digest and "it answered on 2026-12-05" in reason
    assert [p.name for p in store.pending_for([digest])[digest]] == ["libfoo"]

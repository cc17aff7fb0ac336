"""The lazy index (what `patchline scan` uses) answers exactly as the eager one."""

from __future__ import annotations

import json
from pathlib import Path

from patchline.advisories import AdvisoryIndex, OsvFeed, match_packages
from patchline.assess import PackageRef


def _packages(snapshot: Path, limit: int = 300, leave_out: tuple[str, ...] = ()) -> list[PackageRef]:
    """Real (name, version) pairs from the snapshot, plus versions no advisory names."""
    out: list[PackageRef] = []
    for path in sorted(snapshot.rglob("*.yaml"))[:limit]:
        name = path.parent.name
        if name in leave_out:
            continue
        for version in ("0.1", "1.0.0", "2.25.0", "99.0"):
            out.append(PackageRef("pypi", name, version, f"pkg:pypi/{name}@{version}"))
    return out


def _eager_and_lazy(feed: Path, packages: list[PackageRef], cache: Path) -> tuple[AdvisoryIndex, AdvisoryIndex]:
    eager = AdvisoryIndex.build([OsvFeed(feed, cache_dir=cache)])
    lazy = AdvisoryIndex.build_lazy([OsvFeed(feed, cache_dir=cache)])
    # The lazy count includes records that full validation would reject as a whole.
    assert 0 <= lazy.advisories - eager.advisories <= len(eager.skipped)
    eager_findings, _ = match_packages(packages, eager, distro=None)
    lazy_findings, _ = match_packages(packages, lazy, distro=None)
    assert eager_findings, "the packages were chosen to be affected"
    assert lazy_findings == eager_findings
    assert lazy.pending, "records of names never looked up stay unparsed"
    return eager, lazy


def test_lazy_and_eager_find_the_same(pypi_records: Path, tmp_path: Path) -> None:
    # binderhub and steam each hold one record with a non-PEP 440 version in its ranges.
    packages = _packages(pypi_records, leave_out=("loguru", "steam"))
    eager, lazy = _eager_and_lazy(pypi_records, packages, tmp_path)
    assert (eager.advisories, lazy.advisories) == (34, 36)
    assert sorted(s.what.rsplit("/", 1)[-1] for s in eager.skipped) == ["PYSEC-2019-125.yaml", "PYSEC-2021-371.yaml"]
    assert sorted(name for _, name in lazy.pending) == ["loguru", "steam"]
    # binderhub was looked up: its bad record is now a skip; steam's is still unparsed.
    assert [s for s in lazy.skipped if "PYSEC-2021-371" in s.reason]
    assert not [s for s in lazy.skipped if "PYSEC-2019-125" in s.reason]


def test_lazy_and_eager_find_the_same_over_the_whole_snapshot(pypi_snapshot: Path, tmp_path: Path) -> None:
    _eager_and_lazy(pypi_snapshot, _packages(pypi_snapshot), tmp_path)


def test_a_bad_record_is_a_skip_when_its_package_is_looked_up(tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "BAD-1.json").write_text(json.dumps({
        "id": "BAD-1", "modified": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "demo"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "2.0"}]}]}],
    }))
    (feed / "broken.json").write_text("[1, 2, 3]")
    index = AdvisoryIndex.build_lazy([OsvFeed(feed, cache_dir=tmp_path / "cache")])
    assert [s.reason for s in index.skipped] == ["an OSV record must be an object, this is a list"]
    findings, _ = match_packages([PackageRef("pypi", "demo", "1.0", "pkg:pypi/demo@1.0")], index, distro=None)
    assert findings == []
    assert any("BAD-1" in s.reason for s in index.skipped)

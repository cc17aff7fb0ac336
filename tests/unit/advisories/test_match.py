"""Matching installed packages: the pinned image against real PyPI OSV records, Debian by source package."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from patchline._model import Distro
from patchline.advisories import AdvisoryIndex, OsvFeed, match_packages, normalize_name
from patchline.assess.model import PackageRef, Severity
from tests.unit.advisories.conftest import DATA

# What the inventory test image holds.
PINNED = {
    "urllib3": "1.26.6",
    "requests": "2.25.0",
    "Jinja2": "2.11.2",
    "MarkupSafe": "2.0.1",
    "pip": "23.0.1",
    "setuptools": "66.1.1",
    "idna": "2.10",
    "certifi": "2026.10.18",
    "chardet": "3.0.4",
}
DEBIAN_12 = Distro(id="debian", version_id="12", version_codename="bookworm")


def pypi(name: str, version: str) -> PackageRef:
    return PackageRef("pypi", name, version, f"pkg:pypi/{name.lower()}@{version}")


def deb(name: str, version: str, *, source: str | None = None, source_version: str | None = None) -> PackageRef:
    return PackageRef(
        "deb", name, version, f"pkg:deb/debian/{name}@{version}?arch=amd64&distro=debian-12",
        arch="amd64", source_name=source, source_version=source_version,
    )  # fmt: skip


def oracle(snapshot: Path, pinned: dict[str, str]) -> set[tuple[str, str]]:
    """(id, package) from the records' explicit `versions` lists, read with a plain YAML loader."""
    wanted = {normalize_name("pypi", n): v for n, v in pinned.items()}
    expected = set()
    for path in snapshot.rglob("*.yaml"):
        doc = yaml.load(path.read_bytes(), Loader=yaml.CBaseLoader)
        if doc.get("withdrawn"):
            continue
        for affected in doc.get("affected", []):
            name = normalize_name("pypi", affected["package"]["name"])
            if name in wanted and wanted[name] in affected.get("versions", []):
                expected.add((doc["id"], name))
    return expected


# What the pinned image is affected by in the whole PyPI snapshot; tests/data/advisories/osv/pypi
# holds every record of the snapshot that names one of its packages (test_shipped_records.py checks that).
PINNED_ADVISORIES = {
    ("PYSEC-2021-66", "jinja2"),
    ("PYSEC-2023-192", "urllib3"),
    ("PYSEC-2023-212", "urllib3"),
    ("PYSEC-2023-228", "pip"),
    ("PYSEC-2023-74", "requests"),
    ("PYSEC-2024-60", "idna"),
}


@pytest.fixture(scope="module")
def pypi_index(pypi_records: Path, tmp_path_factory: pytest.TempPathFactory) -> AdvisoryIndex:
    return AdvisoryIndex.build([OsvFeed(pypi_records, cache_dir=tmp_path_factory.mktemp("osv"))])


def test_pinned_image_finds_exactly_the_listed_pysec_advisories(pypi_records: Path, pypi_index: AdvisoryIndex) -> None:
    packages = [pypi(n, v) for n, v in PINNED.items()]
    findings, skips = match_packages(packages, pypi_index, distro=DEBIAN_12)
    found = {(f.advisory, normalize_name("pypi", f.package.name)) for f in findings}
    print("\nfound:", ", ".join(f"{i} ({n})" for i, n in sorted(found)))
    assert found == oracle(pypi_records, PINNED) == PINNED_ADVISORIES
    assert skips == []
    assert len(findings) == len(found)  # one finding per (advisory, package)
    by_id = {f.advisory: f for f in findings}
    assert by_id["PYSEC-2023-228"].fixed_versions == ("23.3",)  # pip: fixed in 23.3
    assert all(f.summary for f in findings)
    assert all(f.aliases == tuple(sorted(f.aliases)) for f in findings)


def test_invalid_installed_version_skips_the_package(pypi_index: AdvisoryIndex) -> None:
    packages = [pypi("urllib3", "not-a-version"), pypi("requests", "2.25.0")]
    findings, skips = match_packages(packages, pypi_index, distro=None)
    assert {f.package.name for f in findings} == {"requests"}
    assert [s.what for s in skips] == ["pkg:pypi/urllib3@not-a-version"]
    assert "pep440" in skips[0].reason


def test_match_500_packages_fast(pypi_snapshot: Path) -> None:
    """Whole-snapshot benchmark: 500 packages against all of the PyPI snapshot plus the Debian records."""
    names = sorted(p.name for p in pypi_snapshot.iterdir() if p.is_dir())[:400]
    packages = [pypi(n, "1.0.0") for n in names] + [pypi(n, v) for n, v in PINNED.items()]
    packages += [deb(f"lib{i}", "1.0-1") for i in range(500 - len(packages) - 2)]
    packages += [deb("libc6", "2.36-9+deb12u1", source="glibc"), deb("libc-bin", "2.36-9+deb12u1", source="glibc")]
    assert len(packages) == 500
    both = AdvisoryIndex.build([OsvFeed(pypi_snapshot), OsvFeed(DATA / "debian")])
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        findings, _ = match_packages(packages, both, distro=DEBIAN_12)
        timings.append(time.perf_counter() - start)
    first, warm = timings[0] * 1000, timings[-1] * 1000
    print(f"\n500 packages: {len(findings)} findings; first {first:.0f} ms, warm {warm:.0f} ms")
    assert both.advisories > 2500
    assert {f.package.name for f in findings} >= {"libc6", "libc-bin", "urllib3"}
    assert timings[-1] < 0.2


@pytest.mark.parametrize(
    ("package", "distro", "expected"),
    [
        # libc6 is built from glibc: matched by the source name the OSV record uses
        (deb("libc6", "2.36-9+deb12u1", source="glibc"), DEBIAN_12, {"DEBIAN-CVE-2023-4911", "DSA-5514-1"}),
        (deb("libc-bin", "2.36-9+deb12u2", source="glibc"), DEBIAN_12, {"DEBIAN-CVE-2023-4911", "DSA-5514-1"}),
        (deb("libc6", "2.36-9+deb12u3", source="glibc"), DEBIAN_12, set()),  # fixed
        (deb("libc6", "2.36-9+deb12u1"), DEBIAN_12, set()),  # without its source name: no glibc advisory
        (
            deb("libc6", "2.31-13+deb11u5", source="glibc"),
            Distro(id="debian", version_id="11"),
            {"DEBIAN-CVE-2023-4911"},
        ),
        (deb("libc6", "2.36-9+deb12u1", source="glibc"), Distro(id="ubuntu", version_id="22.04"), set()),
        # binNMU: the binary version differs, the source version decides
        (deb("libc6", "2.36-9+deb12u3+b1", source="glibc", source_version="2.36-9+deb12u3"), DEBIAN_12, set()),
    ],
)
def test_debian_records_match_by_source_package(package: PackageRef, distro: Distro, expected: set[str]) -> None:
    index = AdvisoryIndex.build([OsvFeed(DATA / "debian")])
    findings, skips = match_packages([package], index, distro=distro)
    assert {f.advisory for f in findings} == expected
    assert skips == []
    for f in findings:
        assert f.package == package
        assert f.fixed_versions == ("2.36-9+deb12u3",) or distro.version_id != "12"
    cve = next((f for f in findings if f.advisory == "DEBIAN-CVE-2023-4911"), None)
    if cve is not None:
        assert (cve.severity, cve.scores[0].score) == (Severity.HIGH, 7.8)  # computed from the CVSS vector


def test_empty_feed_list_is_refused() -> None:
    from patchline.errors import FeedError

    with pytest.raises(FeedError):
        AdvisoryIndex.build([])

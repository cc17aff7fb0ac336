"""The PyPI OSV records under tests/data: attributed, and (when the shared snapshot is there to compare
with) verbatim copies of it that hold every record naming their packages."""

from __future__ import annotations

from pathlib import Path

import yaml

from patchline.advisories import normalize_name
from tests.unit.advisories.test_match import PINNED, PINNED_ADVISORIES, oracle


def test_shipped_records_carry_their_source_and_licence(pypi_records: Path) -> None:
    osv = pypi_records.parents[1]
    readme = (osv / "README.md").read_text()
    assert "pypa/advisory-database" in readme and "CC-BY 4.0" in readme
    assert (osv / "pypi" / "LICENSE").read_text().startswith("Attribution 4.0 International")


def test_shipped_records_are_verbatim_and_whole_packages(pypi_records: Path, pypi_snapshot: Path) -> None:
    """Whole-snapshot check: every shipped file is byte for byte the snapshot's, and every shipped
    package has all of its snapshot records."""
    shipped = sorted(p.relative_to(pypi_records) for p in pypi_records.rglob("*") if p.is_file())
    assert shipped
    for rel in shipped:
        assert (pypi_records / rel).read_bytes() == (pypi_snapshot / rel).read_bytes(), rel
    assert (pypi_records.parent / "LICENSE").read_bytes() == (pypi_snapshot.parent / "LICENSE").read_bytes()
    packages = {rel.parts[0] for rel in shipped}
    in_snapshot = sorted(p.relative_to(pypi_snapshot) for name in packages for p in (pypi_snapshot / name).glob("*"))
    assert in_snapshot == shipped


def test_no_other_snapshot_record_names_a_shipped_package(pypi_records: Path, pypi_snapshot: Path) -> None:
    """Whole-snapshot check: the pinned image's findings are the same against the shipped records as
    against the whole snapshot, since no record outside a shipped package's folder names that package."""
    shipped = {normalize_name("pypi", p.name) for p in pypi_records.iterdir() if p.is_dir()}
    elsewhere = []
    for path in pypi_snapshot.rglob("*.yaml"):
        if normalize_name("pypi", path.parent.name) in shipped:
            continue
        doc = yaml.load(path.read_bytes(), Loader=yaml.CBaseLoader)
        names = {normalize_name("pypi", a["package"]["name"]) for a in doc.get("affected", [])}
        if names & shipped:
            elsewhere.append(path.relative_to(pypi_snapshot))
    assert elsewhere == []
    assert oracle(pypi_snapshot, PINNED) == oracle(pypi_records, PINNED) == PINNED_ADVISORIES

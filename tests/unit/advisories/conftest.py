"""Fixtures of the advisory tests: real PyPI OSV records shipped under tests/data, the whole
shared OSV snapshot (read in place, for the few whole-snapshot tests only) and a private cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "data" / "advisories"
# Verbatim copies of a few records of the shared snapshot, in its layout
# (<package>/PYSEC-*.yaml); where they come from and their licence: tests/data/advisories/osv/README.md.
PYPI_RECORDS = DATA / "osv" / "pypi" / "vulns"


def shared_osv_dir() -> Path | None:
    """``$PATCHLINE_SHARED_DATA/osv`` or ``<repo>/../shared/data/osv``, if present."""
    env = os.environ.get("PATCHLINE_SHARED_DATA")
    base = Path(env) if env else Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
    osv = (base / "osv").resolve()
    return osv if osv.is_dir() else None


@pytest.fixture(scope="session")
def pypi_records() -> Path:
    """The PyPI OSV records every test about specific advisories reads: always present."""
    assert PYPI_RECORDS.is_dir(), f"{PYPI_RECORDS} is missing from the checkout"
    return PYPI_RECORDS


@pytest.fixture(scope="session")
def pypi_snapshot() -> Path:
    """The whole shared PyPI snapshot, for tests over all of its records; skips when it is absent."""
    osv = shared_osv_dir()
    if osv is None or not (osv / "pypi" / "vulns").is_dir():
        pytest.skip(
            "whole-snapshot test: the shared PyPI OSV snapshot (../shared/data/osv/pypi, or "
            "$PATCHLINE_SHARED_DATA) is absent; the records under tests/data/advisories/osv are tested regardless"
        )
    return osv / "pypi" / "vulns"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("PATCHLINE_CACHE_DIR", str(cache))
    return cache

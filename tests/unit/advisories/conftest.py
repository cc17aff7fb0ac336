"""Fixtures of the advisory tests: the shared OSV snapshot (read in place) and a private cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "data" / "advisories"


def shared_osv_dir() -> Path | None:
    """``$PATCHLINE_SHARED_DATA/osv`` or ``<repo>/../shared/data/osv``, if present."""
    env = os.environ.get("PATCHLINE_SHARED_DATA")
    base = Path(env) if env else Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
    osv = (base / "osv").resolve()
    return osv if osv.is_dir() else None


@pytest.fixture(scope="session")
def pypi_snapshot() -> Path:
    osv = shared_osv_dir()
    if osv is None or not (osv / "pypi" / "vulns").is_dir():
        pytest.skip("the shared PyPI OSV snapshot (../shared/data/osv/pypi, or $PATCHLINE_SHARED_DATA) is absent")
    return osv / "pypi" / "vulns"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("PATCHLINE_CACHE_DIR", str(cache))
    return cache

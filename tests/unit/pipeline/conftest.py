"""Fixtures of the pipeline tests: a real SQLite store in a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from patchline.store import Store, open_store


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "p.db"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{db}") as s:
        yield s

"""The SQLite store is private: the file 0600 and its -wal/-shm alike, a directory patchline makes 0700."""

from __future__ import annotations

import stat
from pathlib import Path

from patchline.store import open_store


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_store_is_private(tmp_path: Path) -> None:
    db = tmp_path / "new-dir" / "patchline.db"
    with open_store(f"sqlite:///{db}") as store:
        store.counts()
        assert _mode(db) == 0o600
        for extra in (db.with_name("patchline.db-wal"), db.with_name("patchline.db-shm")):
            if extra.exists():
                assert _mode(extra) == 0o600, extra
    assert _mode(db.parent) == 0o700


def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    with open_store(f"sqlite:///{shared / 'p.db'}"):
        pass
    assert _mode(shared) == 0o755 and _mode(shared / "p.db") == 0o600

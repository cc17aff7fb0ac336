"""Interned package names and versions: a fleet repeats a few thousand of each millions of times."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, select, tuple_

from patchline.errors import StoreError
from patchline.store._schema import PackageName, Version
from patchline.store._sql import chunks, mapping, upsert


class Interner:
    """The ids of interned names and versions, cached once the transaction that saw them has committed.

    Writers pass a ``new`` dict through their transaction; :meth:`commit` takes it into the cache afterwards,
    so a rolled-back id is never cached.
    """

    def __init__(self) -> None:
        self._names: dict[tuple[str, str], int] = {}
        self._versions: dict[str, int] = {}

    def names(self, conn: Connection, pairs: Iterable[tuple[str, str]], new: dict[Any, int]) -> dict[
            tuple[str, str], int]:
        wanted = sorted(set(pairs))
        out = {p: self._names[p] for p in wanted if p in self._names}
        missing = [p for p in wanted if p not in out]
        for _attempt in range(2):
            if not missing:
                break
            for chunk in chunks(missing):
                rows = conn.execute(select(PackageName.id, PackageName.ecosystem, PackageName.name)
                                    .where(tuple_(PackageName.ecosystem, PackageName.name).in_(chunk)))
                for ident, eco, name in rows:
                    out[(eco, name)] = ident
                    self._names[(eco, name)] = ident  # committed rows only: safe to cache
            missing = [p for p in missing if p not in out]
            if missing:
                for chunk in chunks(missing):
                    conn.execute(upsert(conn, PackageName).values(
                        [{"ecosystem": e, "name": n} for e, n in chunk]).on_conflict_do_nothing())
                for chunk in chunks(missing):
                    rows = conn.execute(select(PackageName.id, PackageName.ecosystem, PackageName.name)
                                        .where(tuple_(PackageName.ecosystem, PackageName.name).in_(chunk)))
                    for ident, eco, name in rows:
                        out[(eco, name)] = ident
                        new[("n", eco, name)] = ident
                missing = [p for p in missing if p not in out]
        if missing:
            raise StoreError(f"could not intern {len(missing)} package names (first: {missing[0]})")
        return out

    def versions(self, conn: Connection, values: Iterable[str], new: dict[Any, int]) -> dict[str, int]:
        wanted = sorted(set(values))
        out = {v: self._versions[v] for v in wanted if v in self._versions}
        missing = [v for v in wanted if v not in out]
        if missing:
            for chunk in chunks(missing):
                rows = conn.execute(select(Version.id, Version.version).where(Version.version.in_(chunk)))
                for ident, version in rows:
                    out[version] = ident
                    self._versions[version] = ident
            missing = [v for v in missing if v not in out]
        if missing:
            for chunk in chunks(missing):
                conn.execute(upsert(conn, Version).values([{"version": v} for v in chunk]).on_conflict_do_nothing())
            for chunk in chunks(missing):
                rows = conn.execute(select(Version.id, Version.version).where(Version.version.in_(chunk)))
                for ident, version in rows:
                    out[version] = ident
                    new[("v", version)] = ident
        return out

    def commit(self, new: Mapping[Any, int]) -> None:
        for key, ident in new.items():
            if key[0] == "n":
                self._names[(key[1], key[2])] = ident
            else:
                self._versions[key[1]] = ident


def name_rows(conn: Connection, ids: set[int]) -> dict[int, tuple[str, str]]:
    """name id -> (ecosystem, name)."""
    out: dict[int, tuple[str, str]] = {}
    for chunk in chunks(sorted(ids)):
        for ident, eco, name in conn.execute(select(PackageName.id, PackageName.ecosystem, PackageName.name)
                                             .where(PackageName.id.in_(chunk))):
            out[ident] = (eco, name)
    return out


def version_rows(conn: Connection, ids: set[int]) -> dict[int, str]:
    """version id -> version."""
    out: dict[int, str] = {}
    for chunk in chunks(sorted(ids)):
        out.update(mapping(conn.execute(select(Version.id, Version.version).where(Version.id.in_(chunk)))))
    return out

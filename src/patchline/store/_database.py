"""The one database every aggregate of the store works on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from patchline.store import _engine
from patchline.store._interning import Interner

T = TypeVar("T")


class Database:
    """The engine, its write transactions (retried when PostgreSQL picks one as a deadlock victim) and the
    interned ids they share. Each aggregate gets the same one."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self.interner = Interner()

    def write(self, work: Callable[[Connection, dict[Any, int]], T]) -> T:
        """Run ``work(conn, new_interned)`` in a write transaction; cache interned rows once committed."""
        new: dict[Any, int] = {}

        def attempt(conn: Connection) -> T:
            new.clear()
            return work(conn, new)

        result = _engine.run_write(self.engine, attempt)
        self.interner.commit(new)
        return result

    def read(self) -> Connection:
        return self.engine.connect()

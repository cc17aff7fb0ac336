"""What every aggregate's SQL needs: bounded IN lists, upserts on both databases, timestamps in UTC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, overload

from sqlalchemy import Connection, String, type_coerce
from sqlalchemy.dialects import postgresql, sqlite

from patchline import _clock

CHUNK = 500  # bound parameters per IN (...) list: SQLite allows 32766, keep statements small anyway


def utcnow() -> dt.datetime:
    return _clock.now()


@overload
def utc(value: dt.datetime) -> dt.datetime: ...
@overload
def utc(value: dt.datetime | None) -> dt.datetime | None: ...
def utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def mapping(result: Any) -> dict[Any, Any]:
    """A two-column result as a dict (``dict(result)`` would take the Result for a mapping)."""
    return {key: value for key, value in result}


def upsert(conn: Connection, table: Any) -> Any:
    """An INSERT that can say ON CONFLICT on both databases."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def raw_time(column: Any) -> Any:
    """A timestamp column read as the driver gives it: SQLAlchemy's SQLite parser costs microseconds a value."""
    return type_coerce(column, String).label(column.key)


def as_time(value: object) -> dt.datetime:
    """A value read through :func:`raw_time` as an aware datetime."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)

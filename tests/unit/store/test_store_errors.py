"""A store error shows what failed, never a password or a value bound to the statement."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from patchline.errors import StoreError
from patchline.store import open_store
from patchline.store._engine import make_engine, run_write, translate

SECRET = "s3cret-bound-value"
PASSWORD = "hunter2-pw"


def _shown(error: StoreError) -> str:
    """Everything the CLI prints of it with -vv."""
    return f"{error}\n{error.detail}\n{error.__cause__ or ''}"


def test_a_failed_write_shows_neither_its_values_nor_its_parameters(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT CHECK (length(value) < 5))"))

    def insert(conn: Connection) -> None:
        conn.execute(text("INSERT INTO secrets (name, value) VALUES (:name, :value)"),
                     {"name": "api", "value": SECRET})

    with pytest.raises(StoreError) as caught:
        run_write(engine, insert)
    error = caught.value
    assert str(error) == "writing to the store: CHECK constraint failed: length(value) < 5"
    assert error.detail == ("sqlite3.IntegrityError\n"
                            "SQL: INSERT INTO secrets (name, value) VALUES (?, ?)")
    assert SECRET not in _shown(error) and error.__cause__ is None
    engine.dispose()


def test_a_database_error_of_any_engine_hides_parameters_from_its_own_text(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn, pytest.raises(DBAPIError) as caught:
        conn.execute(text("SELECT * FROM nowhere WHERE v = :v"), {"v": SECRET})
    assert SECRET not in str(caught.value)  # even a read's error, raised as it is, in a traceback
    engine.dispose()


class _PgError(Exception):
    """What psycopg raises: a first line, then PostgreSQL's DETAIL with the row's values."""

    sqlstate = "23505"


@pytest.mark.parametrize("message", [
    f'duplicate key value violates unique constraint "secrets_pkey"\nDETAIL:  Key (name)=({SECRET}) already exists.',
    f'invalid input syntax for type integer: "{SECRET}"\nLINE 1: ...',
    f"connection to server failed: password={PASSWORD} is wrong",
    f"cannot connect to postgresql://u:{PASSWORD}@db.example/fleet",
])
def test_a_postgresql_error_is_translated_without_values_or_passwords(message: str) -> None:
    exc = IntegrityError("INSERT INTO secrets (name) VALUES (%(name)s)", {"name": SECRET}, _PgError(message))
    error = translate(exc, "writing to the store", secrets=[PASSWORD])
    assert error.message.startswith("writing to the store: ")
    assert error.detail == ("tests.unit.store.test_store_errors._PgError (SQLSTATE 23505)\n"
                            "SQL: INSERT INTO secrets (name) VALUES (%(name)s)")
    assert SECRET not in _shown(error) and PASSWORD not in _shown(error) and "DETAIL" not in _shown(error)


def test_opening_a_store_never_shows_the_urls_password(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as caught:
        open_store(f":://u:{PASSWORD}@db.example/fleet")
    assert "not a database URL" in str(caught.value) and PASSWORD not in _shown(caught.value)
    with pytest.raises(StoreError) as caught:
        open_store(f"postgresql+psycopg://u:{PASSWORD}@db.example:port/fleet")  # not a number: not parsed
    assert "not a database URL" in str(caught.value) and PASSWORD not in _shown(caught.value)

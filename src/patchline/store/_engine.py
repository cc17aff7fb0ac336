"""Connecting to the store's database and migrating it: SQLite by default, PostgreSQL by URL.

SQLite runs in WAL mode (readers never wait for a writer) and every write
transaction starts with ``BEGIN IMMEDIATE``: two writers queue on the database
lock instead of both reading, then failing to upgrade to a write lock. On
PostgreSQL, writers intern names in sorted order (so they lock rows in the same
order) and a transaction that still loses a deadlock is retried.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from patchline._paths import data_home
from patchline._redact import redact, redact_passwords, secret_strings
from patchline.errors import StoreError

T = TypeVar("T")

_WRITE = "patchline_write"
_MIGRATION_LOCK = 0x7061_7463  # pg_advisory_xact_lock key: "patc"
_RETRIES = 5


def default_db_url() -> str:
    """``$PATCHLINE_DB``, else a SQLite file under ``$XDG_DATA_HOME/patchline``."""
    if env := os.environ.get("PATCHLINE_DB"):
        return as_url(env)
    return f"sqlite:///{data_home() / 'patchline.db'}"


def as_url(value: str) -> str:
    """A database URL; a bare path means a SQLite file."""
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().absolute()}"


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise StoreError(f"not a database URL: {redact_passwords(url)!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            try:
                _private_file(Path(database))
            except OSError as exc:
                raise StoreError(f"cannot create the store's directory for {database}: {exc}") from exc
        engine = create_engine(url, connect_args={"timeout": 60}, hide_parameters=True)
        _sqlite_setup(engine)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() not in ("psycopg", "psycopg2"):
            # psycopg 3 is the driver patchline installs; a bare postgresql:// would look for psycopg2.
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True, hide_parameters=True)
    raise StoreError(f"unsupported database {backend!r}: use sqlite:///PATH or postgresql+psycopg://...")


def _private_file(path: Path) -> None:
    """Create the store's file 0600 (in a directory made 0700 when patchline makes it): the store names every
    image, workload and rollout, and whoever can write it steers what patchline runs. SQLite gives its -wal and
    -shm files the database's permissions. An existing file or directory is left as its owner set it."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" hook below issues BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction (``BEGIN IMMEDIATE`` on SQLite)."""
    with engine.execution_options(**{_WRITE: True}).begin() as conn:
        yield conn


def _retryable(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in ("40P01", "40001")  # deadlock_detected, serialization_failure


def run_write(engine: Engine, work: Callable[[Connection], T]) -> T:
    """Run ``work`` in a write transaction, retrying it when PostgreSQL picks it as a deadlock victim."""
    for attempt in range(_RETRIES):
        try:
            with write_transaction(engine) as conn:
                return work(conn)
        except DBAPIError as exc:
            if attempt + 1 < _RETRIES and _retryable(exc):
                time.sleep(0.05 * (attempt + 1))
                continue
            raise translate(exc, "writing to the store", secrets=url_passwords(engine)) from None
    raise AssertionError("unreachable")


def translate(exc: DBAPIError, what: str, *, secrets: Iterable[str] = ()) -> StoreError:
    """``exc`` as a StoreError that shows no password and no bound value: the driver's first line with every
    bound value and ``secrets`` blanked out, and the statement (placeholders, not values) in the detail.

    Raise it ``from None``: the DBAPIError's own text carries the bound values and PostgreSQL's DETAIL lines
    (a failing row, a duplicate key's value).
    """
    orig = exc.orig
    lines = str(orig).strip().splitlines() if orig is not None else []
    first = lines[0] if lines else type(exc).__name__
    message = redact_passwords(redact(first, [*secret_strings(exc.params), *secrets]))
    if isinstance(exc, OperationalError) and "locked" in message:
        return StoreError(f"{what}: the SQLite database stayed locked by another patchline for 60 s")
    kind = type(orig if orig is not None else exc)
    code = getattr(orig, "sqlstate", None)
    detail = f"{kind.__module__}.{kind.__qualname__}" + (f" (SQLSTATE {code})" if code else "")
    if exc.statement:
        detail += f"\nSQL: {exc.statement}"
    return StoreError(f"{what}: {message}", detail=detail)


def url_passwords(engine: Engine) -> list[str]:
    return [engine.url.password] if engine.url.password else []


# -- migrations ------------------------------------------------------------------

def _alembic_config(conn: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "patchline.store:migrations")
    config.attributes["connection"] = conn
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from patchline.store import migrations

    script = ScriptDirectory(str(Path(migrations.__file__).parent))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision``; concurrent callers wait for each other, then find nothing to do."""
    from alembic import command

    try:
        with write_transaction(engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
            command.upgrade(_alembic_config(conn), revision)
    except DBAPIError as exc:
        raise translate(exc, "migrating the store", secrets=url_passwords(engine)) from None

"""The PostgreSQL fixtures of tests/support/postgres.py start a real, usable server."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests.support.postgres import POSTGRES_URL_ENV, RunningPostgres

pytestmark = pytest.mark.integration


def test_server_answers_over_tcp_with_password(postgres_server: RunningPostgres) -> None:
    url = postgres_server.url(postgres_server.admin_dbname)
    assert make_url(url).drivername == "postgresql+psycopg"
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version()")).scalar_one()
            assert "PostgreSQL" in version
            if not postgres_server.external:
                assert conn.execute(text("SHOW listen_addresses")).scalar_one() == "127.0.0.1"
                assert conn.execute(text("SELECT current_setting('port')::int")).scalar_one() == postgres_server.port
    finally:
        engine.dispose()


def test_wrong_password_is_refused(postgres_server: RunningPostgres) -> None:
    url = make_url(postgres_server.url(postgres_server.admin_dbname)).set(password="wrong")
    engine = create_engine(url)
    try:
        with pytest.raises(Exception, match="password authentication failed"), engine.connect():
            pass
    finally:
        engine.dispose()


def test_fresh_databases_are_empty_and_isolated(postgres_server: RunningPostgres) -> None:
    first = postgres_server.create_database()
    second = postgres_server.create_database()
    engines = [create_engine(first), create_engine(second)]
    try:
        with engines[0].begin() as conn:
            conn.execute(text("CREATE TABLE images (digest text PRIMARY KEY, name text NOT NULL)"))
            conn.execute(text("INSERT INTO images VALUES ('sha256:aa', 'débian ✓')"))
        with engines[0].connect() as conn:
            assert conn.execute(text("SELECT name FROM images")).scalar_one() == "débian ✓"
        assert inspect(engines[1]).get_table_names() == []
    finally:
        for engine in engines:
            engine.dispose()
        for url in (first, second):
            postgres_server.drop_database(make_url(url).database or "")
    with postgres_server.connect() as conn:
        names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
    assert not names & {make_url(first).database, make_url(second).database}


def test_postgres_db_fixture_gives_an_empty_database(postgres_db: str) -> None:
    engine = create_engine(postgres_db)
    try:
        assert inspect(engine).get_table_names() == []
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (id integer)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as conn:  # an open session: the fixture drops WITH (FORCE)
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
    finally:
        engine.dispose()


def test_two_postgres_dbs_differ(postgres_db: str, postgres_server: RunningPostgres) -> None:
    other = postgres_server.create_database()
    try:
        assert make_url(other).database != make_url(postgres_db).database
    finally:
        postgres_server.drop_database(make_url(other).database or "")


def test_store_url_works(store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
        assert engine.dialect.name in {"sqlite", "postgresql"}
    finally:
        engine.dispose()


def test_kill_and_start_recover(postgres_server: RunningPostgres) -> None:
    if postgres_server.external:
        pytest.skip(f"does not kill the external server of {POSTGRES_URL_ENV}")
    url = postgres_server.create_database()
    try:
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE kept (id integer)"))
            conn.execute(text("INSERT INTO kept VALUES (7)"))
        engine.dispose()
        postgres_server.kill()
        assert not postgres_server.is_running()
        postgres_server.start()
        with engine.connect() as conn:
            assert conn.execute(text("SELECT id FROM kept")).scalar_one() == 7
        engine.dispose()
    finally:
        postgres_server.drop_database(make_url(url).database or "")

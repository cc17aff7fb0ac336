"""Pure parts of the store, and the fleet CLI on a SQLite store (no server needed)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchline.advisories import OsvFeed
from patchline.cli import app
from patchline.errors import StoreError
from patchline.oci import split_reference
from patchline.store import chain_ids, image_scopes, open_store
from patchline.store._engine import as_url, default_db_url
from patchline.store._images import _parse_time
from tests.support.fleetdata import deb, image, osv_record, write_record


def test_chain_ids_follow_the_image_spec() -> None:
    a, b, c = ("sha256:" + x * 64 for x in "abc")
    first = chain_ids([a, b, c])
    assert first[0] == a
    assert first[1] == "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert first[2] == "sha256:" + hashlib.sha256(f"{first[1]} {c}".encode()).hexdigest()
    assert chain_ids([]) == []


@pytest.mark.parametrize(("distro", "version", "codename", "expected"), [
    ("debian", "12", "bookworm", {"debian", "debian:12", "debian:bookworm"}),
    ("alpine", "3.19.1", None, {"alpine", "alpine:3", "alpine:3.19", "alpine:3.19.1"}),
    ("Ubuntu", "22.04", "jammy", {"ubuntu", "ubuntu:22", "ubuntu:22.04", "ubuntu:jammy"}),
    (None, None, None, set()),
])
def test_image_scopes(distro: str | None, version: str | None, codename: str | None, expected: set[str]) -> None:
    assert image_scopes(distro, version, codename) == expected


@pytest.mark.parametrize(("reference", "expected"), [
    ("localhost/app:1.0", ("localhost/app", "1.0", None)),
    ("127.0.0.1:5000/app", ("127.0.0.1:5000/app", "latest", None)),
    ("127.0.0.1:5000/app:v2", ("127.0.0.1:5000/app", "v2", None)),
    ("repo/app@sha256:" + "a" * 64, ("repo/app", "", "sha256:" + "a" * 64)),
])
def test_split_reference(reference: str, expected: tuple[str, str, str | None]) -> None:
    assert split_reference(reference) == expected


def test_parse_time_takes_go_nanoseconds_and_rejects_junk() -> None:
    assert _parse_time("2026-11-01T10:00:00.123456789Z") == dt.datetime(2026, 11, 1, 10, 0, 0, 123456, tzinfo=dt.UTC)
    assert _parse_time("2026-11-01T10:00:00+02:00") == dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
    assert _parse_time("yesterday") is None and _parse_time(None) is None


def test_db_urls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert as_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert as_url(str(tmp_path / "x.db")) == f"sqlite:///{tmp_path / 'x.db'}"
    monkeypatch.setenv("PATCHLINE_DB", str(tmp_path / "env.db"))
    assert default_db_url() == f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.delenv("PATCHLINE_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_db_url() == f"sqlite:///{tmp_path / 'data' / 'patchline' / 'patchline.db'}"


def test_bad_database_urls_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unsupported database 'mysql'"):
        open_store("mysql://u@h/db")
    with pytest.raises(StoreError, match="not a database URL"):
        open_store("::::://")
    (tmp_path / "not-a-db").write_text("hello, this is not SQLite" * 100)
    with pytest.raises(StoreError, match="opening the store"):
        open_store(f"sqlite:///{tmp_path / 'not-a-db'}")


def test_an_old_schema_is_refused_without_migration(tmp_path: Path) -> None:
    from patchline.store import upgrade
    from patchline.store._engine import make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade(engine, "0001")
    engine.dispose()
    with pytest.raises(StoreError, match=r"schema 0001.*patchline db upgrade"):
        open_store(url, migrate=False)
    open_store(url).close()  # migrates
    open_store(url, migrate=False).close()


def _fleet_db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    with open_store(url) as store:
        store.record_image(image("app", ["b0", "a1"], [deb("liblzma5", "5.4.1-0.2", source="xz-utils"),
                                                       deb("curl", "7.88.1-10", layer=1)]),
                           refs=[("localhost/app", "1", None)])
        feed = tmp_path / "osv"
        write_record(feed, osv_record("DSA-9-1", ecosystem="Debian:12", name="xz-utils", fixed="5.4.1-1",
                                      aliases=["CVE-2024-9"], severity="high", summary="xz [bad] things"))
        store.refresh_feed(OsvFeed(feed))
    return url


def test_cli_where_fleet_advisory(tmp_path: Path) -> None:
    url = _fleet_db(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["where", "liblzma5", "--db", url, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "patchline/where/v1"
    assert [(h["name"], h["version"], h["source_name"]) for h in doc["hits"]] == [
        ("liblzma5", "5.4.1-0.2", "xz-utils")]
    result = runner.invoke(app, ["where", "liblzma5", "--db", url, "--version-below", "5.4.1-0.1"])
    assert result.exit_code == 1 and "0 match(es)" in result.stdout  # nothing found: exit 1, like grep

    result = runner.invoke(app, ["advisory", "CVE-2024-9", "--db", url])
    assert result.exit_code == 0, result.output
    assert "DSA-9-1" in result.stdout and "xz [bad] things" in result.stdout and "localhost/app:1" in result.stdout
    assert runner.invoke(app, ["advisory", "CVE-0000-0", "--db", url]).exit_code == 1

    result = runner.invoke(app, ["fleet", "--db", url, "--json", "--stale", "2w"])
    assert result.exit_code == 0, result.output
    fleet = json.loads(result.stdout)["fleet"]
    assert fleet["images_by_severity"] == {"high": 1} and fleet["stale_days"] == 14
    result = runner.invoke(app, ["fleet", "--db", url, "--stale", "soon"])
    assert result.exit_code == 2 and "--stale takes days" in result.stderr


def test_cli_refresh_needs_something_to_refresh(tmp_path: Path) -> None:
    (tmp_path / "patchline.toml").write_text("[updates]\nenabled = false\n")
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "patchline.toml"), "refresh", "--db",
                                      f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2 and "nothing to refresh" in result.stderr


def test_the_migrations_build_exactly_the_models(tmp_path: Path) -> None:
    """Alembic's autogenerate finds nothing to add or drop after every migration ran."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from patchline.store._schema import Base

    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        store.close()
    assert diff == []

"""The update refresh over a real SQLite store: images patchline cannot check are unknown in the fleet view,
never clean, until an assessment that could check them clears it. No network: none of these images has an
update route, so no source is read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from patchline._model import Distro, Ecosystem, Inventory, Package, Purl
from patchline.assess import AssessOptions
from patchline.fleet._refresh import refresh_updates
from patchline.sbom import load_inventory_json
from patchline.store import Store, open_store

DATA = Path(__file__).resolve().parents[2] / "data" / "sbom" / "debian-app" / "inventory.json"
NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'p.db'}") as s:
        yield s


def variant(name: str, *, distro: Distro | None, packages: tuple[Package, ...]) -> Inventory:
    inv = load_inventory_json(DATA.read_text())
    digest = "sha256:" + name.encode().hex().ljust(64, "0")[:64]
    return replace(inv, image=replace(inv.image, config_digest=digest, reference=f"localhost/{name}:1"),
                   distro=distro, packages=packages, system_files=())


def test_images_without_an_update_route_are_unknown_in_the_fleet(store: Store) -> None:
    busybox = variant("busybox", distro=None, packages=())
    musl = Package(ecosystem=Ecosystem.APK, name="musl", version="1.2.5-r0", purl=Purl("pkg:apk/alpine/musl@1.2.5-r0"),
                   introduced_in=0, changed_in=0, locations=())
    alpine = variant("alpine", distro=Distro(id="alpine", version_id="3.20.1", pretty_name="Alpine Linux v3.20"),
                     packages=(musl,))
    for inv in (busybox, alpine):
        store.record_image(inv, refs=[(inv.image.reference.rsplit(":", 1)[0], "1", None)], seen_at=NOW)

    refreshed = refresh_updates(store, AssessOptions(changelogs=False))
    assert dict(refreshed.unknown) == {
        busybox.image.config_digest: "no package database of the operating system (dpkg, rpm, apk) found: patchline "
                                     "cannot tell what is installed, so it cannot tell which updates are missing",
        alpine.image.config_digest: "patchline has no update route for Alpine Linux v3.20 (apk packages): its "
                                    "pending updates cannot be checked"}
    summary = store.fleet(now=NOW)
    assert summary.images_by_severity == {"cannot-assess": 2}  # not "clean"
    assert {e.image.config_digest: bool(e.image.unknown) for e in summary.images} == {
        busybox.image.config_digest: True, alpine.image.config_digest: True}

    # An assessment that could check the image (here: found nothing pending) clears it.
    store.record_pending(busybox.image.config_digest, [], revision="r1")
    assert store.fleet(now=NOW).images_by_severity == {"cannot-assess": 1, "clean": 1}


def test_the_fleet_cli_lists_what_it_could_not_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from patchline.cli import app

    monkeypatch.delenv("PATCHLINE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "p.db"
    with open_store(f"sqlite:///{db}") as s:
        s.record_image(variant("busybox", distro=None, packages=()), seen_at=NOW)
        refresh_updates(s, AssessOptions(changelogs=False))
    runner = CliRunner()
    table = runner.invoke(app, ["fleet", "--db", str(db)], terminal_width=200)
    assert table.exit_code == 0, table.output
    assert "cannot-assess" in table.stdout and "cannot assess" in table.stdout
    assert "1 image(s) patchline could not check (unknown, not clean)" in table.stdout
    doc = json.loads(runner.invoke(app, ["fleet", "--db", str(db), "--json"]).stdout)
    assert doc["fleet"]["images_by_severity"] == {"cannot-assess": 1}
    assert "no package database" in doc["fleet"]["images"][0]["image"]["unknown"]


def test_the_report_lists_what_could_not_be_assessed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from patchline.cli import app
    from patchline.pipeline._report import patch_report

    monkeypatch.delenv("PATCHLINE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "p.db"
    with open_store(f"sqlite:///{db}") as s:
        s.record_image(variant("busybox", distro=None, packages=()), refs=[("localhost/busybox", "1", None)],
                       seen_at=NOW)
        refresh_updates(s, AssessOptions(changelogs=False))
        [c] = patch_report(s, now=NOW).cannot_assess
    assert (c.image, c.workloads) == ("localhost/busybox:1", 0) and "no package database" in c.why
    runner = CliRunner()
    table = runner.invoke(app, ["report", "--db", str(db)], terminal_width=200)
    assert table.exit_code == 0 and "cannot assess (unknown, not clean)" in table.stdout, table.output
    doc = json.loads(runner.invoke(app, ["report", "--db", str(db), "--json"]).stdout)
    assert doc["cannot_assess"][0]["image"] == "localhost/busybox:1"

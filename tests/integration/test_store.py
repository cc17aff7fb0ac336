"""The fleet store on SQLite and on a real PostgreSQL: the same tests, parametrized by ``store_url``."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from patchline.advisories import OsvFeed
from patchline.assess.model import PackageRef, PendingUpdate, Severity
from patchline.fleet.interface import Workload
from patchline.store import Store, head_revision, open_store, upgrade
from patchline.store._engine import make_engine
from tests.support.fleetdata import deb, digest, image, osv_record, pypi, write_record

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as s:
        yield s


def base_packages() -> list:  # type: ignore[type-arg]
    return [
        deb("liblzma5", "5.4.1-0.2", source="xz-utils"),
        deb("libc6", "2.36-9+deb12u7", source="glibc"),
        deb("bash", "5.2.15-2+b2", source="bash", source_version="5.2.15-2"),
    ]


def fleet(store: Store) -> None:
    """base (2 layers) <- app (3 layers, adds curl and a Python package); other: its own base, old liblzma5 too."""
    store.record_image(image("base", ["b0", "b1"], base_packages()), refs=[("localhost/base", "12", None)],
                       seen_at=NOW)
    store.record_image(image("app", ["b0", "b1", "a2"], [*base_packages(), deb("curl", "7.88.1-10+deb12u5", layer=2),
                                                        pypi("Jinja2", "3.1.2", layer=2)]),
                       refs=[("localhost/app", "1.0", digest("manifest:app"))], seen_at=NOW)
    store.record_image(image("other", ["o0"], [deb("liblzma5", "5.4.1-1", source="xz-utils"),
                                               deb("zlib1g", "1:1.2.13.dfsg-1", source="zlib")]),
                       refs=[("localhost/other", "latest", None)], seen_at=NOW)


def record_zlib_pending(store: Store) -> None:
    """other's zlib1g has a pending security update (revision r1)."""
    pkg = PackageRef(ecosystem="deb", name="zlib1g", version="1:1.2.13.dfsg-1", purl="pkg:deb/debian/zlib1g")
    store.record_pending(digest("config:other"), [PendingUpdate(package=pkg, candidate="1:1.2.13.dfsg-1+deb12u1",
                                                                suite="bookworm-security", source_name="zlib",
                                                                source_version="1:1.2.13.dfsg-1+deb12u1",
                                                                cves=("CVE-2023-45853",))], revision="r1")


def test_record_image_is_idempotent_and_interns_names(store: Store) -> None:
    fleet(store)
    again = store.record_image(image("base", ["b0", "b1"], base_packages()), refs=[("localhost/base", "latest", None)])
    assert not again.new and again.packages == 3
    counts = store.counts()
    assert counts["images"] == 3
    assert counts["image_packages"] == 3 + 5 + 2
    # liblzma5, libc6, bash, curl, jinja2, zlib1g + sources xz-utils, glibc, zlib (bash and curl are their own)
    assert counts["package_names"] == 9
    assert counts["image_refs"] == 4
    assert store.inventory(digest("config:app")) is not None


def test_base_image_found_by_layers_in_either_order(store: Store) -> None:
    app = store.record_image(image("app", ["b0", "b1", "a2"], base_packages()))
    assert app.base is None
    store.record_image(image("base", ["b0", "b1"], base_packages()))
    root = store.record_image(image("root", ["b0"], []))
    rows = {e.image.config_digest: e for e in store.fleet().images}
    assert rows[digest("config:app")].base == digest("config:base")  # the longest prefix wins over root
    assert rows[digest("config:base")].base == digest("config:root")
    assert root.base is None


def test_where_by_binary_and_source_name_with_version_below(store: Store) -> None:
    fleet(store)
    hits = store.where("liblzma5")
    assert {(h.image.refs[0], h.version) for h in hits} == {
        ("localhost/base:12", "5.4.1-0.2"), ("localhost/app:1.0", "5.4.1-0.2"), ("localhost/other:latest", "5.4.1-1")}
    below = store.where("liblzma5", version_below="5.4.1-1")
    assert {h.image.refs[0] for h in below} == {"localhost/base:12", "localhost/app:1.0"}
    # Epochs and tildes compare as dpkg does.
    assert store.where("zlib1g", version_below="1:1.2.13.dfsg-2")
    assert not store.where("zlib1g", version_below="1.9")
    by_source = store.where("xz-utils")
    assert {h.name for h in by_source} == {"liblzma5"} and all(h.source_name == "xz-utils" for h in by_source)
    curl = store.where("curl")
    assert len(curl) == 1 and curl[0].introduced_in == 2 and curl[0].introduced_diff_id == digest("layer:a2")
    assert [h.name for h in store.where("jinja2", ecosystem="pypi")] == ["jinja2"]  # PEP 503 name
    assert store.where("jinja2", ecosystem="deb") == []
    assert store.where("no-such-package") == []


def test_new_advisory_changes_findings_of_exactly_the_images_holding_it(store: Store, tmp_path: Path) -> None:
    fleet(store)
    feed = tmp_path / "osv"
    write_record(feed, osv_record("DSA-0001-1", ecosystem="Debian:12", name="curl", fixed="7.88.1-10+deb12u8"))
    first = store.refresh_feed(OsvFeed(feed))
    assert (first.advisories_added, first.findings_added, first.images_affected) == (1, 1, 1)

    write_record(feed, osv_record("DSA-0002-1", ecosystem="Debian:12", name="xz-utils", fixed="5.4.1-1",
                                  aliases=["CVE-2024-3094"], severity="high", modified="2026-11-02T00:00:00Z"))
    second = store.refresh_feed(OsvFeed(feed))
    assert (second.advisories_added, second.advisories_unchanged) == (1, 1)
    assert second.packages_evaluated == 2  # xz-utils at 5.4.1-0.2 and at 5.4.1-1: nothing else was looked at
    assert second.findings_added == 1 and second.images_affected == 2
    assert second.previous_revision == first.revision and second.revision == "2026-11-02T00:00:00Z"

    report = store.advisory("CVE-2024-3094")  # by alias
    assert report.id == "DSA-0002-1"
    assert {h.image.refs[0] for h in report.hits} == {"localhost/base:12", "localhost/app:1.0"}
    assert all(h.fixed_versions == ("5.4.1-1",) and h.fix_available for h in report.hits)
    assert all(h.severity == Severity.HIGH and h.feed_revision == second.revision for h in report.hits)

    unchanged = store.refresh_feed(OsvFeed(feed))
    assert (unchanged.advisories_unchanged, unchanged.packages_evaluated, unchanged.findings_added) == (2, 0, 0)


def test_changed_and_removed_advisories_replace_their_findings(store: Store, tmp_path: Path) -> None:
    fleet(store)
    feed = tmp_path / "osv"
    path = write_record(feed, osv_record("DSA-0003-1", ecosystem="Debian:12", name="xz-utils", fixed="5.4.1-1"))
    store.refresh_feed(OsvFeed(feed))
    assert len(store.advisory("DSA-0003-1").hits) == 2
    # The fix moves past 5.4.1-1: "other" is affected now too.
    write_record(feed, osv_record("DSA-0003-1", ecosystem="Debian:12", name="xz-utils", fixed="5.4.1-2",
                                  modified="2026-11-05T00:00:00Z"))
    changed = store.refresh_feed(OsvFeed(feed))
    assert (changed.advisories_changed, changed.findings_removed, changed.findings_added) == (1, 1, 2)
    assert len(store.advisory("DSA-0003-1").hits) == 3
    path.unlink()
    write_record(feed, osv_record("DSA-0004-1", ecosystem="Debian:12", name="zlib", fixed=None))
    removed = store.refresh_feed(OsvFeed(feed))
    assert removed.advisories_removed == 1 and removed.findings_removed == 2
    assert store.advisory("DSA-0003-1").known is False
    zlib = store.advisory("DSA-0004-1")
    assert [h.fix_available for h in zlib.hits] == [False]  # no fixed version, no pending update


def test_scope_and_ecosystem_are_respected(store: Store, tmp_path: Path) -> None:
    fleet(store)
    feed = tmp_path / "osv"
    write_record(feed, osv_record("DSA-OLD", ecosystem="Debian:11", name="xz-utils", fixed="9"))
    write_record(feed, osv_record("DEBIAN-ALL", ecosystem="Debian", name="glibc", fixed="9"))
    write_record(feed, osv_record("PYSEC-1", ecosystem="PyPI", name="jinja2", fixed="3.1.3"))
    write_record(feed, osv_record("ALPINE-1", ecosystem="Alpine:v3.19", name="xz", fixed="9"))
    store.refresh_feed(OsvFeed(feed))
    assert store.advisory("DSA-OLD").hits == ()  # bookworm images are not Debian 11
    assert {h.image.refs[0] for h in store.advisory("DEBIAN-ALL").hits} == {"localhost/base:12", "localhost/app:1.0"}
    assert [(h.package, h.version) for h in store.advisory("PYSEC-1").hits] == [("jinja2", "3.1.2")]
    assert store.advisory("ALPINE-1").hits == ()


def test_a_malformed_record_is_skipped_and_the_rest_applied(store: Store, tmp_path: Path) -> None:
    fleet(store)
    feed = tmp_path / "osv"
    write_record(feed, osv_record("DSA-0005-1", ecosystem="Debian:12", name="curl", fixed="7.88.1-10+deb12u8"))
    (feed / "broken.json").write_text("{not json")
    (feed / "noid.json").write_text(json.dumps({"affected": []}))
    result = store.refresh_feed(OsvFeed(feed))
    assert result.findings_added == 1
    assert {Path(what).name for what, _ in result.skipped} == {"broken.json", "noid.json"}


def test_new_image_is_assessed_against_stored_advisories(store: Store, tmp_path: Path) -> None:
    feed = tmp_path / "osv"
    write_record(feed, osv_record("DSA-0006-1", ecosystem="Debian:12", name="xz-utils", fixed="5.4.1-1"))
    store.refresh_feed(OsvFeed(feed))  # an empty fleet: the advisory is stored, nothing matches
    result = store.record_image(image("late", ["l0"], [deb("liblzma5", "5.4.1-0.2", source="xz-utils")]))
    assert result.findings == 1
    assert [h.image.config_digest for h in store.advisory("DSA-0006-1").hits] == [digest("config:late")]


def test_workloads_are_marked_gone_not_deleted(store: Store) -> None:
    fleet(store)

    def running(name: str, image_name: str, *, cid: str) -> Workload:
        return Workload(runtime="podman", host="h1", namespace="", name=name, container_id=cid,
                        image_ref=f"localhost/{image_name}", image_id=digest("config:" + image_name),
                        manifest_digest=None, started_at=NOW)

    sync = store.record_workloads("podman", "h1", [running("web-1", "app", cid="c1"), running("db", "other", cid="c2"),
                                                   running("mystery", "unknown", cid="c3")], seen_at=NOW)
    assert (sync.new, sync.gone, sync.unresolved) == (3, 0, ("mystery",))
    assert [w.name for w in store.where("curl")[0].workloads] == ["web-1"]
    later = NOW + dt.timedelta(minutes=5)
    sync = store.record_workloads("podman", "h1", [running("db", "other", cid="c2")], seen_at=later)
    assert (sync.new, sync.updated, sync.gone) == (0, 1, 2)
    assert store.where("curl")[0].workloads == ()
    gone = {w.name: w for w in store.workloads(include_gone=True)}
    assert gone["web-1"].gone_at == later and gone["db"].running
    # Another host's observation leaves h1's workloads alone.
    store.record_workloads("podman", "h2", [], seen_at=later)
    assert [w.name for w in store.workloads()] == ["db"]
    # A workload seen again is running again, with its history.
    store.record_workloads("podman", "h1", [running("web-1", "app", cid="c1")], seen_at=later)
    web = next(w for w in store.workloads() if w.name == "web-1")
    assert web.first_seen == NOW and web.gone_at is None


def test_fleet_summary(store: Store, tmp_path: Path) -> None:
    fleet(store)
    feed = tmp_path / "osv"
    write_record(feed, osv_record("DSA-0007-1", ecosystem="Debian:12", name="curl", fixed="7.88.1-10+deb12u8",
                                  severity="high"))
    write_record(feed, osv_record("DSA-0008-1", ecosystem="Debian:12", name="zlib", fixed=None, severity="critical"))
    store.refresh_feed(OsvFeed(feed))
    record_zlib_pending(store)
    store.record_workloads("podman", "h1", [Workload("podman", "h1", "", "web", "c1", "localhost/app:1.0",
                                                     None, digest("manifest:app"), NOW)])
    # The base's tag moves to a rebuilt image: app's base is outdated.
    store.record_image(image("base-rebuilt", ["b0", "b1-new"], base_packages()), refs=[("localhost/base", "12", None)],
                       seen_at=NOW + dt.timedelta(hours=1))
    old = image("ancient", ["x0"], [], created="2026-01-01T00:00:00Z")
    store.record_image(old)

    summary = store.fleet(stale_days=30, now=NOW)
    rows = {e.image.config_digest: e for e in summary.images}
    app = rows[digest("config:app")]
    assert (app.worst_fixable, app.fixable, app.workloads) == (Severity.HIGH, 1, 1)
    assert app.base_outdated_by == digest("config:base-rebuilt")
    other = rows[digest("config:other")]
    assert (other.worst_fixable, other.worst, other.pending_updates) == (None, Severity.CRITICAL, 1)
    # The old base runs nowhere and its tag moved to the rebuilt one: superseded, listed apart, not exposure.
    assert summary.images_by_severity == {"high": 1, "pending-updates": 1, "clean": 2, "superseded": 1}
    assert rows[digest("config:base")].superseded and not rows[digest("config:base-rebuilt")].superseded
    # Its tag names the new image now; with no manifest digest known, the old one says it was superseded.
    assert rows[digest("config:base")].image.refs == ("localhost/base:12 (superseded)",)
    assert rows[digest("config:base-rebuilt")].image.refs == ("localhost/base:12",)
    assert summary.workloads_by_severity["high"] == 1  # the workload resolved through its manifest digest
    assert (summary.pending_updates, summary.images_with_pending, summary.stale_images) == (1, 1, 1)
    assert summary.base_outdated == 1 and summary.running_workloads == 1
    assert ("osv", str(feed), "2026-11-01T00:00:00Z") in summary.feeds


def test_migration_from_the_first_schema_keeps_every_row(store_url: str) -> None:
    engine = make_engine(store_url)
    upgrade(engine, "0001")
    from patchline.store._schema import Image, ImagePackage, PackageName, Version

    with engine.begin() as conn:
        conn.execute(insert(PackageName), [{"id": 1, "ecosystem": "deb", "name": "liblzma5"},
                                           {"id": 2, "ecosystem": "deb", "name": "xz-utils"}])
        conn.execute(insert(Version), [{"id": 1, "version": "5.4.1-0.2"}])
        conn.execute(insert(Image).values(id=1, config_digest=digest("old"), os="linux", architecture="amd64",
                                          layer_count=0, package_count=1, first_seen=NOW, last_seen=NOW,
                                          scanned_at=NOW))
        conn.execute(insert(ImagePackage).values(image_id=1, seq=0, name_id=1, version_id=1, match_name_id=2,
                                                 match_version_id=1, introduced_in=0, changed_in=0))
    engine.dispose()
    with open_store(store_url) as s:  # migrates to head on open
        assert s.counts()["image_packages"] == 1
        assert [(h.name, h.version, h.source_name) for h in s.where("liblzma5")] == [
            ("liblzma5", "5.4.1-0.2", "xz-utils")]
        with s.engine.connect() as conn:
            assert conn.execute(select(Image.config_digest)).scalar() == digest("old")
    engine = make_engine(store_url)
    from patchline.store import current_revision

    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_concurrent_writers_lose_nothing(store_url: str, tmp_path: Path) -> None:
    """Two ingesting processes and one refreshing a feed, at once, on one database."""
    open_store(store_url).close()
    feed = tmp_path / "osv"
    for i in range(40):
        write_record(feed, osv_record(f"DSA-{i:04d}-1", ecosystem="Debian:12", name=f"src{i % 30}", fixed="2.0-1"))
    script = textwrap.dedent("""
        import sys
        from patchline.advisories import OsvFeed
        from patchline.store import open_store
        from tests.support.fleetdata import deb, image
        url, role = sys.argv[1], sys.argv[2]
        with open_store(url) as store:
            if role == "feed":
                for _ in range(3):
                    store.refresh_feed(OsvFeed(sys.argv[3]))
            else:
                for i in range(25):
                    pkgs = [deb(f"bin{j}", f"1.{(i + j) % 4}-1", source=f"src{j % 30}") for j in range(60)]
                    pkgs.append(deb(f"only-{role}-{i}", "1.0-1"))
                    store.record_image(image(f"{role}-{i}", ["shared", f"{role}{i}"], pkgs))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, store_url, role, str(feed)],
                              cwd=Path(__file__).resolve().parents[2], stderr=subprocess.PIPE)
             for role in ("w1", "w2", "feed")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    with open_store(store_url) as store:
        counts = store.counts()
        assert counts["images"] == 50
        assert counts["image_packages"] == 50 * 61
        assert counts["package_names"] == 60 + 30 + 50
        assert counts["advisories"] == 40
        # Whatever the interleaving, the findings equal a fresh computation from the stored packages.
        before = {(h.image.config_digest, h.package) for i in range(40) for h in store.advisory(f"DSA-{i:04d}-1").hits}
        # Every image holds src0..src29 below 2.0-1, so every advisory hits every image once per binary of its source.
        assert len(before) == 50 * 60


def test_build_records_pending_and_fixable_for_the_planner(store: Store, tmp_path: Path) -> None:
    fleet(store)
    feed = tmp_path / "osv"
    write_record(feed, osv_record("DSA-0009-1", ecosystem="Debian:12", name="curl", fixed="7.88.1-10+deb12u8"))
    write_record(feed, osv_record("DSA-0010-1", ecosystem="Debian:12", name="zlib", fixed=None))
    store.refresh_feed(OsvFeed(feed))
    record_zlib_pending(store)
    app, other = digest("config:app"), digest("config:other")
    fixable = store.fixable_for([app, other])
    assert [(f.advisory_id, f.package, f.fixed) for f in fixable[app]] == [("DSA-0009-1", "curl",
                                                                            ("7.88.1-10+deb12u8",))]
    assert other not in fixable  # zlib's advisory has no fix
    assert [f.advisory_id for f in store.fixable_for([other], fixable_only=False)[other]] == ["DSA-0010-1"]
    pending = store.pending_for([app, other])
    assert list(pending) == [other]
    assert pending[other][0].name == "zlib1g" and pending[other][0].cves == ("CVE-2023-45853",)

    common = {"kind": "recipe", "target": "localhost/app:1.0", "started_at": NOW, "finished_at": NOW}
    store.record_build(run_id="r1", recipe="app", status="built", config_digest=app, manifest_digest="sha256:1",
                       bases={"localhost/base:12": "sha256:b"}, input_hash="sha256:h", source_date_epoch=5,
                       reasons=[{"code": "never-built", "detail": "", "items": []}], **common)
    store.record_build(run_id="r2", recipe="app", status="failed", error="buildah bud failed", **common)
    store.record_build(run_id="r2", recipe="other", status="blocked", error="base failed", **common)
    current = store.current_builds()
    assert list(current) == ["app"]  # a failed or blocked build never becomes the current state
    row = current["app"]
    assert (row.run_id, row.config_digest, row.bases, row.source_date_epoch) == ("r1", app,
                                                                                  {"localhost/base:12": "sha256:b"}, 5)
    assert row.finished_at.tzinfo is not None
    assert [b.status for b in store.builds(recipe="app")] == ["failed", "built"]
    assert [b.recipe for b in store.builds(run_id="r2")] == ["other", "app"]

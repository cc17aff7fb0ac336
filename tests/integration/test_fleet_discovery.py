"""Discovery into the store with real containers and a real registry, on SQLite and PostgreSQL.

The images are the session's test images: a debootstrap bookworm base and an
image built FROM it with debs, a Python venv and npm packages (tests/support/images.py).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchline.advisories import OsvFeed
from patchline.catalog.list import DEFAULT_CATALOGERS
from patchline.fleet._discover import DiscoverOptions, discover_podman, discover_registry
from patchline.inventory import LayerCache, default_cache_dir
from patchline.store import Store, open_store
from tests.support.fleetdata import osv_record, write_record
from tests.support.images import BuiltImage
from tests.support.registry import RunningRegistry

pytestmark = pytest.mark.integration


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with open_store(store_url) as s:
        yield s


@pytest.fixture
def options() -> DiscoverOptions:
    return DiscoverOptions(cache=LayerCache(default_cache_dir(), DEFAULT_CATALOGERS))


def _podman(*args: str) -> str:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def containers(debian_base_image: BuiltImage, inventory_image: BuiltImage) -> Iterator[dict[str, str]]:
    """Three running containers: two of the app image, one of the base. name -> container id."""
    prefix = f"pl-fleet-{uuid.uuid4().hex[:8]}"
    started: dict[str, str] = {}
    try:
        for name, image in (("web-1", inventory_image), ("web-2", inventory_image), ("db", debian_base_image)):
            started[name] = _podman("run", "-d", "--name", f"{prefix}-{name}", image.reference, "sleep", "3600")
        yield {f"{prefix}-{n}": cid for n, cid in started.items()}
    finally:
        for cid in started.values():
            subprocess.run(["podman", "rm", "-f", "-t", "0", cid], capture_output=True, timeout=60)


def test_podman_discovery_records_workloads_and_marks_stopped_ones_gone(
    store: Store, options: DiscoverOptions, containers: dict[str, str], debian_base_image: BuiltImage,
    inventory_image: BuiltImage,
) -> None:
    report = discover_podman(store, options=options, host="test-host")
    assert report.failed == ()
    ours = {w.name: w for w in store.workloads() if w.name in containers}
    assert set(ours) == set(containers)
    names = sorted(containers)
    db, web1, web2 = names  # "...-db" sorts before "...-web-1"
    assert ours[web1].image_digest == inventory_image.config_digest
    assert ours[db].image_digest == debian_base_image.config_digest
    assert ours[web1].container_id == containers[web1]

    # Python packages are only in the app image; debs in both; layers as the ground truth says.
    jinja = store.where("jinja2", ecosystem="pypi")
    assert {h.image.config_digest for h in jinja} == {inventory_image.config_digest}
    truth_version = {n.lower(): v for n, v in inventory_image.truth.packages("python")}
    assert jinja[0].version == truth_version["jinja2"]
    assert {w.name for w in jinja[0].workloads} >= {web1, web2}
    assert jinja[0].introduced_diff_id == inventory_image.diff_ids[jinja[0].introduced_in]
    # Other containers on the host (a demo, another test) are discovered too: look at our two images only.
    mine = {inventory_image.config_digest, debian_base_image.config_digest}
    libc = {h.image.config_digest for h in store.where("libc6", ecosystem="deb")}
    assert libc & mine == mine
    # The app is FROM the base: the store finds that from the shared layers.
    rows = {e.image.config_digest: e for e in store.fleet().images}
    assert rows[inventory_image.config_digest].base == debian_base_image.config_digest

    # A second pass reads no image; a stopped container is marked gone, not deleted.
    _podman("rm", "-f", "-t", "0", containers[web2])
    again = discover_podman(store, options=options, host="test-host")
    assert again.inventoried == () and again.sync is not None and again.sync.gone >= 1
    gone = {w.name: w for w in store.workloads(include_gone=True) if w.name in containers}
    assert gone[web2].gone_at is not None and gone[web1].gone_at is None
    assert {w.name for w in store.where("jinja2", ecosystem="pypi")[0].workloads if w.name in containers} == {web1}


def _push(image: BuiltImage, registry: RunningRegistry, dest: str) -> None:
    policy = registry.workdir / "policy.json"
    policy.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    subprocess.run(["skopeo", "--policy", str(policy), "copy", "--quiet", "--dest-tls-verify=false",
                    f"containers-storage:{image.reference}", f"docker://{registry.host}/{dest}"],
                   check=True, capture_output=True, timeout=300)


def test_new_advisory_changes_findings_without_reading_any_image(
    store: Store, options: DiscoverOptions, registry: RunningRegistry, debian_base_image: BuiltImage,
    inventory_image: BuiltImage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _push(debian_base_image, registry, "fleet/base:12")
    _push(inventory_image, registry, "fleet/app:1")
    _push(inventory_image, registry, "fleet/app:latest")
    report = discover_registry(store, registry.host, options=DiscoverOptions(cache=options.cache, insecure=True),
                               page_size=1)
    assert report.tags == 3 and report.failed == ()
    assert set(report.inventoried) == {debian_base_image.config_digest, inventory_image.config_digest}
    app_refs = store.where("jinja2", ecosystem="pypi")[0].image.refs
    assert set(app_refs) == {f"{registry.host}/fleet/app:1", f"{registry.host}/fleet/app:latest"}

    # From here on no image may be read: the registry is gone and opening any image source fails the test.
    registry.kill()

    def no_image_reads(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"an image was opened during re-assessment: {args}")

    monkeypatch.setattr("patchline.oci.open_source", no_image_reads)
    monkeypatch.setattr("patchline.oci._open.open_source", no_image_reads)
    monkeypatch.setattr("patchline.fleet._discover.inventory", no_image_reads)

    feed = tmp_path / "osv"
    jinja_version = {n.lower(): v for n, v in inventory_image.truth.packages("python")}["jinja2"]
    write_record(feed, osv_record("GHSA-test-jinja", ecosystem="PyPI", name="Jinja2", fixed="99.0",
                                  severity="HIGH"))
    first = store.refresh_feed(OsvFeed(feed))
    assert (first.advisories_added, first.images_affected) == (1, 1)
    hits = store.advisory("GHSA-test-jinja").hits
    assert [(h.image.config_digest, h.package, h.version) for h in hits] == [
        (inventory_image.config_digest, "jinja2", jinja_version)]

    # A Debian advisory for the C library's source package touches both images, and nothing else changes.
    libc6 = next(v for n, v, _ in debian_base_image.truth.debs if n == "libc6")
    write_record(feed, osv_record("DSA-test-glibc", ecosystem="Debian:12", name="glibc", fixed="99:0",
                                  modified="2026-11-23T00:00:00Z"))
    second = store.refresh_feed(OsvFeed(feed))
    assert (second.advisories_added, second.advisories_unchanged) == (1, 1)
    glibc = store.advisory("DSA-test-glibc").hits
    assert {h.image.config_digest for h in glibc} == {debian_base_image.config_digest, inventory_image.config_digest}
    assert {(h.package, h.version) for h in glibc if h.package == "libc6"} == {("libc6", libc6)}
    assert len(store.advisory("GHSA-test-jinja").hits) == 1
    # The store says which feed revision each finding came from.
    assert {h.feed_revision for h in glibc} == {"2026-11-23T00:00:00Z"}
    json.dumps([h.image.refs for h in glibc])  # plain data

"""`patchline scan` (advisories.match) and the store's feed refresh must find the same advisories.

Both run on one real inventory (Debian and Python packages) and one feed of real records (PyPI, and Debian's
DSA and DEBIAN-CVE for glibc), and every finding is compared: advisory, the name and version matched, the fixed
versions and the severity. Two matchers that drift apart would make `scan` and `fleet` disagree.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from patchline._model import Inventory, Purl
from patchline.advisories import AdvisoryIndex, OsvFeed, match_packages
from patchline.assess import from_inventory
from patchline.sbom import load_inventory_json
from patchline.store import open_store

DATA = Path(__file__).resolve().parents[2] / "data"
INVENTORY = DATA / "sbom" / "debian-app" / "inventory.json"
OS_ECOSYSTEMS = {"deb", "rpm", "apk"}


OLD = {("deb", "libc6"): "2.36-9+deb12u1", ("pypi", "urllib3"): "1.26.4", ("pypi", "requests"): "2.19.0",
       ("pypi", "certifi"): "2017.4.17"}
ADDED = {"jinja2": "2.10", "idna": "2.5", "setuptools": "40.0.0", "pip": "9.0.1"}


def old_packages(inventory: Inventory) -> Inventory:
    """The inventory with older versions (affected by the shipped records) and four more Python packages."""
    packages = [replace(p, version=OLD.get((p.ecosystem.value, p.name), p.version)) for p in inventory.packages]
    template = next(p for p in inventory.packages if p.name == "six")
    packages += [replace(template, name=name, version=version, purl=Purl(f"pkg:pypi/{name}@{version}"))
                 for name, version in ADDED.items()]
    return replace(inventory, packages=tuple(packages))


def test_scan_and_the_store_find_the_same(tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    shutil.copytree(DATA / "advisories" / "osv" / "pypi" / "vulns", feed / "pypi")
    shutil.copytree(DATA / "advisories" / "debian", feed / "debian")
    inventory = old_packages(load_inventory_json(INVENTORY.read_text()))
    scan = from_inventory(inventory)

    findings, _skips = match_packages(scan.packages, AdvisoryIndex.build([OsvFeed(str(feed))]), distro=scan.distro)
    by_scan = set()
    for f in findings:
        os_package = f.package.ecosystem in OS_ECOSYSTEMS
        name = (f.package.source_name or f.package.name) if os_package else f.package.name
        version = (f.package.source_version or f.package.version) if os_package else f.package.version
        by_scan.add((f.advisory, name.lower(), version, tuple(sorted(f.fixed_versions)), int(f.severity)))

    with open_store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        store.record_image(inventory)
        store.refresh_feed(OsvFeed(str(feed)))
        rows = store.fixable_for([inventory.image.config_digest], fixable_only=False).get(
            inventory.image.config_digest, [])
    by_store = {(r.advisory_id, r.package.lower(), r.version, tuple(sorted(r.fixed)), r.severity) for r in rows}

    assert by_scan, "the inventory's old packages are affected by several of these records"
    assert {a for a, *_ in by_scan} & {"DSA-5514-1", "DEBIAN-CVE-2023-4911"}, "the Debian route must be compared too"
    assert by_scan == by_store

"""cargo-auditable binaries through the inventory core, beside Go binaries (both want executable ELF files),
and the smallvec advisory (tests/data/advisories/osv-crates) matched against what was found."""

from __future__ import annotations

from pathlib import Path

from tests.support.ocibuild import Entry, write_layout
from tests.unit.catalog.test_golang import MODINFO, elf, inline_buildinfo
from tests.unit.catalog.test_rust_cataloger import auditable

from patchline import Ecosystem, Inventory
from patchline.advisories.index import AdvisoryIndex
from patchline.advisories.match import match_packages
from patchline.advisories.osv import OsvFeed
from patchline.assess._input import from_inventory
from patchline.catalog.list import DEFAULT_CATALOGERS
from patchline.inventory import LayerCache, scan_image
from patchline.oci._layout import LayoutSource

RECORDS = Path(__file__).resolve().parents[2] / "data" / "advisories" / "osv-crates"
GO_APP = elf([(".go.buildinfo", inline_buildinfo("go1.19.8", MODINFO))])
FIXED = auditable({"packages": [{"name": "tool", "version": "0.2.0", "source": "local", "root": True},
                                {"name": "smallvec", "version": "1.6.1", "source": "crates.io"}]})


def exe(path: str, data: bytes) -> Entry:
    return Entry(path, data, mode=0o755)


def scan(root: Path, cache: LayerCache | None = None) -> Inventory:
    with LayoutSource(root) as source:
        return scan_image(source, cache=cache)


def write_image(root: Path) -> None:
    write_layout(root, [
        [exe("usr/local/bin/goapp", GO_APP), exe("usr/local/bin/app", auditable())],
        [exe("opt/tool/bin/tool", FIXED), Entry("opt/data/not-executable", auditable(), mode=0o644)],
    ])


def test_crates_found_per_binary_beside_go_modules(tmp_path: Path) -> None:
    write_image(tmp_path / "image")
    inventory = scan(tmp_path / "image")
    crates = sorted((p.purl, p.locations, p.introduced_in, p.cataloger)
                    for p in inventory.packages if p.ecosystem is Ecosystem.CARGO)
    cataloger = "cargo-auditable-binary-cataloger"
    assert crates == [
        ("pkg:cargo/app@0.1.0", ("/usr/local/bin/app",), 0, cataloger),
        ("pkg:cargo/smallvec@1.6.0", ("/usr/local/bin/app",), 0, cataloger),
        ("pkg:cargo/smallvec@1.6.1", ("/opt/tool/bin/tool",), 1, cataloger),
        # One binary can link two semver-incompatible versions of a crate: both are reported.
        ("pkg:cargo/syn@1.0.109", ("/usr/local/bin/app",), 0, cataloger),
        ("pkg:cargo/syn@2.0.39", ("/usr/local/bin/app",), 0, cataloger),
        ("pkg:cargo/tool@0.2.0", ("/opt/tool/bin/tool",), 1, cataloger),
    ]
    go = {(p.name, p.locations) for p in inventory.packages if p.ecosystem is Ecosystem.GOLANG}
    assert ("stdlib", ("/usr/local/bin/goapp",)) in go
    assert inventory.skipped == ()


def test_the_cache_keeps_crates(tmp_path: Path) -> None:
    write_image(tmp_path / "image")
    cache = LayerCache(tmp_path / "cache", DEFAULT_CATALOGERS)
    cold = scan(tmp_path / "image", cache)
    assert scan(tmp_path / "image", cache).packages == cold.packages
    assert any(p.ecosystem is Ecosystem.CARGO for p in cold.packages)


def test_the_smallvec_advisory_matches_the_vulnerable_binary_only(tmp_path: Path) -> None:
    write_image(tmp_path / "image")
    inventory = scan(tmp_path / "image")
    index = AdvisoryIndex.build([OsvFeed(RECORDS, cache_dir=tmp_path / "osv")])
    assert index.skipped == ()
    findings, skips = match_packages(
        [p for p in from_inventory(inventory).packages if p.ecosystem == "cargo"], index, distro=None)
    assert skips == []
    assert sorted((str(f.advisory), f.package.purl) for f in findings) == [
        ("GHSA-43w2-9j62-hq99", "pkg:cargo/smallvec@1.6.0")]

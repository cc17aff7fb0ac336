"""Gems through the inventory core: purls, one package per gemspec, dpkg ownership, and the rack advisory
(tests/data/advisories/osv-rubygems) matched against what was found."""

from __future__ import annotations

from pathlib import Path

from test_ruby_cataloger import NOKOGIRI, RACK
from tests.support.ocibuild import file, write_layout

from patchline import Ecosystem, Inventory
from patchline.advisories.index import AdvisoryIndex
from patchline.advisories.match import match_packages
from patchline.advisories.osv import OsvFeed
from patchline.assess._input import from_inventory
from patchline.inventory import scan_image
from patchline.oci._layout import LayoutSource

RECORDS = Path(__file__).resolve().parents[2] / "data" / "advisories" / "osv-rubygems"
DEB_SPEC = "usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec"
HOME = "usr/local/lib/ruby/gems/3.1.0/specifications"
STATUS = "Package: ruby-rack\nStatus: install ok installed\nArchitecture: all\nVersion: 2.2.22-0+deb12u2\n"
OLD_RACK = RACK.replace(b"2.2.22", b"2.2.3")


def scan(root: Path) -> Inventory:
    with LayoutSource(root) as source:
        return scan_image(source)


def write_image(root: Path) -> None:
    write_layout(root, [
        [file("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"), file("var/lib/dpkg/status", STATUS),
         file("var/lib/dpkg/info/ruby-rack.list", f"/.\n/usr\n/{DEB_SPEC}\n"), file(DEB_SPEC, RACK)],
        [file(f"{HOME}/rack-2.2.22.gemspec", RACK), file(f"{HOME}/rack-2.2.3.gemspec", OLD_RACK),
         file(f"{HOME}/nokogiri-1.15.4-x86_64-linux.gemspec", NOKOGIRI)],
    ])


def test_gems_found_once_each_with_purl_location_and_layer(tmp_path: Path) -> None:
    write_image(tmp_path / "image")
    inventory = scan(tmp_path / "image")
    gems = sorted((p.purl, p.locations, p.introduced_in, p.cataloger, p.licenses)
                  for p in inventory.packages if p.ecosystem is Ecosystem.GEM)
    cataloger = "ruby-installed-gemspec-cataloger"
    assert gems == [
        ("pkg:gem/nokogiri@1.15.4?platform=x86_64-linux", (f"/{HOME}/nokogiri-1.15.4-x86_64-linux.gemspec",), 1,
         cataloger, ("MIT", "Apache-2.0")),
        # Two versions in one GEM_HOME are two gems; dpkg's copy is the Debian package only.
        ("pkg:gem/rack@2.2.22", (f"/{HOME}/rack-2.2.22.gemspec",), 1, cataloger, ("MIT",)),
        ("pkg:gem/rack@2.2.3", (f"/{HOME}/rack-2.2.3.gemspec",), 1, cataloger, ("MIT",)),
    ]
    assert [p.name for p in inventory.packages if p.ecosystem is Ecosystem.DEB] == ["ruby-rack"]
    assert inventory.skipped == ()


def test_the_rack_advisory_matches_the_old_copy_only(tmp_path: Path) -> None:
    write_image(tmp_path / "image")
    inventory = scan(tmp_path / "image")
    index = AdvisoryIndex.build([OsvFeed(RECORDS, cache_dir=tmp_path / "osv")])
    assert index.skipped == ()
    findings, skips = match_packages(from_inventory(inventory).packages, index, distro=inventory.distro)
    assert skips == []
    assert sorted((str(f.advisory), f.package.purl) for f in findings) == [
        ("GHSA-wq4h-7r42-5hrr", "pkg:gem/rack@2.2.3")]

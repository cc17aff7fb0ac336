"""Gems from a real Debian ``ruby-*`` package, and a real Rust executable with a ``.dep-v0`` section.

Debian's ``ruby-rack`` (downloaded from the host's mirror, unpacked with
``dpkg-deb -x``) puts its gemspec under ``/usr/share/rubygems-integration``;
the test image holds it with a dpkg status entry and file list laid out from
the package itself, which must claim it, and a copy under
``/usr/local/lib/ruby/gems/3.1.0/specifications`` that no package owns, which
must be reported as the gem. The Rust executable is built here with the host's
``rustc`` and given the section ``cargo auditable`` embeds with ``objcopy``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import zlib
from pathlib import Path

import pytest

from patchline import Ecosystem, Inventory
from patchline.inventory import scan_image
from patchline.oci._layout import LayoutSource
from tests.support.ocibuild import Entry, write_layout

pytestmark = pytest.mark.integration

GEM_HOME = "usr/local/lib/ruby/gems/3.1.0/specifications"
DEPS = {"packages": [{"name": "hello", "version": "0.1.0", "source": "local", "dependencies": [1], "root": True},
                     {"name": "smallvec", "version": "1.6.0", "source": "crates.io"}]}


def _ruby_rack(work: Path) -> tuple[Path, Path]:
    """(the .deb, its unpacked root)."""
    got = subprocess.run(["apt-get", "download", "ruby-rack"], cwd=work, capture_output=True, text=True,
                         check=False, timeout=300)
    debs = list(work.glob("ruby-rack_*.deb"))
    if got.returncode != 0 or len(debs) != 1:
        pytest.skip(f"apt-get download ruby-rack failed: {got.stderr.strip()[-300:]}")
    root = work / "root"
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(root)], check=True)
    return debs[0], root


def _rust_binary(work: Path) -> bytes:
    rustc, objcopy = shutil.which("rustc"), shutil.which("objcopy")
    if rustc is None or objcopy is None:
        pytest.skip("the host has no rustc or no objcopy")
    (work / "hello.rs").write_text('fn main() { println!("hello"); }\n')
    subprocess.run([rustc, "-O", "hello.rs", "-o", "hello"], cwd=work, check=True, capture_output=True, timeout=300)
    (work / "dep-v0").write_bytes(zlib.compress(json.dumps(DEPS).encode()))
    subprocess.run([objcopy, "--add-section", ".dep-v0=dep-v0", "hello", "hello-auditable"], cwd=work, check=True)
    return (work / "hello-auditable").read_bytes()


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Inventory, str]:
    work = tmp_path_factory.mktemp("ruby")
    deb, root = _ruby_rack(work)
    fields = {key: subprocess.run(["dpkg-deb", "-f", str(deb), key], capture_output=True, text=True,
                                  check=True).stdout.strip() for key in ("Package", "Version", "Architecture")}
    status = "".join(f"{k}: {v}\n" for k, v in fields.items()) + "Status: install ok installed\n"
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    paths = [line.split()[5].removeprefix(".") or "/." for line in listing.splitlines()]
    specs = sorted(root.glob("usr/share/rubygems-integration/*/specifications/rack-*.gemspec"))
    assert len(specs) == 1, specs
    spec = specs[0]
    rust = _rust_binary(tmp_path_factory.mktemp("rust"))
    layout = tmp_path_factory.mktemp("layout")
    write_layout(layout, [
        [Entry("var/lib/dpkg/status", status.encode()),
         Entry("var/lib/dpkg/info/ruby-rack.list", "".join(p.rstrip("/") + "\n" for p in paths).encode()),
         Entry(str(spec.relative_to(root)), spec.read_bytes())],
        [Entry(f"{GEM_HOME}/{spec.name}", spec.read_bytes()),
         Entry("usr/local/bin/hello", rust, mode=0o755)],
    ])
    with LayoutSource(layout) as source:
        return scan_image(source), fields["Version"].split("-")[0]


def test_the_dpkg_gemspec_is_the_os_package_and_the_copy_a_gem(scanned: tuple[Inventory, str]) -> None:
    inventory, upstream = scanned
    gems = [(p.name, p.version, p.purl, p.locations, p.introduced_in)
            for p in inventory.packages if p.ecosystem is Ecosystem.GEM]
    assert gems == [("rack", upstream, f"pkg:gem/rack@{upstream}", (f"/{GEM_HOME}/rack-{upstream}.gemspec",), 1)]
    assert [(p.name, p.ecosystem) for p in inventory.packages if p.name == "ruby-rack"] == [
        ("ruby-rack", Ecosystem.DEB)]
    assert inventory.skipped == ()


def test_the_rust_binary_crates(scanned: tuple[Inventory, str]) -> None:
    inventory, _ = scanned
    crates = {(p.purl, p.locations) for p in inventory.packages if p.ecosystem is Ecosystem.CARGO}
    assert crates == {("pkg:cargo/hello@0.1.0", ("/usr/local/bin/hello",)),
                      ("pkg:cargo/smallvec@1.6.0", ("/usr/local/bin/hello",))}

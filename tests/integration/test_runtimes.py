"""Runtimes outside the package manager, from real Debian binaries, found once each.

Debian's ``nodejs`` and ``libnode108`` packages (downloaded from the host's
mirror, unpacked with ``dpkg-deb -x``) go to ``/opt/node`` where no package
database knows them; the host's ``python3.11`` goes to ``/usr/local/bin``, and
also stays at ``/usr/bin/python3.11`` with the host's own dpkg record and file
list for it, which must claim that copy. The versions expected are what the
packages and the interpreter themselves say.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from patchline import Ecosystem, Inventory
from patchline.inventory import scan_image
from patchline.oci._layout import LayoutSource
from tests.support.ocibuild import Entry, write_layout

pytestmark = pytest.mark.integration

PYTHON = Path("/usr/bin/python3.11")
PYTHON_LIST = Path("/var/lib/dpkg/info/python3.11-minimal.list")


def _debian_node(work: Path) -> tuple[Path, str]:
    """Download Debian's (not a third-party repository's) nodejs and libnode; (unpacked root, upstream version)."""
    madison = subprocess.run(["apt-cache", "madison", "nodejs"], capture_output=True, text=True, check=False).stdout
    versions = [line.split("|")[1].strip() for line in madison.splitlines() if "+dfsg" in line]
    if not versions:
        pytest.skip("no Debian nodejs package in the host's apt sources")
    version = versions[0]

    def download(package: str) -> Path:
        got = subprocess.run(["apt-get", "download", f"{package}={version}"],
                             cwd=work, capture_output=True, text=True, check=False, timeout=300)
        debs = list(work.glob(f"{package}_*.deb"))
        if got.returncode != 0 or len(debs) != 1:
            pytest.skip(f"apt-get download {package} failed: {got.stderr.strip()[-300:]}")
        return debs[0]

    depends = subprocess.run(["dpkg-deb", "-f", str(download("nodejs")), "Depends"],
                             capture_output=True, text=True, check=True).stdout
    libnode = re.search(r"\blibnode\d+\b", depends)
    if libnode is None:
        pytest.skip(f"Debian's nodejs {version} does not depend on a libnode package: {depends.strip()}")
    download(libnode.group(0))
    debs = sorted(work.glob("*.deb"))
    root = work / "root"
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root, version.split("+")[0]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Inventory, str, str]:
    if not PYTHON.exists() or not PYTHON_LIST.exists():
        pytest.skip("the host has no Debian python3.11 (python3.11-minimal)")
    node_root, node_version = _debian_node(tmp_path_factory.mktemp("node"))
    python_version = subprocess.run([str(PYTHON), "-c", "import platform; print(platform.python_version())"],
                                    capture_output=True, text=True, check=True).stdout.strip()
    status = subprocess.run(["dpkg-query", "-s", "python3.11-minimal"], capture_output=True, check=True).stdout
    libnode = next((node_root / "usr/lib").rglob("libnode.so.*"))
    python = PYTHON.read_bytes()
    layout = tmp_path_factory.mktemp("layout")
    write_layout(layout, [
        [Entry("var/lib/dpkg/status", status),
         Entry("var/lib/dpkg/info/python3.11-minimal.list", PYTHON_LIST.read_bytes()),
         Entry("usr/bin/python3.11", python, mode=0o755)],
        [Entry("usr/local/bin/python3.11", python, mode=0o755),
         Entry("opt/node/bin/node", (node_root / "usr/bin/node").read_bytes(), mode=0o755),
         Entry(f"opt/node/lib/{libnode.name}", libnode.read_bytes())],
    ])
    with LayoutSource(layout) as source:
        return scan_image(source), python_version, node_version


def test_python_and_node_found_once_outside_dpkg(scanned: tuple[Inventory, str, str]) -> None:
    inventory, python_version, node_version = scanned
    libnode = next(p for p in inventory.packages if p.name == "node").locations[0]
    assert re.fullmatch(r"/opt/node/lib/libnode\.so\.\d+", libnode)  # the small bin/node holds no version
    runtimes = {(p.name, p.version, p.purl, p.locations, p.introduced_in)
                for p in inventory.packages if p.ecosystem is Ecosystem.GENERIC}
    assert runtimes == {
        ("python", python_version, f"pkg:generic/python@{python_version}", ("/usr/local/bin/python3.11",), 1),
        ("node", node_version, f"pkg:generic/node@{node_version}", (libnode,), 1),
    }
    assert [(p.name, p.ecosystem) for p in inventory.packages if p.name == "python3.11-minimal"] == [
        ("python3.11-minimal", Ecosystem.DEB)]
    assert inventory.skipped == ()

"""Debian's real log4j archives in a test image: owned by dpkg, copied outside it, nested in a fat jar.

``apt-get download liblog4j1.2-java liblog4j2-java`` fetches the packages from the
host's own mirror. The image is an OCI layout the test writes: a layer laid out as
``dpkg -i`` leaves it (the packages' files, ``/var/lib/dpkg/status`` with their
control stanzas, ``info/<name>.list`` with every path of the data archive), then
a layer with the same jars copied to ``/opt/app/lib`` and nested in a Spring
Boot style fat jar. The ground truth of each jar's Maven identity is what
``unzip`` prints of its ``pom.properties``; Debian's log4j 1.2.17 jar has none,
and is ``log4j:log4j`` (what the advisories name). The log4j 1.x advisories are
the GHSA records of tests/data/advisories/osv-maven.
"""

from __future__ import annotations

import io
import posixpath
import shutil
import subprocess
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from patchline import Ecosystem, Inventory
from patchline.advisories.index import AdvisoryIndex
from patchline.advisories.match import match_packages
from patchline.advisories.osv import OsvFeed
from patchline.assess._input import from_inventory
from patchline.inventory import scan_image
from patchline.oci._layout import LayoutSource
from tests.support.ocibuild import file, write_layout

pytestmark = pytest.mark.integration

PACKAGES = ("liblog4j1.2-java", "liblog4j2-java")
MAVEN_RECORDS = Path(__file__).resolve().parents[1] / "data" / "advisories" / "osv-maven"
LOG4J1_ADVISORIES = {"GHSA-2qrg-x229-3v8q", "GHSA-65fg-84f6-3jq3", "GHSA-f7vh-qwp3-x37m", "GHSA-fp5r-v3w9-4333",
                     "GHSA-w9p3-5cr8-m3jj"}
OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
FAT_JAR = "/opt/app/app.jar"


@dataclass(frozen=True)
class JavaImage:
    layout: Path
    debs: dict[str, str]  # package -> version, from the .deb's control file
    jars: dict[str, bytes]  # base name -> bytes of every regular jar the packages install
    truth: dict[str, set[str]]  # base name -> purls of the jar's Maven identity
    inventory: Inventory
    scan_seconds: float


def _run(argv: list[str], cwd: Path | None = None) -> bytes:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(argv)} failed: {done.stderr.decode(errors='replace').strip()[-300:]}")
    return done.stdout


def _truth(jar: Path) -> set[str]:
    """Each pom.properties as unzip prints it; a jar without any is Debian's log4j 1.2.17."""
    names = _run(["unzip", "-Z1", str(jar)]).decode().split()
    purls = set()
    for name in names:
        if name.startswith("META-INF/maven/") and name.endswith("/pom.properties"):
            text = _run(["unzip", "-p", str(jar), name]).decode()
            props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
            purls.add(f"pkg:maven/{props['groupId']}/{props['artifactId']}@{props['version']}")
    return purls or {"pkg:maven/log4j/log4j@1.2.17"}


def _installed_layer(debs: list[Path], workdir: Path) -> tuple[bytes, dict[str, str]]:
    """One layer as dpkg leaves it: each package's files, its .list and one status stanza."""
    out = io.BytesIO()
    versions: dict[str, str] = {}
    stanzas: list[str] = []
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as layer:
        for deb in debs:
            control = _run(["dpkg-deb", "-f", str(deb)]).decode()
            fields = dict(line.split(": ", 1) for line in control.splitlines() if ": " in line and line[0] != " ")
            name = fields["Package"]
            versions[name] = fields["Version"]
            stanza = control.replace("Package: " + name + "\n", f"Package: {name}\nStatus: install ok installed\n", 1)
            stanzas.append(stanza.rstrip("\n") + "\n")
            data = _run(["dpkg-deb", "--fsys-tarfile", str(deb)])
            listed = ["/."]
            with tarfile.open(fileobj=io.BytesIO(data)) as source:
                for member in source:
                    path = posixpath.normpath("/" + member.name)
                    if path != "/":
                        listed.append(path)
                    layer.addfile(member, source.extractfile(member) if member.isreg() else None)
            info = tarfile.TarInfo(f"var/lib/dpkg/info/{name}.list")
            body = ("\n".join(listed) + "\n").encode()
            info.size = len(body)
            layer.addfile(info, io.BytesIO(body))
        status = "\n".join(stanzas).encode()
        info = tarfile.TarInfo("var/lib/dpkg/status")
        info.size = len(status)
        layer.addfile(info, io.BytesIO(status))
    return out.getvalue(), versions


def _fat_jar(jars: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as fat:
        fat.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nMain-Class: org.springframework.boot.loader."
                                             "JarLauncher\n", compress_type=zipfile.ZIP_DEFLATED)
        fat.writestr("META-INF/maven/org.example/app/pom.properties",
                     "groupId=org.example\nartifactId=app\nversion=1.0.0\n", compress_type=zipfile.ZIP_DEFLATED)
        for base, data in sorted(jars.items()):
            fat.writestr(f"BOOT-INF/lib/{base}", data, compress_type=zipfile.ZIP_STORED)  # as Spring Boot stores them
    return buf.getvalue()


@pytest.fixture(scope="module")
def java_image(tmp_path_factory: pytest.TempPathFactory) -> JavaImage:
    for tool in ("apt-get", "dpkg-deb", "unzip"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: this test reads real Debian packages with it")
    workdir = tmp_path_factory.mktemp("java")
    _run(["apt-get", "download", *PACKAGES], cwd=workdir)
    debs = sorted(workdir.glob("*.deb"))
    assert [d.name.split("_")[0] for d in debs] == list(PACKAGES)
    installed, versions = _installed_layer(debs, workdir)
    unpacked = workdir / "root"
    for deb in debs:
        _run(["dpkg-deb", "-x", str(deb), str(unpacked)])
    jars = {p.name: p.read_bytes() for p in sorted((unpacked / "usr/share/java").glob("*.jar")) if not p.is_symlink()}
    truth = {base: _truth(unpacked / "usr/share/java" / base) for base in jars}
    app = [file(f"opt/app/lib/{base}", data) for base, data in jars.items()]
    app.append(file(FAT_JAR.lstrip("/"), _fat_jar(jars)))
    layout = workdir / "layout"
    write_layout(layout, [[file("etc/os-release", OS_RELEASE)], installed, app],
                 created_by=["base", "dpkg -i liblog4j1.2-java liblog4j2-java", "COPY app /opt/app"])
    started = time.perf_counter()
    with LayoutSource(layout) as source:
        inventory = scan_image(source)
    return JavaImage(layout, versions, jars, truth, inventory, time.perf_counter() - started)


def test_debian_packages_are_found_and_own_their_jars(java_image: JavaImage) -> None:
    inv = java_image.inventory
    debs = {p.name: (p.version, p.introduced_in) for p in inv.packages if p.ecosystem is Ecosystem.DEB}
    assert debs == {name: (version, 1) for name, version in java_image.debs.items()}
    maven = [p for p in inv.packages if p.ecosystem is Ecosystem.MAVEN]
    assert not [p for p in maven if any(loc.startswith("/usr/share/") for loc in p.locations)]
    assert len(java_image.jars) >= 10  # log4j 1.2 and the log4j 2 modules Debian ships


def test_every_unowned_copy_is_found_once_with_its_purl_and_layer(java_image: JavaImage) -> None:
    inv = java_image.inventory
    found: dict[str, list[str]] = {}
    for package in inv.packages:
        if package.ecosystem is Ecosystem.MAVEN:
            assert len(package.locations) == 1, package
            assert package.introduced_in == package.changed_in == 2
            assert package.cataloger == "java-archive-cataloger"
            found.setdefault(package.locations[0], []).append(package.purl)
    expected: dict[str, list[str]] = {FAT_JAR: ["pkg:maven/org.example/app@1.0.0"]}
    for base, purls in java_image.truth.items():
        expected[f"/opt/app/lib/{base}"] = sorted(purls)
        expected[f"{FAT_JAR}!/BOOT-INF/lib/{base}"] = sorted(purls)
    assert {loc: sorted(purls) for loc, purls in found.items()} == expected
    assert found["/opt/app/lib/log4j-1.2-1.2.17.jar"] == ["pkg:maven/log4j/log4j@1.2.17"]
    assert found["/opt/app/lib/log4j-core.jar"] == ["pkg:maven/org.apache.logging.log4j/log4j-core@2.19.0"]
    assert [s for s in inv.skipped if s.cataloger == "java-archive-cataloger"] == []


def test_log4j1_advisories_match_the_unowned_copies(java_image: JavaImage, tmp_path: Path) -> None:
    inv = java_image.inventory
    index = AdvisoryIndex.build([OsvFeed(MAVEN_RECORDS, cache_dir=tmp_path)])
    findings, skips = match_packages(from_inventory(inv).packages, index, distro=inv.distro)
    assert skips == []
    by_purl: dict[str, set[str]] = {}
    for finding in findings:
        by_purl.setdefault(finding.package.purl, set()).add(finding.advisory)
    assert by_purl == {"pkg:maven/log4j/log4j@1.2.17": LOG4J1_ADVISORIES}
    # Two unowned copies (the lib/ jar and the nested one), five advisories each; dpkg's copy is not one.
    assert len(findings) == 2 * len(LOG4J1_ADVISORIES)


def test_scan_time(java_image: JavaImage) -> None:
    size = sum(len(data) for data in java_image.jars.values())
    print(f"\njava image: {len(java_image.jars)} jars ({size} bytes) x3 copies, scanned in "
          f"{java_image.scan_seconds:.2f} s")
    assert java_image.scan_seconds < 30

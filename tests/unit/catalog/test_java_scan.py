"""Java archives through the inventory core: purls, nested locations, layers, dpkg ownership, the cache,
and Maven advisories matched against what was found (records: tests/data/advisories/osv-maven)."""

from __future__ import annotations

from pathlib import Path

from test_java_cataloger import LOG4J, jar, pom
from tests.support.ocibuild import file, symlink, write_layout

from patchline import Ecosystem, Inventory
from patchline.advisories.index import AdvisoryIndex
from patchline.advisories.match import match_packages
from patchline.advisories.osv import OsvFeed
from patchline.assess._input import from_inventory
from patchline.catalog._ownership import language_metadata_paths
from patchline.catalog.list import DEFAULT_CATALOGERS
from patchline.inventory import LayerCache, scan_image
from patchline.oci._layout import LayoutSource

MAVEN_RECORDS = Path(__file__).resolve().parents[2] / "data" / "advisories" / "osv-maven"
OS_RELEASE = 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
DEB_JAR = "usr/share/java/log4j-1.2-1.2.17.jar"
STATUS = ("Package: liblog4j1.2-java\nStatus: install ok installed\nArchitecture: all\n"
          "Source: apache-log4j1.2\nVersion: 1.2.17-11\nDescription: logging\n x\n")
LOG4J_ADVISORIES = {"GHSA-2qrg-x229-3v8q", "GHSA-65fg-84f6-3jq3", "GHSA-f7vh-qwp3-x37m", "GHSA-fp5r-v3w9-4333",
                    "GHSA-w9p3-5cr8-m3jj"}


def write_image(root: Path) -> None:
    fat = jar({**pom("org.example", "app", "1.0"), "BOOT-INF/lib/log4j-1.2.17.jar": LOG4J})
    write_layout(root, [
        [file("etc/os-release", OS_RELEASE), file("var/lib/dpkg/status", STATUS),
         file("var/lib/dpkg/info/liblog4j1.2-java.list",
              f"/.\n/usr\n/usr/share\n/usr/share/java\n/{DEB_JAR}\n/usr/share/java/log4j-1.2.jar\n"),
         file(DEB_JAR, LOG4J), symlink("usr/share/java/log4j-1.2.jar", "log4j-1.2-1.2.17.jar")],
        [file("opt/app/lib/log4j-1.2.17.jar", LOG4J), file("opt/app/app.jar", fat),
         file("opt/app/lib/broken.jar", LOG4J[:100])],
    ])


def scan(root: Path, cache: LayerCache | None = None) -> Inventory:
    with LayoutSource(root) as source:
        return scan_image(source, cache=cache)


def test_jars_found_once_with_purl_location_and_layer(tmp_path: Path) -> None:
    write_image(tmp_path / "image")
    inventory = scan(tmp_path / "image")
    jars = sorted((p.purl, p.locations, p.introduced_in, p.cataloger)
                  for p in inventory.packages if p.ecosystem is Ecosystem.MAVEN)
    assert jars == [
        ("pkg:maven/log4j/log4j@1.2.17", ("/opt/app/app.jar!/BOOT-INF/lib/log4j-1.2.17.jar",), 1,
         "java-archive-cataloger"),
        ("pkg:maven/log4j/log4j@1.2.17", ("/opt/app/lib/log4j-1.2.17.jar",), 1, "java-archive-cataloger"),
        ("pkg:maven/org.example/app@1.0", ("/opt/app/app.jar",), 1, "java-archive-cataloger"),
    ]
    # The jar dpkg installed is the Debian package, reported once as such.
    debs = [(p.name, p.version) for p in inventory.packages if p.ecosystem is Ecosystem.DEB]
    assert debs == [("liblog4j1.2-java", "1.2.17-11")]
    assert [(s.path, s.cataloger, s.layer) for s in inventory.skipped] == [
        ("/opt/app/lib/broken.jar", "java-archive-cataloger", 1)]
    assert "not a readable zip archive" in inventory.skipped[0].reason


def test_the_cache_keeps_nested_locations(tmp_path: Path) -> None:
    write_image(tmp_path / "image")
    cache = LayerCache(tmp_path / "cache", DEFAULT_CATALOGERS)
    cold = scan(tmp_path / "image", cache)
    warm = scan(tmp_path / "image", cache)
    assert warm.packages == cold.packages
    assert any("!/BOOT-INF/lib/" in p.locations[0] for p in warm.packages)


def test_log4j_advisories_match_the_unowned_copies(tmp_path: Path) -> None:
    write_image(tmp_path / "image")
    inventory = scan(tmp_path / "image")
    index = AdvisoryIndex.build([OsvFeed(MAVEN_RECORDS, cache_dir=tmp_path / "osv")])
    assert index.skipped == ()
    findings, skips = match_packages(from_inventory(inventory).packages, index, distro=inventory.distro)
    assert skips == []
    hits: dict[str, set[str]] = {}
    for finding in findings:
        hits.setdefault(finding.package.purl, set()).add(finding.advisory)
    assert hits == {"pkg:maven/log4j/log4j@1.2.17": LOG4J_ADVISORIES}
    assert len([f for f in findings if f.package.purl == "pkg:maven/log4j/log4j@1.2.17"]) == 2 * 5


def test_dpkg_file_lists_own_java_archives() -> None:
    listed = ["/.", "/usr/share/java", "/usr/share/java/log4j-1.2-1.2.17.jar", "/usr/share/java/log4j-1.2.jar",
              "/usr/share/maven-repo/log4j/log4j/1.2.17/log4j-1.2.17.jar", "/usr/share/doc/x/README.jar.txt",
              "/usr/lib/jenkins/jenkins.war", "/usr/share/java/x.jarx"]
    assert language_metadata_paths(listed) == (
        "/usr/lib/jenkins/jenkins.war", "/usr/share/java/log4j-1.2-1.2.17.jar", "/usr/share/java/log4j-1.2.jar",
        "/usr/share/maven-repo/log4j/log4j/1.2.17/log4j-1.2.17.jar")


def test_cyclonedx_maven_purls_are_assessed_as_group_artifact() -> None:
    from patchline.assess._input import from_cyclonedx

    doc = {"bomFormat": "CycloneDX", "components": [{"type": "library", "purl": "pkg:maven/log4j/log4j@1.2.17"}]}
    (ref,) = from_cyclonedx(doc, where="sbom.json").packages
    assert (ref.ecosystem, ref.name, ref.version) == ("maven", "log4j:log4j", "1.2.17")

"""Assessment of real images against real update sources, with apt and dpkg as the oracles.

1. The debootstrap bookworm image (main only) against the host's real
   bookworm-security and bookworm-updates suites: patchline's pending updates
   equal the ``Inst`` lines of ``apt-get -s upgrade`` run inside a container of
   the image with those suites enabled, and each update's CVEs equal the CVE IDs
   that ``dpkg-parsechangelog --since INSTALLED`` prints for the new package's
   changelog (extracted from the .deb that apt downloads in the container).
2. A deterministic scenario: an image with a locally built package 1.0-1, a
   local signed apt repository publishing 1.0-2 whose changelog names a CVE,
   and an OSV record for it: both routes report it, and the CLI's exit code says so.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchline._hostapt import host_debian_mirror
from patchline.assess import Assessment, AssessOptions, UpdateSuiteSpec, assess, from_inventory
from patchline.cli import app
from patchline.errors import ConfigError
from patchline.inventory import scan_image
from patchline.oci import open_source
from tests.support.aptrepo import AptRepo
from tests.support.images import BuiltImage

pytestmark = pytest.mark.integration

_INST = re.compile(r"^Inst (\S+) \[(\S+)\] \((\S+) ")
_CVE = re.compile(r"CVE-\d{4}-\d{4,}")

_ORACLE = r"""
set -e
printf '%s\n' "$SOURCES" > /etc/apt/sources.list
apt-get update -qq >/dev/null 2>&1
echo @@upgrade
apt-get -s -o Debug::NoLocking=1 upgrade
cd /tmp
apt-get -s upgrade | sed -n 's/^Inst \([^ ]*\) \[[^]]*\] (\([^ ]*\) .*/\1=\2/p' > wanted
while read -r pkg; do apt-get download -qq "$pkg" >/dev/null 2>&1 || echo "@@nodownload $pkg"; done < wanted
for deb in *.deb; do
  [ -e "$deb" ] || continue
  name=$(dpkg-deb -f "$deb" Package)
  echo "@@changelog $name"
  for file in changelog.Debian.gz changelog.gz; do  # native packages (apt) have changelog.gz
    text=$(dpkg-deb --fsys-tarfile "$deb" | tar -xOf - "./usr/share/doc/$name/$file" 2>/dev/null \
      | gzip -dc | base64 -w0) || true
    [ -n "$text" ] && { printf '%s' "$text"; break; }
  done
  echo
done
echo @@end
"""


def _oracle(image: BuiltImage) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """apt's view inside a container: {name: (installed, candidate)} and {name: changelog text}."""
    host = host_debian_mirror("bookworm")
    if host.security is None:
        pytest.skip("the host's apt sources name no Debian security mirror: no live security suite to test with")
    sources = "\n".join([f"deb {host.mirror} bookworm main", f"deb {host.mirror} bookworm-updates main",
                         f"deb {host.security} bookworm-security main"])
    proc = subprocess.run(
        ["podman", "run", "--rm", "--network", "host", "-e", f"SOURCES={sources}", image.reference,
         "sh", "-c", _ORACLE],
        capture_output=True, text=True, check=False, timeout=600,
    )
    assert "@@end" in proc.stdout, proc.stderr[-2000:]
    installs: dict[str, tuple[str, str]] = {}
    changelogs: dict[str, str] = {}
    section = ""
    import base64

    for line in proc.stdout.splitlines():
        if line.startswith("@@changelog "):
            section = line.split(" ", 1)[1]
            continue
        if line.startswith("@@"):
            section = ""
            continue
        if m := _INST.match(line):
            installs[m.group(1)] = (m.group(2), m.group(3))
        elif section and line:
            changelogs[section] = base64.b64decode(line).decode("utf-8", "replace")
    return installs, changelogs


def _cves_since(changelog: str, installed: str, tmp: Path) -> set[str]:
    path = tmp / "changelog"
    path.write_text(changelog)
    out = subprocess.run(["dpkg-parsechangelog", "-l", str(path), "--since", installed, "-S", "Changes"],
                         capture_output=True, text=True, check=True).stdout
    return set(_CVE.findall(out))


@pytest.fixture(scope="module")
def base_assessment(debian_base_image: BuiltImage) -> Assessment:
    try:
        host_debian_mirror("bookworm")
    except ConfigError as exc:
        pytest.skip(f"no Debian mirror in the host's apt sources: {exc}")
    with open_source(debian_base_image.storage_ref) as source:
        inventory = scan_image(source)
    return assess(from_inventory(inventory), AssessOptions())


def test_pending_updates_equal_apt_get_upgrade_in_the_container(
    base_assessment: Assessment, debian_base_image: BuiltImage, tmp_path: Path
) -> None:
    if shutil.which("dpkg-parsechangelog") is None:
        pytest.skip("dpkg-parsechangelog (dpkg-dev) is not installed: run scripts/setup-host.sh")
    installs, changelogs = _oracle(debian_base_image)
    ours = {p.package.name: (p.package.version, p.candidate) for p in base_assessment.pending}
    assert ours == installs
    assert base_assessment.sources, "the update suites were derived from the image's own apt sources"
    # Each update's CVEs are those its changelog names since the installed version. Binary
    # packages whose .deb has no changelog of its own take their source's (patchline notes it).
    by_source: dict[str, set[str]] = {}
    for name, text in changelogs.items():
        if text:
            installed = installs[name][0]
            by_source.setdefault(name, set()).update(_cves_since(text, installed, tmp_path))
    for p in base_assessment.pending:
        if p.package.name in by_source:
            assert set(p.cves) == by_source[p.package.name], p.package.name


def test_scan_cli_exit_codes_on_the_live_image(debian_base_image: BuiltImage, base_assessment: Assessment) -> None:
    if not base_assessment.pending:
        pytest.skip("the live security suite has no update for this image today; nothing to fail on")
    runner = CliRunner()
    result = runner.invoke(app, ["scan", debian_base_image.storage_ref, "--json", "--fail-on-pending-updates"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["summary"]["pending_updates"] == len(base_assessment.pending)
    assert runner.invoke(app, ["scan", debian_base_image.storage_ref, "--json"]).exit_code == 0


def _image_with_local_package(base: BuiltImage, repo: AptRepo, tmp: Path) -> str:
    """An image FROM the base with hello 1.0-1 installed from the local repository's .deb."""
    deb = next((repo.root / "pool").rglob("hello_1.0-1_*.deb"))
    context = tmp / "context"
    context.mkdir()
    shutil.copy(deb, context / "hello.deb")
    (context / "Containerfile").write_text(
        f"FROM {base.reference}\nCOPY hello.deb /tmp/hello.deb\nRUN dpkg -i /tmp/hello.deb && rm /tmp/hello.deb\n"
    )
    tag = "localhost/patchline-test/assess-hello:1"
    subprocess.run(["buildah", "bud", "--quiet", "--layers=false", "-t", tag, str(context)],
                   check=True, capture_output=True)
    return tag


def test_local_repository_update_and_osv_record_both_report_it(
    debian_base_image: BuiltImage, apt_repo: AptRepo, tmp_path: Path
) -> None:
    if shutil.which("buildah") is None:
        pytest.skip("buildah is not installed: run scripts/setup-host.sh")
    apt_repo.add("hello", "1.0-1")
    apt_repo.publish("stable-security")
    tag = _image_with_local_package(debian_base_image, apt_repo, tmp_path)
    apt_repo.add("hello", "1.0-2", changelog_cves=["CVE-2099-0001"])
    apt_repo.publish("stable-security")
    feed = tmp_path / "osv"
    feed.mkdir()
    (feed / "DEBIAN-CVE-2099-0001.json").write_text(json.dumps({
        "id": "DEBIAN-CVE-2099-0001", "aliases": ["CVE-2099-0001"], "modified": "2099-01-01T00:00:00Z",
        "summary": "hello: a test vulnerability",
        "affected": [{"package": {"ecosystem": "Debian:12", "name": "hello"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-2"}]}]}],
    }))
    with open_source(f"containers-storage:{tag}") as source:
        inventory = scan_image(source)
    options = AssessOptions(suites=(UpdateSuiteSpec(apt_repo.url, "stable-security"),),
                            keyring=apt_repo.keyring, feeds=(str(feed),))
    result = assess(from_inventory(inventory), options)
    pending = {p.package.name: p for p in result.pending}
    assert pending["hello"].candidate == "1.0-2"
    assert pending["hello"].cves == ("CVE-2099-0001",)
    (finding,) = [f for f in result.findings if f.package.name == "hello"]
    assert finding.advisory == "DEBIAN-CVE-2099-0001"
    assert finding.fixed_versions == ("1.0-2",)
    assert finding.fix_available is True
    subprocess.run(["podman", "rmi", "-f", tag], capture_output=True, check=False)

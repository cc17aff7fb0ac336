"""Images of other Debian releases than the host's, and images patchline has no update route for.

The host is Debian 12 and its apt sources name bookworm suites only; one Debian archive serves every release,
so a Debian 13 (trixie) image is assessed from the same mirror URLs. apt inside a container of each image is
the oracle: patchline's pending updates equal the ``Inst`` lines of ``apt-get -s upgrade`` with the release's
-security and -updates suites enabled, and a rebuild leaves none by apt's own account.

An image patchline cannot check (busybox: no package database; a release whose security suite is gone) is
*unknown*, never clean, and a rebuild of it does not claim a fix.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchline._config import load_config
from patchline.assess import Assessment, AssessOptions, AssessState, assess, from_inventory
from patchline.build import BuildStatus, plan_fleet, rebuild, rebuild_options
from patchline.cli import app
from patchline.inventory import scan_image
from patchline.oci import open_source
from patchline.store import open_store
from tests.support.aptrepo import AptRepo
from tests.support.images import BuiltImage
from tests.support.registry import RunningRegistry, forget_local_images_of, require_tools
from tests.support.releases import debian_release_image, host_mirrors

pytestmark = pytest.mark.integration

TAG = "localhost/patchline-test/releases"
TODAY = dt.date(2026, 12, 5)  # bullseye-security's last Release is dated 2026-09-12 (frozen after LTS ended)
_INST = re.compile(r"^Inst (\S+) \[(\S+)\] \((\S+) ")


def deb822(mirror: str, security: str, release: str) -> str:
    return (f"Types: deb\nURIs: {mirror}\nSuites: {release} {release}-updates\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
            f"Types: deb\nURIs: {security}\nSuites: {release}-security\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")


def build(context: Path, tag: str, containerfile: str, files: dict[str, str] | None = None) -> str:
    context.mkdir(parents=True, exist_ok=True)
    (context / "Containerfile").write_text(containerfile)
    for name, text in (files or {}).items():
        (context / name).write_text(text)
    proc = subprocess.run(["buildah", "bud", "-q", "--layers=false", "-t", tag, str(context)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return tag


def apt_upgrades(reference: str) -> dict[str, tuple[str, str]]:
    """{package: (installed, candidate)} from ``apt-get -s upgrade`` inside a container, with the image's sources."""
    tls = ["--tls-verify=false"] if not reference.startswith("localhost/") else []  # the loopback registry
    proc = subprocess.run(["podman", "run", "--rm", "--network", "host", *tls, reference, "sh", "-c",
                           "apt-get update -qq >/dev/null && apt-get -s upgrade"],
                          capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {m.group(1): (m.group(2), m.group(3)) for line in proc.stdout.splitlines() if (m := _INST.match(line))}


def assessment(reference: str) -> Assessment:
    with open_source(f"containers-storage:{reference}") as source:
        inventory = scan_image(source)
    return assess(from_inventory(inventory), AssessOptions(changelogs=False, today=TODAY))


def assessed(reference: str) -> tuple[AssessState, dict[str, tuple[str, str]], tuple[str, ...]]:
    result = assessment(reference)
    return result.state, {p.package.name: (p.package.version, p.candidate) for p in result.pending}, result.unknown


@pytest.fixture(scope="module")
def trixie(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """trixie from main only: as shipped (deb822 sources with -security and -updates), without any sources,
    and the same packages claiming an archived release (buster) in its sources."""
    require_tools("podman", "buildah", "debootstrap")
    mirror, security = host_mirrors()
    base = debian_release_image("trixie")
    tmp = tmp_path_factory.mktemp("trixie")
    deb822_tag = build(tmp / "deb822", f"{TAG}:trixie-deb822",
                       f"FROM {base}\nRUN rm -f /etc/apt/sources.list\n"
                       "COPY debian.sources /etc/apt/sources.list.d/debian.sources\n",
                       {"debian.sources": deb822(mirror, security, "trixie")})
    images = {
        "base": base,
        "deb822": deb822_tag,
        "no-sources": build(tmp / "no-sources", f"{TAG}:trixie-no-sources",
                            f"FROM {deb822_tag}\nRUN rm -rf /etc/apt/sources.list /etc/apt/sources.list.d/*\n"),
        "archived": build(tmp / "archived", f"{TAG}:trixie-says-buster",
                          f"FROM {deb822_tag}\nRUN rm -rf /etc/apt/sources.list.d/* && "
                          f"echo 'deb {mirror} buster main' > /etc/apt/sources.list\n"),
    }
    yield images
    for name in ("deb822", "no-sources", "archived"):
        subprocess.run(["podman", "rmi", "-f", images[name]], capture_output=True, check=False)


@pytest.fixture(scope="module")
def trixie_apt(trixie: dict[str, str]) -> dict[str, tuple[str, str]]:
    upgrades = apt_upgrades(trixie["deb822"])
    assert upgrades, "trixie main lacks every update published in trixie-security since its last point release"
    return upgrades


def test_a_trixie_image_on_a_bookworm_host(trixie: dict[str, str], trixie_apt: dict[str, tuple[str, str]]) -> None:
    result = assessment(trixie["deb822"])
    assert (result.state, result.unknown, result.findings) == (AssessState.EXPOSED, (), ())  # supported: no EOSL
    assert {p.package.name: (p.package.version, p.candidate) for p in result.pending} == trixie_apt


def test_sources_deleted_the_release_comes_from_os_release(
        trixie: dict[str, str], trixie_apt: dict[str, tuple[str, str]]) -> None:
    state, pending, unknown = assessed(trixie["no-sources"])
    assert (state, unknown) == (AssessState.EXPOSED, ())
    assert pending == trixie_apt  # the same packages as the deb822 image: apt's answer there holds


def test_distroless_status_d_without_sources(trixie: dict[str, str], trixie_apt: dict[str, tuple[str, str]],
                                           tmp_path: Path) -> None:
    """Distroless style: one control stanza per package in /var/lib/dpkg/status.d, no status file, no apt
    sources: the release comes from os-release; the pending updates are apt's for the same packages."""
    split = ("mkdir -p /var/lib/dpkg/status.d && cd /var/lib/dpkg/status.d && "
             "awk 'BEGIN{RS=\"\";ORS=\"\\n\"} {split($0,l,\"\\n\"); name=substr(l[1],10); "
             "print $0 > name}' /var/lib/dpkg/status && rm -f /var/lib/dpkg/status /var/lib/dpkg/status-old && "
             "rm -rf /etc/apt/sources.list /etc/apt/sources.list.d/*")
    tag = build(tmp_path / "distroless", f"{TAG}:trixie-status-d", f"FROM {trixie['deb822']}\nRUN {split}\n")
    try:
        with open_source(f"containers-storage:{tag}") as source:
            inventory = scan_image(source)
        assert not inventory.system_file("/var/lib/dpkg/status")
        assert any("status.d" in loc for p in inventory.packages for loc in p.locations)
        result = assess(from_inventory(inventory), AssessOptions(changelogs=False, today=TODAY))
        assert (result.state, result.unknown) == (AssessState.EXPOSED, ())
        assert {p.package.name: (p.package.version, p.candidate) for p in result.pending} == trixie_apt
    finally:
        subprocess.run(["podman", "rmi", "-f", tag], capture_output=True, check=False)


def test_an_archived_release_is_unknown_not_clean(trixie: dict[str, str]) -> None:
    state, pending, unknown = assessed(trixie["archived"])
    assert state is AssessState.UNKNOWN and pending == {}
    assert any("buster-security is not at" in u and "archived or out of security support" in u for u in unknown)


@pytest.fixture(scope="module")
def bullseye(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """bullseye from main only, with its -security and -updates suites in deb822 sources."""
    require_tools("podman", "buildah", "debootstrap")
    mirror, security = host_mirrors()
    base = debian_release_image("bullseye")
    tag = build(tmp_path_factory.mktemp("bullseye"), f"{TAG}:bullseye-deb822",
                f"FROM {base}\nRUN rm -f /etc/apt/sources.list\n"
                "COPY debian.sources /etc/apt/sources.list.d/debian.sources\n",
                {"debian.sources": deb822(mirror, security, "bullseye")})
    yield tag
    subprocess.run(["podman", "rmi", "-f", tag], capture_output=True, check=False)


def test_bullseye_is_assessed_and_reported_out_of_security_support(bullseye: str) -> None:
    result = assessment(bullseye)
    assert {p.package.name: (p.package.version, p.candidate) for p in result.pending} == apt_upgrades(bullseye)
    eosl = [f for f in result.findings if f.advisory == "PATCHLINE-EOSL-DEBIAN-BULLSEYE"]
    assert len(eosl) == 1 and "bullseye-security was last updated on 2026-09-12" in (eosl[0].summary or "")
    assert result.state is AssessState.EXPOSED and result.unknown == ()


@pytest.fixture(scope="module")
def busybox_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """busybox-static alone on scratch: no package database, no os-release, no apt sources."""
    require_tools("podman", "busybox")
    root = tmp_path_factory.mktemp("busybox") / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy(shutil.which("busybox") or "", root / "bin" / "busybox")
    (root / "bin" / "sh").symlink_to("busybox")
    tag = f"{TAG}:busybox"
    tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["podman", "import", "--change", 'CMD ["/bin/sh"]', "-", tag], stdin=tar.stdout,
                   capture_output=True, check=True)
    tar.wait()
    yield tag
    subprocess.run(["podman", "rmi", "-f", tag], capture_output=True, check=False)


def test_busybox_is_unknown_in_scan(busybox_image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATCHLINE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["scan", f"containers-storage:{busybox_image}", "--json", "--no-cache"])
    assert result.exit_code == 3, result.output
    doc = json.loads(result.stdout)
    assert doc["state"] == "unknown" and "no package database" in doc["unknown"][0]
    assert "could not assess" in result.stderr


@pytest.mark.usefixtures("trixie_apt")
def test_rebuilt_from_trixie_apt_finds_nothing_left(
        trixie: dict[str, str], registry: RunningRegistry, tmp_path: Path, busybox_image: str) -> None:
    """A recipe FROM the trixie image and a patch-in-place entry of it: rebuilt, apt inside them installs
    nothing more, and a second plan is empty. A busybox recipe cannot be checked: its build fails, never
    'fixed'."""
    require_tools("skopeo", "docker-registry")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Containerfile").write_text(
        f"FROM {trixie['deb822']}\n"
        "RUN set -e; export DEBIAN_FRONTEND=noninteractive; apt-get update -q; "
        "apt-get -y -q -o Dpkg::Options::=--force-confold upgrade; apt-get clean; rm -rf /var/lib/apt/lists/*\n")
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "Containerfile").write_text(f"FROM {busybox_image}\nRUN echo hi > /hello\n")
    (tmp_path / "patchline.toml").write_text(
        f'[registries]\ninsecure = ["{registry.host}"]\n\n'
        f'[build]\nregistry = "{registry.host}"\nnamespace = "example"\njobs = 2\n'
        f'logs = "{tmp_path / "logs"}"\n\n'
        f'[store]\nurl = "sqlite:///{tmp_path / "patchline.db"}"\n\n[sign]\nenabled = false\n\n'
        '[[images]]\nname = "app"\ncontext = "app"\n\n'
        f'[[images]]\nname = "trixie-patched"\nimage = "{trixie["deb822"]}"\n\n'
        '[[images]]\nname = "tiny"\ncontext = "tiny"\n')
    config = load_config(tmp_path / "patchline.toml")
    try:
        with open_store(config.store.url) as store:
            fleet = plan_fleet(config, store)
            assert {i.name for i in fleet.plan.items} >= {"app", "trixie-patched"}
            report = rebuild(fleet.plan, fleet.graph, store, rebuild_options(config), hashes=fleet.hashes)
            results = {r.name: r for r in report.results}
            for name in ("app", "trixie-patched"):
                r = results[name]
                assert r.status is BuildStatus.BUILT, (name, r.error)
                assert r.verification is not None and r.verification.pending_after == 0
                assert apt_upgrades(f"{registry.host}/example/{name}@{r.manifest_digest}") == {}, name
            tiny = results["tiny"]  # new to the store, so planned; its rescan cannot check it: no fix claimed
            assert tiny.status is BuildStatus.FAILED, tiny
            assert "cannot check the rebuilt image's pending updates" in (tiny.error or "")
            assert {i.name for i in plan_fleet(config, store).plan.items} <= {"tiny"}
    finally:
        forget_local_images_of(registry.host)


UBUNTU_OS_RELEASE = """\
PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04.1 LTS (Noble Numbat)"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=noble
"""


def test_an_ubuntu_image_takes_its_pockets_from_a_signed_archive(
        apt_repo: AptRepo, debian_base_image: BuiltImage, tmp_path: Path) -> None:
    """A local archive laid out and signed like Ubuntu's (Origin Ubuntu; noble, noble-updates and noble-security
    pockets; a key of its own), and an image whose os-release says Ubuntu 24.04 and whose ubuntu.sources name
    it: the pending update and its CVE equal apt's in the container; without the archive's key, unknown."""
    require_tools("podman", "buildah")
    apt_repo.add("pl-hello", "1.0-1", changelog_cves=["CVE-2099-4240"])
    for pocket in ("noble", "noble-updates", "noble-security"):
        apt_repo.publish(pocket, only=["pl-hello"] if pocket == "noble" else [], codename="noble", origin="Ubuntu",
                         components=["main"])
    sources = (f"Types: deb\nURIs: {apt_repo.url}\nSuites: noble noble-updates\nComponents: main\n"
               "Signed-By: /etc/apt/keyrings/archive.gpg\n\n"
               f"Types: deb\nURIs: {apt_repo.url}\nSuites: noble-security\nComponents: main\n"
               "Signed-By: /etc/apt/keyrings/archive.gpg\n")
    context = tmp_path / "ubuntu"
    context.mkdir()
    shutil.copy(apt_repo.keyring, context / "archive.gpg")
    (context / "ubuntu.sources").write_text(sources)
    (context / "os-release").write_text(UBUNTU_OS_RELEASE)
    (context / "Containerfile").write_text(
        f"FROM {debian_base_image.reference}\n"
        "COPY archive.gpg /etc/apt/keyrings/archive.gpg\nCOPY ubuntu.sources /etc/apt/sources.list.d/ubuntu.sources\n"
        "COPY os-release /usr/lib/os-release\n"
        "RUN rm -f /etc/apt/sources.list /etc/os-release && ln -s ../usr/lib/os-release /etc/os-release && "
        "apt-get update -q && apt-get install -y -q pl-hello && rm -rf /var/lib/apt/lists/*\n")
    tag = f"{TAG}:ubuntu-noble"
    proc = subprocess.run(["buildah", "bud", "-q", "--layers=false", "--network", "host", "-t", tag, str(context)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    try:
        apt_repo.add("pl-hello", "1.0-2", changelog_cves=["CVE-2099-4242"], urgency="high")
        apt_repo.publish("noble-security", only=["pl-hello=1.0-2"], codename="noble", origin="Ubuntu",
                         components=["main"])
        with open_source(f"containers-storage:{tag}") as source:
            inventory = scan_image(source)
        assert inventory.distro is not None and inventory.distro.id == "ubuntu"
        result = assess(from_inventory(inventory), AssessOptions(keyring=apt_repo.keyring, today=TODAY))
        assert result.state is AssessState.EXPOSED and result.unknown == ()
        [pending] = result.pending
        assert (pending.package.name, pending.package.version, pending.candidate, pending.suite) == (
            "pl-hello", "1.0-1", "1.0-2", "noble-security")
        assert pending.cves == ("CVE-2099-4242",)
        assert {p.package.name: (p.package.version, p.candidate) for p in result.pending} == apt_upgrades(tag)
        # Ubuntu's own keyring (not on this host, or not the key that signs this archive): unknown, not clean.
        unverified = assess(from_inventory(inventory), AssessOptions(today=TODAY, changelogs=False))
        assert unverified.state is AssessState.UNKNOWN and "noble-security" in unverified.unknown[0]
    finally:
        subprocess.run(["podman", "rmi", "-f", tag], capture_output=True, check=False)

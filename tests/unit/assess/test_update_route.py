"""Which update sources an image takes updates from, and when patchline cannot tell: unknown, never clean.

No network: every case either raises NoUpdateRoute before a source is read, or names its suites; the host's
apt sources are a temporary directory shaped like a Debian 12 host's.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchline import _hostapt
from patchline._model import Distro, Ecosystem, Inventory, Package, Purl
from patchline.assess import (
    Assessment,
    AssessOptions,
    AssessState,
    assess,
    debian_release,
    from_inventory,
    out_of_support,
    render_assessment,
    unchecked_sources,
    update_suites_for,
)
from patchline.assess.model import AssessSkip, PackageRef, PendingUpdate, Severity
from patchline.cli import app
from patchline.errors import NoUpdateRoute
from patchline.sbom import load_inventory_json
from patchline.updates import AptSuite, ReleaseInfo, SourceIndexes

DATA = Path(__file__).resolve().parents[2] / "data" / "sbom" / "debian-app" / "inventory.json"
HOST = "http://mirror.example/debian"
HOST_SECURITY = "http://mirror.example/debian-security"
BOOKWORM_HOST = f"""\
Types: deb
URIs: {HOST}
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: {HOST_SECURITY}
Suites: bookworm-security
Components: main
"""
TRIXIE_DEB822 = """\
Types: deb
URIs: http://image-mirror.example/debian
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://image-mirror.example/debian-security
Suites: trixie-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
TRIXIE = Distro(id="debian", version_id="13", version_codename="trixie", pretty_name="Debian GNU/Linux 13 (trixie)")


@pytest.fixture(scope="module")
def debian_app() -> Inventory:
    return load_inventory_json(DATA.read_text())


@pytest.fixture
def host_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The host's /etc/apt: a Debian 12 host's sources (bookworm suites only)."""
    etc = tmp_path / "etc-apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list.d" / "debian.sources").write_text(BOOKWORM_HOST)
    real = _hostapt.host_debian_mirror
    monkeypatch.setattr(_hostapt, "host_debian_mirror", lambda suite=None: real(suite, etc_apt=etc))
    return etc


def image(inv: Inventory, *, distro: Distro | None, files: dict[str, str], packages: tuple[Package, ...] | None = None,
          ) -> Inventory:
    return replace(inv, distro=distro, system_files=tuple(sorted(files.items())),
                   packages=inv.packages if packages is None else packages)


def pkg(ecosystem: Ecosystem, name: str, version: str) -> Package:
    return Package(ecosystem=ecosystem, name=name, version=version,
                   purl=Purl(f"pkg:{ecosystem.value}/{name}@{version}"), introduced_in=0, changed_in=0, locations=())


def suites_of(inv: Inventory) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(s.url, s.suite, s.components) for s in update_suites_for(from_inventory(inv), AssessOptions())]


# -- any Debian release, from this bookworm host ----------------------------------------------------------------


@pytest.mark.usefixtures("host_apt")
def test_a_trixie_image_on_a_bookworm_host(debian_app: Inventory) -> None:
    inv = image(debian_app, distro=TRIXIE, files={"/etc/apt/sources.list.d/debian.sources": TRIXIE_DEB822})
    # The host's mirror serves every release: trixie's suites come from it, not from the image's URIs.
    assert suites_of(inv) == [(HOST_SECURITY, "trixie-security", ("main",)), (HOST, "trixie-updates", ("main",))]


@pytest.mark.usefixtures("host_apt")
@pytest.mark.parametrize(("distro", "files", "release"), [
    pytest.param(Distro(id="debian", version_id="12", version_codename="bookworm"), {}, "bookworm",
                 id="sources-deleted-os-release-codename"),
    pytest.param(Distro(id="debian", version_id="11"), {}, "bullseye", id="os-release-version-id-only"),
    pytest.param(None, {"/etc/debian_version": "13.2\n"}, "trixie", id="distroless-debian-version"),
    pytest.param(None, {"/etc/debian_version": "trixie/sid\n"}, "trixie", id="testing-debian-version"),
    pytest.param(Distro(id="debian", version_codename="bookworm"),
                 {"/etc/apt/sources.list.d/nodesource.list": "deb https://nodes.example/node nodistro main\n"},
                 "bookworm", id="only-third-party-sources"),
])
def test_the_release_comes_from_os_release_or_debian_version(
        debian_app: Inventory, distro: Distro | None, files: dict[str, str], release: str) -> None:
    inv = image(debian_app, distro=distro, files=files)
    assert debian_release(from_inventory(inv)) == release
    assert suites_of(inv) == [(HOST_SECURITY, f"{release}-security", ("main",)),
                              (HOST, f"{release}-updates", ("main",))]


def test_without_a_host_mirror_the_image_s_own_mirror_is_used(
        debian_app: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    etc = tmp_path / "empty"
    (etc / "sources.list.d").mkdir(parents=True)
    real = _hostapt.host_debian_mirror
    monkeypatch.setattr(_hostapt, "host_debian_mirror", lambda suite=None: real(suite, etc_apt=etc))
    inv = image(debian_app, distro=TRIXIE, files={"/etc/apt/sources.list.d/debian.sources": TRIXIE_DEB822})
    assert suites_of(inv) == [("http://image-mirror.example/debian-security", "trixie-security", ("main",)),
                              ("http://image-mirror.example/debian", "trixie-updates", ("main",))]


# -- Ubuntu: its pockets at the archive the image names ----------------------------------------------------------

UBUNTU_SOURCES = """\
Types: deb
URIs: http://ubuntu-archive.example/ubuntu/
Suites: noble noble-updates noble-backports
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg

Types: deb
URIs: http://ubuntu-security.example/ubuntu/
Suites: noble-security
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
"""
NOBLE = Distro(id="ubuntu", version_id="24.04", version_codename="noble", pretty_name="Ubuntu 24.04.1 LTS",
               id_like=("debian",))


@pytest.mark.usefixtures("host_apt")
@pytest.mark.parametrize(("files", "arch", "archive", "security"), [
    pytest.param({"/etc/apt/sources.list.d/ubuntu.sources": UBUNTU_SOURCES}, "amd64",
                 "http://ubuntu-archive.example/ubuntu", "http://ubuntu-security.example/ubuntu", id="deb822"),
    pytest.param({"/etc/apt/sources.list": "deb http://ports.example/ubuntu-ports noble main universe\n"
                                           "deb http://ports.example/ubuntu-ports noble-security main universe\n"
                                           "deb http://ports.example/ubuntu-ports noble-updates main universe\n"},
                 "arm64", "http://ports.example/ubuntu-ports", "http://ports.example/ubuntu-ports",
                 id="ports-one-line"),
])
def test_ubuntu_pockets_from_the_image_s_archive(debian_app: Inventory, files: dict[str, str], arch: str,
                                                 archive: str, security: str) -> None:
    from patchline.updates import UBUNTU_ARCHIVE_KEYRING

    inv = image(debian_app, distro=NOBLE, files=files)
    inv = replace(inv, image=replace(inv.image, architecture=arch))
    suites = update_suites_for(from_inventory(inv), AssessOptions())
    components = ("main", "restricted", "universe", "multiverse") if arch == "amd64" else ("main", "universe")
    assert [(s.url, s.suite, s.components, s.arch, s.keyring) for s in suites] == [
        (security, "noble-security", components, arch, UBUNTU_ARCHIVE_KEYRING),
        (archive, "noble-updates", components, arch, UBUNTU_ARCHIVE_KEYRING)]


def test_proposed_updates_belong_to_their_release() -> None:
    from patchline._hostapt import release_of

    assert [release_of(s) for s in ("bookworm-proposed-updates", "noble-proposed", "bullseye/updates",
                                     "trixie-backports", "sid")] == ["bookworm", "noble", "bullseye", "trixie", "sid"]


# -- no route: unknown ------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("host_apt")
@pytest.mark.parametrize(("distro", "files", "packages", "reason"), [
    pytest.param(None, {}, (), "no package database of the operating system", id="busybox"),
    pytest.param(Distro(id="alpine", version_id="3.20.1", pretty_name="Alpine Linux v3.20"), {},
                 (pkg(Ecosystem.APK, "musl", "1.2.5-r0"),), "no update route for Alpine Linux v3.20", id="alpine"),
    pytest.param(Distro(id="rocky", version_id="9.4"), {}, (pkg(Ecosystem.RPM, "bash", "5.1.8-9.el9"),),
                 "no update route for rocky", id="rpm-rootfs"),
    pytest.param(Distro(id="ubuntu", version_id="24.04", version_codename="noble", pretty_name="Ubuntu 24.04 LTS"),
                 {}, None, "the image's apt sources name no archive for Ubuntu noble", id="ubuntu-without-sources"),
    pytest.param(None, {}, None, "cannot tell which Debian release", id="debian-packages-no-release"),
])
def test_no_update_route_is_unknown_never_clean(debian_app: Inventory, distro: Distro | None, files: dict[str, str],
                                                packages: tuple[Package, ...] | None, reason: str) -> None:
    inv = image(debian_app, distro=distro, files=files, packages=packages)
    with pytest.raises(NoUpdateRoute, match=reason):
        update_suites_for(from_inventory(inv), AssessOptions())
    result = assess(from_inventory(inv), AssessOptions(changelogs=False))
    assert result.state is AssessState.UNKNOWN
    assert len(result.unknown) == 1 and reason in result.unknown[0]
    assert (result.pending, result.findings, result.sources) == ((), (), ())


def test_an_sbom_of_application_packages_only_has_no_os_to_update(debian_app: Inventory) -> None:
    scan = replace(from_inventory(debian_app), inventory=None, distro=None,
                   packages=tuple(p for p in from_inventory(debian_app).packages if p.ecosystem == "pypi"))
    assert update_suites_for(scan, AssessOptions()) == []
    assert assess(scan, AssessOptions()).state is AssessState.CLEAN


def test_updates_switched_off_are_not_unknown(debian_app: Inventory) -> None:
    inv = image(debian_app, distro=None, files={}, packages=())
    assert assess(from_inventory(inv), AssessOptions(updates=False)).state is AssessState.CLEAN


# -- sources that cannot be read or are gone ------------------------------------------------------------------


def test_unread_sources_and_a_missing_security_suite_are_unchecked() -> None:
    security = AptSuite("http://m.example/debian-security", "buster-security", ("main",))
    updates = AptSuite("http://m.example/debian", "buster-updates", ("main",))
    loaded = SourceIndexes(indexes=(), skipped=(AssessSkip(security.label, "no InRelease or Release"),
                                                AssessSkip(updates.label, "no InRelease or Release")),
                           sources=(security.label, updates.label), missing=(security.label, updates.label))
    [reason] = unchecked_sources([security, updates], loaded)  # -updates missing: nothing to update from
    assert "buster-security is not at http://m.example/debian-security" in reason
    assert "archived or out of security support" in reason
    outage = SourceIndexes(indexes=(), skipped=(AssessSkip(updates.label, "connection refused"),),
                           sources=(updates.label,))
    assert unchecked_sources([updates], outage) == [f"{updates.label}: connection refused"]


def test_state_exposed_beats_unknown() -> None:
    ref = PackageRef(ecosystem="deb", name="libc6", version="2.36-9", purl="pkg:deb/debian/libc6@2.36-9")
    pending = PendingUpdate(package=ref, candidate="2.36-9+deb12u9", suite="bookworm-security", source_name="glibc",
                            source_version="2.36-9+deb12u9")
    assert Assessment(image="x", config_digest=None).state is AssessState.CLEAN
    assert Assessment(image="x", config_digest=None, unknown=("why",)).state is AssessState.UNKNOWN
    assert Assessment(image="x", config_digest=None, pending=(pending,), unknown=("why",)).state is AssessState.EXPOSED


# -- every format says unknown ----------------------------------------------------------------------------------


def test_every_format_says_unknown(debian_app: Inventory) -> None:
    inv = image(debian_app, distro=None, files={}, packages=())
    result = assess(from_inventory(inv), AssessOptions())
    doc = json.loads(render_assessment(result, "json"))
    assert (doc["state"], doc["summary"]["state"]) == ("unknown", "unknown")
    assert "no package database" in doc["unknown"][0]
    sarif = json.loads(render_assessment(result, "sarif"))
    [invocation] = sarif["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False
    assert "no package database" in invocation["toolExecutionNotifications"][0]["message"]["text"]
    assert sarif["runs"][0]["properties"]["patchline:state"] == "unknown"
    cdx = json.loads(render_assessment(result, "cyclonedx", inventory=inv))
    props = {(p["name"], p["value"]) for p in cdx["metadata"]["properties"]}
    assert ("patchline:assessment:state", "unknown") in props
    assert any(n == "patchline:assessment:unknown" and "no package database" in v for n, v in props)


def test_scan_exits_3_when_it_could_not_assess(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               debian_app: Inventory) -> None:
    from patchline.sbom import render_sbom

    monkeypatch.delenv("PATCHLINE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    busybox = tmp_path / "busybox.json"
    busybox.write_text(render_sbom(image(debian_app, distro=None, files={}, packages=()), "json"))
    runner = CliRunner()
    table = runner.invoke(app, ["scan", "--sbom", str(busybox)])
    assert table.exit_code == 3, table.output
    assert "UNKNOWN" in table.stdout and ": unknown: 0 pending updates" in table.stdout
    assert "could not assess: no package database" in table.stderr
    as_json = runner.invoke(app, ["scan", "--sbom", str(busybox), "--json"])
    assert as_json.exit_code == 3 and json.loads(as_json.stdout)["state"] == "unknown"


# -- a release out of security support ------------------------------------------------------------------------


def _release(suite: str, date: dt.datetime) -> ReleaseInfo:
    return ReleaseInfo(suite=suite, codename=None, date=date, valid_until=None, components=("main",),
                       architectures=("amd64",), acquire_by_hash=True, sha256={}, signed_by=None)


@pytest.mark.parametrize(("today", "expected"), [
    (dt.date(2026, 12, 5), ["PATCHLINE-EOSL-DEBIAN-BULLSEYE"]),  # 84 days after its security suite stopped
    (dt.date(2026, 10, 1), []),  # 19 days: a quiet suite, not a stopped one
])
def test_a_security_suite_that_stopped_is_a_finding(debian_app: Inventory, today: dt.date,
                                                    expected: list[str]) -> None:
    stopped = dt.datetime(2026, 9, 12, 9, 27, tzinfo=dt.UTC)
    loaded = SourceIndexes(indexes=(), releases=(
        ("http://m.example/debian-security bullseye-security", _release("oldoldstable-security", stopped)),
        ("http://m.example/debian bullseye-updates", _release("oldoldstable-updates", stopped))))
    findings = out_of_support(from_inventory(debian_app), loaded, today=today)
    assert [f.advisory for f in findings] == expected
    if findings:
        [f] = findings
        assert f.severity is Severity.HIGH and f.package.name == "base-files"
        assert "out of security support" in (f.summary or "") and "2026-09-12 (84 days ago)" in (f.summary or "")
        result = Assessment(image="x", config_digest=None, findings=tuple(findings))
        assert result.state is AssessState.EXPOSED  # never "0 pending updates, clean"

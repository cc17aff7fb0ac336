"""Apt update sources against a real local repository (and apt itself), and the live security suite."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from patchline._hostapt import host_debian_mirror
from patchline._model import Ecosystem, Package, Purl
from patchline.errors import ConfigError, IndexExpiredError, IndexSignatureError, SuiteMissing, UpdateSourceError
from patchline.updates import (
    DEBIAN_ARCHIVE_KEYRING,
    AptSuite,
    FetchOptions,
    load_sources,
    plan_upgrade,
    read_changelogs,
)
from patchline.updates._packages import decompress_index, parse_packages
from patchline.updates.apt import fetch_release
from tests.support.aptrepo import AptRepo

pytestmark = pytest.mark.integration

SUITE = "stable-security"

# The image's dpkg status, as the inventory would read it (relations included).
STATUS = """\
Package: hello
Status: install ok installed
Version: 1.0-1
Architecture: amd64
Depends: libhello1 (= 1.0-1)

Package: libhello1
Status: install ok installed
Version: 1.0-1
Architecture: amd64
Source: hello

Package: tool
Status: install ok installed
Version: 2.0-1
Architecture: amd64

Package: gadget
Status: install ok installed
Version: 1.0-1
Architecture: amd64

Package: mawkish
Status: install ok installed
Version: 1.0
Architecture: amd64
Provides: awk-virtual

Package: libbar
Status: install ok installed
Version: 1.0-1
Architecture: amd64

Package: barclient
Status: install ok installed
Version: 1.0-1
Architecture: amd64
Depends: libbar

Package: oldpkg
Status: install ok installed
Version: 3.0-1
Architecture: amd64

Package: docs
Status: install ok installed
Version: 1.0-1
Architecture: all
"""


def _installed(status: str = STATUS) -> list[Package]:
    """The Package records the inventory makes of ``status``."""
    out = []
    for p in parse_packages(status):
        arch = p.arch
        out.append(
            Package(
                ecosystem=Ecosystem.DEB,
                name=p.name,
                version=p.version,
                purl=Purl(f"pkg:deb/debian/{p.name}@{p.version}?arch={arch}"),
                introduced_in=0,
                changed_in=0,
                locations=("/var/lib/dpkg/status",),
                source_name=p.source_name,
                source_version=p.source_version,
                arch=arch,
            )
        )
    return out


def _publish_updates(repo: AptRepo) -> None:
    repo.add("hello", "1.0-1", changelog_cves=["CVE-2099-0000"])
    repo.add("hello", "1.0-2", depends="libhello1 (= 1.0-2)", changelog_cves=["CVE-2099-0001"], urgency="high")
    repo.add("libhello1", "1.0-2", source="hello", doc_symlink_to="hello")
    repo.add("tool", "2.0-2", depends="newdep (>= 1)", changelog_cves=["CVE-2099-0002"])  # kept back
    repo.add("gadget", "1.0-2", depends="awk-virtual", changelog_cves=["CVE-2099-0003"])  # via Provides
    repo.add("libbar", "1.0-2", breaks="barclient (<< 1.0-2)")  # breaks an installed package
    repo.add("oldpkg", "2.0-1")  # older than installed: never a downgrade
    repo.add("docs", "1.0-2", arch="all", changelog_cves=["CVE-2099-0004"])
    repo.publish(SUITE, only=[n for n in _UPDATES])


_UPDATES = ["hello=1.0-2", "libhello1=1.0-2", "tool=2.0-2", "gadget=1.0-2", "libbar=1.0-2", "oldpkg=2.0-1", "docs"]


def _options(repo: AptRepo, tmp_path: Path, **kw: object) -> FetchOptions:
    return FetchOptions(keyring=repo.keyring, cache_dir=tmp_path / "cache", **kw)  # type: ignore[arg-type]


def _apt_get_upgrade(repo: AptRepo, status: str, tmp_path: Path) -> tuple[dict[str, str], set[str]]:
    """Run the real ``apt-get -s upgrade`` in an isolated apt root: (Inst name -> version, kept back)."""
    root = tmp_path / "aptroot"
    dirs = "etc/apt/sources.list.d etc/apt/apt.conf.d etc/apt/preferences.d etc/apt/trusted.gpg.d"
    dirs += " var/lib/apt/lists/partial var/cache/apt/archives/partial var/lib/dpkg var/log/apt"
    for d in dirs.split():
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").write_text(status)
    (root / "etc/apt/sources.list").write_text(f"deb [signed-by={repo.keyring}] {repo.url} {SUITE} main\n")
    conf = root / "apt.conf"
    conf.write_text(
        f'Dir "{root}/";\n'
        f'Dir::State::status "{root}/var/lib/dpkg/status";\n'
        f'Dir::Etc::Trusted "{repo.keyring}";\n'
        'APT::Architecture "amd64";\nAPT::Architectures { "amd64"; };\n'
        'APT::Sandbox::User "root";\nDebug::NoLocking "true";\nAcquire::Languages "none";\n'
        'Acquire::http::Proxy "DIRECT";\n'
    )
    env = {**os.environ, "APT_CONFIG": str(conf), "LC_ALL": "C"}
    upd = subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True, check=False)
    assert upd.returncode == 0, upd.stdout + upd.stderr
    assert "W:" not in upd.stderr and "E:" not in upd.stderr, upd.stderr
    sim = subprocess.run(["apt-get", "-s", "upgrade"], env=env, capture_output=True, text=True, check=False)
    assert sim.returncode == 0, sim.stdout + sim.stderr
    inst = {m[1]: m[3] for m in re.finditer(r"^Inst (\S+) \[([^\]]+)\] \((\S+) ", sim.stdout, re.M)}
    kept: set[str] = set()
    m = re.search(r"The following packages have been kept back:\n((?:  .*\n)+)", sim.stdout)
    if m:
        kept = set(m.group(1).split())
    return inst, kept


def test_pending_updates_match_apt_get_upgrade(apt_repo: AptRepo, tmp_path: Path) -> None:
    if shutil.which("apt-get") is None:
        pytest.skip("apt-get is not installed: it is the oracle of this test")
    _publish_updates(apt_repo)
    loaded = load_sources([AptSuite(apt_repo.url, SUITE, ("main",))], _options(apt_repo, tmp_path))
    assert loaded.skipped == ()
    assert loaded.sources == (f"{apt_repo.url} {SUITE}",)
    plan = plan_upgrade(_installed(), loaded.indexes, dpkg_status=STATUS)

    ours = {u.package.name: u.candidate for u in plan.pending}
    ours_kept = {k.package.name for k in plan.kept_back}
    assert ours == {"hello": "1.0-2", "libhello1": "1.0-2", "gadget": "1.0-2", "docs": "1.0-2"}
    assert ours_kept == {"tool", "libbar"}
    assert "newdep" in next(k.reason for k in plan.kept_back if k.package.name == "tool")

    # The oracle: apt itself, against the same repository and the same status.
    apt_inst, apt_kept = _apt_get_upgrade(apt_repo, STATUS, tmp_path)
    print(f"\napt-get -s upgrade: Inst {sorted(apt_inst.items())}, kept back {sorted(apt_kept)}")
    assert ours == apt_inst
    assert ours_kept == apt_kept

    # Binary packages of one source are grouped by it.
    hello = {u.package.name: u for u in plan.pending if u.source_name == "hello"}
    assert set(hello) == {"hello", "libhello1"}
    assert {u.source_version for u in hello.values()} == {"1.0-2"}
    assert all(u.suite == SUITE for u in plan.pending)

    # CVEs from the changelogs, newer than the installed version only.
    result = read_changelogs(plan, cache_dir=tmp_path / "cache")
    by_name = {u.package.name: u for u in result.pending}
    assert by_name["hello"].cves == ("CVE-2099-0001",)
    assert by_name["hello"].urgency == "high"
    assert by_name["hello"].changelog_error is None
    # libhello1's doc dir is a symlink to hello's: read from hello's .deb, and said so.
    assert by_name["libhello1"].cves == ("CVE-2099-0001",)
    assert any(n.startswith("libhello1 1.0-2: changelog read from hello") for n in result.notes)
    assert by_name["gadget"].cves == ("CVE-2099-0003",)
    assert by_name["docs"].cves == ("CVE-2099-0004",)

    # Warm: cached by the .deb's SHA256, so a dead server does not matter.
    apt_repo.close()
    again = read_changelogs(plan, cache_dir=tmp_path / "cache")
    assert again == result


def test_publish_later_version(apt_repo: AptRepo, tmp_path: Path) -> None:
    """A suite that gains an update between two loads shows it (the rebuild tests reuse this)."""
    apt_repo.add("hello", "1.0-1")
    apt_repo.publish(SUITE)
    installed = [p for p in _installed() if p.name == "hello"]
    suite = AptSuite(apt_repo.url, SUITE, ("main",))
    status = "Package: hello\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: amd64\n"
    first = load_sources([suite], _options(apt_repo, tmp_path))
    assert plan_upgrade(installed, first.indexes, dpkg_status=status).pending == ()
    apt_repo.add("hello", "1.0-2", changelog_cves=["CVE-2099-0001"])
    apt_repo.publish(SUITE)
    second = load_sources([suite], _options(apt_repo, tmp_path))
    plan = plan_upgrade(installed, second.indexes, dpkg_status=status)
    assert [(u.package.name, u.candidate) for u in plan.pending] == [("hello", "1.0-2")]
    assert read_changelogs(plan, cache_dir=tmp_path / "cache").pending[0].cves == ("CVE-2099-0001",)


def test_signed_by_another_key_is_refused(apt_repo: AptRepo, tmp_path: Path) -> None:
    apt_repo.add("hello", "1.0-2")
    apt_repo.publish(SUITE, sign="other")
    with pytest.raises(IndexSignatureError, match="unknown key"):
        AptSuite(apt_repo.url, SUITE, ("main",)).fetch(_options(apt_repo, tmp_path))


def test_tampered_inrelease_is_refused(apt_repo: AptRepo, tmp_path: Path) -> None:
    apt_repo.add("hello", "1.0-2")
    dists = apt_repo.publish(SUITE)
    inrelease = dists / "InRelease"
    text = inrelease.read_text()
    inrelease.write_text(text.replace("Label: patchline-tests", "Label: patchline-tampr"))
    with pytest.raises(IndexSignatureError, match="bad signature"):
        AptSuite(apt_repo.url, SUITE, ("main",)).fetch(_options(apt_repo, tmp_path))


def test_unsigned_is_refused_unless_unsafe(apt_repo: AptRepo, tmp_path: Path) -> None:
    apt_repo.add("hello", "1.0-2")
    apt_repo.publish(SUITE, sign="none")
    suite = AptSuite(apt_repo.url, SUITE, ("main",))
    with pytest.raises(IndexSignatureError, match="unsigned"):
        suite.fetch(_options(apt_repo, tmp_path))
    # load_sources records it as a skip and goes on
    loaded = load_sources([suite], _options(apt_repo, tmp_path))
    assert loaded.indexes == () and "unsigned" in loaded.skipped[0].reason
    got = suite.fetch(_options(apt_repo, tmp_path, unsafe_skip_signature=True))
    assert [p.name for p in got.indexes[0].packages] == ["hello"]


def test_unsafe_skip_signature_reads_a_badly_signed_inrelease(apt_repo: AptRepo, tmp_path: Path) -> None:
    apt_repo.add("hello", "1.0-2")
    apt_repo.publish(SUITE, sign="other")
    got = AptSuite(apt_repo.url, SUITE, ("main",)).fetch(_options(apt_repo, tmp_path, unsafe_skip_signature=True))
    assert got.indexes[0].by_name["hello"][0].version == "1.0-2"


def test_expired_release_is_refused(apt_repo: AptRepo, tmp_path: Path) -> None:
    apt_repo.add("hello", "1.0-2")
    apt_repo.publish(SUITE, valid_until=datetime.now(UTC) - timedelta(days=1))
    with pytest.raises(IndexExpiredError, match="expired on"):
        AptSuite(apt_repo.url, SUITE, ("main",)).fetch(_options(apt_repo, tmp_path))


def test_truncated_packages_xz_is_skipped_and_other_suites_go_on(apt_repo: AptRepo, tmp_path: Path) -> None:
    apt_repo.add("hello", "1.0-2")
    apt_repo.publish(SUITE)
    apt_repo.publish("stable-updates")
    xz = apt_repo.packages_path(SUITE)
    xz.write_bytes(xz.read_bytes()[: xz.stat().st_size // 2])
    suites = [AptSuite(apt_repo.url, SUITE, ("main",)), AptSuite(apt_repo.url, "stable-updates", ("main",))]
    loaded = load_sources(suites, _options(apt_repo, tmp_path))
    assert [i.suite for i in loaded.indexes] == ["stable-updates"]
    (skip,) = loaded.skipped
    assert skip.what == f"{apt_repo.url}/dists/{SUITE}/main/binary-amd64"
    assert "Packages.xz" in skip.reason and "truncated" in skip.reason and "skipped" in skip.reason
    assert loaded.unread == (skip,)  # there but unreadable: planning without it would hide its updates
    with pytest.raises(UpdateSourceError, match="truncated"):
        load_sources(suites, _options(apt_repo, tmp_path), strict=True)


def test_release_without_the_component(apt_repo: AptRepo, tmp_path: Path) -> None:
    apt_repo.add("hello", "1.0-2")
    apt_repo.publish(SUITE)
    suite = AptSuite(apt_repo.url, SUITE, ("main", "contrib"))
    got = suite.fetch(_options(apt_repo, tmp_path))
    assert [i.component for i in got.indexes] == ["main"]
    assert "no component 'contrib'" in got.skipped[0].reason
    assert got.unread == ()  # not there at all: nothing to update from, the rest is planned without it
    with pytest.raises(UpdateSourceError, match="no component 'contrib'"):
        load_sources([suite], _options(apt_repo, tmp_path), strict=True)


def test_wrong_suite_name(apt_repo: AptRepo, tmp_path: Path) -> None:
    apt_repo.add("hello", "1.0-2")
    apt_repo.publish(SUITE)
    with pytest.raises(SuiteMissing, match="no InRelease or Release"):
        AptSuite(apt_repo.url, "nosuch", ("main",)).fetch(_options(apt_repo, tmp_path))
    loaded = load_sources([AptSuite(apt_repo.url, SUITE, ("main",)), AptSuite(apt_repo.url, "nosuch", ("main",))],
                          _options(apt_repo, tmp_path))
    assert [i.suite for i in loaded.indexes] == [SUITE]
    assert len(loaded.skipped) == 1 and loaded.unread == ()


def test_an_unreachable_source_is_unread_not_missing(apt_repo: AptRepo, tmp_path: Path) -> None:
    apt_repo.add("hello", "1.0-2")
    apt_repo.publish(SUITE)
    with socket.socket() as sock:  # a port nothing listens on: the mirror is down
        sock.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{sock.getsockname()[1]}"
    loaded = load_sources([AptSuite(apt_repo.url, SUITE, ("main",)), AptSuite(down, SUITE, ("main",))],
                          _options(apt_repo, tmp_path))
    assert [i.suite for i in loaded.indexes] == [SUITE]
    (skip,) = loaded.unread
    assert "cannot fetch" in skip.reason


# --- live: the host's Debian mirrors ---------------------------------------------------------------------------------


def _host_mirrors() -> tuple[str, str]:
    try:
        mirror, security = host_debian_mirror("bookworm")
    except ConfigError as exc:
        pytest.skip(f"the host has no Debian bookworm source: {exc}")
    if security is None:
        pytest.skip("the host's apt sources name no bookworm-security source")
    if not DEBIAN_ARCHIVE_KEYRING.is_file():
        pytest.skip(f"{DEBIAN_ARCHIVE_KEYRING} is missing (apt-get install debian-archive-keyring)")
    return mirror, security


def _timed_load(suite: AptSuite, cache: Path) -> tuple[float, int]:
    start = time.perf_counter()
    try:
        got = suite.fetch(FetchOptions(cache_dir=cache))
    except UpdateSourceError as exc:
        if isinstance(exc.__cause__, httpx.HTTPError):
            pytest.skip(f"the host's mirror cannot be reached: {exc}")
        raise
    assert got.skipped == (), got.skipped
    return time.perf_counter() - start, len(got.indexes[0].packages)


def test_live_bookworm_security(tmp_path: Path) -> None:
    from debian.deb822 import Packages

    _, security = _host_mirrors()
    suite = AptSuite(security, "bookworm-security", ("main",))
    cache = tmp_path / "cache"
    cold, count = _timed_load(suite, cache)
    warm, _ = _timed_load(suite, cache)
    assert count > 100
    with httpx.Client(timeout=60) as client:
        release = fetch_release(suite, FetchOptions(cache_dir=cache), client=client)
    assert release.codename == "bookworm-security" and release.signed_by
    name = "main/binary-amd64/Packages.xz"
    sha = release.sha256[name][0]
    text = decompress_index((cache / "blobs" / "sha256" / sha).read_bytes(), path=name)

    start = time.perf_counter()
    ours = parse_packages(text)
    fast = time.perf_counter() - start
    start = time.perf_counter()
    theirs = list(Packages.iter_paragraphs(text.splitlines(keepends=True), use_apt_pkg=False))
    slow = time.perf_counter() - start
    assert len(ours) == len(theirs) == count
    for mine, para in zip(ours, theirs, strict=True):
        source = para.get("Source", para["Package"])
        src_name, _, rest = source.partition(" ")
        assert (mine.name, mine.version, mine.source_name) == (para["Package"], para["Version"], src_name)
        assert mine.source_version == (rest.strip("() ") or para["Version"])
        assert (mine.sha256, mine.size, mine.depends) == (para["SHA256"], int(para["Size"]), para.get("Depends", ""))
    print(
        f"\nbookworm-security main: {count} stanzas; load cold {cold:.2f} s (fetch+verify+parse), "
        f"warm {warm:.2f} s (InRelease fetch+verify, parsed cache); "
        f"parse only: fast parser {fast:.3f} s, python-debian deb822 {slow:.3f} s"
    )


def test_live_bookworm_main_parse_time(tmp_path: Path) -> None:
    mirror, _ = _host_mirrors()
    suite = AptSuite(mirror, "bookworm", ("main",))
    cache = tmp_path / "cache"
    cold, count = _timed_load(suite, cache)
    warm, _ = _timed_load(suite, cache)
    with httpx.Client(timeout=60) as client:
        release = fetch_release(suite, FetchOptions(cache_dir=cache), client=client)
    sha = release.sha256["main/binary-amd64/Packages.xz"][0]
    from patchline.updates._packages import load_parsed

    start = time.perf_counter()
    parsed = load_parsed(cache, sha)
    warm_parse = time.perf_counter() - start
    assert parsed is not None and len(parsed) == count > 50_000
    print(
        f"\nbookworm main: {count} stanzas; load cold {cold:.2f} s (download ~9 MB, verify, parse), "
        f"warm {warm:.2f} s (incl. InRelease fetch+gpgv); warm parse from cache alone {warm_parse:.3f} s"
    )

"""dpkg: the status database of this Debian 12 host, distroless status.d, file lists.

Oracles: each ``dpkg-query.tsv`` is the output of
``dpkg-query --admindir=root/var/lib/dpkg -W
-f='${Package}\\t${Version}\\t${source:Package}\\t${source:Version}\\t${Architecture}\\t${db:Status-Abbrev}\\n'``
(for ``status-removed-and-broken``, run on a copy without the three broken stanzas,
which dpkg-query refuses to read); ``status.d-distroless/dpkg-deb-f.tsv`` is
``dpkg-deb -f`` of the real .debs whose control files and md5sums are the fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from catalog_harness import DATA, check_scenario, scenarios

from patchline._model import Ecosystem
from patchline.catalog import DpkgCataloger, Found


@pytest.mark.parametrize("scenario", scenarios("dpkg"), ids=lambda p: p.name)
def test_scenario(scenario: Path) -> None:
    check_scenario(DpkgCataloger(), scenario)


@pytest.mark.parametrize("scenario", ["status-bookworm-host", "status-removed-and-broken"])
def test_installed_packages_match_dpkg_query(scenario: str) -> None:
    """What dpkg-query reports with state "installed" is exactly what the cataloger finds."""
    want = set()
    for line in (DATA / "dpkg" / scenario / "dpkg-query.tsv").read_text().splitlines():
        name, version, source, source_version, arch, abbrev = line.split("\t")
        if abbrev.strip()[1] == "i":
            want.add((name, version, source, source_version, arch))
    data = (DATA / "dpkg" / scenario / "root/var/lib/dpkg/status").read_bytes()
    got = {
        (p.name, p.version, p.source_name, p.source_version, p.arch)
        for p in DpkgCataloger().parse("/var/lib/dpkg/status", data).packages
    }
    assert got == want
    assert any(v != sv for _, v, _, sv, _ in want), "fixture must hold binNMU versions"


@pytest.mark.parametrize(
    ("list_name", "arch"),
    [("libfoo1:amd64.list", "amd64"), ("python3-foo.list", None)],
)
def test_file_list_name_and_arch_come_from_the_file_name(list_name: str, arch: str | None) -> None:
    data = b"/.\n/usr/lib/python3/dist-packages/foo-1.0.dist-info\n/usr/lib/libfoo.so.1\n"
    result = DpkgCataloger().parse(f"/var/lib/dpkg/info/{list_name}", data)
    assert result.packages == (
        Found(
            ecosystem=Ecosystem.DEB,
            name=list_name.removesuffix(".list").partition(":")[0],
            version="",
            arch=arch,
            owned_paths=(
                "/usr/lib/python3/dist-packages/foo-1.0.dist-info",
                "/usr/lib/python3/dist-packages/foo-1.0.dist-info/METADATA",
            ),
        ),
    )


def test_status_with_non_utf8_bytes_parses_the_rest() -> None:
    data = (
        b"Package: good\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: all\n"
        b"Maintainer: Fran\xe7ois <f@example.invalid>\n\n"
        b"Package: bad\nStatus: install ok installed\nVersion: 1.\xff\n"
    )
    result = DpkgCataloger().parse("/var/lib/dpkg/status", data)
    assert [p.name for p in result.packages] == ["good"]
    assert len(result.skipped) == 1
    assert "'bad' has an invalid version" in result.skipped[0]

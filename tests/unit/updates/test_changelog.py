"""CVEs and urgency from real Debian changelogs, and reading them out of a .deb."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from patchline.updates._changelog import (
    ChangelogEntry,
    _NoChangelog,
    changelog_entries,
    cves_since,
    extract_changelog,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "updates" / "changelog"
# Copied from a Debian 12 host's /usr/share/doc/libxpm4/ (source libxpm, with an epoch).
LIBXPM = DATA / "libxpm4_1%3.5.12-1.1+deb12u1.changelog.Debian.gz"


def _entries() -> tuple[ChangelogEntry, ...]:
    return changelog_entries(gzip.decompress(LIBXPM.read_bytes()).decode())


def test_entries_of_a_real_changelog() -> None:
    entries = _entries()
    assert [e.version for e in entries[:3]] == ["1:3.5.12-1.1+deb12u1", "1:3.5.12-1.1", "1:3.5.12-1"]
    assert entries[0].urgency == "high"
    assert entries[0].cves == ("CVE-2023-43788", "CVE-2023-43789", "CVE-2023-43786", "CVE-2023-43787")


@pytest.mark.parametrize(
    ("installed", "cves", "urgency"),
    [
        ("1:3.5.12-1.1", ("CVE-2023-43786", "CVE-2023-43787", "CVE-2023-43788", "CVE-2023-43789"), "high"),
        (
            "1:3.5.12-1",
            (
                "CVE-2022-4883",
                "CVE-2022-44617",
                "CVE-2022-46285",
                "CVE-2023-43786",
                "CVE-2023-43787",
                "CVE-2023-43788",
                "CVE-2023-43789",
            ),
            "high",
        ),
        ("1:3.5.12-1.1+deb12u1", (), None),  # up to date
    ],
)
def test_cves_since_installed(installed: str, cves: tuple[str, ...], urgency: str | None) -> None:
    assert cves_since(_entries(), installed) == (cves, urgency)


def test_epoch_counts() -> None:
    # 9.9 has epoch 0, below every 1: entry, so every CVE of the file is "newer".
    every = sorted({c for e in _entries() for c in e.cves})
    assert sorted(cves_since(_entries(), "9.9")[0]) == every


def _deb(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    out.write(b"!<arch>\n")
    for name, data in members.items():
        out.write(f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode())
        out.write(data + (b"\n" if len(data) % 2 else b""))
    return out.getvalue()


def _data_tar(entries: list[tarfile.TarInfo], payloads: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for info in entries:
            data = payloads.get(info.name)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str) -> tarfile.TarInfo:
    return tarfile.TarInfo(name)


def _link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


def test_extract_from_a_deb_and_follow_a_changelog_symlink() -> None:
    log = LIBXPM.read_bytes()
    tar = _data_tar(
        [
            _link("./usr/share/doc/libxpm-dev/changelog.Debian.gz", "../libxpm4/changelog.Debian.gz"),
            _file("./usr/share/doc/libxpm4/changelog.Debian.gz"),
        ],
        {"./usr/share/doc/libxpm4/changelog.Debian.gz": log},
    )
    deb = _deb({"debian-binary": b"2.0\n", "control.tar.xz": b"x", "data.tar.xz": tar})
    assert extract_changelog(io.BytesIO(deb), "libxpm4") == log
    assert extract_changelog(io.BytesIO(deb), "libxpm-dev") == log


def test_a_doc_dir_symlink_out_of_the_deb_is_no_changelog() -> None:
    tar = _data_tar([_link("./usr/share/doc/libfoo1", "foo")], {})
    deb = _deb({"debian-binary": b"2.0\n", "control.tar.xz": b"x", "data.tar.xz": tar})
    with pytest.raises(_NoChangelog, match="usr/share/doc/libfoo1"):
        extract_changelog(io.BytesIO(deb), "libfoo1")

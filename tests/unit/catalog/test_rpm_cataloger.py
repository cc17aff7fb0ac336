"""rpm: a real SQLite rpmdb made by ``tests/data/rpm/make-fixture.sh`` (rpmbuild + rpm --justdb).

Oracles, written by that script from the same database:
``rpm --dbpath DB -qa --queryformat
'%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\t%{LICENSE}\\n'``
(``rpm-qa.tsv``) and ``rpm --dbpath DB -qa --queryformat '[%{=NAME}\\t%{FILENAMES}\\n]'``
(``rpm-ql.tsv``).
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from catalog_harness import DATA, check_scenario, scenarios

from patchline.catalog import CatalogError, RpmCataloger

DEMO = DATA / "rpm/sqlite-demo"
DB_PATH = "/usr/lib/sysimage/rpm/rpmdb.sqlite"


@pytest.mark.parametrize("scenario", scenarios("rpm"), ids=lambda p: p.name)
def test_scenario(scenario: Path) -> None:
    check_scenario(RpmCataloger(), scenario)


def _demo_db() -> bytes:
    return (DEMO / "root" / DB_PATH.lstrip("/")).read_bytes()


def test_packages_match_rpm_qa() -> None:
    want = set()
    for line in (DEMO / "rpm-qa.tsv").read_text().splitlines():
        name, version, arch, source_rpm, licence = line.split("\t")
        if name != "gpg-pubkey":  # a signing key rpm lists as a package; not one
            want.add((name, version, arch, source_rpm.removesuffix(".src.rpm"), licence))
    assert any(line.startswith("gpg-pubkey\t") for line in (DEMO / "rpm-qa.tsv").open())
    got = set()
    for p in RpmCataloger().parse(DB_PATH, _demo_db()).packages:
        # rpm-qa gives the source rpm file name, which carries no epoch
        source_version = p.source_version.partition(":")[2] or p.source_version
        got.add((p.name, p.version, p.arch, f"{p.source_name}-{source_version}", *p.licenses))
    assert got == want


def test_owned_paths_are_files_rpm_lists() -> None:
    listed: dict[str, set[str]] = {}
    for line in (DEMO / "rpm-ql.tsv").read_text().splitlines():
        name, path = line.split("\t")
        listed.setdefault(name, set()).add(path)
    for p in RpmCataloger().parse(DB_PATH, _demo_db()).packages:
        # METADATA / PKG-INFO may be implied by a listed directory; everything else is listed.
        for owned in p.owned_paths:
            assert owned in listed[p.name] or owned.rpartition("/")[0] in listed[p.name]


def _with_blob(mutate: Callable[[bytes], bytes], hnum: int = 1) -> bytes:
    """The demo database with one header blob changed, as the file would hold it."""
    data = bytearray(_demo_db())
    data[18:20] = b"\x01\x01"  # leave WAL mode, which an in-memory database cannot use
    conn = sqlite3.connect(":memory:")
    conn.deserialize(bytes(data))
    (blob,) = conn.execute("SELECT blob FROM Packages WHERE hnum = ?", (hnum,)).fetchone()
    conn.execute("UPDATE Packages SET blob = ? WHERE hnum = ?", (mutate(blob), hnum))
    conn.commit()
    return conn.serialize()


def _set_entry(blob: bytes, index: int, *, offset: int | None = None, count: int | None = None) -> bytes:
    out = bytearray(blob)
    pos = 8 + 16 * index
    tag, type_, old_offset, old_count = struct.unpack_from(">iIiI", out, pos)
    struct.pack_into(
        ">iIiI",
        out,
        pos,
        tag,
        type_,
        old_offset if offset is None else offset,
        old_count if count is None else count,
    )
    return bytes(out)


def _first_wanted_entry(blob: bytes) -> int:
    (il,) = struct.unpack_from(">i", blob)
    for i in range(il):
        if struct.unpack_from(">i", blob, 8 + 16 * i)[0] == 1000:  # NAME
            return i
    raise AssertionError("no NAME tag")


CORRUPTIONS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "huge index count": (lambda b: struct.pack(">i", 0x7FFFFFFF) + b[4:], "index count"),
    "huge data length": (lambda b: b[:4] + struct.pack(">i", 0x7FFFFFF0) + b[8:], "data length"),
    "negative index count": (lambda b: struct.pack(">i", -1) + b[4:], "index count"),
    "truncated": (lambda b: b[: len(b) // 2], "intro says"),
    "too short": (lambda b: b[:5], "shorter than a header intro"),
    "offset past data": (lambda b: _set_entry(b, _first_wanted_entry(b), offset=len(b)), "outside the data"),
    "count past data": (lambda b: _set_entry(b, _first_wanted_entry(b), count=0x7FFFFFFF), "outside the data"),
    "string without NUL": (
        lambda b: b[:-1] + b"x" if b.endswith(b"\0") else b,
        "",
    ),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_header_is_a_skip_and_the_rest_parses(case: str) -> None:
    mutate, reason = CORRUPTIONS[case]
    intact = [p.name for p in RpmCataloger().parse(DB_PATH, _demo_db()).packages]
    others = set(intact[1:])  # packages come in hnum order: hnum 1 is the one corrupted
    result = RpmCataloger().parse(DB_PATH, _with_blob(mutate))
    names = {p.name for p in result.packages}
    if case == "string without NUL":  # may or may not hit a tag we read: never a crash
        assert names >= others
        return
    assert names == others
    assert len(result.skipped) == 1
    assert result.skipped[0].startswith("header 1: ")
    assert reason in result.skipped[0]


def test_database_in_rollback_journal_mode_reads_the_same() -> None:
    wal = RpmCataloger().parse(DB_PATH, _demo_db())
    journal = RpmCataloger().parse(DB_PATH, _with_blob(lambda b: b))
    assert wal == journal
    assert len(wal.packages) == 3


def test_database_without_packages_table_is_an_error() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE Other (x)")
    with pytest.raises(CatalogError, match="Packages"):
        RpmCataloger().parse(DB_PATH, conn.serialize())


def test_corrupt_database_pages_are_an_error() -> None:
    data = bytearray(_demo_db())
    data[100:4096] = b"\xff" * (4096 - 100)  # the first page's b-tree header and cells
    with pytest.raises(CatalogError):
        RpmCataloger().parse(DB_PATH, bytes(data))

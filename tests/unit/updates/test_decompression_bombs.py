"""Decompression bombs: a Packages index or a changelog that inflates far beyond any real one is refused,
in bounded memory. The bombs are real gzip and xz files of zeros, made here by streaming compressors."""

from __future__ import annotations

import hashlib
import io
import lzma
import tarfile
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from patchline.assess.model import PackageRef, PendingUpdate
from patchline.errors import IndexFormatError
from patchline.updates._candidates import CandidateDeb, UpgradePlan
from patchline.updates._changelog import MAX_CHANGELOG_TEXT, changelog_text, read_changelogs
from patchline.updates._packages import MAX_INDEX_BYTES, decompress_index

MiB = 1 << 20


def _bomb(kind: str, size: int) -> bytes:
    """One gzip member or xz stream of ``size`` zero bytes, compressed 16 MiB at a time."""
    compressor = (zlib.compressobj(9, zlib.DEFLATED, 31) if kind == "gz"
                  else lzma.LZMACompressor(format=lzma.FORMAT_XZ, preset=0))
    zeros = bytes(16 * MiB)
    out = [compressor.compress(zeros[: min(len(zeros), size - done)]) for done in range(0, size, len(zeros))]
    return b"".join([*out, compressor.flush()])


def _big_bomb(kind: str, size: int) -> bytes:
    """``size`` zero bytes as concatenated 64 MiB gzip members / xz streams (valid for gzip -d and xz -d alike):
    a 1 GiB bomb in a fraction of the time one stream takes to compress."""
    return _bomb(kind, 64 * MiB) * (size // (64 * MiB))


def _peak(run: Callable[[], object]) -> tuple[BaseException | None, int]:
    tracemalloc.start()
    try:
        run()
        error = None
    except Exception as exc:  # the error is what is asserted
        error = exc
    try:
        return error, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kind", ["gz", "xz"])
def test_index_bomb_is_refused_in_memory_bounded_by_the_limit(kind: str) -> None:
    bomb = _bomb(kind, 64 * MiB)
    assert len(bomb) < 256 * 1024
    error, peak = _peak(lambda: decompress_index(bomb, path=f"main/binary-amd64/Packages.{kind}", max_size=8 * MiB))
    assert isinstance(error, IndexFormatError)
    assert str(error) == f"main/binary-amd64/Packages.{kind}: decompresses to more than the 8388608-byte limit; refused"
    assert peak < 14 * MiB, f"peak {peak} bytes"  # the limit, the bytearray's slack, one chunk


@pytest.mark.parametrize("kind", ["gz", "xz"])
def test_one_gibibyte_index_bomb_is_over_the_default_limit(kind: str) -> None:
    assert 512 * MiB == MAX_INDEX_BYTES
    bomb = _big_bomb(kind, 1024 * MiB)
    assert len(bomb) < 2 * MiB
    error, peak = _peak(lambda: decompress_index(bomb, path=f"Packages.{kind}"))
    assert isinstance(error, IndexFormatError) and "more than the 536870912-byte limit" in str(error)
    assert peak < MAX_INDEX_BYTES * 1.25, f"peak {peak} bytes"  # the limit and its slack: never the whole GiB


@pytest.mark.parametrize("kind", ["gz", "xz"])
def test_index_within_the_limit_still_reads(kind: str) -> None:
    text = "Package: a\nVersion: 1\n\n" * 1000
    compressor = (zlib.compressobj(9, zlib.DEFLATED, 31) if kind == "gz"
                  else lzma.LZMACompressor(format=lzma.FORMAT_XZ))
    data = compressor.compress(text.encode()) + compressor.flush()
    assert decompress_index(data, path=f"Packages.{kind}", max_size=len(text)) == text
    with pytest.raises(IndexFormatError, match="limit"):
        decompress_index(data, path=f"Packages.{kind}", max_size=len(text) - 1)


def test_uncompressed_index_over_the_limit_is_refused() -> None:
    with pytest.raises(IndexFormatError, match="more than the 10-byte limit"):
        decompress_index(b"Package: a\n", path="Packages", max_size=10)


def test_corrupt_index_is_still_a_format_error() -> None:
    with pytest.raises(IndexFormatError, match="cannot decompress"):
        decompress_index(b"\x1f\x8b\x08\x00garbage", path="Packages.gz")


def test_changelog_bomb_is_refused_in_bounded_memory() -> None:
    bomb = _bomb("gz", 32 * MiB)
    error, peak = _peak(lambda: changelog_text(bomb, what="the changelog", max_size=4 * MiB))
    assert isinstance(error, IndexFormatError)
    assert str(error) == "the changelog: decompresses to more than the 4194304-byte limit; refused"
    assert peak < 9 * MiB, f"peak {peak} bytes"


# -- a changelog bomb in a .deb, fetched like any update's ------------------------------------------------------


def _deb(package: str, changelog_gz: bytes) -> bytes:
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w:xz") as tar:
        info = tarfile.TarInfo(f"./usr/share/doc/{package}/changelog.Debian.gz")
        info.size = len(changelog_gz)
        tar.addfile(info, io.BytesIO(changelog_gz))
    members = {"debian-binary": b"2.0\n", "control.tar.xz": b"x", "data.tar.xz": tar_buf.getvalue()}
    out = io.BytesIO()
    out.write(b"!<arch>\n")
    for name, data in members.items():
        out.write(f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode())
        out.write(data + (b"\n" if len(data) % 2 else b""))
    return out.getvalue()


@pytest.mark.timeout(120)
def test_changelog_bomb_in_a_deb_is_that_updates_changelog_error(mirror: tuple[str, Path], tmp_path: Path) -> None:
    assert 64 * MiB == MAX_CHANGELOG_TEXT
    url, root = mirror
    deb = _deb("libbomb1", _big_bomb("gz", 1024 * MiB))  # 1 GiB of changelog, about 1 MiB in the .deb
    filename = "pool/main/b/bomb/libbomb1_2.0_amd64.deb"
    (root / "debian" / filename).parent.mkdir(parents=True)
    (root / "debian" / filename).write_bytes(deb)
    candidate = CandidateDeb(name="libbomb1", arch="amd64", version="2.0", source_name="bomb", source_version="2.0",
                             url=url, filename=filename, sha256=hashlib.sha256(deb).hexdigest(), size=len(deb))
    update = PendingUpdate(
        package=PackageRef(ecosystem="deb", name="libbomb1", version="1.0", purl="pkg:deb/debian/libbomb1@1.0",
                           arch="amd64"),
        candidate="2.0", suite="bookworm-security", source_name="bomb", source_version="2.0",
    )
    plan = UpgradePlan(pending=(update,), kept_back=(), debs=(candidate,))
    result: list[object] = []
    with httpx.Client() as client:
        error, peak = _peak(lambda: result.append(read_changelogs(plan, cache_dir=tmp_path / "cache", client=client)))
    assert error is None
    (pending,) = result[0].pending  # type: ignore[attr-defined]
    assert pending.cves == ()
    assert pending.changelog_error == (f"the changelog in {url}/{filename}: decompresses to more than the "
                                       f"{MAX_CHANGELOG_TEXT}-byte limit; refused")
    assert peak < MAX_CHANGELOG_TEXT + 32 * MiB, f"peak {peak} bytes"

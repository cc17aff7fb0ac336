"""The tar header reader against archives written by Python's tarfile and by GNU tar."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from patchline.errors import LayerError
from patchline.inventory._tar import TarReader
from tests.support.ocibuild import Entry, make_tar

LONG = "usr/lib/python3/dist-packages/" + "very-long-directory-name/" * 8 + "pkg-1.0.dist-info/METADATA"


def read_all(data: bytes) -> list[tuple[str, int, bytes]]:
    reader = TarReader(io.BufferedReader(io.BytesIO(data)))  # type: ignore[arg-type]
    return [(e.name, e.type, reader.read_data()) for e in reader]


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_formats_and_long_names(fmt: int) -> None:
    entries = [Entry("a/short", b"1"), Entry(LONG if fmt != tarfile.USTAR_FORMAT else "dir/" * 30 + "file", b"22")]
    names = [name for name, _, _ in read_all(make_tar(entries, fmt=fmt))]
    assert names == [e.path for e in entries]


def test_pax_unicode_and_sizes() -> None:
    entries = [Entry("srv/ünïcode/package.json", b'{"name":"x"}'), Entry("big", b"x" * 70_000)]
    got = read_all(make_tar(entries, fmt=tarfile.PAX_FORMAT))
    assert [(n, d) for n, _, d in got] == [(e.path, e.data) for e in entries]


def test_unread_data_is_skipped() -> None:
    data = make_tar([Entry("one", b"a" * 1000), Entry("two", b"b" * 10)])
    reader = TarReader(io.BufferedReader(io.BytesIO(data)))  # type: ignore[arg-type]
    names = []
    for entry in reader:
        names.append(entry.name)
        if entry.name == "two":
            assert reader.read_data() == b"b" * 10
    assert names == ["one", "two"]


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar is not installed")
def test_gnu_tar_output(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / Path(LONG).parent).mkdir(parents=True)
    (root / LONG).write_text("Name: pkg\n")
    (root / "link").symlink_to("usr")
    out = subprocess.run(["tar", "-C", str(root), "-cf", "-", "."], capture_output=True, check=True).stdout
    got = {name: (kind, data) for name, kind, data in read_all(out)}
    assert got["./" + LONG] == (ord("0"), b"Name: pkg\n")
    assert got["./link"][0] == ord("2")


def test_bad_checksum() -> None:
    data = bytearray(make_tar([Entry("a", b"1")]))
    data[0] = ord("b")  # the name changes; the stored checksum no longer matches
    with pytest.raises(LayerError, match="checksum"):
        read_all(bytes(data))


def test_stream_ending_inside_data() -> None:
    data = make_tar([Entry("a", b"x" * 5000)])
    with pytest.raises(LayerError, match="ends inside"):
        read_all(data[:2000])


def test_base256_size() -> None:
    header = bytearray(make_tar([Entry("a", b"xyz")])[:512])
    header[124:136] = b"\x80" + (3).to_bytes(11, "big")
    header[148:156] = b" " * 8
    header[148:156] = f"{sum(header):06o}\0 ".encode()
    data = bytes(header) + b"xyz".ljust(512, b"\0") + bytes(1024)
    assert read_all(data) == [("a", ord("0"), b"xyz")]

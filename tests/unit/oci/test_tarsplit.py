"""A layer put back together from a tar-split and a diff directory is the original tar, byte for byte.

The fixtures are made the way containers/storage makes them: a real tar (headers, long names, links, a
whiteout), its files unpacked into ``overlay/<id>/diff``, and ``overlay-layers/<id>.tar-split.gz`` holding the
raw header and padding segments and one entry per file.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from patchline.oci._storage import _Resuming
from patchline.oci._tarsplit import (
    LayerStream,
    OverlayLayer,
    StorageUnavailable,
    overlay_layers,
    tar_chunks,
)

Entry = dict[str, object]


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def _info(name: str, *, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "",
          mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 1_700_000_000
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data


def _split(raw: bytes) -> list[Entry]:
    """tar-split's entries for ``raw``: a segment up to each file's data, a file entry, ... the end padding."""
    entries: list[Entry] = []
    pos = 0

    def segment(end: int) -> None:
        nonlocal pos
        if end > pos:
            entries.append({"type": 2, "payload": base64.b64encode(raw[pos:end]).decode(), "position": len(entries)})
        pos = end

    with tarfile.open(fileobj=io.BytesIO(raw), mode="r") as tar:
        for member in tar.getmembers():
            segment(member.offset_data)
            entries.append({"type": 1, "name": member.name, "size": member.size if member.isreg() else 0,
                            "payload": None, "position": len(entries)})
            pos = member.offset_data + (member.size if member.isreg() else 0)
    segment(len(raw))
    return entries


class Layer:
    def __init__(self, root: Path, raw: bytes, entries: list[Entry]) -> None:
        self.raw = raw
        self.layer = OverlayLayer(root / "overlay" / "L1" / "diff", root / "overlay-layers" / "L1.tar-split.gz")
        self.write(entries)

    def write(self, entries: list[Entry]) -> None:
        self.layer.tar_split.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(self.layer.tar_split, "wb") as fh:
            fh.write(b"".join(json.dumps(e).encode() + b"\n" for e in entries))

    def read(self) -> bytes:
        return b"".join(tar_chunks(self.layer.tar_split, self.layer.diff))


@pytest.fixture
def layer(tmp_path: Path) -> Layer:
    members = [
        _info("etc/", kind=tarfile.DIRTYPE, mode=0o755),
        _info("etc/os-release", data=b'ID=debian\nVERSION_ID="12"\n'),
        _info("var/lib/dpkg/status", data=b"Package: hello\nStatus: install ok installed\n" * 500),
        _info("usr/share/" + "long-directory-name/" * 8 + "file.txt", data=b"x" * 5000),  # a PAX long name
        _info("usr/bin/hello", data=os.urandom(70_000), mode=0o755),
        _info("usr/bin/hi", kind=tarfile.LNKTYPE, link="usr/bin/hello"),
        _info("usr/bin/sh", kind=tarfile.SYMTYPE, link="dash"),
        _info("etc/.wh.old.conf"),  # a whiteout: an empty file in the tar
        _info("empty", data=b""),
    ]
    raw = _tar(members)
    made = Layer(tmp_path, raw, _split(raw))
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for member in tar.getmembers():
            target = made.layer.diff / member.name
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isreg():
                target.parent.mkdir(parents=True, exist_ok=True)
                extracted = tar.extractfile(member)
                assert extracted is not None
                target.write_bytes(extracted.read())
    return made


def test_the_tar_comes_back_byte_for_byte(layer: Layer) -> None:
    assert hashlib.sha256(layer.read()).hexdigest() == hashlib.sha256(layer.raw).hexdigest()


def test_the_stream_reads_in_any_size_and_counts_its_offset(layer: Layer) -> None:
    stream = LayerStream(layer.layer.tar_split, layer.layer.diff)
    got = bytearray()
    while chunk := stream.read(777):
        got += chunk
    assert bytes(got) == layer.raw
    assert stream.offset == len(layer.raw)


def test_a_name_given_as_raw_bytes_is_read(layer: Layer) -> None:
    entries = _split(layer.raw)
    for entry in entries:
        if entry.get("name") == "etc/os-release":
            entry["name_raw"] = base64.b64encode(b"etc/os-release").decode()
            entry.pop("name")
    layer.write(entries)
    assert layer.read() == layer.raw


def _rename(entries: list[Entry], old: str, new: str) -> list[Entry]:
    return [{**e, "name": new} if e.get("name") == old else e for e in entries]


@pytest.mark.parametrize(("change", "why"), [
    (lambda e, d: _rename(e, "etc/os-release", "../../../etc/passwd"), "not inside the layer"),
    (lambda e, d: _rename(e, "etc/os-release", "/../etc/os-release"), "not inside the layer"),
    (lambda e, d: ((d / "escape").symlink_to("/etc"), _rename(e, "etc/os-release", "escape/passwd"))[1],
     "resolves outside"),
    (lambda e, d: ((d / "etc/os-release").unlink(), (d / "etc/os-release").symlink_to("/etc/passwd"), e)[2],
     "cannot open"),
    (lambda e, d: ((d / "usr/bin/hello").unlink(), e)[1], "cannot open"),
    (lambda e, d: ((d / "usr/bin/hello").write_bytes(b"short"), e)[1], "regular file"),
    (lambda e, d: [*e[:2], {"type": 9, "payload": None}, *e[2:]], "unknown tar-split entry type"),
    (lambda e, d: [*e[:2], {"type": 2, "payload": "***"}, *e[2:]], "not base64"),
    (lambda e, d: [*e[:2], {"type": 1, "name": "etc/os-release", "size": -4}, *e[2:]], "size"),
], ids=["dotdot", "absolute-dotdot", "symlinked-parent", "symlinked-file", "missing-file", "changed-file",
        "unknown-type", "bad-base64", "negative-size"])
def test_anything_unexpected_is_unavailable_never_a_wrong_stream(
        layer: Layer, change: Callable[[list[Entry], Path], list[Entry]], why: str) -> None:
    layer.write(change(_split(layer.raw), layer.layer.diff))
    with pytest.raises(StorageUnavailable, match=why):
        layer.read()


def test_a_corrupt_or_missing_tar_split_is_unavailable(layer: Layer) -> None:
    layer.layer.tar_split.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(StorageUnavailable):
        layer.read()
    layer.layer.tar_split.unlink()
    with pytest.raises(StorageUnavailable, match="no tar-split"):
        layer.read()


def test_a_direct_read_that_fails_halfway_goes_on_from_the_export_at_the_same_offset(layer: Layer) -> None:
    (layer.layer.diff / "usr/bin/hello").unlink()  # everything before it reads directly, then it fails
    fell_back: list[bool] = []
    reader = _Resuming(LayerStream(layer.layer.tar_split, layer.layer.diff), lambda: io.BytesIO(layer.raw),
                       on_fallback=lambda: fell_back.append(True))
    got = bytearray()
    while chunk := reader.read(4096):
        got += chunk
    assert bytes(got) == layer.raw
    assert fell_back == [True]


def test_overlay_layers_come_bottom_up_from_podman_inspect() -> None:
    data = {"LowerDir": "/s/overlay/b/diff:/s/overlay/a/diff", "UpperDir": "/s/overlay/c/diff",
            "WorkDir": "/s/overlay/c/work"}
    layers = overlay_layers("overlay", data)
    assert layers is not None
    assert [str(x.diff) for x in layers] == ["/s/overlay/a/diff", "/s/overlay/b/diff", "/s/overlay/c/diff"]
    assert [str(x.tar_split) for x in layers] == [f"/s/overlay-layers/{i}.tar-split.gz" for i in "abc"]
    assert [str(x.diff) for x in overlay_layers("overlay", {"UpperDir": "/s/overlay/c/diff"}) or []] == [
        "/s/overlay/c/diff"]


@pytest.mark.parametrize(("driver", "data"), [
    ("vfs", {"UpperDir": "/s/vfs/dir/c"}),
    ("overlay", {}),
    ("overlay", {"UpperDir": "/s/l/SHORT"}),
    ("overlay", {"UpperDir": "/s/overlay/c/diff", "LowerDir": "/s/l/SHORT"}),
])
def test_anything_but_the_overlay_layout_gives_no_layers(driver: str, data: dict[str, str]) -> None:
    assert overlay_layers(driver, data) is None

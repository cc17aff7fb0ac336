"""A layer read straight out of containers/storage's overlay driver, byte for byte.

The overlay driver keeps each layer unpacked (``overlay/<id>/diff``) and, beside it, what the tar had besides
file contents (``overlay-layers/<id>.tar-split.gz``): JSON lines that are either a *segment* of raw bytes (tar
headers, padding) or a *file* entry whose bytes are the file of that name in the diff directory. Put back
together in order they are the exact tar that hashes to the layer's diff_id: what ``podman push`` and
``skopeo copy`` produce, here without writing a copy to disk and only for the layers a scan needs.

Anything unexpected (another driver, no tar-split, an unreadable file, a name that escapes the diff directory)
raises :class:`StorageUnavailable`, and the caller falls back to exporting the image with skopeo: this is a fast
path, never the only one. The caller checks the digest.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
import stat
import zlib
from collections.abc import Iterator
from pathlib import Path

from patchline.oci._blob import ChunkReader

_FILE = 1  # tar-split's storage.FileType: name, size; the bytes are the file's
_SEGMENT = 2  # storage.SegmentType: payload = raw bytes of the tar stream
_CHUNK = 1 << 20


class StorageUnavailable(Exception):
    """The layer cannot be read from the storage directories; export it instead (never leaves the package)."""


class OverlayLayer:
    """Where one layer of the overlay driver lives: its diff directory and its tar-split file."""

    def __init__(self, diff: Path, tar_split: Path) -> None:
        self.diff = diff
        self.tar_split = tar_split

    @classmethod
    def from_diff_dir(cls, driver: str, diff: str) -> OverlayLayer | None:
        """``<root>/overlay/<id>/diff`` -> the layer, or None when the path is not laid out that way."""
        path = Path(diff)
        if driver != "overlay" or path.name != "diff" or path.parent.parent.name != driver:
            return None
        layer_id = path.parent.name
        root = path.parent.parent.parent
        return cls(path, root / f"{driver}-layers" / f"{layer_id}.tar-split.gz")

    def open(self) -> LayerStream:
        return LayerStream(self.tar_split, self.diff)


def overlay_layers(driver: str, data: dict[str, str]) -> list[OverlayLayer] | None:
    """The image's layers bottom-up from ``podman image inspect``'s GraphDriver, or None when not overlay."""
    upper = data.get("UpperDir")
    if not upper:
        return None
    lowers = [d for d in (data.get("LowerDir") or "").split(":") if d]
    layers = [OverlayLayer.from_diff_dir(driver, d) for d in [*reversed(lowers), upper]]
    if any(layer is None for layer in layers):
        return None
    return [layer for layer in layers if layer is not None]


class _DiffFiles:
    """Opens files of one diff directory by tar name, refusing any that resolve outside it."""

    def __init__(self, root: Path) -> None:
        self._root = os.path.realpath(root)
        self._dirs: dict[str, str] = {}

    def _parent(self, parent: str) -> str:
        real = self._dirs.get(parent)
        if real is None:
            real = os.path.realpath(os.path.join(self._root, parent)) if parent else self._root
            if real != self._root and not real.startswith(self._root + os.sep):
                raise StorageUnavailable(f"{parent!r} resolves outside the layer's directory")
            self._dirs[parent] = real
        return real

    def read(self, name: bytes, size: int) -> Iterator[bytes]:
        rel = os.path.normpath(name.decode("utf-8", "surrogateescape").lstrip("/"))
        if rel in (".", "") or rel == ".." or rel.startswith("../") or os.path.isabs(rel):
            raise StorageUnavailable(f"file entry {name!r} is not inside the layer")
        parent, base = os.path.split(rel)
        path = os.path.join(self._parent(parent), base)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise StorageUnavailable(f"cannot open {rel}: {exc.strerror}") from exc
        with os.fdopen(fd, "rb", buffering=0) as fh:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size != size:
                raise StorageUnavailable(f"{rel} is not the {size}-byte regular file the layer lists")
            left = size
            while left:
                chunk = fh.read(min(left, _CHUNK))
                if not chunk:
                    raise StorageUnavailable(f"{rel} ended {left} bytes early")
                left -= len(chunk)
                yield chunk


def _entries(tar_split: Path) -> Iterator[dict[str, object]]:
    try:
        with gzip.open(tar_split, "rb") as fh:
            for line in fh:
                if line.strip():
                    entry = json.loads(line)
                    if not isinstance(entry, dict):
                        raise StorageUnavailable("a tar-split line is not an object")
                    yield entry
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise StorageUnavailable(f"{tar_split.name}: {exc}") from exc


def _b64(value: object, what: str) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise StorageUnavailable(f"{what} is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise StorageUnavailable(f"{what} is not base64: {exc}") from exc


def tar_chunks(tar_split: Path, diff: Path) -> Iterator[bytes]:
    """The layer's tar stream, in chunks, from its tar-split and diff directory."""
    if not tar_split.is_file() or not diff.is_dir():
        raise StorageUnavailable(f"no tar-split or diff directory for layer {diff.parent.name}")
    files = _DiffFiles(diff)
    for entry in _entries(tar_split):
        kind = entry.get("type")
        if kind == _SEGMENT:
            payload = _b64(entry.get("payload"), "a segment")
            if payload:
                yield payload
        elif kind == _FILE:
            size = entry.get("size") or 0
            if not isinstance(size, int) or size < 0:
                raise StorageUnavailable(f"file entry with size {size!r}")
            if size:
                raw = entry.get("name_raw")
                name = _b64(raw, "name_raw") if raw else str(entry.get("name") or "").encode("utf-8",
                                                                                             "surrogateescape")
                yield from files.read(name, size)
        else:
            raise StorageUnavailable(f"unknown tar-split entry type {kind!r}")


class LayerStream(ChunkReader):
    """A readable stream over :func:`tar_chunks`; ``offset`` counts the bytes it gave out."""

    def __init__(self, tar_split: Path, diff: Path) -> None:
        super().__init__(tar_chunks(tar_split, diff))

"""A fast parser for apt ``Packages`` indexes, and its content-addressed cache.

python-debian's ``deb822`` builds a full mapping per stanza; on the ~60,000
stanzas of a Debian main index that takes many seconds (measured in
``tests/integration/test_apt_updates.py``). This parser reads only the fields the
upgrade computation needs and splits lines itself.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import lzma
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from patchline.errors import IndexFormatError
from patchline.updates.interface import BinaryPackage

__all__ = [
    "MAX_INDEX_BYTES",
    "PARSER_VERSION",
    "decompress_capped",
    "decompress_index",
    "load_parsed",
    "parse_packages",
    "store_parsed",
]

PARSER_VERSION = 1
"""Bump when the parsed form changes: parsed-cache entries are keyed by it."""

MAX_INDEX_BYTES = 512 * 1024 * 1024
"""A Packages index that decompresses to more than this is refused (Debian's largest is about 100 MB)."""

_FIELDS = {
    "Package": 0,
    "Version": 1,
    "Architecture": 2,
    "Source": 3,
    "Filename": 4,
    "SHA256": 5,
    "Size": 6,
    "Depends": 7,
    "Pre-Depends": 8,
    "Breaks": 9,
    "Conflicts": 10,
    "Provides": 11,
}


def parse_packages(text: str, *, origin: str = "Packages", skip_incomplete: bool = False) -> tuple[BinaryPackage, ...]:
    """Parse a Packages (or dpkg status) text.

    A stanza without Package or Version is refused, or dropped with
    ``skip_incomplete`` (a dpkg status lists purged packages without a version).
    """
    return tuple(_iter_packages(text, origin, skip_incomplete))


def _iter_packages(text: str, origin: str, skip_incomplete: bool) -> Iterator[BinaryPackage]:
    fields = _FIELDS
    for number, stanza in enumerate(text.split("\n\n")):
        if not stanza.strip():
            continue
        values: list[str] = [""] * 12
        last = -1
        for line in stanza.split("\n"):
            if not line:
                continue
            first = line[0]
            if first == " " or first == "\t":
                if last >= 0:  # a folded relation field: join its lines
                    values[last] += " " + line.strip()
                continue
            if first == "#":
                continue
            key, sep, value = line.partition(":")
            index = fields.get(key, -1)
            last = index
            if index >= 0 and sep:
                values[index] = value.strip()
        name, version = values[0], values[1]
        if not name or not version:
            if skip_incomplete or (not name and not version):
                continue  # a comment-only stanza has neither
            raise IndexFormatError(f"{origin}: stanza {number + 1} has no Package or Version field")
        source = values[3]
        if source:
            src_name, _, rest = source.partition(" ")
            src_version = rest.strip().strip("()").strip() or version
        else:
            src_name, src_version = name, version
        try:
            size = int(values[6]) if values[6] else 0
        except ValueError as exc:
            raise IndexFormatError(f"{origin}: package {name} has a bad Size {values[6]!r}") from exc
        yield BinaryPackage(
            name,
            version,
            values[2],
            src_name,
            src_version,
            values[4],
            values[5],
            size,
            values[7],
            values[8],
            values[9],
            values[10],
            values[11],
        )


def decompress_index(data: bytes, *, path: str, max_size: int = MAX_INDEX_BYTES) -> str:
    """Decompress a ``Packages``, ``.xz`` or ``.gz`` index by its name and decode it.

    An index that decompresses to more than ``max_size`` bytes is an :class:`IndexFormatError`.
    """
    out = decompress_capped(data, path=path, max_size=max_size)
    return out.decode("utf-8", errors="replace")


def decompress_capped(data: bytes, *, path: str, max_size: int, what: str | None = None) -> bytes | bytearray:
    """The bytes of an ``.xz``, ``.gz`` or uncompressed file (told by ``path``'s suffix), at most ``max_size``.

    Decompression streams and stops one chunk past the limit: a small bomb never
    becomes a large allocation. Errors name ``what`` (default: ``path``).
    """
    what = what or path
    too_big = f"{what}: decompresses to more than the {max_size}-byte limit; refused"
    if not path.endswith((".xz", ".gz")):
        if len(data) > max_size:
            raise IndexFormatError(too_big)
        return data
    raw = io.BytesIO(data)
    out = bytearray()
    try:
        with lzma.LZMAFile(raw) if path.endswith(".xz") else gzip.GzipFile(fileobj=raw) as stream:
            while chunk := stream.read(1 << 20):
                if len(out) + len(chunk) > max_size:
                    raise IndexFormatError(too_big)
                out += chunk
    except (lzma.LZMAError, OSError, EOFError) as exc:
        raise IndexFormatError(f"{what}: cannot decompress: {exc}") from exc
    return out


def _parsed_path(cache_dir: Path, sha256: str) -> Path:
    return cache_dir / "parsed" / f"{sha256}.v{PARSER_VERSION}.json"


def load_parsed(cache_dir: Path, sha256: str) -> tuple[BinaryPackage, ...] | None:
    """The packages parsed earlier from the index with this SHA256, or ``None``."""
    path = _parsed_path(cache_dir, sha256)
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    try:
        rows = json.loads(raw)
        return tuple(BinaryPackage(*row) for row in rows)
    except (ValueError, TypeError):  # a torn or foreign file: parse again
        return None


def store_parsed(cache_dir: Path, sha256: str, packages: tuple[BinaryPackage, ...]) -> None:
    """Write the parsed form atomically; a cache that cannot be written is only slower."""
    path = _parsed_path(cache_dir, sha256)
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump([list(p) for p in packages], out, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

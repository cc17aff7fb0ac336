"""Rust binaries built with cargo-auditable: every crate compiled in, from the ``.dep-v0`` section.

``cargo auditable build`` embeds the dependency tree in an ELF section named
``.dep-v0``: zlib-compressed JSON, ``{"packages": [{"name", "version", "source",
"kind", "dependencies": [...], "root": true}, ...]}``. Every package is
reported (``pkg:cargo/NAME@VERSION``), the root crate and build-time
dependencies (``"kind": "build"``) too, as ``cargo audit bin`` reports them.

Decompression stops at :data:`MAX_JSON_SIZE` (cargo-auditable's own readers
stop at 8 MiB): a section that inflates past it, is not zlib, or does not hold
the JSON above makes the file a skip with its reason. An ELF file without the
section is not a cargo-auditable binary and yields nothing.
"""

from __future__ import annotations

import json
import zlib

from patchline._model import Ecosystem
from patchline.catalog._elf import ELF_MAGIC, open_elf
from patchline.catalog.interface import CatalogError, ContentMatch, FileResult, Found

__all__ = ["MAX_JSON_SIZE", "CargoAuditableCataloger", "read_dep_info"]

SECTION = b".dep-v0"
MAX_JSON_SIZE = 8 << 20


def read_dep_info(data: bytes) -> bytes | None:
    """The inflated JSON of an ELF file's ``.dep-v0`` section; None when it has none.

    Raises ``CatalogError`` for a file that is not ELF, a section past the end of
    the file, data that is not zlib, or JSON longer than :data:`MAX_JSON_SIZE`.
    """
    elf = open_elf(data)
    section = elf.section(SECTION)
    if section is None:
        return None
    _, offset, size = section
    if offset + size > len(data):
        raise CatalogError(f"truncated ELF: the .dep-v0 section ({size} bytes at offset {offset}) ends past the "
                           f"end of the file ({len(data)} bytes)")
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(data[offset : offset + size], MAX_JSON_SIZE + 1)
    except zlib.error as exc:
        raise CatalogError(f"invalid cargo-auditable data: the .dep-v0 section is not zlib data: {exc}") from exc
    if len(text) > MAX_JSON_SIZE:
        raise CatalogError(f"cargo-auditable data inflates past the {MAX_JSON_SIZE} byte limit")
    if not inflater.eof:
        raise CatalogError("truncated cargo-auditable data: the .dep-v0 section's zlib stream ends early")
    return text


def parse_dep_info(text: bytes) -> FileResult:
    """Every package of cargo-auditable's JSON; an entry without a name and a version is a skip."""
    try:
        doc = json.loads(text.decode("utf-8", "replace"))
    except ValueError as exc:
        raise CatalogError(f"invalid cargo-auditable data: not JSON: {exc}") from exc
    except RecursionError as exc:
        raise CatalogError("invalid cargo-auditable data: JSON nested too deeply") from exc
    packages = doc.get("packages") if isinstance(doc, dict) else None
    if not isinstance(packages, list):
        raise CatalogError("invalid cargo-auditable data: no 'packages' list")
    found: list[Found] = []
    skipped: list[str] = []
    for number, entry in enumerate(packages):
        name = entry.get("name") if isinstance(entry, dict) else None
        version = entry.get("version") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name or not isinstance(version, str) or not version:
            skipped.append(f"cargo-auditable package {number} has no name and version: {str(entry)[:120]}")
            continue
        found.append(Found(Ecosystem.CARGO, name, version))
    return FileResult(tuple(found), tuple(skipped))


class CargoAuditableCataloger:
    """Crates compiled into ELF executables built with cargo-auditable, wherever they are in the image."""

    name = "cargo-auditable-binary-cataloger"
    version = "1"
    globs: tuple[str, ...] = ()
    content = ContentMatch(executable=True, magic=(ELF_MAGIC,))
    max_file_size = 512 << 20  # as the Go cataloger: both are offered the same executables

    def parse(self, path: str, data: bytes) -> FileResult:
        text = read_dep_info(data)
        if text is None:
            return FileResult()
        return parse_dep_info(text)

"""Alpine packages: apk's installed database, ``/lib/apk/db/installed``.

Records are separated by blank lines; each line is ``<letter>:<value>``.
Read here: ``P`` name, ``V`` version, ``A`` arch, ``o`` origin (the source
package; it has the binary's version), ``L`` licence (kept whole, as one
expression: apk writes e.g. ``MIT AND BSD-2-Clause`` or the older space-separated
``MIT BSD``), ``F`` a directory (relative to ``/``) and ``R`` a file in the last
``F``, from which ``owned_paths`` are taken (see ``_ownership``). Other letters
are ignored. Bytes that are not UTF-8 are decoded with ``surrogateescape`` so
that paths round-trip as ``tarfile`` decodes member names; a name or version
holding such bytes is skipped.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from patchline._model import Ecosystem
from patchline.catalog._ownership import language_metadata_paths
from patchline.catalog._records import blank_line_records
from patchline.catalog.interface import CatalogError, FileResult, Found

__all__ = ["ApkCataloger"]


@dataclass(frozen=True, slots=True)
class ApkCataloger:
    """Catalogs Alpine (and Wolfi, Chainguard) packages from apk's installed database."""

    name: str = field(default="apk-db-cataloger", init=False)
    version: str = field(default="1", init=False)
    globs: tuple[str, ...] = field(default=("/lib/apk/db/installed",), init=False)
    max_file_size: int = 64 * 1024 * 1024

    def parse(self, path: str, data: bytes) -> FileResult:
        nul = data.find(b"\0")
        if nul != -1:
            raise CatalogError(f"not an apk installed database: NUL byte at offset {nul}")
        text = data.decode("utf-8", errors="surrogateescape")
        packages: list[Found] = []
        skipped: list[str] = []
        for line_no, lines in blank_line_records(text):
            try:
                packages.append(_parse_record(lines))
            except ValueError as exc:
                skipped.append(f"record at line {line_no}: {exc}")
        return FileResult(packages=tuple(packages), skipped=tuple(skipped))



def _parse_record(lines: list[str]) -> Found:
    fields: dict[str, str] = {}
    files: list[str] = []
    directory = ""
    for line in lines:
        if len(line) < 2 or line[1] != ":":
            continue  # apk itself counts such a line as an error and reads on
        key, value = line[0], line[2:]
        if key == "F":
            directory = value
            files.append(directory)
        elif key == "R":
            files.append(posixpath.join(directory, value))
        else:
            fields.setdefault(key, value.strip())
    name = fields.get("P", "")
    version = fields.get("V", "")
    if not name:
        raise ValueError("no P: (package name) line")
    if not version:
        raise ValueError(f"package {name!r} has no V: (version) line")
    for what, value in (("name", name), ("version", version)):
        if not value.isprintable():
            raise ValueError(f"package {name!r} has a {what} that is not UTF-8 text")
    licence = fields.get("L", "")
    return Found(
        ecosystem=Ecosystem.APK,
        name=name,
        version=version,
        source_name=fields.get("o") or name,
        source_version=version,
        arch=fields.get("A") or None,
        licenses=(licence,) if licence else (),
        owned_paths=language_metadata_paths(files),
    )

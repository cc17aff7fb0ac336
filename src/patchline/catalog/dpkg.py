"""Debian packages: the dpkg status database, distroless ``status.d`` and file lists.

Three kinds of file, told apart by where they are:

* ``/var/lib/dpkg/status``: one deb822 stanza per package. Only packages whose
  ``Status`` state (third word) is ``installed`` are reported: ``config-files``,
  ``half-installed``, ``unpacked`` and the like have no complete files on disk.
  The want flag is ignored, so ``hold ok installed`` and ``deinstall ok
  installed`` (selected for removal, still on disk) are reported.
* ``/var/lib/dpkg/status.d/<name>``: distroless images, one control stanza per
  file and no ``Status`` field (a missing ``Status`` means installed);
  ``*.md5sums`` siblings are ignored.
* ``/var/lib/dpkg/info/<name>[:<arch>].list``: the files a package installed.
  These yield an *ownership-only* ``Found``: ``version == ""`` and only
  ``name``, ``arch`` (when the file name has one) and ``owned_paths`` set. The
  core must not report it as a package; it merges its ``owned_paths`` into the
  installed package of that name (see ``_ownership`` for the path form). A list
  with no language-package metadata yields nothing.

dpkg does not record licences, so ``licenses`` is always empty. Bytes that are
not UTF-8 are decoded with U+FFFD replacement in stanzas (a version containing
one is then invalid and skipped) and with ``surrogateescape`` in file lists, so
that paths round-trip the way ``tarfile`` decodes member names.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from debian import deb822
from debian.debian_support import Version

from patchline._model import Ecosystem
from patchline.catalog._ownership import language_metadata_paths
from patchline.catalog._records import blank_line_records
from patchline.catalog.interface import CatalogError, FileResult, Found

__all__ = ["DpkgCataloger"]

_SOURCE = re.compile(r"^(?P<name>[^\s(]+)(?:\s*\((?P<version>[^)\s]+)\))?$")


@dataclass(frozen=True, slots=True)
class DpkgCataloger:
    """Catalogs Debian packages from dpkg's database (see the module docstring)."""

    name: str = field(default="dpkg-db-cataloger", init=False)
    version: str = field(default="1", init=False)
    globs: tuple[str, ...] = field(
        default=(
            "/var/lib/dpkg/status",
            "/var/lib/dpkg/status.d/*",
            "/var/lib/dpkg/info/*.list",
        ),
        init=False,
    )
    max_file_size: int = 64 * 1024 * 1024

    def parse(self, path: str, data: bytes) -> FileResult:
        directory, base = posixpath.split(path)
        if directory.endswith("/dpkg/info") and base.endswith(".list"):
            return _parse_file_list(base, data)
        if directory.endswith("/dpkg/status.d") and base.endswith(".md5sums"):
            return FileResult()
        return _parse_status(data)


def _parse_status(data: bytes) -> FileResult:
    nul = data.find(b"\0")
    if nul != -1:
        raise CatalogError(f"not a dpkg status file: NUL byte at offset {nul}")
    text = data.decode("utf-8", errors="replace")
    packages: list[Found] = []
    skipped: list[str] = []
    for line_no, lines in blank_line_records(text):
        try:
            found = _parse_stanza(deb822.Deb822(lines))
        except ValueError as exc:
            skipped.append(f"stanza at line {line_no}: {exc}")
            continue
        if found is not None:
            packages.append(found)
    return FileResult(packages=tuple(packages), skipped=tuple(skipped))



def _parse_stanza(stanza: deb822.Deb822) -> Found | None:
    """The package a stanza declares; None if not installed; ValueError if unreadable."""
    name = stanza.get("Package", "").strip()
    version = stanza.get("Version", "").strip()
    if not name:
        raise ValueError("no Package field")
    if not version:
        raise ValueError(f"package {name!r} has no Version field")
    try:
        Version(version)
    except ValueError:
        raise ValueError(f"package {name!r} has an invalid version {version!r}") from None
    status = stanza.get("Status")
    if status is not None:
        words = status.split()
        if len(words) != 3:
            raise ValueError(f"package {name!r} has a malformed Status {status!r}")
        if words[2] != "installed":
            return None
    source_name, source_version = name, version
    source = stanza.get("Source", "").strip()
    if source:
        match = _SOURCE.match(source)
        if match is None:
            raise ValueError(f"package {name!r} has a malformed Source {source!r}")
        source_name = match["name"]
        source_version = match["version"] or version
    arch = stanza.get("Architecture", "").strip() or None
    return Found(
        ecosystem=Ecosystem.DEB,
        name=name,
        version=version,
        source_name=source_name,
        source_version=source_version,
        arch=arch,
    )


def _parse_file_list(base: str, data: bytes) -> FileResult:
    nul = data.find(b"\0")
    if nul != -1:
        raise CatalogError(f"not a dpkg file list: NUL byte at offset {nul}")
    name, _, arch = base.removesuffix(".list").partition(":")
    text = data.decode("utf-8", errors="surrogateescape")
    owned = language_metadata_paths(line for line in text.splitlines() if line.strip())
    if not owned:
        return FileResult()
    return FileResult(
        packages=(
            Found(
                ecosystem=Ecosystem.DEB,
                name=name,
                version="",
                arch=arch or None,
                owned_paths=owned,
            ),
        )
    )

"""The cataloger plug-in interface.

A cataloger is a name, a version, the paths it wants (globs over absolute paths
in the image) and a pure parser from one file's bytes to what that file
declares. It never opens a layer or walks a tree: the inventory core walks each
layer once and hands every cataloger only the files it declared (STYLE.md 3).

Glob syntax: ``*`` and ``?`` match within one path component, ``**/`` matches
zero or more whole directories. Globs are absolute (``/var/lib/dpkg/status``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from patchline._model import Ecosystem
from patchline.errors import CatalogError

__all__ = ["CatalogError", "Cataloger", "FileResult", "Found"]


@dataclass(frozen=True, slots=True)
class Found:
    """A package as one file declares it; the core adds layers, purl and locations.

    ``owned_paths`` is set by OS catalogers: the absolute paths of language
    package metadata (``*.dist-info``, ``*.egg-info``, ``node_modules/*/package.json``)
    that the OS package installed, so that the core does not report those twice.
    """

    ecosystem: Ecosystem
    name: str
    version: str
    source_name: str | None = None
    source_version: str | None = None
    arch: str | None = None
    licenses: tuple[str, ...] = ()
    owned_paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FileResult:
    """What one file declares: packages, and the reasons for entries it had to skip.

    A file whose entries are all unreadable returns no packages and one skip per
    entry; a file that cannot be read at all raises ``CatalogError`` instead.
    """

    packages: tuple[Found, ...] = ()
    skipped: tuple[str, ...] = ()


class Cataloger(Protocol):
    """One kind of package database. Implementations are sibling modules."""

    @property
    def name(self) -> str:
        """Stable identifier, e.g. ``dpkg-db-cataloger``; shown in reports."""

    @property
    def version(self) -> str:
        """Bumped whenever the parser's output changes: it keys the layer cache."""

    @property
    def globs(self) -> tuple[str, ...]:
        """Absolute path globs of the files this cataloger wants."""

    @property
    def max_file_size(self) -> int:
        """Files larger than this are skipped with a reason instead of parsed."""

    def parse(self, path: str, data: bytes) -> FileResult:
        """Parse one file. Pure: no I/O. Raise ``CatalogError`` if unreadable."""

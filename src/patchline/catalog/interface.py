"""The cataloger plug-in interface.

A cataloger is a name, a version, the paths it wants (globs over absolute paths
in the image) and a pure parser from one file's bytes to what that file
declares. It never opens a layer or walks a tree: the inventory core walks each
layer once and hands every cataloger only the files it declared (STYLE.md 3).

Glob syntax: ``*`` and ``?`` match within one path component, ``**/`` matches
zero or more whole directories. Globs are absolute (``/var/lib/dpkg/status``).

Files that live anywhere (Go binaries) are chosen by content instead: a
:class:`ContentCataloger` also names a :class:`ContentMatch`, and the core hands
it the regular files that no glob claimed and that match (execute bits, first
bytes), peeking at each file's first bytes in the stream to decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from patchline._model import Ecosystem
from patchline.errors import CatalogError

__all__ = ["CatalogError", "Cataloger", "ContentCataloger", "ContentMatch", "FileResult", "Found"]


@dataclass(frozen=True, slots=True)
class Found:
    """A package as one file declares it; the core adds layers, purl and locations.

    ``owned_paths`` is set by OS catalogers: the absolute paths of language
    package metadata (``*.dist-info``, ``*.egg-info``, ``node_modules/*/package.json``)
    that the OS package installed, so that the core does not report those twice.

    ``archive_path`` is set for a package found in an archive nested in the file:
    its path inside the file (``BOOT-INF/lib/a.jar``; ``a.war!/WEB-INF/lib/b.jar``
    deeper down). The core reports the location as ``<file>!/<archive_path>``.
    """

    ecosystem: Ecosystem
    name: str
    version: str
    source_name: str | None = None
    source_version: str | None = None
    arch: str | None = None
    licenses: tuple[str, ...] = ()
    owned_paths: tuple[str, ...] = ()
    archive_path: str = ""


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


@dataclass(frozen=True, slots=True)
class ContentMatch:
    """Regular files wanted wherever they are: with an execute bit and/or starting with one of ``magic``.

    Only files whose first bytes match are read; the core records only the files
    whose parse found packages, skipped entries or failed.
    """

    executable: bool = False
    magic: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if not self.executable and not self.magic:
            raise ValueError("a ContentMatch needs executable=True or at least one magic prefix: it would match all")
        if any(not m for m in self.magic):
            raise ValueError("an empty magic prefix matches every file")

    @property
    def peek_size(self) -> int:
        """How many first bytes of a file the core must see to decide."""
        return max((len(m) for m in self.magic), default=0)

    def wants(self, mode: int, head: bytes) -> bool:
        """Whether a regular file with this mode and these first bytes (``peek_size`` of them) is wanted."""
        if self.executable and not mode & 0o111:
            return False
        return not self.magic or head.startswith(self.magic)


class ContentCataloger(Cataloger, Protocol):
    """A cataloger that also wants files by content, not only by path."""

    @property
    def content(self) -> ContentMatch:
        """Which regular files, beyond those of ``globs``, this cataloger wants."""

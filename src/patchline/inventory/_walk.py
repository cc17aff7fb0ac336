"""Walk one layer's tar stream once; catalog the files catalogers declared.

The result of a layer walk depends only on the layer's content and the
catalogers' versions, so it is what the cache stores (keyed by diff_id).
Composition across layers (whiteouts, overrides) happens in ``_compose``.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO

from patchline.catalog.interface import Cataloger, ContentMatch, FileResult
from patchline.errors import CatalogError
from patchline.inventory._tar import HARDLINK, SYMLINK, TarReader

WALKER_VERSION = "5"
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"

# Files the core itself keeps as text, beside the catalogers' own: the distro, and
# the image's apt sources (the assessment derives the update suites from them).
OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")
SYSTEM_FILE_GLOBS = (
    *OS_RELEASE_PATHS,
    "/etc/debian_version",  # the release of a Debian image whose os-release and sources are gone
    "/etc/apt/sources.list",
    "/etc/apt/sources.list.d/*.list",
    "/etc/apt/sources.list.d/*.sources",
    # What installed packages depend on and provide: apt's upgrade decisions need it.
    "/var/lib/dpkg/status",
)
_SYSTEM_FILE_MAX = 64 * 1024
_SYSTEM_FILE_LIMITS = {"/var/lib/dpkg/status": 64 << 20}
# Declared files up to this size are kept until the layer ends, for hard links to them.
_KEEP_FOR_LINKS = 4 << 20


@dataclass(frozen=True, slots=True)
class CatalogedFile:
    """One declared file found in a layer, and what its cataloger made of it."""

    path: str
    cataloger: str  # "" for a file only the core wants
    kind: str  # "file", "symlink", "hardlink", "other"
    result: FileResult | None = None  # None when not parsed (see ``error``)
    error: str | None = None  # why the file could not be parsed
    text: str | None = None  # content, for system files (SYSTEM_FILE_GLOBS)
    link: str | None = None  # symlink / hardlink target


@dataclass(frozen=True, slots=True)
class LayerCatalog:
    """What one layer contributes: declared files, deletions, and problems."""

    diff_id: str
    files: tuple[CatalogedFile, ...]
    whiteouts: tuple[str, ...]  # absolute paths this layer deletes from the layers below
    opaque_dirs: tuple[str, ...]  # directories whose lower contents this layer hides
    problems: tuple[tuple[str, str], ...] = ()  # (path, reason) for entries that were refused
    entries: int = 0
    size: int = 0  # uncompressed bytes
    compression: str = "none"


def glob_to_regex(glob: str) -> str:
    """Translate an absolute path glob (``*``, ``?``, ``**/``) into a regex body.

    A glob that starts with ``**/`` means "anywhere", i.e. ``/**/``.
    """
    if glob.startswith("**/"):
        glob = "/" + glob
    if not glob.startswith("/"):
        raise ValueError(f"cataloger glob {glob!r} is not absolute")
    out = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out)


def content_match(cataloger: Cataloger) -> ContentMatch | None:
    """What a cataloger wants by content (``ContentCataloger.content``), or None for a globs-only one."""
    content = getattr(cataloger, "content", None)
    return content if isinstance(content, ContentMatch) else None


@dataclass
class Matcher:
    """Decides, with one regex match each, which cataloger and whether the core want a path.

    A path a glob claims goes to that cataloger; only the other regular files are
    offered to content catalogers, in list order, the first that wants one and finds
    packages (or a problem) in it taking it.
    """

    catalogers: Sequence[Cataloger]
    _regex: re.Pattern[str] = field(init=False)
    _system: re.Pattern[str] = field(init=False)
    _groups: dict[str, int] = field(init=False)
    _content: list[tuple[int, ContentMatch]] = field(init=False)
    _peek_size: int = field(init=False)

    def __post_init__(self) -> None:
        self._system = re.compile(f"(?:{'|'.join(glob_to_regex(g) for g in SYSTEM_FILE_GLOBS)})\\Z", re.DOTALL)
        self._content = [(i, m) for i, c in enumerate(self.catalogers) if (m := content_match(c)) is not None]
        self._peek_size = max((m.peek_size for _, m in self._content), default=0)
        alternatives = []
        self._groups = {}
        for index, cataloger in enumerate(self.catalogers):
            if not cataloger.globs:
                continue
            group = f"c{index}"
            self._groups[group] = index
            body = "|".join(glob_to_regex(g) for g in cataloger.globs)
            alternatives.append(f"(?P<{group}>{body})")
        self._regex = re.compile(f"(?:{'|'.join(alternatives)})\\Z", re.DOTALL)

    def match(self, path: str) -> tuple[int | None, bool]:
        """(index of the cataloger that wants the path or None, whether it is a system file)."""
        m = self._regex.match(path)
        which = self._groups[m.lastgroup] if m is not None and m.lastgroup is not None else None
        return which, self._system.match(path) is not None

    @property
    def by_content(self) -> bool:
        """Whether any cataloger wants files by content."""
        return bool(self._content)

    def match_content(self, mode: int, peek: Callable[[int], bytes]) -> int | None:
        """The content cataloger that wants a regular file of this mode; ``peek(n)`` gives its first bytes,
        and is called only when a mode check passed."""
        head: bytes | None = None
        for index, wanted in self._content:
            if wanted.executable and not mode & 0o111:
                continue
            if head is None:
                head = peek(self._peek_size) if self._peek_size else b""
            if wanted.wants(mode, head):
                return index
        return None

    def also_wanting(self, which: int | None, mode: int, data: bytes) -> list[int]:
        """The content catalogers after ``which`` in list order that also want this file."""
        after = -1 if which is None else which
        return [index for index, wanted in self._content if index > after and wanted.wants(mode, data)]


def normalize(name: str) -> tuple[str | None, str | None]:
    """(absolute path, None) or (None, why it is refused) for a tar entry name."""
    if "\0" in name:
        return None, "name contains a NUL byte"
    if name.startswith("/"):
        return None, "absolute path in a layer"
    path = posixpath.normpath("/" + name)
    # normpath("/" + "../x") gives "/x": detect escapes on the relative form instead.
    rel = posixpath.normpath(name) if name not in ("", ".", "./") else "."
    if rel == ".." or rel.startswith("../"):
        return None, "path escapes the image root"
    return path, None


def walk_layer(
    stream: IO[bytes],
    *,
    diff_id: str,
    matcher: Matcher,
    on_progress: Callable[[int], None] | None = None,
) -> LayerCatalog:
    """Read a layer's uncompressed tar stream once and catalog what it declares."""
    reader = TarReader(stream)
    catalogers = matcher.catalogers
    files: list[CatalogedFile] = []
    whiteouts: list[str] = []
    opaque: list[str] = []
    problems: list[tuple[str, str]] = []
    kept: dict[str, bytes] = {}  # this layer's declared regular files, for hard links to them
    by_content: dict[str, CatalogedFile] = {}  # files recorded for a content cataloger, for hard links to them
    seen: set[str] = set()  # every regular path in this layer, to check hard link targets
    last_progress = 0
    for entry in reader:
        if on_progress is not None and reader.entries - last_progress >= 2048:
            on_progress(entry.offset)
            last_progress = reader.entries
        path, refused = normalize(entry.name)
        if path is None:
            problems.append((entry.name, refused or "refused"))
            continue
        base = path.rpartition("/")[2]
        if base.startswith(WHITEOUT_PREFIX):
            parent = path.rpartition("/")[0] or "/"
            if base == OPAQUE_MARKER:
                opaque.append(parent)
            else:
                whiteouts.append(posixpath.join(parent, base[len(WHITEOUT_PREFIX) :]))
            continue
        if entry.is_regular:
            seen.add(path)
        which, system = matcher.match(path)
        chosen_by_content = False
        if which is None and not system:
            if entry.type == HARDLINK:
                target, why = normalize(entry.linkname)
                if target is None or target not in seen:
                    problems.append((path, f"hard link to missing file {entry.linkname!r}"
                                     if target is not None else f"hard link target {why}"))
                elif target in by_content:
                    files.append(dataclasses.replace(by_content[target], path=path, kind="hardlink",
                                                      link=entry.linkname))
                continue
            if not (entry.is_regular and entry.size and matcher.by_content):
                continue
            which = matcher.match_content(entry.mode, reader.peek)
            if which is None:
                continue
            chosen_by_content = True
        name = catalogers[which].name if which is not None else ""
        limit = max(
            catalogers[which].max_file_size if which is not None else 0,
            _SYSTEM_FILE_LIMITS.get(path, _SYSTEM_FILE_MAX) if system else 0,
        )
        if entry.type == SYMLINK:
            files.append(CatalogedFile(path, name, "symlink", link=entry.linkname))
            continue
        data: bytes | None = None
        kind = "file"
        if entry.type == HARDLINK:
            kind = "hardlink"
            target, _ = normalize(entry.linkname)
            if target is None or target not in seen:
                files.append(CatalogedFile(path, name, kind, error=f"hard link to missing file {entry.linkname!r}",
                                           link=entry.linkname))
                continue
            data = kept.get(target)
            if data is None:
                files.append(CatalogedFile(path, name, kind, error="hard link to a file that was not read",
                                           link=entry.linkname))
                continue
        elif not entry.is_regular:
            files.append(CatalogedFile(path, name, "other"))
            continue
        elif entry.size > limit:
            too_big = f"file is {entry.size} bytes, over the {limit} byte limit"
            files.append(CatalogedFile(path, name, kind, error=too_big))
            continue
        else:
            data = reader.read_data()
            if chosen_by_content:
                # The first content cataloger that finds something takes the file: an executable without Go
                # build info goes on to the next (cargo-auditable's), reading the bytes already in memory.
                for index in [which, *matcher.also_wanting(which, entry.mode, data)]:
                    cataloged = _parse(path, data, index, catalogers, kind, system=False)
                    result = cataloged.result
                    if cataloged.error or (result and (result.packages or result.skipped)):
                        files.append(cataloged)
                        by_content[path] = cataloged
                        break
                continue
            if len(data) <= _KEEP_FOR_LINKS:
                kept[path] = data
        files.append(_parse(path, data, which, catalogers, kind, system=system))
    return LayerCatalog(
        diff_id=diff_id,
        files=tuple(files),
        whiteouts=tuple(whiteouts),
        opaque_dirs=tuple(opaque),
        problems=tuple(problems),
        entries=reader.entries,
    )


def _parse(
    path: str, data: bytes, which: int | None, catalogers: Sequence[Cataloger], kind: str, *, system: bool
) -> CatalogedFile:
    text = data.decode("utf-8", "replace") if system else None
    if which is None:
        return CatalogedFile(path, "", kind, text=text)
    cataloger = catalogers[which]
    try:
        result = cataloger.parse(path, data)
    except CatalogError as exc:
        return CatalogedFile(path, cataloger.name, kind, error=str(exc), text=text)
    except Exception as exc:
        return CatalogedFile(path, cataloger.name, kind, error=f"cataloger failed: {type(exc).__name__}: {exc}",
                             text=text)
    return CatalogedFile(path, cataloger.name, kind, result=result, text=text)

"""RPM packages: the SQLite rpmdb (rpm >= 4.16: Fedora 33+, RHEL 9+, openSUSE).

The database is opened from the bytes in memory (``Connection.deserialize``),
never from a temporary file. It comes from an image, so it is untrusted: its
schema may not run code (``trusted_schema`` off, read-only), ``Packages`` must be
the plain table rpm creates (a view or generated column could produce rows or
bytes without end), rows are streamed one at a time, a blob larger than any rpm
header is not read, and at most ``max_packages`` rows are read (the rest is a
skip reason). Each row of ``Packages`` is one RPM header blob:

    int32 il, int32 dl               big-endian, il index entries, dl data bytes
    il x (int32 tag, uint32 type, int32 offset, uint32 count)
    dl bytes of data                 offsets are relative to its start

Unlike a ``.rpm`` file the blob has no 8-byte magic. Entries after the immutable
region ("dribbles", written at install time) replace region entries with the
same tag, as ``headerImport`` does, so the last entry for a tag wins.

Every offset and count is checked against the blob before it is used, and the
limits are rpm's own (``hdrchkTags``, ``hdrchkData``): a corrupt header becomes a
skip reason, never an exception or a large allocation. ``gpg-pubkey``
pseudo-packages (imported signing keys) are not packages and are left out.
Strings are decoded as UTF-8 with U+FFFD replacement, paths with
``surrogateescape`` (as ``tarfile`` decodes member names).

The BerkeleyDB (``Packages``) and NDB (``Packages.db``) backends of older
distributions are not read.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from patchline._model import Ecosystem
from patchline.catalog._ownership import language_metadata_paths
from patchline.catalog.interface import CatalogError, FileResult, Found

__all__ = ["RpmCataloger"]

_NAME, _VERSION, _RELEASE, _EPOCH = 1000, 1001, 1002, 1003
_LICENSE, _ARCH, _SOURCERPM = 1014, 1022, 1044
_DIRINDEXES, _BASENAMES, _DIRNAMES = 1116, 1117, 1118
_WANTED = frozenset(
    {_NAME, _VERSION, _RELEASE, _EPOCH, _LICENSE, _ARCH, _SOURCERPM} | {_DIRINDEXES, _BASENAMES, _DIRNAMES}
)

_INT32, _STRING, _STRING_ARRAY, _I18NSTRING = 4, 6, 8, 9
_MAX_ENTRIES = 0xFFFF  # rpm's hdrchkTags
_MAX_DATA = 0x00FFFFFF  # rpm's hdrchkData: 16 MiB
_ENTRY = struct.Struct(">iIiI")
_INTRO = struct.Struct(">ii")
_MAX_BLOB = _INTRO.size + _MAX_ENTRIES * _ENTRY.size + _MAX_DATA  # the largest header rpm's limits allow
MAX_PACKAGES = 200_000
"""Rows of ``Packages`` read at most (a full Fedora workstation has about 3,000 packages)."""

_SQLITE_MAGIC = b"SQLite format 3\0"


class _CorruptHeader(ValueError):
    """A header blob is inconsistent; the package becomes a skip reason."""


@dataclass(frozen=True, slots=True)
class RpmCataloger:
    """Catalogs RPM packages from the SQLite rpmdb (see the module docstring)."""

    name: str = field(default="rpm-db-cataloger", init=False)
    version: str = field(default="1", init=False)
    globs: tuple[str, ...] = field(
        default=("/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite"),
        init=False,
    )
    max_file_size: int = 512 * 1024 * 1024
    max_packages: int = MAX_PACKAGES

    def parse(self, path: str, data: bytes) -> FileResult:
        packages: list[Found] = []
        skipped: list[str] = []
        for hnum, blob in _header_blobs(data, max_rows=self.max_packages):
            if isinstance(blob, str):
                skipped.append(blob)
                continue
            try:
                found = _parse_header(blob)
            except _CorruptHeader as exc:
                skipped.append(f"header {hnum}: {exc}")
                continue
            if found is not None:
                packages.append(found)
        return FileResult(packages=tuple(packages), skipped=tuple(skipped))


def _header_blobs(data: bytes, *, max_rows: int) -> Iterator[tuple[int, bytes | str]]:
    """(hnum, header blob or why it is skipped) of every row of ``Packages``, one row in memory at a time."""
    conn = _open_rpmdb(data)
    try:
        rows = conn.execute(
            "SELECT hnum, typeof(blob), length(blob), CASE WHEN length(blob) <= ? THEN blob END "
            "FROM Packages ORDER BY hnum LIMIT ?",
            (_MAX_BLOB, max_rows + 1),
        )
        for count, (hnum, kind, size, blob) in enumerate(rows, start=1):
            if count > max_rows:
                yield hnum, f"rpmdb Packages has more than {max_rows} rows: only the first {max_rows} are read"
                return
            if kind != "blob":
                raise CatalogError(f"rpmdb Packages row {hnum!r} holds no blob")
            if blob is None:
                yield hnum, f"header {hnum}: blob of {size} bytes is over the {_MAX_BLOB}-byte limit of an rpm header"
                continue
            yield hnum, blob
    except sqlite3.Error as exc:
        raise CatalogError(f"cannot read the rpmdb Packages table: {exc}") from exc
    finally:
        conn.close()


def _open_rpmdb(data: bytes) -> sqlite3.Connection:
    """A read-only in-memory copy of the database whose schema cannot run anything, checked to be rpm's."""
    if not data.startswith(_SQLITE_MAGIC) or len(data) < 100:
        raise CatalogError("not an SQLite database (no SQLite header)")
    conn = sqlite3.connect(":memory:")
    try:
        # Before the schema is first read: no function of a view, trigger or generated column runs.
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, _MAX_BLOB)  # no string or blob larger than a header
        if data[18:20] == b"\x02\x02":
            # WAL mode, as rpm leaves it: an in-memory database cannot use a WAL, so
            # read it as a rollback-journal database. rpm checkpoints on close, so
            # the main file holds every committed transaction. The patched copy
            # lives only until SQLite has its own.
            patched = bytearray(data)
            patched[18:20] = b"\x01\x01"
            conn.deserialize(patched)
            del patched
        else:
            conn.deserialize(data)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA cell_size_check = ON")
        _check_schema(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise CatalogError(f"cannot read the rpmdb Packages table: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _check_schema(conn: sqlite3.Connection) -> None:
    """``Packages`` must be rpm's plain table: ``hnum INTEGER PRIMARY KEY``, ``blob`` stored, not computed."""
    objects = conn.execute("SELECT type, sql FROM sqlite_master WHERE name = 'Packages' COLLATE NOCASE").fetchall()
    if not objects:
        raise CatalogError("the rpmdb has no Packages table")
    kind, sql = objects[0]
    if kind != "table" or str(sql or "").lstrip().upper().startswith("CREATE VIRTUAL"):
        what = "a virtual table" if kind == "table" else f"a {kind}"
        raise CatalogError(f"the rpmdb's Packages is {what}, not a table: refused (it could generate rows without end)")
    columns = {str(name).lower(): (str(type_).upper(), pk, hidden)
               for _, name, type_, _, _, pk, hidden in conn.execute("PRAGMA table_xinfo('Packages')")}
    hnum, blob = columns.get("hnum"), columns.get("blob")
    if hnum is None or blob is None:
        raise CatalogError("the rpmdb's Packages table has no hnum and blob columns")
    if hnum[2] or blob[2]:
        raise CatalogError("the rpmdb's Packages table computes hnum or blob (a generated column): refused")
    if hnum[:2] != ("INTEGER", 1) or sum(1 for c in columns.values() if c[1]) != 1:
        raise CatalogError("the rpmdb's Packages table is not rpm's: hnum is not its INTEGER PRIMARY KEY")


def _parse_header(blob: bytes) -> Found | None:
    """The package a header blob describes; None for gpg-pubkey."""
    tags = _read_header(blob)
    name = _string(tags, _NAME)
    version = _string(tags, _VERSION)
    release = _string(tags, _RELEASE)
    if not name or not version or not release:
        raise _CorruptHeader("no NAME, VERSION or RELEASE tag")
    if name == "gpg-pubkey":
        return None
    epochs = _int32s(tags, _EPOCH)
    epoch = f"{epochs[0]}:" if epochs else ""
    full_version = f"{epoch}{version}-{release}"
    source_name, source_version = name, full_version
    source_rpm = _string(tags, _SOURCERPM)
    if source_rpm:
        parsed = _parse_source_rpm(source_rpm)
        if parsed is not None:
            # Subpackages share their spec's epoch, and the file name cannot carry it.
            source_name, source_version = parsed[0], epoch + parsed[1]
    licence = _string(tags, _LICENSE)
    return Found(
        ecosystem=Ecosystem.RPM,
        name=name,
        version=full_version,
        source_name=source_name,
        source_version=source_version,
        arch=_string(tags, _ARCH) or None,
        licenses=(licence,) if licence else (),
        owned_paths=language_metadata_paths(_file_names(tags)),
    )


def _parse_source_rpm(file_name: str) -> tuple[str, str] | None:
    """``name-version-release.src.rpm`` -> (name, ``version-release``)."""
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if file_name.endswith(suffix):
            parts = file_name.removesuffix(suffix).rsplit("-", 2)
            if len(parts) == 3 and all(parts):
                return parts[0], f"{parts[1]}-{parts[2]}"
    return None


@dataclass(frozen=True, slots=True)
class _Entry:
    type: int
    offset: int
    count: int


@dataclass(frozen=True, slots=True)
class _Tags:
    data: bytes
    entries: dict[int, _Entry]


def _read_header(blob: bytes) -> _Tags:
    if len(blob) < _INTRO.size:
        raise _CorruptHeader(f"blob of {len(blob)} bytes is shorter than a header intro")
    il, dl = _INTRO.unpack_from(blob)
    if not 0 < il <= _MAX_ENTRIES:
        raise _CorruptHeader(f"index count {il} out of range")
    if not 0 <= dl <= _MAX_DATA:
        raise _CorruptHeader(f"data length {dl} out of range")
    data_start = _INTRO.size + il * _ENTRY.size
    if data_start + dl != len(blob):
        raise _CorruptHeader(
            f"blob is {len(blob)} bytes, its intro says {data_start + dl} ({il} entries, {dl} data bytes)"
        )
    data = blob[data_start:]
    entries: dict[int, _Entry] = {}
    for i in range(il):
        tag, type_, offset, count = _ENTRY.unpack_from(blob, _INTRO.size + i * _ENTRY.size)
        if tag not in _WANTED:
            continue
        if not 0 <= offset < dl or not 0 < count <= dl - offset:
            raise _CorruptHeader(f"tag {tag}: offset {offset} count {count} outside the data")
        entries[tag] = _Entry(type_, offset, count)  # later entries (dribbles) win
    return _Tags(data, entries)


def _strings(tags: _Tags, tag: int, *, errors: str = "replace") -> Sequence[str]:
    entry = tags.entries.get(tag)
    if entry is None:
        return ()
    if entry.type in (_STRING, _I18NSTRING):
        count = 1  # an I18NSTRING's first string is the untranslated one
    elif entry.type == _STRING_ARRAY:
        count = entry.count
    else:
        raise _CorruptHeader(f"tag {tag} has type {entry.type}, expected a string")
    values: list[str] = []
    pos = entry.offset
    for _ in range(count):
        end = tags.data.find(b"\0", pos)
        if end == -1:
            raise _CorruptHeader(f"tag {tag}: unterminated string at offset {pos}")
        values.append(tags.data[pos:end].decode("utf-8", errors=errors))
        pos = end + 1
    return values


def _string(tags: _Tags, tag: int) -> str:
    values = _strings(tags, tag)
    return values[0] if values else ""


def _int32s(tags: _Tags, tag: int) -> tuple[int, ...]:
    entry = tags.entries.get(tag)
    if entry is None:
        return ()
    if entry.type != _INT32:
        raise _CorruptHeader(f"tag {tag} has type {entry.type}, expected INT32")
    end = entry.offset + 4 * entry.count
    if end > len(tags.data):
        raise _CorruptHeader(f"tag {tag}: {entry.count} INT32 values overrun the data")
    return struct.unpack_from(f">{entry.count}i", tags.data, entry.offset)


def _file_names(tags: _Tags) -> list[str]:
    basenames = _strings(tags, _BASENAMES, errors="surrogateescape")
    dirnames = _strings(tags, _DIRNAMES, errors="surrogateescape")
    indexes = _int32s(tags, _DIRINDEXES)
    if len(indexes) != len(basenames):
        raise _CorruptHeader(f"{len(basenames)} BASENAMES but {len(indexes)} DIRINDEXES")
    names: list[str] = []
    for index, base in zip(indexes, basenames, strict=True):
        if not 0 <= index < len(dirnames):
            raise _CorruptHeader(f"DIRINDEXES entry {index} outside {len(dirnames)} DIRNAMES")
        names.append(dirnames[index] + base)
    return names

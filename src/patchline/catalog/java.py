"""Java archives (``.jar .war .ear .par .sar .jpi .hpi``) and the archives nested in them.

The archive is read from its bytes with ``zipfile``; nothing is extracted to
disk. Identity, first that applies:

* every ``META-INF/maven/**/pom.properties`` (``groupId``, ``artifactId``,
  ``version``): a shaded jar carries one per artifact it bundles, and each is a
  package;
* ``META-INF/MANIFEST.MF``: ``Implementation-Title`` (else
  ``Bundle-SymbolicName``, its directives dropped) and ``Implementation-Version``
  (else ``Bundle-Version``); the group from ``Implementation-Vendor-Id``. The
  ``Implementation-*`` attributes come from the main section, else from the
  first per-package section that has a title (as log4j 1.2 writes them);
* the file name, ``artifact-1.2.3.jar`` (the version starts at the last ``-``
  followed by a digit).

Names are ``GROUP:ARTIFACT``, as OSV's Maven records name packages. When no
group is known (a manifest without ``Implementation-Vendor-Id``, a file name)
the group is taken to be the artifact, Maven 1's convention and Syft's
fallback: Debian's ``log4j-1.2-1.2.17.jar`` carries no ``pom.properties``, and
``log4j:log4j`` is what the advisories name. A package found in a nested archive (Spring Boot's
``BOOT-INF/lib``, ``WEB-INF/lib``, any archive inside an archive) carries
``Found.archive_path``, its path inside the file (``BOOT-INF/lib/a.jar``,
``lib/a.war!/WEB-INF/lib/b.jar`` deeper down).

Hostile archives cost bounded memory: the central directory's entry count is
read from its end record before ``zipfile`` parses it; each member's declared
size and compression ratio are checked before it is inflated, and every member
read counts against one budget per file. What passes a limit is a skip with its
reason; so is a nested archive that is not a readable zip. An outer file that is
not one raises ``CatalogError`` (the core reports it as skipped).
"""

from __future__ import annotations

import io
import posixpath
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

from patchline._model import Ecosystem
from patchline.catalog.interface import CatalogError, FileResult, Found

__all__ = ["JAVA_ARCHIVE_SUFFIXES", "JavaCataloger"]

JAVA_ARCHIVE_SUFFIXES = (".jar", ".war", ".ear", ".par", ".sar", ".jpi", ".hpi")

_METADATA_MAX = 1 << 20  # a pom.properties or MANIFEST.MF larger than this is not one
_BOMB_MIN_SIZE = 1 << 20  # below this, a high compression ratio is harmless (a file of zeros)
_POM_PROPERTIES = re.compile(r"META-INF/maven/(?:[^/]+/)+pom\.properties", re.IGNORECASE)
_MAVEN_ID = re.compile(r"[A-Za-z0-9_.\-]+")
_FILE_NAME = re.compile(r"(?P<name>.+)-(?P<version>[0-9][^/]*)")
_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"
_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError)


@dataclass(frozen=True, slots=True)
class JavaCataloger:
    """Catalogs Java archives by their Maven metadata, manifest or file name (see the module docstring)."""

    name: str = field(default="java-archive-cataloger", init=False)
    version: str = field(default="1", init=False)
    globs: tuple[str, ...] = field(default=tuple(f"**/*{suffix}" for suffix in JAVA_ARCHIVE_SUFFIXES), init=False)
    max_file_size: int = 256 << 20
    max_nesting: int = 4  # archives inside archives deeper than this are skipped
    max_read_bytes: int = 512 << 20  # uncompressed bytes read from one file, nested archives included
    max_entries: int = 200_000  # entries in one archive's central directory
    max_ratio: int = 100  # uncompressed / compressed size of a member of 1 MiB or more

    def parse(self, path: str, data: bytes) -> FileResult:
        scan = _Scan(self)
        try:
            archive = scan.open(data)
        except _Skip as exc:
            raise CatalogError(str(exc)) from None
        with archive:
            scan.archive(archive, base=posixpath.basename(path), location="", depth=0)
        return FileResult(packages=tuple(scan.packages), skipped=tuple(scan.skipped))


class _Skip(Exception):
    """Why an archive or member is not read; becomes one ``skipped`` reason."""


class _Scan:
    """The state of one file's parse: what was found, and how much of the budget is spent."""

    def __init__(self, limits: JavaCataloger) -> None:
        self.limits = limits
        self.spent = 0
        self.packages: list[Found] = []
        self.skipped: list[str] = []
        self._seen: set[tuple[str, str, str]] = set()

    def open(self, data: bytes) -> zipfile.ZipFile:
        entries = _declared_entries(data)
        if entries is not None and entries > self.limits.max_entries:
            raise _Skip(f"archive declares {entries} entries, over the {self.limits.max_entries} entry limit")
        try:
            return zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, struct.error) as exc:
            raise _Skip(f"not a readable zip archive: {exc}") from None

    def archive(self, archive: zipfile.ZipFile, *, base: str, location: str, depth: int) -> None:
        prefix = f"{location}: " if location else ""
        poms: list[zipfile.ZipInfo] = []
        manifest: zipfile.ZipInfo | None = None
        nested: list[zipfile.ZipInfo] = []
        for info in archive.infolist():
            if info.is_dir():
                continue
            if _POM_PROPERTIES.fullmatch(info.filename):
                poms.append(info)
            elif info.filename.upper() == "META-INF/MANIFEST.MF":
                manifest = info
            elif info.filename.lower().endswith(JAVA_ARCHIVE_SUFFIXES):
                nested.append(info)
        found = 0
        for info in poms:
            try:
                identity = _from_pom_properties(self.read(archive, info, limit=_METADATA_MAX))
            except _Skip as exc:
                self.skipped.append(f"{prefix}{info.filename}: {exc}")
                continue
            found += self.add(identity, location)
        if not found and manifest is not None:
            try:
                found += self.add(_from_manifest(self.read(archive, manifest, limit=_METADATA_MAX)), location)
            except _Skip as exc:
                self.skipped.append(f"{prefix}{manifest.filename}: {exc}")
        if not found:
            found += self.add(_from_file_name(base), location)
        if not found:
            self.skipped.append(f"{prefix}no pom.properties, no identity in the manifest and no version in the "
                                f"file name {base!r}")
        for info in nested:
            inner = f"{location}!/{info.filename}" if location else info.filename
            if depth + 1 > self.limits.max_nesting:
                self.skipped.append(f"{inner}: nested more than {self.limits.max_nesting} archives deep; not read")
                continue
            try:
                data = self.read(archive, info, limit=self.limits.max_file_size)
                child = self.open(data)
            except _Skip as exc:
                self.skipped.append(f"{inner}: {exc}")
                continue
            with child:
                self.archive(child, base=posixpath.basename(info.filename), location=inner, depth=depth + 1)

    def add(self, identity: tuple[str, str] | None, location: str) -> int:
        if identity is None:
            return 0
        name, version = identity
        if (name, version, location) not in self._seen:
            self._seen.add((name, version, location))
            self.packages.append(Found(ecosystem=Ecosystem.MAVEN, name=name, version=version, archive_path=location))
        return 1

    def read(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, limit: int) -> bytes:
        """A member's bytes, refused before inflating when its declared size or ratio is too large."""
        size = info.file_size
        if size > limit:
            raise _Skip(f"declares {size} bytes uncompressed, over the {limit} byte limit")
        if size >= _BOMB_MIN_SIZE and size > self.limits.max_ratio * max(info.compress_size, 1):
            raise _Skip(f"compression ratio over {self.limits.max_ratio}:1 ({info.compress_size} bytes inflate to "
                        f"{size}): a zip bomb; not read")
        if self.spent + size > self.limits.max_read_bytes:
            raise _Skip(f"reading its {size} bytes would pass the {self.limits.max_read_bytes} byte limit "
                        "for one archive and what it holds")
        self.spent += size
        try:
            with archive.open(info) as stream:
                data = stream.read(size + 1)  # zipfile stops at the declared size; +1 proves it did
        except _MEMBER_ERRORS as exc:
            raise _Skip(f"cannot be read: {exc}") from None
        if len(data) != size:
            raise _Skip(f"holds {len(data)} bytes, not the {size} its header declares")
        return data


def _declared_entries(data: bytes) -> int | None:
    """The entry count the end of central directory record declares (zip64 too); None if there is none."""
    end = data.rfind(_EOCD, max(0, len(data) - (1 << 16) - 22))
    if end < 0 or end + 22 > len(data):
        return None
    (entries,) = struct.unpack_from("<H", data, end + 10)
    locator = end - 20
    if entries == 0xFFFF and locator >= 0 and data[locator : locator + 4] == _ZIP64_LOCATOR:
        (offset,) = struct.unpack_from("<Q", data, locator + 8)
        if offset + 56 <= len(data) and data[offset : offset + 4] == _ZIP64_EOCD:
            (entries,) = struct.unpack_from("<Q", data, offset + 32)
    return int(entries)


def _identity(group: str, artifact: str, version: str, *, what: str) -> tuple[str, str]:
    for label, value in (("groupId", group), ("artifactId", artifact)):
        if value and not _MAVEN_ID.fullmatch(value):
            raise _Skip(f"{what} has an invalid {label} {value!r}")
    if not version or "${" in version or any(c.isspace() for c in version):
        raise _Skip(f"{what} has an unusable version {version!r}")
    return f"{group or artifact}:{artifact}", version


def _from_pom_properties(data: bytes) -> tuple[str, str]:
    props = _properties(data.decode("latin-1"))
    group, artifact, version = (props.get(k, "").strip() for k in ("groupId", "artifactId", "version"))
    if not group or not artifact:
        raise _Skip("pom.properties lacks groupId or artifactId")
    return _identity(group, artifact, version, what="pom.properties")


def _from_manifest(data: bytes) -> tuple[str, str] | None:
    main, *sections = _manifest_sections(data.decode("utf-8", "replace")) or [{}]
    implementation = next((s for s in (main, *sections) if "implementation-title" in s), main)
    title = implementation.get("implementation-title", "")
    artifact = title if _MAVEN_ID.fullmatch(title) else main.get("bundle-symbolicname", "").split(";")[0].strip()
    version = implementation.get("implementation-version") or main.get("bundle-version", "")
    if not artifact or not version:
        return None
    vendor = implementation.get("implementation-vendor-id", "")
    return _identity(vendor, artifact, version, what="MANIFEST.MF")


def _from_file_name(base: str) -> tuple[str, str] | None:
    stem, _ = posixpath.splitext(base)
    match = _FILE_NAME.fullmatch(stem)
    if match is None or not _MAVEN_ID.fullmatch(match["name"]) or not _MAVEN_ID.fullmatch(match["version"]):
        return None
    return f"{match['name']}:{match['name']}", match["version"]


def _properties(text: str) -> dict[str, str]:
    """A Java ``.properties`` file: comments, continuation lines, ``=``/``:``/space separators."""
    result: dict[str, str] = {}
    logical = ""
    for raw in text.splitlines():
        line = raw.lstrip()
        if not logical and (not line or line[0] in "#!"):
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            logical += line[:-1]
            continue
        logical += line
        key, value = _split_property(logical)
        result[key] = value
        logical = ""
    if logical:
        key, value = _split_property(logical)
        result[key] = value
    return result


def _split_property(line: str) -> tuple[str, str]:
    match = re.match(r"((?:[^\\=:\s]|\\.)*)\s*[=:]?\s*(.*)", line, re.DOTALL)
    assert match is not None  # the pattern matches every string
    return match[1].replace("\\", ""), match[2]


def _manifest_sections(text: str) -> list[dict[str, str]]:
    """A manifest's sections, the main one first, names lower-cased; continuation lines start with one space."""
    sections: list[dict[str, str]] = []
    attributes: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if attributes or not sections:
                sections.append(attributes)
            attributes, last = {}, ""
            continue
        if line.startswith(" ") and last:
            attributes[last] += line[1:]
            continue
        name, sep, value = line.partition(":")
        if sep:
            last = name.strip().lower()
            attributes[last] = value.strip()
    if attributes or not sections:
        sections.append(attributes)
    return sections

"""Go binaries: the modules and the toolchain compiled into an ELF executable.

Go (1.13 and later) writes its build information into the ``.go.buildinfo``
section: a 32-byte header starting ``\\xff Go buildinf:``, then the toolchain
version and the module information text (``go version -m`` prints both). Since
Go 1.18 both strings follow the header inline, each prefixed with its length as a
varint; before, the header holds two pointers to Go string headers elsewhere in
the binary, which are followed through the program headers. Without section
headers the header is found by its magic, which Go aligns to 16 bytes.

What is reported, per binary (``go version -m`` names):

* the toolchain as ``stdlib``, version ``1.19.8`` for ``go1.19.8`` (``go1.20`` is
  ``1.20.0``, ``go1.21rc2`` is ``1.21.0-rc.2``: the Go vulnerability database's
  spelling), also for binaries built in GOPATH mode, which carry no module info;
* the main module (``mod``) with its version, usually ``(devel)``;
* every dependency (``dep``) with its version. A replaced one keeps its own
  path, takes the replacement's version, and names the replacement in
  ``source_name`` / ``source_version`` (``./dep`` and ``(devel)`` for a local
  directory).

Build settings (``build`` lines) are parsed into :class:`BuildInfo` but not
reported: a ``Found`` has no field for them.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass

from patchline._model import Ecosystem
from patchline.catalog._elf import ELF_MAGIC, ElfFile, open_elf
from patchline.catalog.interface import CatalogError, ContentMatch, FileResult, Found

__all__ = ["BuildInfo", "GoBinaryCataloger", "GoModule", "parse_modinfo", "read_build_info", "stdlib_version"]

BUILDINFO_MAGIC = b"\xff Go buildinf:"
_HEADER_SIZE = 32
_FLAG_BIG_ENDIAN = 1
_FLAG_INLINE = 2  # Go >= 1.18: strings inline after the header
_MAX_STRING = 16 << 20  # no real version or module list comes near this
_GO_RELEASE = re.compile(r"go(\d+)\.(\d+)(?:\.(\d+))?(?:(beta|rc)(\d+))?(?=\s|$)")


@dataclass(frozen=True, slots=True)
class GoModule:
    """A ``mod`` or ``dep`` line, with the ``=>`` line that replaced it, if any."""

    path: str
    version: str
    sum: str = ""
    replace: GoModule | None = None


@dataclass(frozen=True, slots=True)
class BuildInfo:
    """What a Go binary says about how it was built."""

    go_version: str  # as the binary spells it: "go1.19.8"
    path: str = ""  # the main package's import path
    main: GoModule | None = None  # None in GOPATH mode
    deps: tuple[GoModule, ...] = ()
    settings: tuple[tuple[str, str], ...] = ()  # build key=value, in order
    problems: tuple[str, ...] = ()  # module info lines that could not be read


def stdlib_version(go_version: str) -> str | None:
    """``go1.19.8`` -> ``1.19.8``, ``go1.20`` -> ``1.20.0``, ``go1.21rc2`` -> ``1.21.0-rc.2``; None if not a release."""
    m = _GO_RELEASE.match(go_version.strip())
    if m is None:
        return None
    major, minor, patch, pre, pre_number = m.groups()
    version = f"{major}.{minor}.{patch or 0}"
    return f"{version}-{pre}.{pre_number}" if pre else version


def _unquote(text: str) -> str:
    # cmd/go quotes a key or value with strconv.Quote when it holds spaces, tabs, quotes or "=".
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            value = json.loads(text)
        except ValueError:
            return text
        return value if isinstance(value, str) else text
    return text


def _split_setting(text: str) -> tuple[str, str]:
    if text.startswith('"'):
        end = 1
        while end < len(text):
            if text[end] == "\\":
                end += 2
                continue
            if text[end] == '"':
                break
            end += 1
        key, rest = text[: end + 1], text[end + 1 :]
        return _unquote(key), _unquote(rest[1:] if rest.startswith("=") else rest)
    key, _, value = text.partition("=")
    return key, _unquote(value)


def parse_modinfo(go_version: str, text: str) -> BuildInfo:
    """Parse the module info text (the lines ``go version -m`` prints after the version)."""
    path = ""
    main: GoModule | None = None
    deps: list[GoModule] = []
    settings: list[tuple[str, str]] = []
    problems: list[str] = []
    last: str | None = None  # "mod" or "dep": what an "=>" line replaces
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        kind, _, rest = line.partition("\t")
        fields = rest.split("\t")
        if kind == "path":
            path = rest
        elif kind in ("mod", "dep"):
            if len(fields) < 2 or not fields[0] or not fields[1]:
                problems.append(f"module info line {number}: {kind} line without a path and a version: {line!r}")
                last = None
                continue
            module = GoModule(fields[0], fields[1], fields[2] if len(fields) > 2 else "")
            if kind == "mod":
                main = module
            else:
                deps.append(module)
            last = kind
        elif kind == "=>":
            if not fields[0] or last is None:
                problems.append(f"module info line {number}: replacement without a module before it: {line!r}")
                continue
            version, sum_ = [*fields[1:3], "", ""][:2]
            replacement = GoModule(fields[0], version, sum_)
            if last == "mod" and main is not None:
                main = GoModule(main.path, main.version, main.sum, replacement)
            else:
                replaced = deps[-1]
                deps[-1] = GoModule(replaced.path, replaced.version, replaced.sum, replacement)
            last = None
        elif kind == "build":
            settings.append(_split_setting(rest))
        # Other lines ("go" in newer text forms) carry nothing reported here.
    return BuildInfo(go_version, path, main, tuple(deps), tuple(settings), tuple(problems))


def _find_magic(data: bytes) -> int | None:
    pos = data.find(BUILDINFO_MAGIC)
    while pos >= 0:
        if pos % 16 == 0:
            return pos
        pos = data.find(BUILDINFO_MAGIC, pos + 1)
    return None


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise CatalogError("truncated Go build info: a string length runs past the end of the file")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise CatalogError("invalid Go build info: a string length is not a varint")


def _inline_string(data: bytes, pos: int, what: str) -> tuple[bytes, int]:
    length, pos = _uvarint(data, pos)
    if length > _MAX_STRING or pos + length > len(data):
        raise CatalogError(f"truncated Go build info: the {what} ({length} bytes) runs past the end of the file")
    return data[pos : pos + length], pos + length


def _pointed_string(elf: ElfFile, pointer: int, ptr_size: int, order: str, what: str) -> bytes:
    """Follow a pointer to a Go string header {data pointer, length} (Go < 1.18)."""
    word = "Q" if ptr_size == 8 else "I"
    header_at = elf.file_offset(pointer)
    if header_at is None:
        raise CatalogError(f"invalid Go build info: the {what} pointer {pointer:#x} is in no loaded segment")
    if header_at + 2 * ptr_size > len(elf.data):
        raise CatalogError(f"truncated Go build info: the {what} lies past the end of the file")
    address, length = struct.unpack_from(order + word * 2, elf.data, header_at)
    if length == 0:
        return b""
    at = elf.file_offset(address)
    if at is None or length > _MAX_STRING:
        raise CatalogError(f"invalid Go build info: the {what} at {address:#x} ({length} bytes) is not in the file")
    if at + length > len(elf.data):
        raise CatalogError(f"truncated Go build info: the {what} runs past the end of the file")
    return elf.data[at : at + length]


def read_build_info(data: bytes) -> BuildInfo | None:
    """The build info of an ELF Go binary; None for an ELF file that is not one.

    Raises ``CatalogError`` for a file that is not ELF, or is truncated where it matters.
    """
    elf = open_elf(data)
    section = elf.section(b".go.buildinfo")
    if section is not None:
        start = section[1]
        if not data.startswith(BUILDINFO_MAGIC, start):
            if start + len(BUILDINFO_MAGIC) > len(data):
                raise CatalogError("truncated ELF: the .go.buildinfo section lies past the end of the file")
            raise CatalogError("invalid Go build info: the .go.buildinfo section does not start with its magic")
    elif elf.sections():
        return None  # section headers, none of them Go's: not a Go binary (or one older than Go 1.13)
    else:
        found = _find_magic(data)
        if found is None:
            return None
        start = found
    if start + _HEADER_SIZE > len(data):
        raise CatalogError("truncated Go build info: its header runs past the end of the file")
    ptr_size = data[start + 14]
    flags = data[start + 15]
    if flags & _FLAG_INLINE:
        go_version, pos = _inline_string(data, start + _HEADER_SIZE, "toolchain version")
        modinfo, _ = _inline_string(data, pos, "module info")
    else:
        if ptr_size not in (4, 8):
            raise CatalogError(f"invalid Go build info: pointer size {ptr_size}")
        order = ">" if flags & _FLAG_BIG_ENDIAN else "<"
        word = "Q" if ptr_size == 8 else "I"
        version_ptr, modinfo_ptr = struct.unpack_from(order + word * 2, data, start + 16)
        go_version = _pointed_string(elf, version_ptr, ptr_size, order, "toolchain version")
        modinfo = _pointed_string(elf, modinfo_ptr, ptr_size, order, "module info")
    if len(modinfo) >= 33 and modinfo[-17] == ord("\n"):
        modinfo = modinfo[16:-16]  # cmd/go frames the text with 16 sentinel bytes each side; debug/buildinfo too
    return parse_modinfo(go_version.decode("utf-8", "replace"), modinfo.decode("utf-8", "replace"))


def _found(info: BuildInfo) -> FileResult:
    packages: list[Found] = []
    skipped = list(info.problems)
    stdlib = stdlib_version(info.go_version)
    if stdlib is None:
        skipped.append(f"Go toolchain version {info.go_version!r} is not a release: stdlib not reported")
    else:
        packages.append(Found(Ecosystem.GOLANG, "stdlib", stdlib))
    if info.main is not None:
        packages.append(Found(Ecosystem.GOLANG, info.main.path, info.main.version))
    for dep in info.deps:
        if dep.replace is None:
            packages.append(Found(Ecosystem.GOLANG, dep.path, dep.version))
        else:
            packages.append(Found(Ecosystem.GOLANG, dep.path, dep.replace.version or dep.version,
                                  source_name=dep.replace.path, source_version=dep.replace.version or None))
    return FileResult(tuple(packages), tuple(skipped))


class GoBinaryCataloger:
    """Go modules and toolchain compiled into ELF executables, wherever they are in the image."""

    name = "go-module-binary-cataloger"
    version = "1"
    globs: tuple[str, ...] = ()
    content = ContentMatch(executable=True, magic=(ELF_MAGIC,))
    # Big Go binaries (kubelet, terraform providers) are 100-300 MB; one is held at a time per layer.
    max_file_size = 512 << 20

    def parse(self, path: str, data: bytes) -> FileResult:
        info = read_build_info(data)
        if info is None:
            return FileResult()
        return _found(info)

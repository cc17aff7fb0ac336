"""The Go binary cataloger on tiny ELF files built here, in every layout Go writes its build info.

``elf()`` lays out a minimal ELF file: header, one PT_LOAD program header
mapping the whole file at ``BASE``, the sections given, a section name table and
the section headers at the end (where a truncated download loses them first).
"""

from __future__ import annotations

import struct

import pytest

from patchline._model import Ecosystem
from patchline.catalog.golang import (
    BUILDINFO_MAGIC,
    GoBinaryCataloger,
    GoModule,
    parse_modinfo,
    read_build_info,
    stdlib_version,
)
from patchline.catalog.interface import CatalogError, Found

BASE = 0x400000
_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
_END = bytes.fromhex("f932433186182072008242104116d8f2")

MODINFO = (
    "path\texample.com/app\n"
    "mod\texample.com/app\t(devel)\t\n"
    "dep\texample.com/dep\tv0.0.0-00010101000000-000000000000\n"
    "=>\t./dep\t(devel)\t\n"
    "dep\tgolang.org/x/net\tv0.1.0\th1:abc=\n"
    "=>\tgolang.org/x/net\tv0.7.0\th1:def=\n"
    "dep\tgolang.org/x/text\tv0.3.6\th1:ghi=\n"
    "build\t-compiler=gc\n"
    'build\t-ldflags="-X main.v=1"\n'  # cmd/go quotes a value (or key) holding spaces or "="
    'build\t"odd=key"=v\n'
    "build\tGOARCH=amd64\n"
)
GOFOUND = {
    Found(Ecosystem.GOLANG, "stdlib", "1.19.8"),
    Found(Ecosystem.GOLANG, "example.com/app", "(devel)"),
    Found(Ecosystem.GOLANG, "example.com/dep", "(devel)", source_name="./dep", source_version="(devel)"),
    Found(Ecosystem.GOLANG, "golang.org/x/net", "v0.7.0", source_name="golang.org/x/net", source_version="v0.7.0"),
    Found(Ecosystem.GOLANG, "golang.org/x/text", "v0.3.6"),
}


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def inline_buildinfo(version: str, modinfo: str, *, ptr_size: int = 8, big_endian: bool = False) -> bytes:
    """Go >= 1.18: the header, then both strings inline, each after its varint length."""
    framed = _START + modinfo.encode() + _END if modinfo else b""
    header = BUILDINFO_MAGIC + bytes([ptr_size, 2 | int(big_endian)])
    header = header.ljust(32, b"\0")
    return header + _uvarint(len(version)) + version.encode() + _uvarint(len(framed)) + framed


def _layout(bits: int) -> tuple[int, int, int, int]:
    """(ELF header size, program header size, section header size, where the first section goes)."""
    return (64, 56, 64, 0x100) if bits == 64 else (52, 32, 40, 0x100)


def elf(sections: list[tuple[str, bytes]], *, bits: int = 64, order: str = "<", with_sections: bool = True) -> bytes:
    ehsize, phsize, shsize, first = _layout(bits)
    body = bytearray(first)
    placed: list[tuple[str, int, int]] = []
    for name, content in sections:
        body.extend(b"\0" * (-len(body) % 16))
        placed.append((name, len(body), len(content)))
        body.extend(content)
    names = b"\0" + b"".join(n.encode() + b"\0" for n, _ in sections) + b".shstrtab\0"
    body.extend(b"\0" * (-len(body) % 16))
    names_at = len(body)
    body.extend(names)
    body.extend(b"\0" * (-len(body) % 8))
    shoff = len(body)
    headers = [(0, 0, 0, 0, 0)]
    name_pos = 1
    for name, offset, size in placed:
        headers.append((name_pos, 1, BASE + offset, offset, size))
        name_pos += len(name) + 1
    headers.append((name_pos, 3, 0, names_at, len(names)))
    word = "Q" if bits == 64 else "I"
    for name_off, kind, addr, offset, size in headers:
        body.extend(struct.pack(f"{order}II{word}{word}{word}{word}", name_off, kind, 0, addr, offset, size)
                    .ljust(shsize, b"\0"))
    total = len(body)
    ident = b"\x7fELF" + bytes([2 if bits == 64 else 1, 1 if order == "<" else 2, 1]) + bytes(9)
    if bits == 64:
        header = ident + struct.pack(f"{order}HHIQQQIHHHHHH", 2, 62, 1, BASE, ehsize, shoff if with_sections else 0,
                                     0, ehsize, phsize, 1, shsize, len(headers) if with_sections else 0,
                                     len(headers) - 1)
        program = struct.pack(f"{order}IIQQQQQQ", 1, 5, 0, BASE, BASE, total, total, 0x1000)
    else:
        header = ident + struct.pack(f"{order}HHIIIIIHHHHHH", 2, 8, 1, BASE, ehsize, shoff if with_sections else 0,
                                     0, ehsize, phsize, 1, shsize, len(headers) if with_sections else 0,
                                     len(headers) - 1)
        program = struct.pack(f"{order}IIIIIIII", 1, 0, BASE, BASE, total, total, 5, 0x1000)
    body[0 : len(header)] = header
    body[ehsize : ehsize + len(program)] = program
    return bytes(body)


def pointer_format_elf(version: str, modinfo: str) -> bytes:
    """Go 1.13-1.17: the header holds pointers to two Go string headers in .rodata."""
    framed = _START + modinfo.encode() + _END
    # .rodata goes first, at offset 0x100: two string headers (16 bytes each), then the bytes.
    rodata_at = 0x100
    strings_at = rodata_at + 32
    rodata = (struct.pack("<QQ", BASE + strings_at, len(version))
              + struct.pack("<QQ", BASE + strings_at + len(version), len(framed))
              + version.encode() + framed)
    buildinfo = (BUILDINFO_MAGIC + bytes([8, 0]) + struct.pack("<QQ", BASE + rodata_at, BASE + rodata_at + 16))
    return elf([(".rodata", rodata), (".go.buildinfo", buildinfo)])


def parse(data: bytes) -> tuple[set[Found], tuple[str, ...]]:
    result = GoBinaryCataloger().parse("/app/server", data)
    assert len(set(result.packages)) == len(result.packages)
    return set(result.packages), result.skipped


@pytest.mark.parametrize(("bits", "order"), [(64, "<"), (32, ">"), (32, "<"), (64, ">")])
def test_go_1_18_inline_build_info(bits: int, order: str) -> None:
    info = inline_buildinfo("go1.19.8", MODINFO, ptr_size=bits // 8, big_endian=order == ">")
    data = elf([(".text", b"\xc3" * 40), (".go.buildinfo", info)], bits=bits, order=order)
    assert parse(data) == (GOFOUND, ())


def test_pre_1_18_pointer_format() -> None:
    assert parse(pointer_format_elf("go1.16.15", MODINFO)) == (
        {f if f.name != "stdlib" else Found(Ecosystem.GOLANG, "stdlib", "1.16.15") for f in GOFOUND}, ())


def test_without_section_headers_the_magic_is_found() -> None:
    data = elf([(".go.buildinfo", inline_buildinfo("go1.19.8", MODINFO))], with_sections=False)
    assert parse(data) == (GOFOUND, ())


def test_gopath_mode_binary_still_yields_the_toolchain() -> None:
    info = inline_buildinfo("go1.19.8", "path\thello\nbuild\t-compiler=gc\n")
    assert parse(elf([(".go.buildinfo", info)])) == ({Found(Ecosystem.GOLANG, "stdlib", "1.19.8")}, ())
    # Before Go 1.18 a GOPATH binary has no module text at all.
    assert parse(elf([(".go.buildinfo", inline_buildinfo("go1.17.13", ""))])) == (
        {Found(Ecosystem.GOLANG, "stdlib", "1.17.13")}, ())


def test_an_elf_file_that_is_not_go_gives_nothing() -> None:
    assert parse(elf([(".text", b"\xc3" * 64), (".data", BUILDINFO_MAGIC + bytes(18))])) == (set(), ())


def test_a_development_toolchain_is_a_skip_not_a_stdlib_version() -> None:
    info = inline_buildinfo("devel go1.22-abcdef Tue Jan 2 15:04:05 2024 +0000", "path\thello\n")
    packages, skipped = parse(elf([(".go.buildinfo", info)]))
    assert packages == set()
    assert skipped == ("Go toolchain version 'devel go1.22-abcdef Tue Jan 2 15:04:05 2024 +0000' is not a release: "
                       "stdlib not reported",)


@pytest.mark.parametrize(("cut", "reason"), [
    (30, "truncated ELF: 30 bytes, shorter than an ELF header"),
    (0x100, "truncated ELF: .* section headers at offset .* end past the end of the file"),
])
def test_truncated_elf_is_an_error_with_its_reason(cut: int, reason: str) -> None:
    data = elf([(".go.buildinfo", inline_buildinfo("go1.19.8", MODINFO))])
    with pytest.raises(CatalogError, match=reason):
        GoBinaryCataloger().parse("/app/server", data[:cut])


def test_build_info_running_past_the_end_is_truncated() -> None:
    info = inline_buildinfo("go1.19.8", MODINFO)
    data = elf([(".go.buildinfo", info)], with_sections=False)
    end = data.find(b"example.com/dep")
    with pytest.raises(CatalogError, match=r"truncated Go build info: the module info .* runs past the end"):
        GoBinaryCataloger().parse("/app/server", data[:end])


@pytest.mark.parametrize("data", [
    b"\x7fELF" + b"\x07" * 60,  # class 7
    b"\x7fELF\x02\x01\x01" + b"\xff" * 57,  # section headers at an absurd offset
    b"#!/bin/sh\nexec server\n",
])
def test_garbage_is_an_error(data: bytes) -> None:
    with pytest.raises(CatalogError, match=r"not an ELF file|not a valid ELF file|truncated ELF"):
        GoBinaryCataloger().parse("/app/server", data)


def test_pointers_outside_the_file_are_an_error() -> None:
    data = bytearray(pointer_format_elf("go1.16.15", MODINFO))
    at = data.find(BUILDINFO_MAGIC) + 16
    data[at : at + 8] = struct.pack("<Q", 0x7FFF0000)
    with pytest.raises(CatalogError, match="pointer 0x7fff0000 is in no loaded segment"):
        read_build_info(bytes(data))


@pytest.mark.parametrize(("go", "stdlib"), [
    ("go1.19.8", "1.19.8"),
    ("go1.20", "1.20.0"),
    ("go1.21.0", "1.21.0"),
    ("go1.21rc2", "1.21.0-rc.2"),
    ("go1.9beta1", "1.9.0-beta.1"),
    ("go1.19.8 X:boringcrypto", "1.19.8"),
    ("devel go1.22-abcdef", None),
    ("go1.19.8x", None),
    ("", None),
])
def test_stdlib_version_spelled_as_the_go_vulnerability_database_does(go: str, stdlib: str | None) -> None:
    assert stdlib_version(go) == stdlib


def test_modinfo_settings_replacements_and_bad_lines() -> None:
    info = parse_modinfo("go1.19.8", MODINFO + "dep\tbroken\n=>\torphan\tv1.0.0\t\n")
    assert info.path == "example.com/app"
    assert info.main == GoModule("example.com/app", "(devel)")
    assert info.deps[0] == GoModule("example.com/dep", "v0.0.0-00010101000000-000000000000",
                                    replace=GoModule("./dep", "(devel)"))
    assert ("-ldflags", "-X main.v=1") in info.settings
    assert ("odd=key", "v") in info.settings
    assert ("GOARCH", "amd64") in info.settings
    assert len(info.problems) == 2
    assert "dep line without a path and a version" in info.problems[0]
    assert "replacement without a module before it" in info.problems[1]

"""Reading ELF files in memory: the header, section headers by name, program headers.

Shared by the catalogers that read what toolchains write into executables (Go's
``.go.buildinfo``, cargo-auditable's ``.dep-v0``). Pure: bytes in, offsets out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from patchline.catalog.interface import CatalogError

__all__ = ["ELF_MAGIC", "ElfFile", "open_elf"]

ELF_MAGIC = b"\x7fELF"
_PT_LOAD = 1
_SHT_NOBITS = 8


@dataclass(frozen=True, slots=True)
class ElfFile:
    """An ELF file held in memory; every read is bounds-checked and raises ``CatalogError`` past the end."""

    data: bytes
    bits: int  # 32 or 64
    order: str  # "<" or ">"

    def _unpack(self, fmt: str, offset: int, what: str) -> tuple[int, ...]:
        size = struct.calcsize(self.order + fmt)
        if offset < 0 or offset + size > len(self.data):
            raise CatalogError(f"truncated ELF: {what} at offset {offset} is past the end of the file "
                               f"({len(self.data)} bytes)")
        return struct.unpack_from(self.order + fmt, self.data, offset)

    def header(self) -> tuple[int, int, int, int, int, int, int]:
        """(phoff, phentsize, phnum, shoff, shentsize, shnum, shstrndx)."""
        if self.bits == 64:
            phoff, shoff = self._unpack("QQ", 0x20, "the ELF header")
            phentsize, phnum, shentsize, shnum, shstrndx = self._unpack("HHHHH", 0x36, "the ELF header")
        else:
            phoff, shoff = self._unpack("II", 0x1C, "the ELF header")
            phentsize, phnum, shentsize, shnum, shstrndx = self._unpack("HHHHH", 0x2A, "the ELF header")
        return phoff, phentsize, phnum, shoff, shentsize, shnum, shstrndx

    def sections(self) -> list[tuple[int, int, int, int, int]]:
        """(name offset, type, addr, offset, size) per section header; [] when the file has none."""
        _, _, _, shoff, shentsize, shnum, _ = self.header()
        if shoff == 0 or shnum == 0:
            return []
        fmt = "IIQQQQ" if self.bits == 64 else "IIIIII"
        if shentsize < struct.calcsize(self.order + fmt):
            raise CatalogError(f"not a valid ELF file: section header size {shentsize}")
        if shoff + shnum * shentsize > len(self.data):
            raise CatalogError(f"truncated ELF: {shnum} section headers at offset {shoff} end past the end of "
                               f"the file ({len(self.data)} bytes)")
        out = []
        for i in range(shnum):
            name, kind, _flags, addr, offset, size = self._unpack(fmt, shoff + i * shentsize, "a section header")
            out.append((name, kind, addr, offset, size))
        return out

    def section(self, wanted: bytes) -> tuple[int, int, int] | None:
        """(addr, offset, size) of the named section, or None; raises if the file is truncated."""
        sections = self.sections()
        if not sections:
            return None
        *_, shstrndx = self.header()
        if shstrndx >= len(sections):
            raise CatalogError(f"not a valid ELF file: section name table index {shstrndx} of {len(sections)}")
        _, _, _, names_offset, names_size = sections[shstrndx]
        if names_offset + names_size > len(self.data):
            raise CatalogError(f"truncated ELF: the section name table ends past the end of the file "
                               f"({len(self.data)} bytes)")
        for name, kind, addr, offset, size in sections:
            start = names_offset + name
            if self.data.startswith(wanted + b"\0", start) and kind != _SHT_NOBITS:
                return addr, offset, size
        return None

    def file_offset(self, address: int) -> int | None:
        """Where the virtual ``address`` is in the file, through the PT_LOAD program headers."""
        phoff, phentsize, phnum, *_ = self.header()
        fmt = "IIQQQQ" if self.bits == 64 else "IIIIII"
        for i in range(phnum):
            if self.bits == 64:
                kind, _flags, offset, vaddr, _paddr, filesz = self._unpack(fmt, phoff + i * phentsize,
                                                                            "a program header")
            else:
                kind, offset, vaddr, _paddr, filesz, _memsz = self._unpack(fmt, phoff + i * phentsize,
                                                                            "a program header")
            if kind == _PT_LOAD and vaddr <= address < vaddr + filesz:
                return offset + (address - vaddr)
        return None


def open_elf(data: bytes) -> ElfFile:
    """Check the ELF identification bytes; raises ``CatalogError`` for a file that is not ELF or is cut short."""
    if not data.startswith(ELF_MAGIC):
        raise CatalogError("not an ELF file")
    if len(data) < 0x34:
        raise CatalogError(f"truncated ELF: {len(data)} bytes, shorter than an ELF header")
    bits = {1: 32, 2: 64}.get(data[4])
    order = {1: "<", 2: ">"}.get(data[5])
    if bits is None or order is None:
        raise CatalogError(f"not a valid ELF file: class {data[4]}, data encoding {data[5]}")
    return ElfFile(data, bits, order)

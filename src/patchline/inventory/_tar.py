"""A forward-only reader of tar headers for layer streams.

Why not ``tarfile``: in stream mode it copies its whole read buffer on every
512-byte header, and a layer walk is all headers. This reader parses ustar,
GNU (long names, base-256 sizes) and pax headers, never seeks, and never
allocates more than one entry's data, and only when asked to.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from patchline.errors import LayerError

BLOCK = 512
REGULAR = frozenset(b"0\x007")  # '0', NUL (old tar), '7' contiguous
HARDLINK = ord("1")
SYMLINK = ord("2")
DIRECTORY = ord("5")
_PAX = ord("x")
_PAX_GLOBAL = ord("g")
_GNU_LONGNAME = ord("L")
_GNU_LONGLINK = ord("K")
_MAX_META = 1 << 20  # a pax or long-name record larger than this is not a real one
_ZERO_BLOCK = bytes(BLOCK)
_SKIP_BUF = 1 << 20


@dataclass(slots=True)
class TarEntry:
    name: str
    type: int  # the typeflag byte
    size: int
    linkname: str
    offset: int  # offset of the header in the uncompressed stream
    mode_field: bytes = b""  # the raw header field: most entries never need it parsed

    @property
    def mode(self) -> int:
        """Permission bits (0o7777); 0 when the field is not a number (no caller refuses a layer for it)."""
        try:
            return _octal(self.mode_field, "mode", self.offset) & 0o7777
        except LayerError:
            return 0

    @property
    def is_regular(self) -> bool:
        return self.type in REGULAR


def _octal(field: bytes, what: str, offset: int) -> int:
    if field and field[0] & 0x80:
        # GNU base-256: big-endian two's complement in the remaining bytes.
        value = int.from_bytes(field[1:], "big")
        if field[0] & 0x40:
            raise LayerError(f"tar header at offset {offset}: negative {what}")
        return value
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError as exc:
        raise LayerError(f"tar header at offset {offset}: {what} {text!r} is not octal") from exc


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _checksum_ok(header: bytes) -> bool:
    stored = header[148:156].split(b"\0", 1)[0].strip(b" ")
    try:
        expected = int(stored, 8)
    except ValueError:
        return False
    unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
    if unsigned == expected:
        return True
    signed = sum(b - 256 if b > 127 else b for b in header[:148] + b" " * 8 + header[156:])
    return signed == expected


def _parse_pax(data: bytes, offset: int) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            break
        space = data.find(b" ", pos)
        if space < 0:
            raise LayerError(f"tar pax header at offset {offset} is malformed")
        try:
            length = int(data[pos:space])
        except ValueError as exc:
            raise LayerError(f"tar pax header at offset {offset} has a bad length") from exc
        if length <= 0 or pos + length > len(data):
            raise LayerError(f"tar pax header at offset {offset} has a bad length")
        record = data[space + 1 : pos + length - 1]  # drop the trailing newline
        key, sep, value = record.partition(b"=")
        if sep:
            records[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


class TarReader:
    """Iterate the entries of a tar stream; ``read_data`` reads the current entry's bytes.

    Data that the caller does not read is skipped (read and discarded: the
    stream has to pass through the hashes anyway).
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._pos = 0
        self._remaining = 0  # unread data bytes of the current entry, padding included
        self._data_left = 0  # unread data bytes of the current entry, padding excluded
        self._skip = bytearray(_SKIP_BUF)
        self._peeked = b""  # first bytes of the current entry's data, read by ``peek``
        self.entries = 0

    def _read_exact(self, n: int, what: str) -> bytes:
        data = self._stream.read(n)
        if len(data) != n:
            raise LayerError(f"tar stream ends inside {what} at offset {self._pos}")
        self._pos += n
        return data

    def _discard(self, n: int) -> None:
        view = memoryview(self._skip)
        while n > 0:
            want = min(n, _SKIP_BUF)
            got = self._stream.readinto(view[:want])  # type: ignore[attr-defined]
            if not got:
                raise LayerError(f"tar stream ends inside entry data at offset {self._pos}")
            self._pos += got
            n -= got

    def read_data(self) -> bytes:
        """The current entry's data (call at most once per entry, before advancing)."""
        n = self._data_left
        data = self._read_exact(n, "entry data") if n else b""
        self._data_left = 0
        self._remaining -= n
        if self._peeked:
            data = self._peeked + data
            self._peeked = b""
        return data

    def peek(self, n: int) -> bytes:
        """The first ``n`` bytes of the current entry's data (fewer if it is shorter); ``read_data`` still
        returns all of it. Call at most once per entry, before ``read_data``."""
        want = min(n, self._data_left)
        head = self._read_exact(want, "entry data") if want else b""
        self._data_left -= want
        self._remaining -= want
        self._peeked = head
        return head

    def _padded(self, size: int) -> int:
        return (size + BLOCK - 1) // BLOCK * BLOCK

    def __iter__(self) -> Iterator[TarEntry]:
        pax_global: dict[str, str] = {}
        pending: dict[str, str] = {}
        long_name: str | None = None
        long_link: str | None = None
        while True:
            if self._remaining:
                self._discard(self._remaining)
                self._remaining = self._data_left = 0
            self._peeked = b""
            offset = self._pos
            header = self._stream.read(BLOCK)
            if not header:
                # EOF without the end-of-archive marker: accepted, as GNU tar does.
                return
            if len(header) != BLOCK:
                raise LayerError(f"tar stream ends inside a header at offset {offset}")
            self._pos += BLOCK
            if header == _ZERO_BLOCK:
                return
            if not _checksum_ok(header):
                raise LayerError(f"invalid tar header checksum at offset {offset}: not a tar stream or corrupt")
            typeflag = header[156]
            size = _octal(header[124:136], "size", offset)
            if typeflag in (_PAX, _PAX_GLOBAL, _GNU_LONGNAME, _GNU_LONGLINK):
                if size > _MAX_META:
                    raise LayerError(f"tar metadata record at offset {offset} is too large ({size} bytes)")
                data = self._read_exact(self._padded(size), "a metadata record")[:size]
                if typeflag == _PAX:
                    pending.update(_parse_pax(data, offset))
                elif typeflag == _PAX_GLOBAL:
                    pax_global.update(_parse_pax(data, offset))
                elif typeflag == _GNU_LONGNAME:
                    long_name = _text(data)
                else:
                    long_link = _text(data)
                continue
            name = _text(header[0:100])
            if header[257:262] == b"ustar":
                prefix = _text(header[345:500])
                if prefix and header[257:263] == b"ustar\0":  # POSIX ustar (not old GNU)
                    name = f"{prefix}/{name}"
            linkname = _text(header[157:257])
            meta = {**pax_global, **pending} if pax_global else pending
            if long_name is not None:
                name = long_name
            if long_link is not None:
                linkname = long_link
            if "path" in meta:
                name = meta["path"]
            if "linkpath" in meta:
                linkname = meta["linkpath"]
            if "size" in meta:
                try:
                    size = int(meta["size"])
                except ValueError as exc:
                    raise LayerError(f"tar pax size at offset {offset} is not a number") from exc
            pending = {}
            long_name = long_link = None
            # Only regular files (and GNU sparse files) carry data in the archive.
            data_size = size if typeflag not in (HARDLINK, SYMLINK, DIRECTORY, ord("3"), ord("4"), ord("6")) else 0
            self._data_left = data_size
            self._remaining = self._padded(data_size)
            self.entries += 1
            yield TarEntry(name, typeflag, data_size, linkname, offset, header[100:108])

"""Streaming decompression of layer blobs (gzip, zstd, or none) with diff_id hashing."""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from typing import IO

import zstandard

from patchline._model import Digest
from patchline.errors import DigestMismatch, LayerError
from patchline.oci import ChunkReader, new_hash

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 20


def _raw_chunks(raw: IO[bytes], head: bytes) -> Iterator[bytes]:
    if head:
        yield head
    while chunk := raw.read(_CHUNK):
        yield chunk


class _Gunzip:
    """gzip decoding with exact truncation detection, multi-member aware."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        fed = False
        try:
            for data in self._chunks:
                while data:
                    fed = True
                    # Bounded output: a chunk of a highly compressible layer can inflate a thousandfold.
                    out = z.decompress(data, _CHUNK)
                    if out:
                        yield out
                    if z.eof:
                        data = z.unused_data
                        z = zlib.decompressobj(16 + zlib.MAX_WBITS)
                        fed = False
                    else:
                        data = z.unconsumed_tail
        except zlib.error as exc:
            raise LayerError(f"corrupt gzip stream: {exc}") from exc
        if fed and not z.eof:
            raise LayerError("gzip stream is truncated")


def _unzstd(raw: IO[bytes], head: bytes) -> Iterator[bytes]:
    reader = zstandard.ZstdDecompressor().stream_reader(
        _Prepend(raw, head),  # type: ignore[arg-type]  # any object with read() will do
        read_across_frames=True,
        read_size=_CHUNK,
    )
    try:
        while chunk := reader.read(_CHUNK):
            yield bytes(chunk)
    except zstandard.ZstdError as exc:
        raise LayerError(f"corrupt zstd stream: {exc}") from exc


class _Prepend:
    """A stream with some already-read bytes put back in front."""

    def __init__(self, raw: IO[bytes], head: bytes) -> None:
        self._raw = raw
        self._head = head

    def read(self, n: int = -1) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            return head
        return self._raw.read(n)


class TarStream:
    """The uncompressed tar bytes of a layer, hashed to check its diff_id at the end.

    The compression is sniffed from the first bytes, so a blob whose media type
    lies about its compression (it happens) is still read correctly.
    """

    def __init__(self, raw: IO[bytes], *, diff_id: Digest | None) -> None:
        head = raw.read(4)
        chunks: Iterator[bytes]
        if head.startswith(_GZIP_MAGIC):
            self.compression = "gzip"
            chunks = iter(_Gunzip(_raw_chunks(raw, head)))
        elif head.startswith(_ZSTD_MAGIC):
            self.compression = "zstd"
            chunks = _unzstd(raw, head)
        else:
            self.compression = "none"
            chunks = _raw_chunks(raw, head)
        self._raw = raw
        self._diff_id = diff_id
        self._hash = new_hash(diff_id) if diff_id else None
        self._chunked = ChunkReader(chunks, self._hash)
        self.stream = io.BufferedReader(self._chunked, buffer_size=_CHUNK)

    @property
    def size(self) -> int:
        """Uncompressed bytes decoded so far."""
        return self._chunked.size

    def finish(self) -> None:
        """Drain what is left (tar padding), then check the diff_id.

        Draining also runs the source's own digest and size checks on the blob.
        """
        while self.stream.read(_CHUNK):
            pass
        while self._raw.read(_CHUNK):
            pass
        if self._hash is not None and self._diff_id is not None:
            actual = f"{self._diff_id.split(':', 1)[0]}:{self._hash.hexdigest()}"
            if actual != self._diff_id:
                raise DigestMismatch(
                    f"layer content does not match its diff_id: expected {self._diff_id}, got {actual}"
                )

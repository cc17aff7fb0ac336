"""A reader that verifies a blob against its digest and size while it streams; a stream over chunks."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import IO, Any

from patchline._model import Digest
from patchline.errors import BlobError, DigestMismatch

_ALGORITHMS = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


def new_hash(digest: Digest) -> Any:
    """A hashlib object for the algorithm a digest names."""
    algorithm, sep, hexpart = digest.partition(":")
    if not sep or algorithm not in _ALGORITHMS or not hexpart:
        raise BlobError(f"unsupported or malformed digest {digest!r}")
    return _ALGORITHMS[algorithm]()


def digest_bytes(data: bytes, algorithm: str = "sha256") -> Digest:
    return Digest(f"{algorithm}:{_ALGORITHMS[algorithm](data).hexdigest()}")


class ChunkReader(io.RawIOBase):
    """A raw stream over an iterator of byte chunks, hashing what it takes from it when given a hasher."""

    def __init__(self, chunks: Iterator[bytes], hasher: Any | None = None) -> None:
        self._chunks = chunks
        self._chunk = memoryview(b"")
        self._hash = hasher
        self.size = 0  # bytes taken from the iterator

    @property
    def offset(self) -> int:
        """Bytes given out so far."""
        return self.size - len(self._chunk)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._chunk:
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._chunk = memoryview(nxt)
            self.size += len(nxt)
            if self._hash is not None:
                self._hash.update(nxt)
        n = min(len(buffer), len(self._chunk))
        buffer[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n


class VerifyingReader:
    """Wraps a raw stream; hashes every byte read and checks digest and size at EOF.

    ``size`` may be None where the source does not know it (a podman export);
    the digest is checked all the same. Reading past ``size`` fails at once, so a
    source that sends more than it should cannot fill memory or disk.
    """

    def __init__(self, raw: IO[bytes], *, digest: Digest, size: int | None, what: str = "blob") -> None:
        self._raw = raw
        self._digest = digest
        self._size = size
        self._hash = new_hash(digest)
        self._read = 0
        self._done = False
        self._what = what

    @property
    def bytes_read(self) -> int:
        return self._read

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._done:
            return b""
        if n is None or n < 0:
            chunks = []
            while chunk := self.read(1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        if self._size is not None:
            # Ask for one byte beyond the declared size so an overlong blob is caught.
            n = min(n, self._size - self._read + 1)
        data = self._raw.read(n) if n > 0 else b""
        if not data:
            self._finish()
            return b""
        self._read += len(data)
        if self._size is not None and self._read > self._size:
            raise BlobError(f"{self._what} {self._digest} is longer than its declared size {self._size}")
        self._hash.update(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _finish(self) -> None:
        self._done = True
        if self._size is not None and self._read != self._size:
            raise BlobError(
                f"{self._what} {self._digest} is truncated: {self._read} of {self._size} bytes"
            )
        actual = f"{self._digest.split(':', 1)[0]}:{self._hash.hexdigest()}"
        if actual != self._digest:
            raise DigestMismatch(f"{self._what} does not match its digest: expected {self._digest}, got {actual}")

    def verify_to_end(self) -> None:
        """Drain the rest of the stream so the digest is checked."""
        while self.read(1 << 20):
            pass

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> VerifyingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

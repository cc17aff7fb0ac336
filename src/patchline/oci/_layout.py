"""OCI image layout directories (``oci:DIR[:TAG]``) and their tarballs (``oci-archive:``)."""

from __future__ import annotations

import contextlib
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol

from patchline._model import Digest
from patchline.errors import BlobError, ImageNotFound, ManifestError, SourceError
from patchline.oci._blob import VerifyingReader, digest_bytes
from patchline.oci._manifest import (
    host_platform,
    load_json,
    media_type_of,
    parse_config,
    parse_index,
    parse_manifest,
    select_platform,
)
from patchline.oci.interface import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    Descriptor,
    ImageSource,
    Platform,
    ResolvedImage,
)

REF_NAME = "org.opencontainers.image.ref.name"
_DIGEST_RE = re.compile(r"^(sha256|sha512):([0-9a-f]{64}|[0-9a-f]{128})$")
_SMALL = 16 << 20  # manifests, indexes and configs larger than this are refused


def blob_path(digest: str) -> str:
    """The layout-relative path of a blob; refuses digests that could escape ``blobs/``."""
    m = _DIGEST_RE.match(digest)
    if not m:
        raise ManifestError(f"invalid digest {digest!r}")
    return f"blobs/{m.group(1)}/{m.group(2)}"


class BlobStore(Protocol):
    """Files of a layout: a directory or a tar of one."""

    def open(self, relpath: str) -> IO[bytes]: ...

    def close(self) -> None: ...


class _DirStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def open(self, relpath: str) -> IO[bytes]:
        try:
            return (self.root / relpath).open("rb")
        except FileNotFoundError as exc:
            raise ImageNotFound(f"{relpath} is missing from the OCI layout at {self.root}") from exc
        except OSError as exc:
            raise SourceError(f"cannot read {relpath} in {self.root}: {exc}") from exc

    def close(self) -> None:
        pass


class _Slice:
    """``size`` bytes of a file from its current position."""

    def __init__(self, raw: IO[bytes], size: int, *, also_close: tarfile.TarFile | None = None) -> None:
        self._raw = raw
        self._left = size
        self._also_close = also_close

    def read(self, n: int = -1) -> bytes:
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._raw.read(n) if n else b""
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._raw.close()
        if self._also_close is not None:
            self._also_close.close()

    def __enter__(self) -> _Slice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _TarStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed in close()
            with path.open("rb") as head:
                magic = head.read(4)
            self._compressed = magic[:2] == b"\x1f\x8b" or magic == b"\x28\xb5\x2f\xfd" or magic[:3] == b"BZh"
            self._members = {
                m.name[2:] if m.name.startswith("./") else m.name: m
                for m in self._tar.getmembers()
                if m.isfile()
            }
        except FileNotFoundError as exc:
            raise ImageNotFound(f"archive {path} does not exist") from exc
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise SourceError(f"{path} is not a readable tar archive: {exc}") from exc

    def open(self, relpath: str) -> IO[bytes]:
        member = self._members.get(relpath)
        if member is None:
            raise ImageNotFound(f"{relpath} is missing from the archive {self.path}")
        # Each blob gets its own file handle, so that several layers can be read at
        # once: a shared tarfile has one file position.
        if self._compressed or member.sparse:
            # A fresh TarFile reads nothing until asked; the member's offsets are valid in it.
            tar = tarfile.open(self.path, "r:*")  # noqa: SIM115 - closed with the slice
            fh = tar.extractfile(member)
            if fh is None:
                tar.close()
                raise SourceError(f"{relpath} in {self.path} is not a regular file")
            return _Slice(fh, member.size, also_close=tar)  # type: ignore[return-value]
        raw = self.path.open("rb")
        raw.seek(member.offset_data)
        return _Slice(raw, member.size)  # type: ignore[return-value]

    def size_of(self, relpath: str) -> int | None:
        """A member's size, or None if the archive has no such file."""
        member = self._members.get(relpath)
        return None if member is None else member.size

    def close(self) -> None:
        self._tar.close()


def read_small(store: BlobStore, relpath: str, what: str) -> bytes:
    with store.open(relpath) as fh:
        data = fh.read(_SMALL + 1)
    if len(data) > _SMALL:
        raise ManifestError(f"{what} is larger than {_SMALL} bytes")
    return data


def read_blob(store: BlobStore, descriptor: Descriptor, what: str) -> bytes:
    if descriptor.size > _SMALL:
        raise ManifestError(f"{what} is larger than {_SMALL} bytes")
    with store.open(blob_path(descriptor.digest)) as fh:
        reader = VerifyingReader(fh, digest=descriptor.digest, size=descriptor.size, what=what)
        return reader.read()


def resolve_in_store(
    store: BlobStore,
    *,
    name: str | None,
    platform: Platform | None,
    reference: str,
) -> ResolvedImage:
    """Resolve an image in a layout's ``index.json`` by tag name and platform."""
    index = load_json(read_small(store, "index.json", "index.json"), "index.json")
    entries = parse_index(index)
    if not entries:
        raise ImageNotFound(f"{reference}: the layout's index.json lists no images")
    if name is not None:
        named = [e for e in entries if e.annotations.get(REF_NAME) in (name, )
                 or e.annotations.get(REF_NAME, "").endswith(f":{name}")]
        if not named:
            names = ", ".join(sorted({e.annotations.get(REF_NAME, "") for e in entries} - {""})) or "none"
            raise ImageNotFound(f"{reference}: no image named {name!r} in the layout (names: {names})")
        entries = tuple(named)
    wanted = platform or host_platform()
    if len(entries) > 1:
        if all(e.platform is not None for e in entries):
            entries = (select_platform(entries, wanted),)
        else:
            names = ", ".join(sorted({e.annotations.get(REF_NAME, "?") for e in entries}))
            raise ImageNotFound(f"{reference}: the layout holds several images; name one ({names})")
    chosen = entries[0]
    manifest_digest: Digest = chosen.digest
    for _ in range(4):  # nested indexes, bounded
        data = read_blob(store, chosen, "manifest")
        doc = load_json(data, "manifest")
        media_type = media_type_of(doc, chosen.media_type)
        if media_type in INDEX_TYPES:
            chosen = select_platform(parse_index(doc), wanted)
            manifest_digest = chosen.digest
            continue
        if media_type not in MANIFEST_TYPES:
            raise ManifestError(f"{reference}: unsupported manifest media type {media_type}")
        config_desc, layers = parse_manifest(doc)
        config = parse_config(read_blob(store, config_desc, "image config"))
        return ResolvedImage(
            reference=reference,
            manifest_digest=manifest_digest,
            config_digest=config_desc.digest,
            config=config,
            layers=layers,
        )
    raise ManifestError(f"{reference}: indexes nested too deep")


class StoreSource:
    blobs_content_addressed = False  # a file's name in an archive or a directory is a claim, not its content
    """An image source whose blobs are files of a ``BlobStore``; subclasses say which file."""

    _store: BlobStore

    def _blob_path(self, descriptor: Descriptor) -> str:
        raise NotImplementedError

    @contextlib.contextmanager
    def _open(self, descriptor: Descriptor) -> Iterator[IO[bytes]]:
        with self._store.open(self._blob_path(descriptor)) as fh:
            yield VerifyingReader(fh, digest=descriptor.digest, size=descriptor.size, what="blob")  # type: ignore[misc]

    def open_blob(self, descriptor: Descriptor) -> contextlib.AbstractContextManager[IO[bytes]]:
        return self._open(descriptor)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> ImageSource:
        return self  # type: ignore[return-value]  # subclasses add resolve()

    def __exit__(self, *exc: object) -> None:
        self.close()


class LayoutSource(StoreSource):
    """An OCI image layout, as a directory or as a tar archive of one."""

    def __init__(self, path: str | Path, *, name: str | None = None, platform: Platform | None = None,
                 archive: bool = False, reference: str | None = None) -> None:
        self.path = Path(path)
        self._name = name
        self._platform = platform
        self._reference = reference or f"{'oci-archive' if archive else 'oci'}:{path}" + (f":{name}" if name else "")
        if archive:
            self._store: BlobStore = _TarStore(self.path)
        else:
            if not (self.path / "index.json").is_file():
                raise ImageNotFound(f"{self.path} is not an OCI image layout (no index.json)")
            self._store = _DirStore(self.path)

    def resolve(self) -> ResolvedImage:
        return resolve_in_store(self._store, name=self._name, platform=self._platform, reference=self._reference)

    def _blob_path(self, descriptor: Descriptor) -> str:
        return blob_path(descriptor.digest)


__all__ = ["BlobError", "LayoutSource", "digest_bytes"]

"""The image source plug-in interface.

An image source turns a reference into a resolved image (manifest, config, the
layer descriptors in stack order) and opens blobs as streams that are verified
against their digest while they are read. Only ``oci`` talks to registries and
image stores; the inventory core consumes these streams and never knows where
they came from.

Implementations: ``_registry.py`` (OCI distribution API), ``_layout.py`` (OCI
layout directory and ``oci-archive:``), ``_docker_archive.py``
(``docker-archive:``), ``_storage.py`` (podman/buildah ``containers-storage:``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Protocol

from patchline._model import Digest
from patchline.errors import SourceError

__all__ = [
    "Descriptor",
    "HistoryEntry",
    "ImageConfig",
    "ImageSource",
    "Platform",
    "ResolvedImage",
    "SourceError",
]

# Media types patchline understands.
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)


@dataclass(frozen=True, slots=True)
class Platform:
    """``os/architecture[/variant]``."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


@dataclass(frozen=True, slots=True)
class Descriptor:
    """An OCI content descriptor."""

    media_type: str
    digest: Digest
    size: int  # -1 where the source does not know it (podman storage)
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    created_by: str | None
    empty_layer: bool
    created: str | None = None


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """The parts of an image config patchline reads; ``raw`` keeps the rest."""

    os: str
    architecture: str
    variant: str | None
    created: str | None
    diff_ids: tuple[Digest, ...]
    history: tuple[HistoryEntry, ...]
    raw: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class ResolvedImage:
    """An image resolved to one platform: what the inventory needs to walk it."""

    reference: str
    manifest_digest: Digest | None  # None where the source has no manifest of its own
    config_digest: Digest
    config: ImageConfig
    layers: tuple[Descriptor, ...]  # stack order, bottom first; len == len(config.diff_ids)
    repo_tags: tuple[str, ...] = ()


class ImageSource(Protocol):
    """Where an image is read from. Use as a context manager.

    ``blobs_content_addressed`` is true where a blob's digest names its content without reading it (a
    registry serves blobs by digest; local containers storage is root's own): a cache may then stand in for
    the blob. In an archive or a layout directory a digest is only a file's name: the blob is read to trust it.
    """

    blobs_content_addressed: bool

    def resolve(self) -> ResolvedImage:
        """Resolve the reference (an index to the wanted platform) and read the config."""

    def open_blob(self, descriptor: Descriptor) -> contextlib.AbstractContextManager[IO[bytes]]:
        """Open a blob as a stream of its stored bytes (compressed or not).

        The stream raises ``DigestMismatch`` when it reaches the end and the
        content does not hash to ``descriptor.digest``, or ``BlobError`` when it
        is longer or shorter than ``descriptor.size``.
        """

    def close(self) -> None:
        """Release connections and temporary files."""

    def __enter__(self) -> ImageSource: ...

    def __exit__(self, *exc: object) -> None: ...


def iter_chunks(stream: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    """Read a stream in chunks until its end."""
    while chunk := stream.read(size):
        yield chunk

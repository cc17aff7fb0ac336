"""Image references: registry references and transport-prefixed local sources.

Accepted forms (as skopeo spells them)::

    [docker://]REGISTRY/REPO[:TAG][@DIGEST]   a registry (docker.io when none is named)
    containers-storage:REF                   podman / buildah local storage
    oci:DIR[:TAG]                            an OCI image layout directory
    oci-archive:FILE[:TAG]                   a tar of an OCI image layout
    docker-archive:FILE[:REF]                a `docker save` / `podman save` tarball
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from patchline._model import Digest
from patchline.errors import ReferenceError_

DEFAULT_REGISTRY = "docker.io"
_DOCKER_HUB_API = "registry-1.docker.io"

_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


class Transport(enum.StrEnum):
    REGISTRY = "docker"
    CONTAINERS_STORAGE = "containers-storage"
    OCI_LAYOUT = "oci"
    OCI_ARCHIVE = "oci-archive"
    DOCKER_ARCHIVE = "docker-archive"


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A reference to an image in a registry."""

    registry: str
    repository: str
    tag: str | None = None
    digest: Digest | None = None

    @property
    def api_host(self) -> str:
        return _DOCKER_HUB_API if self.registry == DEFAULT_REGISTRY else self.registry

    @property
    def reference(self) -> str:
        """What goes in /v2/<repo>/manifests/<reference>: the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: Digest) -> ImageRef:
        return ImageRef(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where an image is: a transport and its transport-specific parts."""

    transport: Transport
    image: ImageRef | None = None  # for REGISTRY
    path: str | None = None  # for the layout and archive transports
    name: str | None = None  # tag inside a layout/archive, or the storage reference
    text: str = ""  # as the user wrote it

    def __str__(self) -> str:
        return self.text


def parse_image_ref(text: str) -> ImageRef:
    """Parse a registry reference the way docker and podman normalise it."""
    original = text
    if not text or any(c.isspace() for c in text):
        raise ReferenceError_(f"invalid image reference {original!r}")
    digest: str | None = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise ReferenceError_(f"invalid digest in image reference {original!r}")
    tag: str | None = None
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise ReferenceError_(f"invalid tag {tag!r} in image reference {original!r}")
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        registry, repository = first, rest
    else:
        registry, repository = DEFAULT_REGISTRY, text
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = f"library/{repository}"
    if not repository or not all(_COMPONENT_RE.match(c) for c in repository.split("/")):
        raise ReferenceError_(f"invalid repository name in image reference {original!r}")
    if tag is None and digest is None:
        tag = "latest"
    return ImageRef(registry, repository, tag, Digest(digest) if digest else None)


def _split_path_and_name(rest: str) -> tuple[str, str | None]:
    # oci:/path/dir:tag -- the tag is after the last colon that follows the last slash.
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        return rest[:colon], rest[colon + 1 :] or None
    return rest, None


def parse_source_ref(text: str) -> SourceRef:
    """Parse any reference patchline accepts (see the module docstring)."""
    if not text:
        raise ReferenceError_("empty image reference")
    for transport in (
        Transport.CONTAINERS_STORAGE,
        Transport.OCI_ARCHIVE,
        Transport.DOCKER_ARCHIVE,
        Transport.OCI_LAYOUT,
    ):
        prefix = f"{transport.value}:"
        if text.startswith(prefix):
            rest = text[len(prefix) :]
            if not rest:
                raise ReferenceError_(f"{transport.value}: reference names nothing")
            if transport is Transport.CONTAINERS_STORAGE:
                return SourceRef(transport, name=rest, text=text)
            path, name = _split_path_and_name(rest)
            return SourceRef(transport, path=path, name=name, text=text)
    if text.startswith("docker://"):
        return SourceRef(Transport.REGISTRY, image=parse_image_ref(text[len("docker://") :]), text=text)
    return SourceRef(Transport.REGISTRY, image=parse_image_ref(text), text=text)


def split_reference(reference: str) -> tuple[str, str, str | None]:
    """``repo:tag`` -> (repo, tag, None); ``repo@sha256:..`` -> (repo, "", digest); a bare name -> (name, "latest")."""
    if "@" in reference:
        repo, _, digest = reference.partition("@")
        return repo, "", digest
    slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon > slash:
        return reference[:colon], reference[colon + 1:], None
    return reference, "latest", None

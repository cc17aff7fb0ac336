"""Plain data shared by the stages: digests, layers, packages, inventories.

Everything here is a frozen dataclass or a NewType; stages pass these around and
never reach into each other's internals.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import NewType

Digest = NewType("Digest", str)
"""An OCI content digest, ``algorithm:hex`` (``sha256:...``)."""

Purl = NewType("Purl", str)
"""A package URL (https://github.com/package-url/purl-spec)."""


class Ecosystem(enum.StrEnum):
    """Kinds of packages patchline catalogs; the values are purl types."""

    DEB = "deb"
    APK = "apk"
    RPM = "rpm"
    PYPI = "pypi"
    NPM = "npm"
    MAVEN = "maven"  # name: GROUP:ARTIFACT, as OSV's Maven records name packages
    GOLANG = "golang"  # name: the module path; the toolchain is "stdlib"
    GEM = "gem"
    CARGO = "cargo"
    GENERIC = "generic"  # runtimes found by their binaries (python, node, openjdk)

    @property
    def is_os(self) -> bool:
        return self in (Ecosystem.DEB, Ecosystem.APK, Ecosystem.RPM)


@dataclass(frozen=True, slots=True)
class Distro:
    """The operating system of an image, from ``/etc/os-release``."""

    id: str  # "debian", "alpine", "rhel", ...
    version_id: str | None = None  # "12", "3.19.1"
    version_codename: str | None = None  # "bookworm"
    pretty_name: str | None = None
    id_like: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer of an image, in stack order (index 0 is the bottom)."""

    index: int
    diff_id: Digest  # digest of the uncompressed tar: the same whatever the source
    digest: Digest | None = None  # digest of the blob as the source stores it
    media_type: str | None = None
    size: int | None = None  # size of the blob as stored
    created_by: str | None = None  # the history entry that made it, when known


@dataclass(frozen=True, slots=True)
class Package:
    """A package found in an image's squashed filesystem.

    ``introduced_in`` is the lowest layer in whose view the package exists (with
    any version); ``changed_in`` the highest layer that changed its record (an
    upgrade, a reinstall). Both are layer indexes into ``Inventory.layers``.
    """

    ecosystem: Ecosystem
    name: str
    version: str
    purl: Purl
    introduced_in: int
    changed_in: int
    locations: tuple[str, ...]  # the files that declared it, absolute paths
    source_name: str | None = None
    source_version: str | None = None
    arch: str | None = None
    licenses: tuple[str, ...] = ()
    cataloger: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies the package across versions: ecosystem, name, arch."""
        return (self.ecosystem.value, self.name, self.arch or "")


@dataclass(frozen=True, slots=True)
class Skipped:
    """Something that could not be cataloged, and why. A skip is data, not an error."""

    path: str  # absolute path in the image, or "" for the image itself
    reason: str
    cataloger: str = ""
    layer: int | None = None


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What identifies the scanned image."""

    reference: str  # as the user gave it
    manifest_digest: Digest | None  # None for sources with no manifest (podman storage)
    config_digest: Digest
    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None
    created: str | None = None
    repo_tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Inventory:
    """Everything patchline knows about the packages of one image."""

    image: ImageInfo
    layers: tuple[Layer, ...]
    distro: Distro | None
    packages: tuple[Package, ...]
    skipped: tuple[Skipped, ...] = ()
    catalogers: tuple[tuple[str, str], ...] = field(default=())  # (name, version)
    # Text of the system files the core keeps (os-release, apt sources), symlinks resolved.
    system_files: tuple[tuple[str, str], ...] = ()

    def system_file(self, path: str) -> str | None:
        return next((text for p, text in self.system_files if p == path), None)


@dataclass(frozen=True, slots=True)
class Workload:
    """One running (or observed) container: what runs where."""

    runtime: str  # "podman" | "kubernetes"
    host: str  # hostname for podman; the kube context name for kubernetes
    namespace: str  # "" for podman; the pod's namespace for kubernetes
    name: str  # container name (podman) or "pod/container" (kubernetes)
    container_id: str  # podman: the full id; kubernetes: status.containerID, else "pod-uid/container"
    image_ref: str  # the image reference as the workload names it
    image_id: Digest | None  # config digest "sha256:..." when known
    manifest_digest: Digest | None  # the repo digest when known
    started_at: datetime | None  # tz-aware UTC
    state: str = "running"  # the runtime's word: podman "running"/"exited"/...; kubernetes "running"/"waiting"/...
    labels: tuple[tuple[str, str], ...] = ()  # sorted by key

"""What discovery observes: running workloads and the tags a registry holds.

The discovery sources (``podman``, ``kubernetes``, ``registry``) return these
plain records; storing them is the store's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from patchline._model import Digest

__all__ = ["RegistryTag", "Workload"]


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


@dataclass(frozen=True, slots=True)
class RegistryTag:
    """One tag of one repository in a registry, and the manifest it points at."""

    repository: str  # "host:port/name", a pullable reference without the tag
    tag: str
    manifest_digest: Digest  # Docker-Content-Digest of the manifest (or index)
    media_type: str  # of that manifest or index

    @property
    def reference(self) -> str:
        """``repository:tag``."""
        return f"{self.repository}:{self.tag}"

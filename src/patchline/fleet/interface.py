"""What discovery observes: running workloads and the tags a registry holds.

The discovery sources (``podman``, ``kubernetes``, ``registry``) return these
plain records; storing them is the store's job.
"""

from __future__ import annotations

from dataclasses import dataclass

from patchline._model import Digest, Workload

__all__ = ["RegistryTag", "Workload"]

__all__ = ["RegistryTag", "Workload"]


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

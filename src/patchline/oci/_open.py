"""Open the right image source for a reference."""

from __future__ import annotations

from pathlib import Path

from patchline.oci._reference import Transport, parse_source_ref
from patchline.oci.interface import ImageSource, Platform


def open_source(
    reference: str,
    *,
    platform: Platform | None = None,
    insecure: bool = False,
    storage_export: Path | None = None,
) -> ImageSource:
    """An image source for any reference form patchline accepts (see ``_reference``).

    ``storage_export``: an OCI layout that ``containers-storage:`` exports are shared in, so that images with
    common layers (a fleet built FROM one base) export each layer once.
    """
    ref = parse_source_ref(reference)
    match ref.transport:
        case Transport.REGISTRY:
            from patchline.oci._registry import RegistrySource

            assert ref.image is not None
            return RegistrySource(ref.image, platform=platform, insecure=insecure)
        case Transport.OCI_LAYOUT | Transport.OCI_ARCHIVE:
            from patchline.oci._layout import LayoutSource

            assert ref.path is not None
            return LayoutSource(ref.path, name=ref.name, platform=platform,
                                archive=ref.transport is Transport.OCI_ARCHIVE, reference=reference)
        case Transport.DOCKER_ARCHIVE:
            from patchline.oci._docker_archive import DockerArchiveSource

            assert ref.path is not None
            return DockerArchiveSource(ref.path, name=ref.name, reference=reference)
        case Transport.CONTAINERS_STORAGE:
            from patchline.oci._storage import ContainersStorageSource

            assert ref.name is not None
            return ContainersStorageSource(ref.name, reference=reference, shared_export=storage_export)

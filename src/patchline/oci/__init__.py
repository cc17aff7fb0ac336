"""Reading images from registries, layouts, archives and local storage."""

from patchline.oci._blob import ChunkReader, new_hash
from patchline.oci._manifest import host_platform, layer_created_by, parse_platform
from patchline.oci._open import open_source
from patchline.oci._push import FetchedManifest, RegistryWriter
from patchline.oci._reference import (
    ImageRef,
    SourceRef,
    Transport,
    parse_image_ref,
    parse_source_ref,
    split_reference,
)
from patchline.oci._registry import RegistryAPI, RegistrySource, new_registry_client
from patchline.oci.interface import Descriptor, ImageConfig, ImageSource, Platform, ResolvedImage

__all__ = [
    "ChunkReader",
    "Descriptor",
    "FetchedManifest",
    "ImageConfig",
    "ImageRef",
    "ImageSource",
    "Platform",
    "RegistryAPI",
    "RegistrySource",
    "RegistryWriter",
    "ResolvedImage",
    "SourceRef",
    "Transport",
    "host_platform",
    "layer_created_by",
    "new_hash",
    "new_registry_client",
    "open_source",
    "parse_image_ref",
    "parse_platform",
    "parse_source_ref",
    "split_reference",
]

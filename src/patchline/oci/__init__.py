"""Reading images from registries, layouts, archives and local storage."""

from patchline.oci._manifest import host_platform, parse_platform
from patchline.oci._open import open_source
from patchline.oci._push import FetchedManifest, RegistryWriter
from patchline.oci._reference import ImageRef, SourceRef, Transport, parse_image_ref, parse_source_ref
from patchline.oci.interface import Descriptor, ImageConfig, ImageSource, Platform, ResolvedImage

__all__ = [
    "Descriptor",
    "FetchedManifest",
    "ImageConfig",
    "ImageRef",
    "ImageSource",
    "Platform",
    "RegistryWriter",
    "ResolvedImage",
    "SourceRef",
    "Transport",
    "host_platform",
    "open_source",
    "parse_image_ref",
    "parse_platform",
    "parse_source_ref",
]

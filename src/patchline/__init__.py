"""patchline: keep a fleet of container images patched continuously.

The public surface; everything else is an implementation detail.
"""

from importlib.metadata import PackageNotFoundError, version

from patchline._config import Config, load_config
from patchline._model import Digest, Distro, Ecosystem, ImageInfo, Inventory, Layer, Package, Purl, Skipped

try:
    __version__ = version("patchline")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "Config",
    "Digest",
    "Distro",
    "Ecosystem",
    "ImageInfo",
    "Inventory",
    "Layer",
    "Package",
    "Purl",
    "Skipped",
    "__version__",
    "load_config",
]

"""Inventory: every package in an image, down to the layer that brought it in."""

from patchline.inventory._cache import LayerCache, default_cache_dir
from patchline.inventory._scan import ScanProgress, scan_image

__all__ = ["LayerCache", "ScanProgress", "default_cache_dir", "scan_image"]

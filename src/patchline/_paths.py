"""Where patchline keeps its data and its cache, after the XDG base directory specification (one place for all)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_home", "data_home"]


def data_home() -> Path:
    """``$XDG_DATA_HOME/patchline``, else ``~/.local/share/patchline`` (keys, signatures, the store, feeds)."""
    base = os.environ.get("XDG_DATA_HOME")
    # The XDG spec says a relative value is invalid and must be ignored.
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "share"
    return root / "patchline"


def cache_home() -> Path:
    """``$PATCHLINE_CACHE_DIR``, else ``$XDG_CACHE_HOME/patchline``, else ``~/.cache/patchline``."""
    env = os.environ.get("PATCHLINE_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "patchline"

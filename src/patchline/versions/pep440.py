"""Python package versions, ordered by PEP 440 (via ``packaging``).

Only what PEP 440 accepts is valid; ``packaging``'s legacy (non-PEP 440)
versions are long gone, and ``InvalidVersion`` from ``packaging`` is translated.
"""

from __future__ import annotations

import functools

from packaging.version import InvalidVersion as _PackagingInvalidVersion
from packaging.version import Version

from patchline.versions._keyed import KeyedScheme
from patchline.versions.interface import InvalidVersion

__all__ = ["Pep440Scheme"]


class Pep440Scheme(KeyedScheme):
    """PEP 440's version order (epochs, pre-, post- and dev-releases, local versions)."""

    scheme_name = "pep440"

    def _key(self, version: str) -> object:
        return _key(version)


@functools.lru_cache(maxsize=65536)
def _key(version: str) -> Version:
    try:
        return Version(version)
    except _PackagingInvalidVersion as exc:
        raise InvalidVersion(f"invalid PEP 440 version {version!r}") from exc

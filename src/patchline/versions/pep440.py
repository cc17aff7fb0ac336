"""Python package versions, ordered by PEP 440 (via ``packaging``).

Only what PEP 440 accepts is valid; ``packaging``'s legacy (non-PEP 440)
versions are long gone, and ``InvalidVersion`` from ``packaging`` is translated.
"""

from __future__ import annotations

import functools

from packaging.version import InvalidVersion as _PackagingInvalidVersion
from packaging.version import Version

from patchline.versions.interface import InvalidVersion

__all__ = ["Pep440Scheme"]


class Pep440Scheme:
    """PEP 440's version order (epochs, pre-, post- and dev-releases, local versions)."""

    @property
    def name(self) -> str:
        return "pep440"

    def validate(self, version: str) -> None:
        _key(version)

    def compare(self, a: str, b: str) -> int:
        ka, kb = _key(a), _key(b)
        return (ka > kb) - (ka < kb)

    def key(self, version: str) -> object:
        return _key(version)

    def __repr__(self) -> str:
        return "Pep440Scheme()"


@functools.lru_cache(maxsize=65536)
def _key(version: str) -> Version:
    try:
        return Version(version)
    except _PackagingInvalidVersion as exc:
        raise InvalidVersion(f"invalid PEP 440 version {version!r}") from exc

"""The shared shape of every scheme: the order of versions is the order of their sort keys."""

from __future__ import annotations

from typing import Any, ClassVar


class KeyedScheme:
    """A ``VersionScheme`` defined by one key function; subclasses name it and give ``_key``.

    Comparing keys (rather than versions pairwise) keeps ``compare`` and ``key``
    consistent by construction, and lets each module cache its keys.
    """

    scheme_name: ClassVar[str]

    def _key(self, version: str) -> Any:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return self.scheme_name

    def validate(self, version: str) -> None:
        self._key(version)

    def compare(self, a: str, b: str) -> int:
        ka, kb = self._key(a), self._key(b)
        return int((ka > kb) - (ka < kb))

    def key(self, version: str) -> object:
        return self._key(version)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

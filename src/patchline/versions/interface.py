"""Version schemes: each ecosystem's exact ordering rules, behind one interface.

Implementations are sibling modules: ``dpkg.py`` (epochs, ``~``, revisions, via
python-debian), ``rpm.py`` (rpmvercmp, epoch:version-release), ``apk.py``,
``pep440.py`` (via packaging), ``semver.py`` (npm semver with pre-releases).
``osv.py`` evaluates OSV ``affected`` ranges with any scheme.
"""

from __future__ import annotations

from typing import Protocol

from patchline.errors import Error

__all__ = ["InvalidVersion", "VersionScheme"]


class InvalidVersion(Error):
    """A version string is not valid in its ecosystem."""


class VersionScheme(Protocol):
    """Total order over one ecosystem's version strings."""

    @property
    def name(self) -> str:
        """``dpkg``, ``rpm``, ``apk``, ``pep440``, ``semver``."""

    def validate(self, version: str) -> None:
        """Raise ``InvalidVersion`` (one clear line) if ``version`` is not valid here."""

    def compare(self, a: str, b: str) -> int:
        """Negative, zero or positive as ``a`` sorts before, equal to, or after ``b``.

        Raises ``InvalidVersion`` for an invalid operand.
        """

    def key(self, version: str) -> object:
        """A sort key consistent with ``compare`` (for sorting and bisecting many versions)."""

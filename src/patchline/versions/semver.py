"""npm package versions: strict SemVer 2.0.0 with node-semver's precedence.

Valid is what node-semver parses without ``loose``: ``MAJOR.MINOR.PATCH``, an
optional ``-pre.release`` and ``+build``, no leading zeros in numeric parts, an
optional leading ``v`` (node-semver's strict grammar allows it), at most 256
characters and numbers up to 2**53 - 1. Anything else (``=1.2.3``, ``1.2``,
spaces) is invalid. Precedence is SemVer section 11: numeric identifiers compare
numerically and before alphanumeric ones, a pre-release sorts before its release,
and build metadata is ignored.
"""

from __future__ import annotations

import functools
import re

from patchline.versions._keyed import KeyedScheme
from patchline.versions.interface import InvalidVersion

__all__ = ["SemverScheme"]

_MAX_LENGTH = 256
_MAX_SAFE_INTEGER = 2**53 - 1

# The regular expression suggested by semver.org, plus node-semver's optional "v".
_SEMVER = re.compile(
    r"v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?",
    re.ASCII,
)

# A release sorts after all of its pre-releases; within a pre-release, numeric
# identifiers sort before alphanumeric ones, and a longer list wins a tie.
_Identifier = tuple[int, int, str]
_RELEASE: tuple[int, tuple[_Identifier, ...]] = (1, ())


class SemverScheme(KeyedScheme):
    """SemVer 2.0.0 precedence, as npm's node-semver implements it."""

    scheme_name = "semver"

    def _key(self, version: str) -> object:
        return _key(version)


@functools.lru_cache(maxsize=65536)
def _key(version: str) -> tuple[int, int, int, tuple[int, tuple[_Identifier, ...]]]:
    if len(version) > _MAX_LENGTH:
        raise InvalidVersion(f"invalid semver version {version[:40]!r}...: longer than {_MAX_LENGTH} characters")
    match = _SEMVER.fullmatch(version)
    if match is None:
        raise InvalidVersion(f"invalid semver version {version!r}: not MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]")
    major, minor, patch = (int(part) for part in match.group(1, 2, 3))
    if max(major, minor, patch) > _MAX_SAFE_INTEGER:
        raise InvalidVersion(f"invalid semver version {version!r}: a number is larger than {_MAX_SAFE_INTEGER}")
    prerelease = match.group(4)
    if prerelease is None:
        return (major, minor, patch, _RELEASE)
    identifiers = tuple((0, int(ident), "") if ident.isdigit() else (1, 0, ident) for ident in prerelease.split("."))
    return (major, minor, patch, (0, identifiers))

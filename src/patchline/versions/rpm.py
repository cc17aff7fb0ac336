"""RPM versions: ``[epoch:]version[-release]``, ordered as rpm 4.18's ``rpmvercmp``.

``rpmvercmp`` walks both strings a segment at a time: separators (anything but ASCII
letters, digits, ``~`` and ``^``) are skipped; ``~`` sorts before everything, even
the end of the string; ``^`` sorts after the end but before any further segment; a
numeric segment (leading zeros ignored) is newer than an alphabetic one; alphabetic
segments compare as bytes; what is left over wins. The full comparison is epoch
(missing = 0, compared as a number), then version, then release. A missing release
sorts before every present one, ``~`` releases included, as rpm 4.18's ``rpm.vercmp``
does (``1.0`` < ``1.0-1`` and ``1.0`` < ``1.0-~1``).

Validation is what rpmbuild allows in a Version or Release tag (ASCII letters,
digits and ``._+~^``; no ``-`` inside either), with a numeric epoch.
"""

from __future__ import annotations

import functools
import re

from patchline.versions._keyed import KeyedScheme
from patchline.versions.interface import InvalidVersion

__all__ = ["RpmScheme"]

_ALLOWED = re.compile(r"[A-Za-z0-9._+~^]+")
_TOKENS = re.compile(r"~|\^|[0-9]+|[A-Za-z]+")

# Token ranks, in rpmvercmp's order: '~' < end < '^' < alphabetic < numeric.
_TILDE = (0, 0, "")
_END = (1, 0, "")
_CARET = (2, 0, "")
_ALPHA = 3
_NUMERIC = 4

_Segments = tuple[tuple[int, int, str], ...]


class RpmScheme(KeyedScheme):
    """rpm's epoch:version-release order (``rpmvercmp`` on each part)."""

    scheme_name = "rpm"

    def _key(self, version: str) -> object:
        return _key(version)


def rpmvercmp(a: str, b: str) -> int:
    """rpm's segment comparison of two version (or release) strings: -1, 0 or 1."""
    ka, kb = _segments(a), _segments(b)
    return (ka > kb) - (ka < kb)


@functools.lru_cache(maxsize=65536)
def _key(evr: str) -> tuple[int, _Segments, _Segments]:
    epoch, version, release = _split(evr)
    # No release: the empty tuple sorts before the segments of any release (each ends in _END).
    return (epoch, _segments(version), () if release is None else _segments(release))


def _split(evr: str) -> tuple[int, str, str | None]:
    if not evr:
        raise InvalidVersion("invalid rpm version '': it is empty")
    epoch_text, colon, rest = evr.partition(":")
    if not colon:
        epoch_text, rest = "", evr
    elif not (epoch_text.isascii() and epoch_text.isdigit()):
        raise InvalidVersion(f"invalid rpm version {evr!r}: the epoch {epoch_text!r} is not a number")
    version, hyphen, release = rest.partition("-")
    if not version:
        raise InvalidVersion(f"invalid rpm version {evr!r}: the version is empty")
    if not _ALLOWED.fullmatch(version):
        raise InvalidVersion(f"invalid rpm version {evr!r}: the version {version!r} has a character rpm does not allow")
    if hyphen and not release:
        raise InvalidVersion(f"invalid rpm version {evr!r}: the release after '-' is empty")
    if hyphen and not _ALLOWED.fullmatch(release):
        raise InvalidVersion(f"invalid rpm version {evr!r}: the release {release!r} has a character rpm does not allow")
    return int(epoch_text or 0), version, release if hyphen else None


@functools.lru_cache(maxsize=65536)
def _segments(text: str) -> _Segments:
    """Tokens whose tuple order is ``rpmvercmp``'s order (any string; separators are skipped)."""
    out: list[tuple[int, int, str]] = []
    for token in _TOKENS.findall(text):
        if token == "~":
            out.append(_TILDE)
        elif token == "^":
            out.append(_CARET)
        elif token[0].isdigit():
            out.append((_NUMERIC, int(token), ""))
        else:
            out.append((_ALPHA, 0, token))
    out.append(_END)
    return tuple(out)

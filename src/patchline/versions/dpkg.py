"""Debian package versions: ``[epoch:]upstream_version[-debian_revision]``, ordered as dpkg does.

Validation follows dpkg's ``parseversion`` (lib/dpkg/parsehelp.c) *strictly*: what
``dpkg --compare-versions`` only warns about (an upstream version not starting with
a digit, a character outside ``[A-Za-z0-9.+~-:]``, or ``[A-Za-z0-9.+~]`` in the
revision) is rejected here, as dpkg's own control-file parser rejects it outside
its lax mode. Leading and trailing blanks are ignored, as dpkg ignores them.

The three parts are split by python-debian's ``Version``; the order is dpkg's
``verrevcmp``, computed once per version as a tuple key so that sorting and
bisecting many versions is fast.
"""

from __future__ import annotations

import functools
import re

from debian.debian_support import Version

from patchline.versions._keyed import KeyedScheme
from patchline.versions.interface import InvalidVersion

__all__ = ["DpkgScheme"]

_INT_MAX = 2**31 - 1
_UPSTREAM_CHARS = re.compile(r"[A-Za-z0-9.+~:-]*")
_REVISION_CHARS = re.compile(r"[A-Za-z0-9.+~]*")
_PART = re.compile(r"([^0-9]*)([0-9]*)")

# One element of an encoded version part; see _encode_part.
_Element = tuple[int, ...]
_END: _Element = (0,)


class DpkgScheme(KeyedScheme):
    """dpkg's version order (epochs, ``~`` before anything, revisions)."""

    scheme_name = "dpkg"

    def _key(self, version: str) -> object:
        return _key(version)


def _check(version: str) -> tuple[int, str, str]:
    """Return ``(epoch, upstream, revision)`` or raise what dpkg's parseversion raises."""
    text = version.strip(" \t")
    if not text:
        raise InvalidVersion(f"invalid dpkg version {version!r}: version string is empty")
    if any(c in text for c in " \t"):
        raise InvalidVersion(f"invalid dpkg version {version!r}: version string has embedded spaces")
    epoch = 0
    head, colon, rest = text.partition(":")
    if colon:
        if not ("0" <= head[:1] <= "9"):
            raise InvalidVersion(f"invalid dpkg version {version!r}: epoch in version is empty")
        if not head.isascii() or not head.isdigit():
            raise InvalidVersion(f"invalid dpkg version {version!r}: epoch in version is not number")
        epoch = int(head)
        if epoch > _INT_MAX:
            raise InvalidVersion(f"invalid dpkg version {version!r}: epoch in version is too big")
        if not rest:
            raise InvalidVersion(f"invalid dpkg version {version!r}: nothing after colon in version number")
    upstream, hyphen, revision = (rest if colon else text).rpartition("-")
    if not hyphen:
        upstream, revision = revision, ""
    elif not revision:
        raise InvalidVersion(f"invalid dpkg version {version!r}: revision number is empty")
    if not upstream:
        raise InvalidVersion(f"invalid dpkg version {version!r}: version number is empty")
    if not ("0" <= upstream[0] <= "9"):
        raise InvalidVersion(f"invalid dpkg version {version!r}: version number does not start with digit")
    if not (upstream.isascii() and _UPSTREAM_CHARS.fullmatch(upstream)):
        raise InvalidVersion(f"invalid dpkg version {version!r}: invalid character in version number")
    if not (revision.isascii() and _REVISION_CHARS.fullmatch(revision)):
        raise InvalidVersion(f"invalid dpkg version {version!r}: invalid character in revision number")
    return epoch, upstream, revision


@functools.lru_cache(maxsize=65536)
def _key(version: str) -> tuple[object, ...]:
    _check(version)
    parsed = Version(version.strip(" \t"))
    epoch = int(parsed.epoch) if parsed.epoch else 0
    return (epoch, _encode_part(parsed.upstream_version or ""), _encode_part(parsed.debian_revision or ""))


def _order(char: str) -> int:
    # dpkg's order(): '~' before everything (even the end), then letters, then the rest.
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256


def _encode_part(part: str) -> tuple[_Element, ...]:
    """Encode an upstream version or revision so that tuple order is dpkg's ``verrevcmp``.

    ``verrevcmp`` alternates a non-digit run (compared character by character with
    :func:`_order`, a finished run counting 0) and a digit run (compared as a number).
    Flattened, that is a lexicographic comparison of integer sequences in which the
    shorter one is padded with zeros. Python compares a shorter tuple as smaller
    instead, so each non-zero value is stored with the number of zeros before it:
    a positive value sorts later the fewer zeros precede it, a negative one (``~``)
    earlier, and the end of the sequence (infinite zeros) sits between the two.
    """
    flat: list[int] = []
    for nondigits, digits in _PART.findall(part):
        if not nondigits and not digits:
            continue
        flat.extend(_order(c) for c in nondigits)
        flat.append(0)
        flat.append(int(digits) if digits else 0)
    encoded: list[_Element] = []
    zeros = 0
    for value in flat:
        if value == 0:
            zeros += 1
        elif value > 0:
            encoded.append((1, -zeros, value))
            zeros = 0
        else:
            encoded.append((-1, zeros, value))
            zeros = 0
    encoded.append(_END)
    return tuple(encoded)

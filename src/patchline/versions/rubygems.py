"""RubyGems versions, ordered as ``Gem::Version#<=>`` orders them (RubyGems 3.4 and later).

Valid is what ``Gem::Version.correct?`` accepts: digits, then ``.``-separated
runs of letters and digits, then an optional ``-`` part (which RubyGems reads
as ``.pre.``: ``1.0.0-rc1`` is ``1.0.0.pre.rc1``); surrounding whitespace is
ignored and an empty version is ``0``. A version is split into segments, each
a run of digits (a number) or of letters (a string): ``1.0.a10`` is ``1, 0,
"a", 10``. Trailing zeros, and zeros just before the first letter of a
pre-release, are dropped (``1.0.0 == 1``, ``1.0.0.a.1.0 == 1.a.1``); segments
compare pairwise, a missing one as ``0``; a string sorts before any number, so a
pre-release sorts before its release (``1.0.a < 1.0``), and strings compare
bytewise (``1.A < 1.a``). At most 256 characters here.
"""

from __future__ import annotations

import functools
import re

from patchline.versions._keyed import KeyedScheme
from patchline.versions.interface import InvalidVersion

__all__ = ["RubyGemsScheme"]

_MAX_LENGTH = 256
_VALID = re.compile(r"\s*(?:[0-9]+(?:\.[0-9a-zA-Z]+)*(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?)?\s*", re.ASCII)
# Gem::Version#canonical_segments, step for step.
_TRAILING_ZEROS = re.compile(r"(?<=[a-zA-Z.])[.0]+\Z")
_ZEROS_BEFORE_LETTER = re.compile(r"(?:(?<=\.)|\A)[0.]+(?=[a-zA-Z])")
_SEGMENT = re.compile(r"[0-9]+|[a-zA-Z]+")

_Segment = tuple[int, int, bytes]  # (0, 0, letters) sorts before (1, number, b"")


@functools.total_ordering
class _GemKey:
    """Canonical segments without trailing zeros, compared as Gem::Version compares them."""

    __slots__ = ("_segments",)

    def __init__(self, segments: tuple[_Segment, ...]) -> None:
        self._segments = segments

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _GemKey) and self._segments == other._segments

    def __lt__(self, other: _GemKey) -> bool:
        # Pad the shorter side with the number 0, as Gem::Version does.
        zero: _Segment = (1, 0, b"")
        mine, theirs = self._segments, other._segments
        for index in range(max(len(mine), len(theirs))):
            left = mine[index] if index < len(mine) else zero
            right = theirs[index] if index < len(theirs) else zero
            if left != right:
                return left < right
        return False

    def __hash__(self) -> int:
        return hash(self._segments)

    def __repr__(self) -> str:
        return f"_GemKey({self._segments!r})"


class RubyGemsScheme(KeyedScheme):
    """RubyGems' version order (``Gem::Version``)."""

    scheme_name = "rubygems"

    def _key(self, version: str) -> object:
        return _key(version)


@functools.lru_cache(maxsize=65536)
def _key(version: str) -> _GemKey:
    if len(version) > _MAX_LENGTH:
        raise InvalidVersion(f"invalid RubyGems version {version[:40]!r}...: longer than {_MAX_LENGTH} characters")
    if _VALID.fullmatch(version) is None:
        raise InvalidVersion(f"invalid RubyGems version {version!r}: not digits and letters separated by dots")
    text = version.strip().replace("-", ".pre.") or "0"
    text = _TRAILING_ZEROS.sub("", text, count=1)
    if any(char.isalpha() for char in text):
        text = _ZEROS_BEFORE_LETTER.sub("", text, count=1)
    segments = [(1, int(s), b"") if s[0].isdigit() else (0, 0, s.encode()) for s in _SEGMENT.findall(text)]
    while segments and segments[-1] == (1, 0, b""):
        segments.pop()  # a missing segment compares as 0: "1.0" == "1"
    return _GemKey(tuple(segments))

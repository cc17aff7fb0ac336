"""Alpine package versions, ordered and validated as apk-tools' ``version.c`` does.

Grammar: ``digit{.digit}...{letter}{_suffix{digits}}...{~hash}{-r digits}``. A
version is a series of tokens; two versions compare token by token:

- numbers compare as numbers, except that a dotted component with a leading zero
  (``1.02``) compares as a string with the other one (Gentoo's rule);
- one lowercase letter after the digits compares by its character;
- suffixes: ``_alpha < _beta < _pre < _rc`` < no suffix < ``_cvs < _svn < _git < _hg < _p``;
- ``~hash`` (hex commit hash) compares as a string, ``-rN`` as a number.

When one version runs out of tokens or the token kinds differ, a pre-release
suffix is older than anything; otherwise the token that comes later in the
grammar (the end of the version coming last) is the older one.
"""

from __future__ import annotations

import functools
import re

from patchline.versions._keyed import KeyedScheme
from patchline.versions.interface import InvalidVersion

__all__ = ["ApkScheme"]

_PRE_SUFFIXES = {"alpha": 1, "beta": 2, "pre": 3, "rc": 4}
_POST_SUFFIXES = {"cvs": 6, "svn": 7, "git": 8, "hg": 9, "p": 10}

# Ranks of a token when the kinds differ (a lower rank is the older version); equal
# ranks mean equal kinds, whose values then decide. apk: a pre-release suffix loses,
# else the later kind in the grammar (INITIAL_DIGIT < ... < END) loses.
_RANK_PRE_SUFFIX = 0
_RANK_END = 1
_RANK_REVISION = 2
_RANK_HASH = 3
_RANK_SUFFIX_NO = 4
_RANK_POST_SUFFIX = 5
_RANK_LETTER = 6
_RANK_DIGIT = 7
_RANK_INITIAL_DIGIT = 8

_INITIAL = re.compile(r"[0-9]+")
_DIGITS = re.compile(r"\.([0-9]+)")
_LETTER = re.compile(r"[a-z]")
_SUFFIX = re.compile(r"_([a-z]*)([0-9]*)")
_HASH = re.compile(r"~([0-9a-f]+)")
_REVISION = re.compile(r"-r([0-9]+)")

_Token = tuple[int, object]


class ApkScheme(KeyedScheme):
    """apk-tools' version order (``apk version -t``)."""

    scheme_name = "apk"

    def _key(self, version: str) -> object:
        return _key(version)


def _invalid(version: str, why: str) -> InvalidVersion:
    return InvalidVersion(f"invalid apk version {version!r}: {why}")


@functools.lru_cache(maxsize=65536)
def _key(version: str) -> tuple[_Token, ...]:
    """Tokens whose tuple order is apk's order; raises like ``apk_version_validate``."""
    match = _INITIAL.match(version)
    if match is None:
        raise _invalid(version, "it must start with a digit")
    tokens: list[tuple[int, object]] = [(_RANK_INITIAL_DIGIT, int(match.group()))]
    pos = match.end()
    stage = 0  # 0 digits, 1 letter, 2 suffixes, 3 hash, 4 revision: each may only follow earlier ones
    while pos < len(version):
        char = version[pos]
        if char == "." and stage == 0 and (match := _DIGITS.match(version, pos)):
            digits = match.group(1)
            # Leading zero on either side: apk compares the two as strings; all such
            # strings sort before any number without one (its first digit is higher).
            tokens.append((_RANK_DIGIT, (0, digits) if digits[0] == "0" else (1, int(digits))))
        elif "a" <= char <= "z" and stage == 0 and (match := _LETTER.match(version, pos)):
            tokens.append((_RANK_LETTER, match.group()))
            stage = 1
        elif char == "_" and stage <= 2 and (match := _SUFFIX.match(version, pos)):
            name, number = match.groups()
            if name in _PRE_SUFFIXES:
                tokens.append((_RANK_PRE_SUFFIX, _PRE_SUFFIXES[name]))
            elif name in _POST_SUFFIXES:
                tokens.append((_RANK_POST_SUFFIX, _POST_SUFFIXES[name]))
            else:
                raise _invalid(version, f"unknown suffix _{name}")
            if number:
                tokens.append((_RANK_SUFFIX_NO, int(number)))
            stage = 2
        elif char == "~" and stage <= 2 and (match := _HASH.match(version, pos)):
            tokens.append((_RANK_HASH, match.group(1)))
            stage = 3
        elif char == "-" and stage <= 3 and (match := _REVISION.match(version, pos)):
            tokens.append((_RANK_REVISION, int(match.group(1))))
            stage = 4
        else:
            raise _invalid(version, f"unexpected {version[pos:]!r}")
        pos = match.end()
    tokens.append((_RANK_END, 0))
    return tuple(tokens)

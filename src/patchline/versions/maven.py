"""Maven artifact versions, ordered as Maven 3.9's ``ComparableVersion`` orders them.

A version is split into items at ``.``, at ``-`` (which opens a sub-list) and
at every change between digits and letters (``1.0alpha1`` is ``1, 0, alpha,
1``; since Maven 3.9 a qualifier after a dot reads as one after a hyphen:
``2.0.a == 2-a``). Numbers compare numerically, strings are qualifiers:
``alpha`` (``a``) < ``beta`` (``b``) < ``milestone`` (``m``) < ``rc`` (``cr``)
< ``snapshot`` < the release (``""``, ``ga``, ``final``, ``release``) < ``sp``
< any other string (lexically), case-insensitively; ``a``, ``b`` and ``m`` are
aliases only when a digit follows. Trailing zeros and release qualifiers are
dropped (``1 == 1.0 == 1-0 == 1.ga``); a missing item is padded as zero or
the release, so ``1-alpha < 1 < 1-sp < 1-1 < 1.1``.

ComparableVersion accepts every string; here a version must be non-empty, at
most 512 characters, and hold no whitespace or control characters.
"""

from __future__ import annotations

import functools
from typing import Union

from patchline.versions._keyed import KeyedScheme
from patchline.versions.interface import InvalidVersion

__all__ = ["MavenScheme"]

_MAX_LENGTH = 512
_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}
_RELEASE = str(_QUALIFIERS.index(""))
_DIGITS = frozenset("0123456789")

# An item: a number, a qualifier (aliases resolved), or a sub-list opened by "-".
_Item = Union[int, str, "_ListItem"]


class _ListItem(list[_Item]):
    pass


def _qualifier_rank(qualifier: str) -> str:
    # Maven compares these strings lexically: known qualifiers by index, then "7-<name>".
    if qualifier in _QUALIFIERS:
        return str(_QUALIFIERS.index(qualifier))
    return f"{len(_QUALIFIERS)}-{qualifier}"


def _sign(a: object, b: object) -> int:
    return int(a > b) - int(a < b)  # type: ignore[operator]


def _compare(item: _Item, other: _Item | None) -> int:
    """ComparableVersion's ``Item.compareTo``; ``other`` None is the padding of a shorter list."""
    if isinstance(item, int):
        if other is None:
            return 0 if item == 0 else 1
        if isinstance(other, int):
            return _sign(item, other)
        return 1  # 1.1 > 1-sp, 1.1 > 1-1
    if isinstance(item, str):
        if other is None:
            return _sign(_qualifier_rank(item), _RELEASE)  # 1-rc < 1, 1-sp > 1
        if isinstance(other, str):
            return _sign(_qualifier_rank(item), _qualifier_rank(other))
        return -1  # 1.any < 1.1, 1.any < 1-1
    if other is None:
        for child in item:  # every item against nothing, not only the first (MNG-6964)
            result = _compare(child, None)
            if result:
                return result
        return 0
    if isinstance(other, int):
        return -1  # 1-1 < 1.0.x
    if isinstance(other, str):
        return 1  # 1-1 > 1-sp
    for index in range(max(len(item), len(other))):
        left = item[index] if index < len(item) else None
        right = other[index] if index < len(other) else None
        # A shorter list is padded: compare the other side against nothing, and invert.
        result = (0 if right is None else -_compare(right, None)) if left is None else _compare(left, right)
        if result:
            return result
    return 0


def _is_null(item: _Item) -> bool:
    if isinstance(item, int):
        return item == 0
    if isinstance(item, str):
        return _qualifier_rank(item) == _RELEASE
    return not item


def _normalize(items: _ListItem) -> None:
    # Drop trailing nulls (0, "", empty lists), looking through trailing sub-lists.
    for index in range(len(items) - 1, -1, -1):
        if _is_null(items[index]):
            del items[index]
        elif not isinstance(items[index], _ListItem):
            break


def _string_item(text: str, *, followed_by_digit: bool) -> str:
    if followed_by_digit and text in _SHORT:
        text = _SHORT[text]
    return _ALIASES.get(text, text)


def _parse_item(is_digit: bool, text: str) -> _Item:
    return int(text) if is_digit else _string_item(text, followed_by_digit=False)


def _parse(version: str) -> _ListItem:
    """ComparableVersion.parseVersion, step for step."""
    text = version.lower()
    items = _ListItem()
    current = items
    stack = [current]
    is_digit = False
    start = 0
    for index, char in enumerate(text):
        if char in ".-":
            current.append(0 if index == start else _parse_item(is_digit, text[start:index]))
            start = index + 1
            if char == "-":
                current.append(sub := _ListItem())
                current = sub
                stack.append(current)
        elif char in _DIGITS:
            if not is_digit and index > start:
                if current:  # 1.0.0.X1 < 1.0.0-X2: ".X" reads as "-X"
                    current.append(sub := _ListItem())
                    current = sub
                    stack.append(current)
                current.append(_string_item(text[start:index], followed_by_digit=True))
                start = index
                current.append(sub := _ListItem())
                current = sub
                stack.append(current)
            is_digit = True
        else:
            if is_digit and index > start:
                current.append(int(text[start:index]))
                start = index
                current.append(sub := _ListItem())
                current = sub
                stack.append(current)
            is_digit = False
    if len(text) > start:
        if not is_digit and current:
            current.append(sub := _ListItem())
            current = sub
            stack.append(current)
        current.append(_parse_item(is_digit, text[start:]))
    while stack:
        _normalize(stack.pop())
    return items


def _frozen(item: _Item) -> object:
    return tuple(_frozen(child) for child in item) if isinstance(item, _ListItem) else item


@functools.total_ordering
class _MavenKey:
    """A sort key: the parsed items, ordered by ComparableVersion's rules."""

    __slots__ = ("_items",)

    def __init__(self, items: _ListItem) -> None:
        self._items = items

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _MavenKey) and _compare(self._items, other._items) == 0

    def __lt__(self, other: _MavenKey) -> bool:
        return _compare(self._items, other._items) < 0

    def __hash__(self) -> int:
        return hash(_frozen(self._items))

    def __repr__(self) -> str:
        return f"_MavenKey({_frozen(self._items)!r})"


class MavenScheme(KeyedScheme):
    """Maven's version order (``org.apache.maven.artifact.versioning.ComparableVersion``, Maven 3.9)."""

    scheme_name = "maven"

    def _key(self, version: str) -> object:
        return _key(version)


@functools.lru_cache(maxsize=65536)
def _key(version: str) -> _MavenKey:
    if not version:
        raise InvalidVersion("invalid Maven version '': empty")
    if len(version) > _MAX_LENGTH:
        raise InvalidVersion(f"invalid Maven version {version[:40]!r}...: longer than {_MAX_LENGTH} characters")
    if any(char.isspace() or not char.isprintable() for char in version):
        raise InvalidVersion(f"invalid Maven version {version!r}: holds whitespace or a control character")
    return _MavenKey(_parse(version))

"""Evaluate an OSV ``affected[]`` entry: is a version inside its ranges or versions list?

Semantics are the OSV schema's evaluation pseudo-code
(https://ossf.github.io/osv-schema/#evaluation): a version is affected when it
equals an entry of ``versions``, or when one range (ranges are OR'd) lies before
one of its ``limit`` events (none means ``"*"``, infinity) and walking its events
sorted by version leaves it vulnerable: ``introduced`` (``"0"`` sorts before every
version) opens, ``fixed`` (``v >= fixed``) and ``last_affected`` (``v > last``)
close. At one version a closing event sorts before an opening one, so that
adjacent intervals ``[a, x)`` and ``[x, b)`` both hold ``x``.

Range types: ``ECOSYSTEM`` uses the caller's scheme, ``SEMVER`` always SemVer.
``GIT`` ranges name commits, which no version string can be placed among; they
are ignored when the entry has something else to decide with (a ``versions`` list,
which the schema requires beside GIT ranges, or another range), and raise
:class:`UnsupportedRange` when they are all there is. A range that breaks the
schema (unknown type, malformed event, no ``introduced``) raises :class:`RangeError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, cast, get_args

from patchline.errors import Error
from patchline.versions.interface import InvalidVersion, VersionScheme
from patchline.versions.semver import SemverScheme

__all__ = [
    "EventKind",
    "OsvEvent",
    "OsvRange",
    "RangeError",
    "UnsupportedRange",
    "fixed_versions",
    "is_affected",
]

EventKind = Literal["introduced", "fixed", "last_affected", "limit"]
_EVENT_KINDS: tuple[str, ...] = get_args(EventKind)
_RANGE_TYPES = ("ECOSYSTEM", "SEMVER", "GIT")
_SEMVER = SemverScheme()
# Order of events at the same version: closing before opening (see the module docstring).
_TIE_ORDER = {"fixed": 0, "last_affected": 0, "limit": 0, "introduced": 1}


class RangeError(Error):
    """An OSV range cannot be evaluated: it breaks the schema or is of an unknown type."""


class UnsupportedRange(RangeError):
    """An OSV range is valid but cannot be evaluated on version strings (``GIT``)."""


@dataclass(frozen=True, slots=True)
class OsvEvent:
    """One ``events[]`` entry: ``{"introduced": "1.0"}`` is ``OsvEvent("introduced", "1.0")``."""

    kind: EventKind
    value: str

    def __post_init__(self) -> None:
        if self.kind not in _EVENT_KINDS:
            raise RangeError(f"unknown OSV event kind {self.kind!r}; expected one of {', '.join(_EVENT_KINDS)}")
        if not isinstance(self.value, str) or not self.value:
            raise RangeError(f"OSV event {self.kind!r} has no version (got {self.value!r})")

    @classmethod
    def from_json(cls, data: object) -> OsvEvent:
        """Parse one event object; exactly one of the four keys must be present."""
        if not isinstance(data, Mapping):
            raise RangeError(f"an OSV event must be an object, not {type(data).__name__}: {data!r}")
        keys = [k for k in data if k in _EVENT_KINDS]
        if len(keys) != 1:
            found = ", ".join(map(str, data)) or "no keys"
            raise RangeError(f"an OSV event must have exactly one of {', '.join(_EVENT_KINDS)}; this one has {found}")
        kind = keys[0]
        value = data[kind]
        if not isinstance(value, str):
            raise RangeError(f"OSV event {kind!r} must be a string, not {type(value).__name__}: {value!r}")
        return cls(cast(EventKind, kind), value)


@dataclass(frozen=True, slots=True)
class OsvRange:
    """One ``ranges[]`` entry: its ``type`` and its ``events`` in the record's order."""

    type: str
    events: tuple[OsvEvent, ...]

    @classmethod
    def from_json(cls, data: object) -> OsvRange:
        """Parse one range object (``repo`` and ``database_specific`` are not needed here)."""
        if not isinstance(data, Mapping):
            raise RangeError(f"an OSV range must be an object, not {type(data).__name__}")
        kind = data.get("type")
        if not isinstance(kind, str) or not kind:
            raise RangeError(f"an OSV range needs a string 'type', got {kind!r}")
        events = data.get("events")
        if not isinstance(events, list) or not events:
            raise RangeError(f"an OSV {kind} range needs a non-empty 'events' list, got {events!r}")
        return cls(kind, tuple(OsvEvent.from_json(e) for e in events))


def is_affected(
    version: str,
    *,
    ranges: Sequence[OsvRange],
    versions: Sequence[str],
    scheme: VersionScheme,
) -> bool:
    """Whether ``version`` is affected according to one OSV ``affected[]`` entry.

    ``scheme`` orders ``ECOSYSTEM`` ranges and matches ``versions``. Raises
    ``InvalidVersion`` when ``version`` is invalid in ``scheme``;
    :class:`UnsupportedRange` when only ``GIT`` ranges could decide, or a
    ``SEMVER`` range must place a version that is not SemVer; :class:`RangeError`
    for an entry or range that breaks the schema.
    """
    for r in ranges:
        _check_range(r)
    if not ranges and not versions:
        raise RangeError("the OSV affected entry has neither ranges nor versions")
    if _in_versions(version, versions, scheme):
        return True
    decidable = [r for r in ranges if r.type != "GIT"]
    if not decidable and not versions:
        raise UnsupportedRange(
            "the OSV affected entry has only GIT ranges (commit hashes) and no versions list; "
            "a version string cannot be placed in a commit graph"
        )
    for r in decidable:
        range_scheme: VersionScheme = scheme
        if r.type == "SEMVER":
            range_scheme = _SEMVER
            try:
                _SEMVER.validate(version)
            except InvalidVersion as exc:
                raise UnsupportedRange(
                    f"version {version!r} is not a SemVer version, so a SEMVER range cannot be evaluated for it"
                ) from exc
        if _in_range(version, r, range_scheme):
            return True
    return False


def fixed_versions(ranges: Sequence[OsvRange]) -> tuple[str, ...]:
    """Every ``fixed`` version of the ranges, in the record's order, without duplicates."""
    seen: dict[str, None] = {}
    for r in ranges:
        for event in r.events:
            if event.kind == "fixed":
                seen.setdefault(event.value)
    return tuple(seen)


def _check_range(r: OsvRange) -> None:
    if r.type not in _RANGE_TYPES:
        raise RangeError(f"unknown OSV range type {r.type!r}; expected one of {', '.join(_RANGE_TYPES)}")
    if not any(e.kind == "introduced" for e in r.events):
        raise RangeError(f"the OSV {r.type} range has no 'introduced' event: {_describe(r)}")


def _in_versions(version: str, versions: Sequence[str], scheme: VersionScheme) -> bool:
    if version in versions:
        return True
    if not versions:
        return False
    scheme.validate(version)
    # The list may hold strings of another syntax (upstream Git tags): skip those.
    for listed in versions:
        try:
            if scheme.compare(version, listed) == 0:
                return True
        except InvalidVersion:
            continue
    return False


def _in_range(version: str, r: OsvRange, scheme: VersionScheme) -> bool:
    def cmp(event: OsvEvent) -> int:
        """``version`` against the event's version."""
        try:
            scheme.validate(event.value)
        except InvalidVersion as exc:
            raise RangeError(
                f"the OSV {r.type} range has an invalid {scheme.name} version in "
                f"{{{event.kind!r}: {event.value!r}}}: {exc}"
            ) from exc
        return scheme.compare(version, event.value)

    scheme.validate(version)
    limits = [e for e in r.events if e.kind == "limit"]
    if limits and not any(e.value == "*" or cmp(e) < 0 for e in limits):
        return False

    def sort_key(event: OsvEvent) -> tuple[int, object, int]:
        if event.kind == "introduced" and event.value == "0":
            return (0, 0, 0)
        cmp(event)  # validates, with the range named in the error
        return (1, scheme.key(event.value), _TIE_ORDER[event.kind])

    vulnerable = False
    for event in sorted((e for e in r.events if e.kind != "limit"), key=sort_key):
        if event.kind == "introduced":
            if event.value == "0" or cmp(event) >= 0:
                vulnerable = True
        elif event.kind == "fixed":
            if cmp(event) >= 0:
                vulnerable = False
        elif cmp(event) > 0:  # last_affected
            vulnerable = False
    return vulnerable


def _describe(r: OsvRange) -> str:
    return "[" + ", ".join(f"{{{e.kind!r}: {e.value!r}}}" for e in r.events) + "]"

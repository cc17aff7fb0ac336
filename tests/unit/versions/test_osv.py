"""OSV affected[] evaluation: the schema's own examples, then the corners of its pseudo-code."""

from __future__ import annotations

from typing import Any

import pytest

from patchline.versions import (
    DpkgScheme,
    InvalidVersion,
    OsvEvent,
    OsvRange,
    Pep440Scheme,
    RangeError,
    SemverScheme,
    UnsupportedRange,
    fixed_versions,
    is_affected,
)
from patchline.versions.interface import VersionScheme

SEMVER = SemverScheme()
DPKG = DpkgScheme()
PEP440 = Pep440Scheme()


def rng(kind: str, *events: dict[str, str]) -> OsvRange:
    return OsvRange.from_json({"type": kind, "events": list(events)})


def affected(version: str, *ranges: OsvRange, versions: tuple[str, ...] = (), scheme: VersionScheme = SEMVER) -> bool:
    return is_affected(version, ranges=ranges, versions=versions, scheme=scheme)


# (ranges, {version: expected}); the first four are the schema's "Examples" section.
CASES: list[tuple[str, list[OsvRange], VersionScheme, dict[str, bool]]] = [
    ("unfixed", [rng("SEMVER", {"introduced": "0"})], SEMVER, {"0.0.0": True, "99.0.0": True}),
    (
        "fixed",
        [rng("SEMVER", {"introduced": "0"}, {"fixed": "1.0.2"})],
        SEMVER,
        {"0.0.1": True, "1.0.2-rc.1": True, "1.0.2": False, "1.0.3": False},
    ),
    (
        "multiple intervals",
        [rng("SEMVER", {"introduced": "1.0.0"}, {"fixed": "1.0.2"}, {"introduced": "3.0.0"}, {"fixed": "3.2.5"})],
        SEMVER,
        {"0.9.0": False, "1.0.0": True, "1.0.1": True, "1.0.2": False, "2.0.0": False, "3.0.0": True, "3.2.5": False},
    ),
    (
        "last_affected",
        [rng("ECOSYSTEM", {"introduced": "0"}, {"last_affected": "2.1.214"})],
        PEP440,
        {"2.1.213": True, "2.1.214": True, "2.1.214.post1": False, "2.1.215": False},
    ),
    (
        "unsorted events",
        [rng("SEMVER", {"fixed": "3.2.5"}, {"introduced": "3.0.0"}, {"fixed": "1.0.2"}, {"introduced": "1.0.0"})],
        SEMVER,
        {"0.9.0": False, "1.0.1": True, "2.0.0": False, "3.1.0": True, "3.2.5": False},
    ),
    (
        "limit bounds the range",
        [rng("SEMVER", {"introduced": "1.0.0"}, {"limit": "2.0.0"})],
        SEMVER,
        {"0.1.0": False, "1.5.0": True, "2.0.0": False, "3.0.0": False},
    ),
    (
        "several limits: below any of them",
        [rng("SEMVER", {"introduced": "0"}, {"limit": "1.0.0"}, {"limit": "3.0.0"})],
        SEMVER,
        {"0.5.0": True, "2.0.0": True, "3.0.0": False},
    ),
    ("limit *", [rng("SEMVER", {"introduced": "1.0.0"}, {"limit": "*"})], SEMVER, {"9.0.0": True, "0.1.0": False}),
    (
        "ranges are OR'd",
        [rng("SEMVER", {"introduced": "1.0.0"}, {"fixed": "1.1.0"}), rng("SEMVER", {"introduced": "2.0.0"})],
        SEMVER,
        {"1.0.5": True, "1.5.0": False, "2.5.0": True},
    ),
    (
        "adjacent intervals share their bound",
        [rng("SEMVER", {"introduced": "1.0.0"}, {"fixed": "2.0.0"}, {"introduced": "2.0.0"}, {"fixed": "3.0.0"})],
        SEMVER,
        {"1.5.0": True, "2.0.0": True, "3.0.0": False},
    ),
    (
        "dpkg ECOSYSTEM range: tilde and epoch",
        [rng("ECOSYSTEM", {"introduced": "0"}, {"fixed": "1:2.0-1~deb12u1"})],
        DPKG,
        {"2.0-1": True, "1:2.0-1~deb11u1": True, "1:2.0-1~deb12u1": False, "1:2.0-1": False, "3.0": True},
    ),
    (
        "SEMVER range on a PyPI package uses SemVer, not PEP 440",
        [rng("SEMVER", {"introduced": "1.0.0"}, {"fixed": "1.2.0"})],
        PEP440,
        {"1.1.0": True, "1.2.0-rc.1": True, "1.2.0": False},
    ),
]


@pytest.mark.parametrize(("name", "ranges", "scheme", "expect"), CASES, ids=[c[0] for c in CASES])
def test_ranges(name: str, ranges: list[OsvRange], scheme: VersionScheme, expect: dict[str, bool]) -> None:
    got = {v: is_affected(v, ranges=ranges, versions=(), scheme=scheme) for v in expect}
    assert got == expect


def test_explicit_versions_match() -> None:
    r = rng("ECOSYSTEM", {"introduced": "2.0"}, {"fixed": "2.1"})
    assert affected("1.5", r, versions=("1.5", "2.0"), scheme=PEP440)
    assert affected("1.5.0", r, versions=("1.5",), scheme=PEP440)  # equal in PEP 440
    assert not affected("1.6", r, versions=("1.5", "not-a-version"), scheme=PEP440)
    assert affected("1.0", versions=("1.0",), scheme=PEP440)


def test_git_alone_is_unsupported() -> None:
    git = rng("GIT", {"introduced": "0"}, {"fixed": "a" * 40})
    with pytest.raises(UnsupportedRange, match="only GIT ranges"):
        affected("1.0.0", git)


def test_git_beside_a_versions_list_or_another_range_is_ignored() -> None:
    git = rng("GIT", {"introduced": "0"}, {"fixed": "a" * 40})
    assert affected("1.0.0", git, versions=("1.0.0",))
    assert not affected("1.0.1", git, versions=("1.0.0",))
    assert affected("1.0.0", git, rng("SEMVER", {"introduced": "0"}, {"fixed": "1.0.1"}))


def test_semver_range_on_a_non_semver_version_is_unsupported() -> None:
    with pytest.raises(UnsupportedRange, match="not a SemVer version"):
        affected("1.0.post1", rng("SEMVER", {"introduced": "0"}, {"fixed": "2.0.0"}), scheme=PEP440)


def test_invalid_candidate_version() -> None:
    with pytest.raises(InvalidVersion):
        affected("not a version", rng("ECOSYSTEM", {"introduced": "0"}, {"fixed": "2.0"}), scheme=PEP440)


def test_invalid_event_version_names_the_event() -> None:
    with pytest.raises(RangeError, match=r"invalid pep440 version in \{'fixed': 'nope'\}"):
        affected("1.0", rng("ECOSYSTEM", {"introduced": "0"}, {"fixed": "nope"}), scheme=PEP440)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "SEMVER", "events": [{"introduced": "1.0.0", "fixed": "1.0.2"}]}, "exactly one of"),
        ({"type": "SEMVER", "events": [{}]}, "exactly one of.*no keys"),
        ({"type": "SEMVER", "events": [{"fixd": "1.0.0"}]}, "exactly one of.*fixd"),
        ({"type": "SEMVER", "events": [{"introduced": 1}]}, "must be a string"),
        ({"type": "SEMVER", "events": [{"introduced": ""}]}, "has no version"),
        ({"type": "SEMVER", "events": ["introduced"]}, "must be an object"),
        ({"type": "SEMVER", "events": []}, "non-empty 'events'"),
        ({"type": "SEMVER"}, "non-empty 'events'"),
        ({"events": [{"introduced": "0"}]}, "string 'type'"),
        ([], "must be an object"),
    ],
)
def test_malformed_json(data: Any, message: str) -> None:
    with pytest.raises(RangeError, match=message):
        OsvRange.from_json(data)


def test_unknown_range_type() -> None:
    with pytest.raises(RangeError, match="unknown OSV range type 'VERSION'"):
        affected("1.0.0", rng("VERSION", {"introduced": "0"}))
    # ...even when another range would already match.
    with pytest.raises(RangeError, match="unknown OSV range type"):
        affected("1.0.0", rng("SEMVER", {"introduced": "0"}), rng("BOGUS", {"introduced": "0"}))


def test_range_without_introduced() -> None:
    with pytest.raises(RangeError, match="no 'introduced' event"):
        affected("1.0.0", rng("SEMVER", {"fixed": "1.0.1"}))


def test_nothing_to_evaluate() -> None:
    with pytest.raises(RangeError, match="neither ranges nor versions"):
        affected("1.0.0")


def test_event_kind_is_checked() -> None:
    with pytest.raises(RangeError, match="unknown OSV event kind"):
        OsvEvent("patched", "1.0")  # type: ignore[arg-type]


def test_fixed_versions() -> None:
    ranges = [
        rng("ECOSYSTEM", {"introduced": "0"}, {"fixed": "1.2"}, {"introduced": "2.0"}, {"fixed": "2.3"}),
        rng("ECOSYSTEM", {"introduced": "0"}, {"fixed": "1.2"}, {"last_affected": "9"}),
        rng("GIT", {"introduced": "0"}, {"limit": "abc"}),
    ]
    assert fixed_versions(ranges) == ("1.2", "2.3")
    assert fixed_versions([]) == ()

"""SemVer: the spec's precedence example, hand-written orderings and validation.

node-semver itself is the oracle in tests/integration/test_version_oracles.py.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patchline.versions import InvalidVersion, SemverScheme

SEMVER = SemverScheme()

# semver.org, section 11.
SPEC_ASCENDING = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "2.0.0",
    "2.1.0",
    "2.1.1",
]


@pytest.mark.parametrize(("a", "b"), list(itertools.pairwise(SPEC_ASCENDING)))
def test_spec_precedence(a: str, b: str) -> None:
    assert SEMVER.compare(a, b) == -1
    assert SEMVER.compare(b, a) == 1


# (a, b, sign of compare(a, b)): our own rows, written from SemVer section 11;
# tests/integration/test_version_oracles.py asserts every row against node-semver too.
SEMVER_CASES = [
    ("4.2.0", "4.2.0", 0),
    # MAJOR, MINOR, PATCH compare numerically, left to right.
    ("0.0.9", "0.0.10", -1),
    ("0.9.0", "0.10.0", -1),
    ("9.9.9", "10.0.0", -1),
    ("3.0.0", "2.99.99", 1),
    ("0.0.1", "0.1.0", -1),
    # A pre-release is older than its release, but newer than an older release.
    ("5.0.0-rc.1", "5.0.0", -1),
    ("5.0.0-0", "5.0.0", -1),
    ("5.0.0-0", "4.9.9", 1),
    ("4.9.9", "4.9.10-alpha", -1),
    # Numeric identifiers compare as numbers.
    ("5.0.0-rc.3", "5.0.0-rc.20", -1),
    ("5.0.0-7", "5.0.0-30", -1),
    ("5.0.0-1.0.2", "5.0.0-1.0.10", -1),
    # A numeric identifier is older than an alphanumeric one.
    ("5.0.0-999", "5.0.0-a", -1),
    ("5.0.0-beta.7", "5.0.0-beta.next", -1),
    ("5.0.0-2a", "5.0.0-3", 1),
    ("5.0.0-0.x", "5.0.0-x.0", -1),
    # Alphanumeric identifiers compare as ASCII strings: digits and capitals first, no numeric reading.
    ("5.0.0-alpha", "5.0.0-Alpha", 1),
    ("5.0.0-dev10", "5.0.0-dev9", -1),
    ("5.0.0-beta", "5.0.0-alpha.9", 1),
    ("5.0.0-rc-2", "5.0.0-rc", 1),
    ("5.0.0-rc-2", "5.0.0-rc.2", 1),
    ("5.0.0--", "5.0.0-0", 1),
    # With equal leading identifiers, more identifiers is newer.
    ("5.0.0-alpha", "5.0.0-alpha.0", -1),
    ("5.0.0-alpha.2.0", "5.0.0-alpha.2", 1),
    ("5.0.0-a.b.c", "5.0.0-a.b", 1),
    # Build metadata never counts.
    ("1.1.0+sha.1f2e", "1.1.0+sha.9a8b", 0),
    ("1.1.0-rc.4+linux", "1.1.0-rc.4", 0),
    ("1.1.0+999", "1.1.1", -1),
    ("1.1.0-rc.4+z", "1.1.0+a", -1),
    # node-semver's strict grammar also takes a leading "v".
    ("v2.3.4", "2.3.4", 0),
    ("v2.3.4-beta", "2.3.4-alpha", 1),
    ("2.3.4", "v2.3.5", -1),
]


@pytest.mark.parametrize(("a", "b", "want"), SEMVER_CASES)
def test_known_order(a: str, b: str, want: int) -> None:
    assert SEMVER.compare(a, b) == want
    assert SEMVER.compare(b, a) == -want


# Versions node-semver (strict) parses; the oracle test checks that it does.
SEMVER_VALID = [
    "0.0.0",
    "10.20.30",
    "v7.0.1",
    "1.0.0-0",
    "1.0.0-42",
    "1.0.0-0.1.2",
    "1.0.0-0a",
    "1.0.0-x7",
    "1.0.0-rc.1",
    "1.0.0-pre-release",
    "1.0.0---",
    "1.0.0-a-.-b",
    "1.0.0+20240101",
    "1.0.0+001",
    "1.0.0+exp.sha.5114f85",
    "1.0.0+build-7.x",
    "1.0.0-rc.1+build.2",
    f"{2**53 - 1}.0.0",
    "1.0.0-" + "x" * 240,
]


@pytest.mark.parametrize("version", SEMVER_VALID)
def test_valid(version: str) -> None:
    SEMVER.validate(version)


# Versions node-semver (strict) rejects, checked by the oracle test; we are
# stricter only about surrounding whitespace, which node-semver trims.
SEMVER_INVALID = [
    "",
    "1",
    "1.0",
    "1.0.0.0",
    "one.two.three",
    "1.x.0",
    "01.0.0",
    "1.00.0",
    "1.0.07",
    "1.0.0-007",
    "1.0.0-rc.01",
    "1.0.0-",
    "1.0.0-rc.",
    "1.0.0-.rc",
    "1.0.0-rc..1",
    "1.0.0-rc_1",
    "1.0.0+",
    "1.0.0+a..b",
    "1.0.0+a_b",
    "=1.0.0",
    "V1.0.0",
    "vv1.0.0",
    "^1.0.0",
    "-1.0.0",
    "1.0.0 - 2.0.0",
    f"{2**53}.0.0",
    f"0.0.{2**53}",
    "1.0.0-" + "x" * 251,
]
SEMVER_INVALID_WHITESPACE = [" 1.0.0", "1.0.0\n", "\t1.0.0 "]


@pytest.mark.parametrize("version", SEMVER_INVALID + SEMVER_INVALID_WHITESPACE)
def test_invalid(version: str) -> None:
    with pytest.raises(InvalidVersion):
        SEMVER.validate(version)


_ident = st.sampled_from(["0", "1", "2", "10", "alpha", "beta", "rc", "a1", "1a", "-", "x-y"])
SEMVER_VERSIONS = st.builds(
    lambda m, n, p, pre, build: f"{m}.{n}.{p}" + (("-" + ".".join(pre)) if pre else "") + build,
    st.integers(0, 3), st.integers(0, 3), st.integers(0, 3),
    st.lists(_ident, max_size=3),
    st.sampled_from(["", "+b1", "+exp.sha.5114f85"]),
)  # fmt: skip


@given(st.lists(SEMVER_VERSIONS, min_size=3, max_size=3))
def test_total_order(vs: list[str]) -> None:
    a, b, c = vs
    assert SEMVER.compare(a, b) == -SEMVER.compare(b, a)
    if SEMVER.compare(a, b) <= 0 and SEMVER.compare(b, c) <= 0:
        assert SEMVER.compare(a, c) <= 0

"""Maven versions: the ordering cases of Maven's own ComparableVersionTest, and validation.

The tables below are written from apache/maven's
``maven-artifact/src/test/java/org/apache/maven/artifact/versioning/ComparableVersionTest.java``
as of Maven 3.9 (Apache-2.0), whose ``VERSIONS_NUMBER`` reflects MNG-7644 (a
qualifier after a dot reads as one after a hyphen: ``2.0.a`` sorts before ``2-1``).
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patchline.versions import InvalidVersion, MavenScheme, scheme_for

MAVEN = MavenScheme()

VERSIONS_QUALIFIER = [
    "1-alpha2snapshot", "1-alpha2", "1-alpha-123", "1-beta-2", "1-beta123", "1-m2", "1-m11", "1-rc", "1-cr2",
    "1-rc123", "1-SNAPSHOT", "1", "1-sp", "1-sp2", "1-sp123", "1-abc", "1-def", "1-pom-1", "1-1-snapshot",
    "1-1", "1-2", "1-123",
]  # fmt: skip

VERSIONS_NUMBER = [
    "2.0", "2.0.a", "2-1", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1", "2.1.0.1", "2.2",
    "2.123", "11.a2", "11.a11", "11.b2", "11.b11", "11.m2", "11.m11", "11", "11.a", "11b", "11c", "11m",
]  # fmt: skip

# testVersionsEqual
EQUAL = [
    ("1", "1"), ("1", "1.0"), ("1", "1.0.0"), ("1.0", "1.0.0"), ("1", "1-0"), ("1", "1.0-0"), ("1.0", "1.0-0"),
    # no separator between number and character
    ("1a", "1-a"), ("1a", "1.0-a"), ("1a", "1.0.0-a"), ("1.0a", "1-a"), ("1.0.0a", "1-a"),
    ("1x", "1-x"), ("1x", "1.0-x"), ("1x", "1.0.0-x"), ("1.0x", "1-x"), ("1.0.0x", "1-x"),
    # aliases
    ("1ga", "1"), ("1release", "1"), ("1final", "1"), ("1cr", "1rc"),
    # special "aliases" a, b and m for alpha, beta and milestone
    ("1a1", "1-alpha-1"), ("1b2", "1-beta-2"), ("1m3", "1-milestone-3"),
    # case insensitive
    ("1X", "1x"), ("1A", "1a"), ("1B", "1b"), ("1M", "1m"), ("1Ga", "1"), ("1GA", "1"), ("1RELEASE", "1"),
    ("1release", "1"), ("1RELeaSE", "1"), ("1Final", "1"), ("1FinaL", "1"), ("1FINAL", "1"), ("1Cr", "1Rc"),
    ("1cR", "1rC"), ("1m3", "1Milestone3"), ("1m3", "1MileStone3"), ("1m3", "1MILESTONE3"),
    # testLocaleIndependent
    ("1-abcdefghijklmnopqrstuvwxyz", "1-ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
]  # fmt: skip

# testVersionComparing, testMng5568, testMng6572, testMng6964: (lower, higher)
ORDERED = [
    ("1", "2"), ("1.5", "2"), ("1", "2.5"), ("1.0", "1.1"), ("1.1", "1.2"), ("1.0.0", "1.1"), ("1.0.1", "1.1"),
    ("1.1", "1.2.0"),
    ("1.0-alpha-1", "1.0"), ("1.0-alpha-1", "1.0-alpha-2"), ("1.0-alpha-1", "1.0-beta-1"),
    ("1.0-beta-1", "1.0-SNAPSHOT"), ("1.0-SNAPSHOT", "1.0"), ("1.0-alpha-1-SNAPSHOT", "1.0-alpha-1"),
    ("1.0", "1.0-1"), ("1.0-1", "1.0-2"), ("1.0.0", "1.0-1"),
    ("2.0-1", "2.0.1"), ("2.0.1-klm", "2.0.1-lmn"), ("2.0.1", "2.0.1-xyz"),
    ("2.0.1", "2.0.1-123"), ("2.0.1-xyz", "2.0.1-123"),
    # MNG-5568: transitive
    ("6.1.0rc3", "6.1.0"), ("6.1.0rc3", "6.1H.5-beta"), ("6.1.0", "6.1H.5-beta"),
    # MNG-6572: numbers of any length
    ("20190126.230843", "1234567890.12345"), ("1234567890.12345", "123456789012345.1H.5-beta"),
    ("20190126.230843", "123456789012345.1H.5-beta"),
    ("123456789012345.1H.5-beta", "12345678901234567890.1H.5-beta"),
    ("1234567890.12345", "12345678901234567890.1H.5-beta"),
    ("20190126.230843", "12345678901234567890.1H.5-beta"),
    # MNG-6964: "-0." qualifiers
    ("1-0.alpha", "1"), ("1-0.beta", "1"), ("1-0.alpha", "1-0.beta"),
]  # fmt: skip

# testVersionEqualWithLeadingZeroes, testVersionZeroEqualWithLeadingZeroes (lengths 1 to 19)
LEADING_ZEROES = [["0" * n + "1" for n in range(19)], ["0" * n for n in range(1, 20)]]

# testMng7644: "1.0.0.X1 < 1.0.0-X2" and "2.0.X == 2-X == 2.0.0.X" for any string X
MNG_7644 = ["abc", "alpha", "a", "beta", "b", "def", "milestone", "m", "RC"]


def _all_pairs(ascending: list[str]) -> list[tuple[str, str]]:
    return list(itertools.combinations(ascending, 2))


@pytest.mark.parametrize(("low", "high"), _all_pairs(VERSIONS_QUALIFIER) + _all_pairs(VERSIONS_NUMBER) + ORDERED)
def test_ordering(low: str, high: str) -> None:
    assert MAVEN.compare(low, high) == -1
    assert MAVEN.compare(high, low) == 1
    assert MAVEN.key(low) < MAVEN.key(high)


@pytest.mark.parametrize(("a", "b"), EQUAL + [p for group in LEADING_ZEROES for p in _all_pairs(group)])
def test_equal(a: str, b: str) -> None:
    assert MAVEN.compare(a, b) == 0
    assert MAVEN.compare(b, a) == 0
    assert MAVEN.key(a) == MAVEN.key(b)
    assert hash(MAVEN.key(a)) == hash(MAVEN.key(b))


@pytest.mark.parametrize("x", MNG_7644)
def test_dot_qualifier_reads_as_hyphen_qualifier(x: str) -> None:
    assert MAVEN.compare(f"1.0.0.{x}1", f"1.0.0-{x}2") == -1
    assert MAVEN.compare(f"2-{x}", f"2.0.{x}") == 0
    assert MAVEN.compare(f"2-{x}", f"2.0.0.{x}") == 0
    assert MAVEN.compare(f"2.0.{x}", f"2.0.0.{x}") == 0


def test_log4j_versions_around_the_advisories() -> None:
    # The GHSA ranges under tests/data/advisories/osv-maven: introduced 1.2 / 1.2.0, last_affected 1.2.17.
    assert MAVEN.compare("1.2", "1.2.0") == 0
    assert MAVEN.compare("1.2.17", "1.2.17") == 0
    assert MAVEN.compare("1.2.16", "1.2.17") == -1
    assert MAVEN.compare("1.2.17", "2.0-beta1") == -1
    assert MAVEN.compare("2.17.1", "2.17.0") == 1


def test_sorting_uses_the_key() -> None:
    shuffled = sorted(VERSIONS_NUMBER, key=lambda v: (len(v), v))
    assert sorted(shuffled, key=MAVEN.key) == VERSIONS_NUMBER


@pytest.mark.parametrize("bad", ["", " 1.0", "1.0 ", "1\t0", "1.0\x00", "1" * 513])
def test_invalid(bad: str) -> None:
    with pytest.raises(InvalidVersion, match="invalid Maven version"):
        MAVEN.validate(bad)


@pytest.mark.parametrize("ecosystem", ["Maven", "maven"])
def test_scheme_for_maven(ecosystem: str) -> None:
    assert isinstance(scheme_for(ecosystem), MavenScheme)


_TEXT = st.text(alphabet="0123.-abmrcspx", min_size=1, max_size=12)
# Released versions as Maven repositories hold them: numbers, then an optional known qualifier and number.
# Maven's ComparableVersion itself is not transitive over arbitrary strings ("0" < "b" <= "0a0" < "0"), so the
# order is only a total order over versions like these.
_VERSION = st.builds(
    lambda numbers, sep, qualifier, n: ".".join(map(str, numbers)) + (f"{sep}{qualifier}{n}" if qualifier else ""),
    st.lists(st.integers(0, 12), min_size=1, max_size=4), st.sampled_from(["-", "."]),
    st.sampled_from(["", "alpha", "beta", "milestone", "rc", "cr", "snapshot", "ga", "final", "release", "sp"]),
    st.sampled_from(["", "1", "2", "10"]))


@given(_TEXT, _TEXT)
def test_antisymmetric_over_any_text(a: str, b: str) -> None:
    assert MAVEN.compare(b, a) == -MAVEN.compare(a, b)


@given(_VERSION, _VERSION, _VERSION)
def test_total_order(a: str, b: str, c: str) -> None:
    ab, bc, ac = MAVEN.compare(a, b), MAVEN.compare(b, c), MAVEN.compare(a, c)
    assert MAVEN.compare(b, a) == -ab
    if ab <= 0 and bc <= 0:
        assert ac <= 0

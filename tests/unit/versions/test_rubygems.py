"""RubyGems version order, against the cases of RubyGems' own test suite.

The tables are ``test/rubygems/test_gem_version.rb`` (rubygems/rubygems,
``test_spaceship``, ``test_semver``, ``test_equals2``, ``test_hash``,
``test_canonical_segments``, ``test_frozen_version``, ``test_initialize``,
``test_initialize_invalid``, ``test_empty_version``), then the versions of the
rack advisory under ``tests/data/advisories/osv-rubygems``.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patchline.versions import InvalidVersion, RubyGemsScheme, scheme_for

GEM = RubyGemsScheme()

SPACESHIP = [
    ("1.0", "1.0.0", 0),
    ("1.0", "1.0.a", 1),
    ("1.8.2", "0.0.0", 1),
    ("1.8.2", "1.8.2.a", 1),
    ("1.8.2.b", "1.8.2.a", 1),
    ("1.8.2.a", "1.8.2", -1),
    ("1.8.2.a10", "1.8.2.a9", 1),
    ("", "0", 0),
    ("0.beta.1", "0.0.beta.1", 0),
    ("0.0.beta", "0.0.beta.1", -1),
    ("0.0.beta", "0.beta.1", -1),
    ("5.a", "5.0.0.rc2", -1),
    ("5.x", "5.0.0.rc2", 1),
]
LESS_THAN = [  # test_semver, test_frozen_version
    ("1.0.0-alpha", "1.0.0-alpha.1"),
    ("1.0.0-alpha.1", "1.0.0-beta.2"),
    ("1.0.0-beta.2", "1.0.0-beta.11"),
    ("1.0.0-beta.11", "1.0.0-rc.1"),
    ("1.0.0-rc1", "1.0.0"),
    ("1.0.0-1", "1"),
    ("1.freeze.test", "1"),
]
EQUAL = [  # test_equals2, test_hash, test_canonical_segments, test_initialize
    ("1.2", "1.2"),
    ("1.2.b1", "1.2.b.1"),
    ("1.2", "1.2.0"),
    ("1.2.pre.1", "1.2.0.pre.1.0"),
    ("1.0.0", "1"),
    ("1.0.0.a.1.0", "1.a.1"),
    ("1.2.3-1", "1.2.3.pre.1"),
    ("1.0", "1.0 "),
    ("1.0", " 1.0 "),
    ("1.0", "1.0\n"),
    ("1.0", "\n1.0\n"),
    ("0", "   "),
]
INVALID = ["junk", "1.0\n2.0", "1..2", "1.2 3.4", "2.3422222.222.222222222.22222.ads0as.dasd0.ddd2222.2.qd3e.",
           "an incorrect version", "1" * 257]


@pytest.mark.parametrize(("a", "b", "expected"), SPACESHIP)
def test_spaceship(a: str, b: str, expected: int) -> None:
    assert GEM.compare(a, b) == expected
    assert GEM.compare(b, a) == -expected


@pytest.mark.parametrize(("a", "b"), LESS_THAN)
def test_less_than(a: str, b: str) -> None:
    assert GEM.compare(a, b) == -1
    assert GEM.key(a) < GEM.key(b)  # type: ignore[operator]


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_equal_with_the_same_hash(a: str, b: str) -> None:
    assert GEM.compare(a, b) == 0
    assert hash(GEM.key(a)) == hash(GEM.key(b))


def test_refute_equal() -> None:
    assert GEM.compare("1.2", "1.3") == -1
    assert GEM.compare("9.8.8", "9.8.7") == 1


@pytest.mark.parametrize("bad", INVALID)
def test_invalid(bad: str) -> None:
    with pytest.raises(InvalidVersion, match="invalid RubyGems version"):
        GEM.validate(bad)


@pytest.mark.parametrize(("a", "b", "expected"), [
    # The rack advisory's ranges: four segments, and "2.1" opening the 2.1.x line.
    ("2.2.3", "2.2.3.1", -1),
    ("2.2.3.1", "2.2.3.1", 0),
    ("2.2.22", "2.2.3.1", 1),
    ("2.1", "2.1.0", 0),
    ("2.2.0.beta1", "2.2", -1),  # a pre-release of 2.2 is outside "introduced: 2.2"
    ("2.0.9", "2.0.9.1", -1),
    ("1.15.4", "1.15.4.rc1", 1),
])
def test_versions_around_the_rack_advisory(a: str, b: str, expected: int) -> None:
    assert GEM.compare(a, b) == expected


@pytest.mark.parametrize("ecosystem", ["RubyGems", "gem"])
def test_scheme_for_rubygems(ecosystem: str) -> None:
    assert isinstance(scheme_for(ecosystem), RubyGemsScheme)


def test_sorting_uses_the_key() -> None:
    ordered = ["0.9", "1.0.a.2", "1.0.b1", "1.0.rc1", "1.0", "1.0.1", "1.1.a", "1.1", "1.10", "2"]
    assert sorted(reversed(ordered), key=GEM.key) == ordered


_VERSION = st.lists(st.one_of(st.integers(0, 12).map(str), st.sampled_from(["a", "b", "rc", "pre", "A"])),
                    min_size=0, max_size=5).flatmap(
    lambda rest: st.integers(0, 5).map(lambda first: ".".join([str(first), *rest])))


@given(_VERSION, _VERSION, _VERSION)
def test_a_total_order(a: str, b: str, c: str) -> None:
    assert GEM.compare(b, a) == -GEM.compare(a, b)
    if GEM.compare(a, b) <= 0 and GEM.compare(b, c) <= 0:
        assert GEM.compare(a, c) <= 0
    assert (GEM.compare(a, b) == 0) == (GEM.key(a) == GEM.key(b))

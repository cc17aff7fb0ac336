"""PEP 440: the PEP's own ordering examples, and order properties (packaging is the implementation)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patchline.versions import InvalidVersion, Pep440Scheme

PEP440 = Pep440Scheme()

# PEP 440, "Summary of permitted suffixes and relative ordering" and "Examples of
# compliant version schemes", in ascending order.
ASCENDING = [
    "1.dev0",
    "1.0.dev456",
    "1.0a1",
    "1.0a2.dev456",
    "1.0a12.dev456",
    "1.0a12",
    "1.0b1.dev456",
    "1.0b2",
    "1.0b2.post345.dev456",
    "1.0b2.post345",
    "1.0rc1.dev456",
    "1.0rc1",
    "1.0",
    "1.0+abc.5",
    "1.0+abc.7",
    "1.0+5",
    "1.0.post456.dev34",
    "1.0.post456",
    "1.0.15",
    "1.1.dev1",
    "1.1a1",
    "1.1",
    "2012.4",
    "2012.15",
    "1!0.5",
]


@pytest.mark.parametrize(("a", "b"), list(itertools.pairwise(ASCENDING)))
def test_pep_ordering(a: str, b: str) -> None:
    assert PEP440.compare(a, b) == -1
    assert PEP440.compare(b, a) == 1


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("1.0", "1.0.0"),
        ("1.0", "1.0.0.0"),
        ("1.0a1", "1.0alpha1"),
        ("1.0c1", "1.0rc1"),
        ("1.0-1", "1.0.post1"),
        ("v1.0", "1.0"),
    ],
)
def test_pep_equivalence(a: str, b: str) -> None:
    assert PEP440.compare(a, b) == 0


@pytest.mark.parametrize("version", ["", "foo", "1.0-beta-x", "1.0+", "1.0++1", "1..0"])
def test_invalid(version: str) -> None:
    with pytest.raises(InvalidVersion, match="PEP 440"):
        PEP440.validate(version)


_release = st.lists(st.integers(0, 12), min_size=1, max_size=4).map(lambda xs: ".".join(map(str, xs)))
PEP440_VERSIONS = st.builds(
    lambda epoch, rel, pre, post, dev, local: f"{epoch}{rel}{pre}{post}{dev}{local}",
    st.sampled_from(["", "1!"]),
    _release,
    st.sampled_from(["", "a1", "b2", "rc1", "a10"]),
    st.sampled_from(["", ".post1", ".post2"]),
    st.sampled_from(["", ".dev0", ".dev3"]),
    st.sampled_from(["", "+local", "+1.a"]),
)


@given(st.lists(PEP440_VERSIONS, min_size=3, max_size=3))
def test_total_order(vs: list[str]) -> None:
    a, b, c = vs
    assert PEP440.compare(a, a) == 0
    assert PEP440.compare(a, b) == -PEP440.compare(b, a)
    if PEP440.compare(a, b) <= 0 and PEP440.compare(b, c) <= 0:
        assert PEP440.compare(a, c) <= 0
    assert sorted(vs, key=PEP440.key) == sorted(vs, key=PEP440.key)

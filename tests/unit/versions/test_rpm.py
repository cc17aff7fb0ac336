"""rpm: hand-written orderings, epoch:version-release, validation.

The tables below are our own, written from rpm's documented ``rpmvercmp`` rules.
rpm 4.18 itself is the oracle in tests/integration/test_version_oracles.py, which
also checks every row of ``RPM_CASES`` against ``rpm.vercmp``.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patchline.versions import InvalidVersion, RpmScheme

RPM = RpmScheme()

# (a, b, sign of compare(a, b)), every row also asserted against real rpm.
RPM_CASES = [
    # Numeric segments compare as numbers, whatever their width.
    ("4.9", "4.10", -1),
    ("12", "3", 1),
    ("0.9.9", "0.10", -1),
    ("2.4.0", "2.4", 1),
    # Leading zeros are ignored, so these are ties.
    ("5.008", "5.8", 0),
    ("0042", "42", 0),
    ("3.00", "3.0", 0),
    # Any run of separators is one boundary, and trailing ones count for nothing.
    ("6.1", "6_1", 0),
    ("6.1", "6..1", 0),
    ("6.1", "6+1", 0),
    ("7.2.", "7.2", 0),
    # A digit/letter change splits a segment; a numeric segment beats an alphabetic one.
    ("3.2", "3.b", 1),
    ("9x", "9.1", -1),
    ("el10", "el9", 1),
    ("2b3", "2.b.3", 0),
    # Alphabetic segments compare bytewise: capitals first, a prefix first.
    ("gamma", "delta", 1),
    ("REL", "rel", -1),
    ("pre", "prerelease", -1),
    # With all shared segments equal, the longer string wins.
    ("8.0", "8.0b", -1),
    ("8.0", "8.0.0.1", -1),
    # '~' sorts below everything, even the end of the string.
    ("2.1~beta", "2.1", -1),
    ("2.1~beta", "2.1~beta2", -1),
    ("2.1~beta2", "2.1~rc", -1),
    ("2.1~~", "2.1~", -1),
    ("2.1~9", "2.1~z", 1),
    ("2.1~rc", "2.1rc", -1),
    ("2.1~", "2.0", 1),
    # '^' sorts above the end of the string but below any further segment.
    ("2.1^", "2.1", 1),
    ("2.1^20240101git", "2.1", 1),
    ("2.1^20240101git", "2.1.0", -1),
    ("2.1^20240101git", "2.1a", -1),
    ("2.1^", "2.1^1", -1),
    ("2.1^1", "2.1^2", -1),
    ("2.1~", "2.1^", -1),
    ("2.1~rc^post", "2.1~rc", 1),
    ("2.1~rc^post", "2.1", -1),
    # Epoch first (a number, missing is 0), then version, then release.
    ("0:1.5", "1.5", 0),
    ("1:0.1", "0.9", 1),
    ("3:1.0", "12:1.0", -1),
    ("1:2.0-1", "1:2.0-1", 0),
    ("2.0-3", "2.0-12", -1),
    ("2.0-1.fc39", "2.0-1.fc40", -1),
    ("2.0-1.el9", "2.0-1.el9_4", -1),
    ("2.1-1", "2.0-50", 1),
    ("2.0-1~pre", "2.0-1", -1),
    ("2.0-1^fix", "2.0-1", 1),
    # A missing release sorts before any release, even one starting with "~" (rpm.vercmp).
    ("2.0", "2.0-1", -1),
    ("2.0", "2.0-~1", -1),
    # Shapes seen in real RHEL/Fedora errata.
    ("1.0-1.el9", "1.0-1.el9_2", -1),
    ("3.0.7-24.el9", "3.0.7-25.el9_3", -1),
    ("1:3.0.7-24.el9", "3.0.7-25.el9_3", 1),
    ("2.0~rc1-1", "2.0-0", -1),
    ("2.0^git1-1", "2.0-9", 1),
]


@pytest.mark.parametrize(("a", "b", "want"), RPM_CASES)
def test_known_order(a: str, b: str, want: int) -> None:
    assert RPM.compare(a, b) == want
    assert RPM.compare(b, a) == -want
    assert (RPM.key(a) == RPM.key(b)) == (want == 0)


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        ("", "empty"),
        ("a:1.0", "epoch"),
        (":1.0", "epoch"),
        ("1:", "version is empty"),
        ("-1", "version is empty"),
        ("1.0-", "release after '-' is empty"),
        ("1.0-1-1", "release"),
        ("1.0 1", "character"),
        ("1.0é", "character"),
    ],
)
def test_invalid(version: str, reason: str) -> None:
    with pytest.raises(InvalidVersion, match=reason):
        RPM.validate(version)


_segment = st.sampled_from(["0", "1", "2", "10", "007", "a", "b", "rc", "git", "el9", "~", "^", ".", "_", "+"])
RPM_PART = st.builds(
    lambda first, rest: first + "".join(rest),
    st.sampled_from(["0", "1", "2", "10", "a"]),
    st.lists(_segment, max_size=6),
)


@given(st.lists(RPM_PART, min_size=3, max_size=3))
def test_total_order(vs: list[str]) -> None:
    a, b, c = vs
    assert RPM.compare(a, b) == -RPM.compare(b, a)
    if RPM.compare(a, b) <= 0 and RPM.compare(b, c) <= 0:
        assert RPM.compare(a, c) <= 0

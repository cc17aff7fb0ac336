"""dpkg: hand-written orderings, dpkg's parseversion rejections, and python-debian as a second oracle.

dpkg itself is the oracle in tests/integration/test_version_oracles.py.
"""

from __future__ import annotations

import pytest
from debian.debian_support import Version
from hypothesis import given
from hypothesis import strategies as st

from patchline.versions import DpkgScheme, InvalidVersion

DPKG = DpkgScheme()

# (a, b, sign of compare(a, b)): our own rows, written from the rules in Debian
# Policy 5.6.12; the oracle test also asserts every row against dpkg itself.
ORDERED = [
    # Epoch: missing is 0 and it outranks everything after it.
    ("0:3.2", "3.2", 0),
    ("2:0.5", "1:9.9", 1),
    ("1:1.0", "10:0.1", -1),
    # Digit runs compare as numbers, so leading zeros do not count.
    ("4.9", "4.10", -1),
    ("4.010", "4.10", 0),
    ("0", "0.0", -1),
    ("6.2.0", "6.2", 1),
    # Non-digit runs: letters sort before non-letters, '~' before everything (even the end).
    ("5.0", "5.0b", -1),
    ("5.0b", "5.0+", -1),
    ("5.0+", "5.0.3", -1),
    ("5.0B", "5.0b", -1),
    ("5.0~beta", "5.0", -1),
    ("5.0~beta", "5.0~beta1", -1),
    ("5.0~~1", "5.0~beta", -1),
    ("5.0~~", "5.0~~1", -1),
    ("5.0~", "5.0", -1),
    # Revision: missing equals "0"; the last '-' splits it, so the upstream part may hold '-'.
    ("2.2", "2.2-0", 0),
    ("2.2-3", "2.2-12", -1),
    ("2.2-1-5", "2.2-1", 1),
    ("2.2-1", "2.2-1.1", -1),
    ("2.2-1~bpo12+1", "2.2-1", -1),
    # ':' is allowed in the upstream part once there is an epoch.
    ("3:4:5-1", "3:4:5-2", -1),
    # Shapes from Debian and Ubuntu security updates.
    ("2.36-9", "2.36-9+deb12u4", -1),
    ("2.36-9+deb12u4", "2.36-9+deb12u10", -1),
    ("8.0.1-4ubuntu0.2", "8.0.1-4ubuntu0.10", -1),
    ("1.1.1w-0+deb11u1", "1.1.1n-0+deb11u5", 1),
    ("3.0.13-1~deb12u1", "3.0.13-1", -1),
    ("2.4.0+dfsg-2", "2.4.0-2", 1),
    ("1:2.39.2-1.1", "2.45.0-1", 1),
]


@pytest.mark.parametrize(("a", "b", "want"), ORDERED)
def test_known_order(a: str, b: str, want: int) -> None:
    assert DPKG.compare(a, b) == want
    assert DPKG.compare(b, a) == -want
    assert (DPKG.key(a) > DPKG.key(b)) - (DPKG.key(a) < DPKG.key(b)) == want


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("1.0 1", "embedded spaces"),
        (":1.0", "epoch in version is empty"),
        ("a:1.0", "epoch in version is empty"),
        ("1a:1.0", "epoch in version is not number"),
        ("99999999999:1.0", "too big"),
        ("1:", "nothing after colon"),
        ("1.0-", "revision number is empty"),
        ("-1", "version number is empty"),
        ("a1.0", "does not start with digit"),
        ("1:a1.0", "does not start with digit"),
        ("1.0_1", "invalid character in version number"),
        ("1.0é", "invalid character in version number"),
        ("1.0-1_1", "invalid character in revision number"),
        ("1:1.0-1:1", "invalid character in revision number"),
        ("1.0-1:1", "epoch in version is not number"),
    ],
)
def test_invalid(version: str, reason: str) -> None:
    with pytest.raises(InvalidVersion, match=reason):
        DPKG.validate(version)
    with pytest.raises(InvalidVersion):
        DPKG.compare(version, "1.0")


@pytest.mark.parametrize("version", ["1.0", " 1.0\t", "1:2:3", "1.0-1-1", "0", "1.0+b1", "2:1.0~rc1-0ubuntu1~22.04.1"])
def test_valid(version: str) -> None:
    DPKG.validate(version)


# Versions from realistic pieces; the same grammar drives the dpkg oracle test.
_piece = st.sampled_from(["0", "1", "2", "9", "10", "01", "a", "b", "z", "A", "~", "+", ".", "~~", "rc", "dfsg"])
_upstream = st.builds(
    lambda d, rest: d + "".join(rest), st.sampled_from(["0", "1", "2", "10", "007"]), st.lists(_piece, max_size=6)
)
_revision = st.lists(
    st.sampled_from(["0", "1", "2", "10", "a", "~", "+", ".", "deb12u", "b"]), min_size=1, max_size=5
).map("".join)
DPKG_VERSIONS = st.builds(
    lambda epoch, upstream, revision: (
        (f"{epoch}:" if epoch is not None else "") + upstream + (f"-{revision}" if revision else "")
    ),
    st.one_of(st.none(), st.integers(0, 3)),
    _upstream,
    st.one_of(st.just(""), _revision),
)


@given(DPKG_VERSIONS, DPKG_VERSIONS)
def test_matches_python_debian(a: str, b: str) -> None:
    va, vb = Version(a), Version(b)
    want = (va > vb) - (va < vb)
    assert DPKG.compare(a, b) == want


@given(st.lists(DPKG_VERSIONS, min_size=3, max_size=3))
def test_total_order(vs: list[str]) -> None:
    a, b, c = vs
    assert DPKG.compare(a, a) == 0
    assert DPKG.compare(a, b) == -DPKG.compare(b, a)
    if DPKG.compare(a, b) <= 0 and DPKG.compare(b, c) <= 0:
        assert DPKG.compare(a, c) <= 0

"""apk: hand-written orderings and validation.

There is no real oracle here: Debian 12 has no apk-tools package (``apt-get install
apk-tools`` finds nothing), so these tables, which we wrote from apk-tools'
documented version rules, are the test.
"""

from __future__ import annotations

import functools
import itertools

import pytest

from patchline.versions import ApkScheme, InvalidVersion

APK = ApkScheme()

# One long ascending chain; every pair of it (not only neighbours) is checked, so
# it also pins down how the token kinds rank against each other.
APK_ASCENDING = [
    # Pre-release suffixes, in order, each older than no suffix; a suffix number
    # makes it newer than the bare suffix.
    "1.4_alpha",
    "1.4_alpha1",
    "1.4_alpha2",
    "1.4_beta",
    "1.4_beta3",
    "1.4_pre",
    "1.4_rc1",
    "1.4_rc2",
    "1.4_rc10",
    # No suffix; then -rN revisions, numerically, -r0 above no revision at all.
    "1.4",
    "1.4-r0",
    "1.4-r1",
    "1.4-r10",
    # Post-release suffixes, in order, above any revision of the plain version.
    "1.4_cvs",
    "1.4_svn",
    "1.4_git",
    "1.4_git20230101",
    "1.4_hg",
    "1.4_p",
    "1.4_p1",
    "1.4_p1-r1",
    "1.4_p2",
    # ~hash: above the version without it, compared as a string, before -rN.
    "1.4_p2~0bad",
    "1.4_p2~0bad-r1",
    "1.4_p2~c0de",
    # A letter beats any suffix; a further number beats a letter.
    "1.4a",
    "1.4b",
    "1.4.1_alpha",
    "1.4.1",
    "1.4.1.1",
    "1.5",
    "1.10",
    "2",
]


@pytest.mark.parametrize(("a", "b"), list(itertools.pairwise(APK_ASCENDING)))
def test_ascending_neighbours(a: str, b: str) -> None:
    assert APK.compare(a, b) == -1
    assert APK.compare(b, a) == 1


def test_ascending_every_pair() -> None:
    assert len(set(APK_ASCENDING)) == len(APK_ASCENDING)
    for (i, a), (j, b) in itertools.combinations(enumerate(APK_ASCENDING), 2):
        assert (APK.compare(a, b), APK.compare(b, a)) == (-1, 1), (i, a, j, b)
    assert sorted(reversed(APK_ASCENDING), key=functools.cmp_to_key(APK.compare)) == APK_ASCENDING


# (a, b, sign of compare(a, b)) for what the chain does not show.
APK_CASES = [
    ("3.19.1", "3.19.1", 0),
    ("0.9.12-r3", "0.9.12-r3", 0),
    # Numbers compare numerically...
    ("9", "10", -1),
    ("2.9.9", "2.10", -1),
    ("1.2", "1.2.0", -1),
    # ...except a dotted part with a leading zero, which compares as a string.
    ("1.05", "1.5", -1),
    ("1.05", "1.10", -1),
    ("1.09", "1.1", -1),
    ("1.010", "1.9", -1),
    ("0.01", "0.1", -1),
    ("1.001", "1.01", -1),
    ("1.05", "1.06", -1),
    # Letters after the digits.
    ("2.7a", "2.7.1", -1),
    ("2.7z", "2.8", -1),
    ("2.7b", "2.7a-r5", 1),
    # Revisions.
    ("6.9-r9", "6.10-r0", -1),
    ("6.9-r100", "6.9-r99", 1),
    # A pre-release suffix loses to anything else; other kinds rank by position.
    ("6.9_rc1", "6.9-r3", -1),
    ("6.9_p1", "6.9-r3", 1),
    ("6.9_beta2", "6.9_beta", 1),
    # Several suffixes, one after another.
    ("5.0_alpha_pre2", "5.0_alpha", -1),
    ("5.0_alpha_p1", "5.0_alpha", 1),
    ("5.0_rc1_p1", "5.0_rc1", 1),
    ("5.0_rc1_p1", "5.0_rc2", -1),
    ("5.0_p3_rc1", "5.0_p3", -1),
    # Hash after a suffix, and before the revision.
    ("5.0_rc1~abc", "5.0_rc1", 1),
    ("5.0~abc-r1", "5.0-r1", 1),
    ("5.0~abc", "5.0~abd", -1),
    # Shapes from Alpine's aports.
    ("3.3.0_p20240614-r1", "3.3.0_p20240614-r2", -1),
    ("1.36.1-r29", "1.37.0-r0", -1),
    ("2.40_rc1-r0", "2.40-r0", -1),
    ("9.6_p1-r1", "9.7_p1-r0", -1),
]


@pytest.mark.parametrize(("a", "b", "want"), APK_CASES)
def test_known_order(a: str, b: str, want: int) -> None:
    assert APK.compare(a, b) == want
    assert APK.compare(b, a) == -want


@pytest.mark.parametrize(
    "version",
    [
        "",
        "a1",
        "1.0bc",
        "1.0a1",
        "1.0_foo",
        "1.0_",
        "1.0-1",
        "1.0-r",
        "1.0-r1-r2",
        "1.0~",
        "1.0~xyz",
        "1..0",
        "1.0.",
        "1.0_p1.2",
        "1.0 ",
    ],
)
def test_invalid(version: str) -> None:
    with pytest.raises(InvalidVersion):
        APK.validate(version)


@pytest.mark.parametrize("version", ["1", "1.2.3a_rc1_p2~0a1b-r9", "20240101", "1.0_alpha_pre2", "3.3.0_p20240614-r1"])
def test_valid(version: str) -> None:
    APK.validate(version)

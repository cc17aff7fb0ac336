"""scheme_for: patchline and OSV ecosystem names; every scheme honours the protocol; speed."""

from __future__ import annotations

import random
import time

import pytest

from patchline.versions import (
    ApkScheme,
    DpkgScheme,
    InvalidVersion,
    Pep440Scheme,
    RpmScheme,
    SemverScheme,
    UnknownEcosystem,
    VersionScheme,
    scheme_for,
)
from patchline.versions.interface import VersionScheme as InterfaceScheme


@pytest.mark.parametrize(
    ("ecosystem", "scheme"),
    [
        ("deb", DpkgScheme),
        ("rpm", RpmScheme),
        ("apk", ApkScheme),
        ("pypi", Pep440Scheme),
        ("npm", SemverScheme),
        ("Debian", DpkgScheme),
        ("Debian:12", DpkgScheme),
        ("Ubuntu:22.04:LTS", DpkgScheme),
        ("Ubuntu:Pro:18.04:LTS", DpkgScheme),
        ("Alpine", ApkScheme),
        ("Alpine:v3.19", ApkScheme),
        ("Wolfi", ApkScheme),
        ("PyPI", Pep440Scheme),
        ("Red Hat", RpmScheme),
        ("Red Hat:rhel_aus:8.4::appstream", RpmScheme),
        ("AlmaLinux:9", RpmScheme),
        ("Rocky Linux:9", RpmScheme),
        ("openSUSE:Leap 15.5", RpmScheme),
        ("SUSE:Linux Enterprise Server 15 SP5", RpmScheme),
    ],
)
def test_scheme_for(ecosystem: str, scheme: type) -> None:
    assert isinstance(scheme_for(ecosystem), scheme)


@pytest.mark.parametrize("ecosystem", ["Maven", "debian", "", "Go", "crates.io"])
def test_unknown_ecosystem(ecosystem: str) -> None:
    with pytest.raises(UnknownEcosystem, match="no version scheme"):
        scheme_for(ecosystem)


SAMPLES = {"dpkg": "1:2.0-1", "rpm": "1:2.0-1.el9", "apk": "2.0-r1", "pep440": "2.0.post1", "semver": "2.0.0-rc.1"}


@pytest.mark.parametrize("ecosystem", ["deb", "rpm", "apk", "pypi", "npm"])
def test_protocol(ecosystem: str) -> None:
    scheme: InterfaceScheme = scheme_for(ecosystem)
    assert VersionScheme is InterfaceScheme
    sample = SAMPLES[scheme.name]
    scheme.validate(sample)
    assert scheme.compare(sample, sample) == 0
    assert scheme.key(sample) == scheme.key(sample)
    with pytest.raises(InvalidVersion, match=repr("!bad")):
        scheme.compare(sample, "!bad")
    with pytest.raises(InvalidVersion):
        scheme.key("!bad")


def _time_pairs(scheme: InterfaceScheme, versions: list[str], n: int = 100_000) -> float:
    rand = random.Random(0)
    pairs = [(rand.choice(versions), rand.choice(versions)) for _ in range(n)]
    start = time.perf_counter()
    for a, b in pairs:
        scheme.compare(a, b)
    return time.perf_counter() - start


def test_speed(capsys: pytest.CaptureFixture[str]) -> None:
    """Printed, not asserted: 100k comparisons over 2,000 distinct versions."""
    rand = random.Random(1)
    deb = [
        f"{rand.randint(0, 2)}:{rand.randint(0, 30)}.{rand.randint(0, 99)}-{rand.randint(1, 9)}+deb12u{n}"
        for n in range(2000)
    ]
    pep = [
        f"{rand.randint(0, 30)}.{rand.randint(0, 99)}.{rand.randint(0, 9)}{rand.choice(['', 'rc1', '.post1', '.dev2'])}"
        for _ in range(2000)
    ]
    dpkg_s = _time_pairs(scheme_for("deb"), deb)
    pep_s = _time_pairs(scheme_for("pypi"), pep)
    with capsys.disabled():
        print(f"\n100k comparisons: dpkg {dpkg_s:.3f}s, PEP 440 {pep_s:.3f}s")

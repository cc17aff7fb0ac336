"""scheme_for: patchline and OSV ecosystem names; every scheme honours the protocol (speed: bench/bench_versions.py)."""

from __future__ import annotations

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
        ("golang", SemverScheme),
        ("Go", SemverScheme),
        ("crates.io", SemverScheme),
        ("cargo", SemverScheme),
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


@pytest.mark.parametrize("ecosystem", ["debian", "", "Hex", "NuGet"])
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

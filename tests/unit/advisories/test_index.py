"""Ecosystem normalization and distro applicability."""

from __future__ import annotations

import pytest

from patchline._model import Distro
from patchline.advisories import EcosystemKey, normalize_ecosystem, normalize_name

DEBIAN_12 = Distro(id="debian", version_id="12", version_codename="bookworm")
DEBIAN_11 = Distro(id="debian", version_id="11", version_codename="bullseye")
UBUNTU_2204 = Distro(id="ubuntu", version_id="22.04", version_codename="jammy", id_like=("debian",))
ALPINE_319 = Distro(id="alpine", version_id="3.19.1")
ALPINE_320 = Distro(id="alpine", version_id="3.20.0")
ROCKY_89 = Distro(id="rocky", version_id="8.9")


@pytest.mark.parametrize(
    ("osv", "key"),
    [
        ("PyPI", EcosystemKey("pypi")),
        ("npm", EcosystemKey("npm")),
        ("Debian", EcosystemKey("deb", "debian")),
        ("Debian:12", EcosystemKey("deb", "debian", "12")),
        ("Ubuntu:22.04:LTS", EcosystemKey("deb", "ubuntu", "22.04")),
        ("Ubuntu:Pro:18.04:LTS", EcosystemKey("deb", "ubuntu", "18.04")),
        ("Alpine:v3.19", EcosystemKey("apk", "alpine", "3.19")),
        ("Rocky Linux:8", EcosystemKey("rpm", "rocky", "8")),
        ("AlmaLinux:9", EcosystemKey("rpm", "almalinux", "9")),
        ("Red Hat:enterprise_linux:9::appstream", EcosystemKey("rpm", "rhel", "9")),
        ("SUSE:Linux Enterprise Server 15 SP5", EcosystemKey("rpm", "sles", "15.5")),
        ("Maven", EcosystemKey("maven")),
        ("GIT", None),
    ],
)
def test_normalize_ecosystem(osv: str, key: EcosystemKey | None) -> None:
    assert normalize_ecosystem(osv) == key


@pytest.mark.parametrize(
    ("osv", "distro", "applies"),
    [
        ("Debian:12", DEBIAN_12, True),
        ("Debian:12", DEBIAN_11, False),
        ("Debian", DEBIAN_11, True),  # plain Debian: any release
        ("Debian", UBUNTU_2204, False),  # id_like is not enough
        ("Debian:12", None, False),  # unknown distro: a release-bound entry cannot be applied
        ("Debian", None, True),
        ("Ubuntu:22.04:LTS", UBUNTU_2204, True),
        ("Ubuntu:22.04:LTS", DEBIAN_12, False),
        ("Alpine:v3.19", ALPINE_319, True),
        ("Alpine:v3.19", ALPINE_320, False),
        ("Rocky Linux:8", ROCKY_89, True),
        ("PyPI", None, True),
        ("PyPI", DEBIAN_12, True),
    ],
)
def test_applies_to(osv: str, distro: Distro | None, applies: bool) -> None:
    key = normalize_ecosystem(osv)
    assert key is not None
    assert key.applies_to(distro) is applies


@pytest.mark.parametrize(
    ("ecosystem", "name", "normalized"),
    [
        ("pypi", "Jinja2", "jinja2"),
        ("pypi", "zope.interface", "zope-interface"),
        ("pypi", "Foo__Bar", "foo-bar"),
        ("deb", "glibc", "glibc"),
        ("npm", "@babel/core", "@babel/core"),
    ],
)
def test_normalize_name(ecosystem: str, name: str, normalized: str) -> None:
    assert normalize_name(ecosystem, name) == normalized

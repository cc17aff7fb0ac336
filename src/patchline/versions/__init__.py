"""Version schemes: each ecosystem's exact ordering rules, and OSV range evaluation.

:func:`scheme_for` maps an ecosystem to its :class:`VersionScheme`; it takes
patchline's ecosystems (``deb``, ``rpm``, ``apk``, ``pypi``, ``npm``) and OSV's
ecosystem strings, with or without their release suffix (``Debian:12``,
``Ubuntu:22.04:LTS``, ``Alpine:v3.19``, ``Red Hat:rhel_aus:8.4::appstream``).
"""

from __future__ import annotations

from patchline.errors import Error
from patchline.versions.apk import ApkScheme
from patchline.versions.dpkg import DpkgScheme
from patchline.versions.interface import InvalidVersion, VersionScheme
from patchline.versions.maven import MavenScheme
from patchline.versions.osv import (
    EventKind,
    OsvEvent,
    OsvRange,
    RangeError,
    UnsupportedRange,
    fixed_versions,
    is_affected,
)
from patchline.versions.pep440 import Pep440Scheme
from patchline.versions.rpm import RpmScheme
from patchline.versions.rubygems import RubyGemsScheme
from patchline.versions.semver import SemverScheme

__all__ = [
    "ApkScheme",
    "DpkgScheme",
    "EventKind",
    "InvalidVersion",
    "MavenScheme",
    "OsvEvent",
    "OsvRange",
    "Pep440Scheme",
    "RangeError",
    "RpmScheme",
    "RubyGemsScheme",
    "SemverScheme",
    "UnknownEcosystem",
    "UnsupportedRange",
    "VersionScheme",
    "fixed_versions",
    "is_affected",
    "scheme_for",
]


class UnknownEcosystem(Error):
    """No version scheme is known for an ecosystem name."""


_DPKG = DpkgScheme()
_RPM = RpmScheme()
_APK = ApkScheme()
_PEP440 = Pep440Scheme()
_SEMVER = SemverScheme()
_MAVEN = MavenScheme()
_RUBYGEMS = RubyGemsScheme()

# patchline's own ecosystems (purl types), then OSV ecosystem names without their
# ":<release>" suffix ("npm" is both). Every rpm-based OSV ecosystem orders versions with rpmvercmp.
_SCHEMES: dict[str, VersionScheme] = {
    "deb": _DPKG,
    "rpm": _RPM,
    "apk": _APK,
    "pypi": _PEP440,
    "npm": _SEMVER,
    "golang": _SEMVER,  # Go module versions are SemVer with a "v"; OSV's Go ranges are SEMVER
    "maven": _MAVEN,
    "gem": _RUBYGEMS,
    "cargo": _SEMVER,  # Cargo versions are SemVer; crates.io ranges are SEMVER or ECOSYSTEM over them
    "Debian": _DPKG,
    "Ubuntu": _DPKG,
    "Alpine": _APK,
    "Alpaquita": _APK,
    "BellSoft Hardened Containers": _APK,
    "Chainguard": _APK,
    "MinimOS": _APK,
    "Wolfi": _APK,
    "AlmaLinux": _RPM,
    "Azure Linux": _RPM,
    "Mageia": _RPM,
    "openEuler": _RPM,
    "openSUSE": _RPM,
    "Photon OS": _RPM,
    "Red Hat": _RPM,
    "Rocky Linux": _RPM,
    "SUSE": _RPM,
    "PyPI": _PEP440,
    "Go": _SEMVER,
    "Maven": _MAVEN,
    "RubyGems": _RUBYGEMS,
    "crates.io": _SEMVER,
}


def scheme_for(ecosystem: str) -> VersionScheme:
    """The version scheme of a patchline or OSV ecosystem; raises :class:`UnknownEcosystem`."""
    scheme = _SCHEMES.get(ecosystem) or _SCHEMES.get(ecosystem.partition(":")[0])
    if scheme is None:
        raise UnknownEcosystem(
            f"no version scheme for ecosystem {ecosystem!r}",
            detail="known: " + ", ".join(sorted(_SCHEMES, key=str.lower)),
        )
    return scheme

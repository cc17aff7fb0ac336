"""The default update sources of an image: its Debian release's ``-security`` and ``-updates`` suites.

The image's own apt sources say which release it runs (and which components);
the host's apt sources say where the mirror is. An image's mirror URL is not
used: images are often built against a mirror the assessing host cannot reach,
and the updates that matter are those the distribution publishes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from patchline._hostapt import HostDebianMirror, _parse_deb822, _parse_one_line, _SourceEntry, release_of
from patchline.errors import NoUpdateRoute
from patchline.updates.apt import AptSuite

__all__ = [
    "IMAGE_SOURCE_GLOBS",
    "mirror_from_image_files",
    "sources_from_image_files",
    "ubuntu_sources_from_image_files",
]

IMAGE_SOURCE_GLOBS = ("/etc/apt/sources.list", "/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources")
"""The files whose text :func:`sources_from_image_files` wants."""

_NO_UPDATE_SUITES = {"sid", "unstable", "experimental", "rc-buggy"}
_DEBIAN_PATHS = {"debian", "debian-security"}


def sources_from_image_files(
    files: Mapping[str, str], *, host_mirror: HostDebianMirror, arch: str = "amd64"
) -> list[AptSuite]:
    """The ``-security`` and ``-updates`` suites of every Debian release the image's sources name.

    ``files`` maps absolute paths (``/etc/apt/sources.list``,
    ``/etc/apt/sources.list.d/*.list`` and ``*.sources``) to their text.
    ``host_mirror`` is :func:`patchline._hostapt.host_debian_mirror`'s answer: the
    security suite is fetched from its ``security`` URL, ``-updates`` from its
    ``mirror``. An entry counts as Debian's when its URI path ends in ``debian``
    or ``debian-security``, when it is one of the host's Debian mirrors, or when
    the image also names the release's security suite; third-party
    repositories (``nodistro``, ``cloud-sdk-bookworm``) do not. Returns an empty
    list when the image names no Debian release (the caller reports that).
    """
    entries = list(_entries(files))
    host_urls = {host_mirror.mirror.rstrip("/"), (host_mirror.security or "").rstrip("/")}
    all_suites = {s for e in entries for s in e.suites}
    releases: dict[str, list[str]] = {}
    old_style: set[str] = set()
    for entry in entries:
        for suite in entry.suites:
            release = release_of(suite)
            if release in _NO_UPDATE_SUITES:
                continue
            debian = (
                PurePosixPath(urlsplit(entry.uri).path).name in _DEBIAN_PATHS
                or entry.uri.rstrip("/") in host_urls
                or f"{release}-security" in all_suites
                or f"{release}/updates" in all_suites
            )
            if not debian:
                continue
            if suite == f"{release}/updates":
                old_style.add(release)
            components = releases.setdefault(release, [])
            components.extend(c for c in entry.components if c not in components)
    if not releases:
        return []
    if host_mirror.security is None:
        raise NoUpdateRoute(
            "no Debian security mirror is known (neither the host's apt sources nor the image's name one)",
            detail=f"the image runs {', '.join(sorted(releases))}; add a '<release>-security' source to the host "
                   "or name the update sources in patchline.toml ([[updates.sources]])",
        )
    suites: list[AptSuite] = []
    for release, components in releases.items():
        security = f"{release}/updates" if release in old_style else f"{release}-security"
        suites.append(AptSuite(host_mirror.security, security, tuple(components), arch))
        suites.append(AptSuite(host_mirror.mirror, f"{release}-updates", tuple(components), arch))
    return suites


def ubuntu_sources_from_image_files(files: Mapping[str, str], *, release: str, arch: str = "amd64") -> list[AptSuite]:
    """The ``-security`` and ``-updates`` pockets of Ubuntu ``release`` at the archives the image's sources name
    (``ubuntu.sources`` or ``sources.list``; the ports archive for other architectures is what such an image
    names), verified with Ubuntu's archive keyring unless one is configured. Empty when the image names none: no
    Ubuntu archive is known then (the host's sources are Debian's)."""
    from patchline.updates.interface import UBUNTU_ARCHIVE_KEYRING

    archive = security = None
    components: list[str] = []
    for entry in _entries(files):
        for suite in entry.suites:
            if release_of(suite) != release or suite.endswith(("-backports", "-proposed")):
                continue
            components.extend(c for c in entry.components if c not in components)
            if suite.endswith("-security"):
                security = security or entry.uri
            else:
                archive = archive or entry.uri
    if archive is None and security is None:
        return []
    security = security or archive
    archive = archive or security
    assert archive is not None and security is not None
    return [AptSuite(security, f"{release}-security", tuple(components), arch, keyring=UBUNTU_ARCHIVE_KEYRING),
            AptSuite(archive, f"{release}-updates", tuple(components), arch, keyring=UBUNTU_ARCHIVE_KEYRING)]


def mirror_from_image_files(files: Mapping[str, str]) -> HostDebianMirror | None:
    """The Debian archive and security archive the image's own sources name (``None`` when none is named):
    used only when neither patchline.toml nor the host's sources name a Debian mirror."""
    mirror = security = None
    for entry in _entries(files):
        if PurePosixPath(urlsplit(entry.uri).path).name not in _DEBIAN_PATHS:
            continue
        for suite in entry.suites:
            if suite.endswith(("-security", "/updates")):
                security = security or entry.uri
            else:
                mirror = mirror or entry.uri
    return HostDebianMirror(mirror, security) if mirror else None


def _entries(files: Mapping[str, str]) -> list[_SourceEntry]:
    # apt's order: sources.list, then sources.list.d sorted by name.
    def order(path: str) -> tuple[int, str]:
        return (0 if path.endswith("/sources.list") else 1, path)

    entries: list[_SourceEntry] = []
    for path in sorted(files, key=order):
        text = files[path]
        if path.endswith(".sources"):
            entries.extend(_parse_deb822(text, Path(path)))
        elif path.endswith(".list"):
            entries.extend(_parse_one_line(text, Path(path)))
    return [e for e in entries if e.components]

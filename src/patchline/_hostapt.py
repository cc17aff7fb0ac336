"""The host's own Debian mirror, read from its apt sources.

A user's mirror is theirs to configure, so patchline never names one: whatever
needs a Debian archive (debootstrap, an image's ``sources.list``, the update
repositories an image is assessed against) asks :func:`host_debian_mirror`.

Both formats apt reads are understood: deb822 ``*.sources`` files and one-line
``sources.list`` / ``*.list`` files. Only ``deb`` entries with an http(s) URI and
the ``main`` component count; a source is taken as Debian's when it serves a
Debian release (``bookworm``, ``trixie``, ``stable``, ...) or one of its update
suites (``-security``, ``-updates``, the older ``/updates``), which third-party
repositories (``nodistro``, ``cloud-sdk-bookworm``, ...) do not.

One Debian archive serves every release, so the host's mirror is the mirror of
any release: a Debian 12 host assesses a Debian 13 image from the same URLs,
whatever suites it uses itself.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from debian.deb822 import Deb822

from patchline.errors import ConfigError

__all__ = ["DEBIAN_CODENAMES", "HostDebianMirror", "host_debian_mirror", "release_of"]

_ETC_APT = Path("/etc/apt")

DEBIAN_CODENAMES = {"10": "buster", "11": "bullseye", "12": "bookworm", "13": "trixie", "14": "forky", "15": "duke"}
"""Debian's releases by major version (``/etc/debian_version``, ``VERSION_ID``)."""
_DEBIAN_SUITE_NAMES = {*DEBIAN_CODENAMES.values(), "sid", "stable", "oldstable", "oldoldstable", "testing",
                       "unstable"}
# Longest first: "bookworm-proposed-updates" is bookworm's, not "bookworm-proposed"'s; "-proposed" is Ubuntu's.
_UPDATE_SUFFIXES = ("-proposed-updates", "-security", "-updates", "-backports", "-proposed", "/updates")
_SECURITY_SUFFIXES = ("-security", "/updates")


def release_of(suite: str) -> str:
    """The release a suite belongs to: ``trixie-security`` -> ``trixie``."""
    for suffix in _UPDATE_SUFFIXES:
        if suite.endswith(suffix):
            return suite[: -len(suffix)]
    return suite


class HostDebianMirror(NamedTuple):
    """The archive URL of a suite and of its security suite (``None`` when absent)."""

    mirror: str
    security: str | None


@dataclass(frozen=True, slots=True)
class _SourceEntry:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    origin: Path


def host_debian_mirror(suite: str | None = None, *, etc_apt: Path = _ETC_APT) -> HostDebianMirror:
    """Return the host's Debian archive URL and its security archive URL.

    One archive serves every release, so any enabled Debian source will do; an
    entry for ``suite`` itself (or its security suite) is preferred when there is
    one. Sources are read in apt's order (``sources.list``, then
    ``sources.list.d`` sorted by name). Raises :class:`ConfigError` when no enabled
    ``deb`` source of a Debian release serves ``main`` over http(s).
    """
    known = _DEBIAN_SUITE_NAMES | ({suite} if suite else set())
    mirrors: list[tuple[bool, str]] = []  # (serves `suite` itself, uri), in apt's order
    securities: list[tuple[bool, str]] = []
    for entry in _source_entries(etc_apt):
        if "main" not in entry.components:
            continue
        for name in entry.suites:
            release = release_of(name)
            if release not in known:
                continue
            found = securities if name.endswith(_SECURITY_SUFFIXES) else mirrors
            found.append((release == suite, entry.uri))
    if not mirrors:
        raise ConfigError(
            "no Debian mirror in the host's apt sources",
            detail=(
                "looked for an enabled 'deb' source of a Debian release, component 'main' and an http(s) URI in "
                f"{etc_apt}/sources.list and {etc_apt}/sources.list.d/*.list, *.sources; or name the update "
                "sources in patchline.toml ([[updates.sources]])"
            ),
        )

    def pick(found: list[tuple[bool, str]]) -> str | None:
        return next((uri for exact, uri in found if exact), found[0][1] if found else None)

    mirror = pick(mirrors)
    assert mirror is not None
    return HostDebianMirror(mirror=mirror, security=pick(securities))


def _source_entries(etc_apt: Path) -> Iterator[_SourceEntry]:
    files = [etc_apt / "sources.list"]
    parts = etc_apt / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in {".list", ".sources"})
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigError(f"cannot read apt source file {path}: {exc}") from exc
        if path.suffix == ".sources":
            yield from _parse_deb822(text, path)
        else:
            yield from _parse_one_line(text, path)


def _parse_deb822(text: str, origin: Path) -> Iterator[_SourceEntry]:
    for para in Deb822.iter_paragraphs(io.StringIO(text)):
        if para.get("Enabled", "yes").strip().lower() == "no":
            continue
        if "deb" not in para.get("Types", "").split():
            continue
        suites = tuple(para.get("Suites", "").split())
        components = tuple(para.get("Components", "").split())
        for uri in para.get("URIs", "").split():
            if _is_http(uri):
                yield _SourceEntry(_normalise(uri), suites, components, origin)


def _parse_one_line(text: str, origin: Path) -> Iterator[_SourceEntry]:
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        if kind != "deb":
            continue
        rest = rest.strip()
        if rest.startswith("["):  # options: deb [arch=amd64 signed-by=...] URI ...
            _, _, rest = rest.partition("]")
        fields = rest.split()
        if len(fields) < 2 or not _is_http(fields[0]):
            continue
        yield _SourceEntry(_normalise(fields[0]), (fields[1],), tuple(fields[2:]), origin)


def _is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _normalise(uri: str) -> str:
    return uri.rstrip("/")

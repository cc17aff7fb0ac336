"""The host's own Debian mirror, read from its apt sources.

A user's mirror is theirs to configure, so patchline never names one: whatever
needs a Debian archive (debootstrap, an image's ``sources.list``, the update
repositories an image is assessed against) asks :func:`host_debian_mirror`.

Both formats apt reads are understood: deb822 ``*.sources`` files and one-line
``sources.list`` / ``*.list`` files. Only ``deb`` entries with an http(s) URI and
the ``main`` component count; a source is taken as Debian's when it serves the
suite itself (``bookworm``) or its security suite (``bookworm-security``, or the
older ``bookworm/updates``), which third-party repositories (``nodistro``,
``cloud-sdk-bookworm``, ...) do not.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from debian.deb822 import Deb822

from patchline.errors import ConfigError

__all__ = ["HostDebianMirror", "host_debian_mirror"]

_ETC_APT = Path("/etc/apt")


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


def host_debian_mirror(suite: str = "bookworm", *, etc_apt: Path = _ETC_APT) -> HostDebianMirror:
    """Return the host's Debian mirror for ``suite`` and its security mirror.

    Sources are read in apt's order (``sources.list``, then ``sources.list.d``
    sorted by name); the first matching entry wins. Raises :class:`ConfigError`
    when no enabled ``deb`` source serves ``suite`` with ``main`` over http(s).
    """
    mirror: str | None = None
    security: str | None = None
    security_suites = {f"{suite}-security", f"{suite}/updates"}
    for entry in _source_entries(etc_apt):
        if "main" not in entry.components:
            continue
        if mirror is None and suite in entry.suites:
            mirror = entry.uri
        if security is None and security_suites.intersection(entry.suites):
            security = entry.uri
    if mirror is None:
        raise ConfigError(
            f"no Debian mirror for {suite!r} in the host's apt sources",
            detail=(
                f"looked for an enabled 'deb' source with suite {suite!r}, component 'main' "
                f"and an http(s) URI in {etc_apt}/sources.list and "
                f"{etc_apt}/sources.list.d/*.list, *.sources"
            ),
        )
    return HostDebianMirror(mirror=mirror, security=security)


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

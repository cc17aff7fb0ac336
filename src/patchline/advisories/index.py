"""Advisories indexed by (patchline ecosystem, normalized package name).

OSV names ecosystems its own way (``PyPI``, ``Debian:12``, ``Ubuntu:22.04:LTS``,
``Alpine:v3.19``); :func:`normalize_ecosystem` maps each to the patchline
ecosystem (the purl type), the distribution's os-release ``ID`` and its release.
An entry with a release applies only to an image of that release; one without
(plain ``Debian``) to any release of the distribution.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from patchline._findings import AssessSkip
from patchline._model import Distro
from patchline.advisories.interface import Advisory, AdvisoryFeed, Affected
from patchline.errors import FeedError

if TYPE_CHECKING:
    from patchline.advisories.osv import OsvFeed

__all__ = ["AdvisoryIndex", "EcosystemKey", "IndexEntry", "normalize_ecosystem", "normalize_name"]


@dataclass(frozen=True, slots=True)
class EcosystemKey:
    """Where an OSV ecosystem string points in patchline's terms."""

    ecosystem: str  # patchline Ecosystem value: deb, apk, rpm, pypi, npm
    distro: str | None = None  # os-release ID for distribution ecosystems
    release: str | None = None  # "12", "22.04", "3.19"; None: every release

    def applies_to(self, distro: Distro | None) -> bool:
        """Whether an image with this distro is covered (language ecosystems: always)."""
        if self.distro is None:
            return True
        if distro is None:
            return self.release is None  # an unknown distro: only distro-wide entries can be applied
        if distro.id.lower() != self.distro:
            return False
        if self.release is None:
            return True
        version_id = distro.version_id or ""
        return (
            version_id == self.release
            or version_id.startswith(self.release + ".")
            or self.release == (distro.version_codename or "").lower()
        )


# OSV ecosystem (the part before the first ":") -> (patchline ecosystem, os-release ID)
_OSV_ECOSYSTEMS: dict[str, tuple[str, str | None]] = {
    "pypi": ("pypi", None),
    "npm": ("npm", None),
    "go": ("golang", None),
    "maven": ("maven", None),
    "rubygems": ("gem", None),
    "crates.io": ("cargo", None),
    "debian": ("deb", "debian"),
    "ubuntu": ("deb", "ubuntu"),
    "alpine": ("apk", "alpine"),
    "wolfi": ("apk", "wolfi"),
    "chainguard": ("apk", "chainguard"),
    "red hat": ("rpm", "rhel"),
    "rocky linux": ("rpm", "rocky"),
    "almalinux": ("rpm", "almalinux"),
    "mageia": ("rpm", "mageia"),
    "photon os": ("rpm", "photon"),
    "openeuler": ("rpm", "openeuler"),
    "suse": ("rpm", "sles"),
    "opensuse": ("rpm", "opensuse-leap"),
}
_RELEASE = re.compile(r"v?(\d+(?:\.\d+)*)")
_SUSE_RELEASE = re.compile(r"(\d+)(?:\s*SP(\d+))?", re.IGNORECASE)
_PEP503 = re.compile(r"[-_.]+")


def normalize_ecosystem(osv_ecosystem: str) -> EcosystemKey | None:
    """``Debian:12`` -> (deb, debian, 12); ``PyPI`` -> (pypi); ``None`` for ecosystems patchline does not catalog."""
    base, *rest = (part.strip() for part in osv_ecosystem.split(":"))
    known = _OSV_ECOSYSTEMS.get(base.lower())
    if known is None:
        return None
    ecosystem, distro = known
    if distro is None:
        return EcosystemKey(ecosystem)
    rest = [part for part in rest if part]
    if not rest:
        return EcosystemKey(ecosystem, distro)
    if distro in ("sles", "opensuse-leap"):
        if "tumbleweed" in rest[0].lower():
            return EcosystemKey(ecosystem, "opensuse-tumbleweed")
        m = _SUSE_RELEASE.search(rest[0])
        release = None if m is None else (m.group(1) + (f".{m.group(2)}" if m.group(2) else ""))
        return EcosystemKey(ecosystem, distro, release)
    for part in rest:  # "Ubuntu:Pro:22.04:LTS", "Red Hat:enterprise_linux:9::appstream"
        m = _RELEASE.fullmatch(part) or (_RELEASE.search(part) if distro == "rhel" else None)
        if m:
            return EcosystemKey(ecosystem, distro, m.group(1))
    return EcosystemKey(ecosystem, distro, rest[0].lower())  # "Debian:sid" style: a codename


def normalize_name(ecosystem: str, name: str) -> str:
    """PyPI: PEP 503 (``Jinja2`` == ``jinja2``, ``zope.interface`` == ``zope-interface``); others as given."""
    if ecosystem == "pypi":
        return _PEP503.sub("-", name).lower()
    if ecosystem in ("deb", "apk"):
        return name.lower()
    return name


@dataclass(frozen=True, slots=True, eq=False)
class IndexEntry:
    """One affected entry of one advisory, ready to evaluate."""

    advisory: Advisory
    affected: Affected
    key: EcosystemKey
    feed: str
    versions: frozenset[str]  # the explicit versions, for an exact-match shortcut


@dataclass(slots=True)
class AdvisoryIndex:
    """Dictionary of advisories by (ecosystem, name); build it with :meth:`build`."""

    entries: dict[tuple[str, str], list[IndexEntry]]
    feeds: tuple[str, ...]  # "name revision" of every feed
    skipped: tuple[AssessSkip, ...]  # the feeds' unusable records
    advisories: int
    unindexed: dict[str, int] = field(default_factory=dict)  # affected entries of other ecosystems, by ecosystem
    memo: dict[tuple[int, str], bool] = field(default_factory=dict)  # (entry id, version) -> affected
    # build_lazy: records not parsed yet, by (ecosystem, name): (feed, what, document)
    pending: dict[tuple[str, str], list[tuple[str, str, object]]] = field(default_factory=dict)

    @classmethod
    def build(cls, feeds: Sequence[AdvisoryFeed]) -> AdvisoryIndex:
        """Read every record of every feed. Refuses an empty list of feeds."""
        if not feeds:
            raise FeedError("no advisory feeds given: an assessment without feeds would report nothing")
        entries: dict[tuple[str, str], list[IndexEntry]] = {}
        skipped: list[AssessSkip] = []
        unindexed: dict[str, int] = {}
        described: list[str] = []
        count = 0
        keys: dict[str, EcosystemKey | None] = {}
        for feed in feeds:
            for record in feed.records():
                if isinstance(record, AssessSkip):
                    skipped.append(record)
                    continue
                count += 1
                for affected in record.affected:
                    if affected.ecosystem not in keys:
                        keys[affected.ecosystem] = normalize_ecosystem(affected.ecosystem)
                    key = keys[affected.ecosystem]
                    if key is None:
                        unindexed[affected.ecosystem] = unindexed.get(affected.ecosystem, 0) + 1
                        continue
                    entry = IndexEntry(
                        advisory=record,
                        affected=affected,
                        key=key,
                        feed=feed.name,
                        versions=frozenset(affected.versions),
                    )
                    name = normalize_name(key.ecosystem, affected.name)
                    entries.setdefault((key.ecosystem, name), []).append(entry)
            described.append(f"{feed.name} {feed.revision}")
        return cls(
            entries=entries,
            feeds=tuple(described),
            skipped=tuple(skipped),
            advisories=count,
            unindexed=unindexed,
        )

    @classmethod
    def build_lazy(cls, feeds: Sequence[OsvFeed]) -> AdvisoryIndex:
        """Index the feeds' records by package without parsing them; parse on first lookup.

        A scan asks about a few hundred package names out of a feed's thousands,
        so only those records are validated and parsed. Records that cannot be
        read at all, or name no package, are skips at once; deeper problems (an
        invalid version in a range) are skips when their package is looked up.
        """
        from patchline.advisories.osv import parse_record

        if not feeds:
            raise FeedError("no advisory feeds given: an assessment without feeds would report nothing")
        pending: dict[tuple[str, str], list[tuple[str, str, object]]] = {}
        skipped: list[AssessSkip] = []
        unindexed: dict[str, int] = {}
        described: list[str] = []
        count = 0
        keys: dict[str, EcosystemKey | None] = {}
        for feed in feeds:
            for what, doc, reason in feed.documents():
                if reason is not None:
                    skipped.append(AssessSkip(what=what, reason=reason))
                    continue
                named = _package_names(doc)
                if named is None:
                    skipped.extend(r for r in parse_record(doc, what=what) if isinstance(r, AssessSkip))
                    continue
                count += 1
                seen: set[tuple[str, str]] = set()
                for ecosystem, name in named:
                    if ecosystem not in keys:
                        keys[ecosystem] = normalize_ecosystem(ecosystem)
                    key = keys[ecosystem]
                    if key is None:
                        unindexed[ecosystem] = unindexed.get(ecosystem, 0) + 1
                        continue
                    lookup = (key.ecosystem, normalize_name(key.ecosystem, name))
                    if lookup not in seen:
                        seen.add(lookup)
                        pending.setdefault(lookup, []).append((feed.name, what, doc))
            described.append(f"{feed.name} {feed.revision}")
        index = cls(entries={}, feeds=tuple(described), skipped=tuple(skipped), advisories=count,
                    unindexed=unindexed)
        index.pending = pending
        return index

    def candidates(self, ecosystem: str, name: str) -> Sequence[IndexEntry]:
        """Every affected entry naming this package (not yet filtered by distro or version)."""
        lookup = (ecosystem, normalize_name(ecosystem, name))
        if self.pending and lookup in self.pending:
            self._parse_pending(lookup)
        return self.entries.get(lookup, ())

    def _parse_pending(self, lookup: tuple[str, str]) -> None:
        from patchline.advisories.osv import parse_record

        entries = self.entries.setdefault(lookup, [])
        for feed, what, doc in self.pending.pop(lookup):
            for record in parse_record(doc, what=what):
                if isinstance(record, AssessSkip):
                    self.skipped = (*self.skipped, record)
                    continue
                for affected in record.affected:
                    key = normalize_ecosystem(affected.ecosystem)
                    if key is None or (key.ecosystem, normalize_name(key.ecosystem, affected.name)) != lookup:
                        continue
                    entries.append(IndexEntry(advisory=record, affected=affected, key=key, feed=feed,
                                              versions=frozenset(affected.versions)))


def _package_names(doc: object) -> list[tuple[str, str]] | None:
    """(ecosystem, name) of every affected package, read without validating; None if unreadable."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("id"), str) or doc.get("withdrawn"):
        return None
    affected = doc.get("affected")
    if not isinstance(affected, list):
        return None
    names = []
    for entry in affected:
        package = entry.get("package") if isinstance(entry, Mapping) else None
        if not isinstance(package, Mapping):
            return None
        ecosystem, name = package.get("ecosystem"), package.get("name")
        if not isinstance(ecosystem, str) or not isinstance(name, str):
            return None
        names.append((ecosystem, name))
    return names or None

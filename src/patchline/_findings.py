"""Plain data of an assessment: pending updates and advisory findings (the low floor advisories, updates,
assess, policy and the store share; ``patchline.assess.model`` is its public name).

An assessment of one image is what ``patchline scan`` reports: the updates the
distribution's own repositories offer for its packages (as ``apt-get -s
upgrade`` inside the image would see them) and the advisories (OSV) that
affect its packages. Both are derived, recomputable data.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NewType

AdvisoryId = NewType("AdvisoryId", str)


class Severity(enum.IntEnum):
    """Ordered so that ``>=`` compares urgency; UNKNOWN sorts lowest."""

    UNKNOWN = 0
    NONE = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5

    @classmethod
    def from_score(cls, score: float) -> Severity:
        """CVSS qualitative rating of a base score."""
        if score == 0:
            return cls.NONE
        if score < 4.0:
            return cls.LOW
        if score < 7.0:
            return cls.MEDIUM
        if score < 9.0:
            return cls.HIGH
        return cls.CRITICAL

    @classmethod
    def parse(cls, text: str) -> Severity:
        """``high``, ``HIGH``, ``Moderate`` (GitHub's word for medium), ``important``..."""
        word = text.strip().upper()
        aliases = {"MODERATE": "MEDIUM", "IMPORTANT": "HIGH", "NEGLIGIBLE": "LOW", "UNIMPORTANT": "LOW"}
        return cls.__members__.get(aliases.get(word, word), cls.UNKNOWN)


@dataclass(frozen=True, slots=True)
class SeverityScore:
    """One severity statement of an advisory."""

    severity: Severity
    type: str  # "CVSS_V3", "CVSS_V4", "CVSS_V2", or "record" for the record's own word
    vector: str | None = None
    score: float | None = None
    version: str | None = None  # the CVSS version scored: "2.0", "3.0", "3.1", "4.0" (None: no score)
    source: str | None = None  # the alias record that stated it (None: the finding's own record)


@dataclass(frozen=True, slots=True)
class PackageRef:
    """The installed package a result is about (from the inventory)."""

    ecosystem: str  # patchline Ecosystem value: deb, apk, rpm, pypi, npm
    name: str
    version: str
    purl: str
    arch: str | None = None
    source_name: str | None = None
    source_version: str | None = None
    introduced_in: int | None = None  # layer index
    layer_diff_id: str | None = None


@dataclass(frozen=True, slots=True)
class PendingUpdate:
    """A newer version of an installed package that the update sources offer."""

    package: PackageRef
    candidate: str  # the version apt would install
    suite: str  # e.g. "bookworm-security"
    source_name: str  # the source package (binary packages of one source are grouped by it)
    source_version: str  # of the candidate
    cves: tuple[str, ...] = ()  # named by the changelog entries between installed and candidate
    urgency: str | None = None  # the changelog's highest urgency in that range
    changelog_error: str | None = None  # why the CVEs could not be read, if they could not


@dataclass(frozen=True, slots=True)
class Finding:
    """An advisory that affects an installed package."""

    advisory: AdvisoryId
    aliases: tuple[str, ...]
    package: PackageRef
    fixed_versions: tuple[str, ...]  # empty: no fix published
    severity: Severity
    scores: tuple[SeverityScore, ...] = ()
    summary: str | None = None
    feed: str = ""  # which feed said so (its name or path)
    fix_available: bool | None = None  # the fix is in the configured update sources (None: not checked)
    references: tuple[str, ...] = ()
    severity_source: str | None = None  # the alias record the severity was taken from (None: its own record)


@dataclass(frozen=True, slots=True)
class Ignored:
    """A finding moved aside by an ignore rule or a VEX statement, with why."""

    finding: Finding
    reason: str
    rule: str  # "patchline.toml" or the VEX document's id
    expires: str | None = None


@dataclass(frozen=True, slots=True)
class AssessSkip:
    """Something the assessment could not use, and why (a skip is data)."""

    what: str  # a package purl, a feed record path, an index URL
    reason: str


class AssessState(enum.StrEnum):
    """What an assessment can say of an image.

    ``unknown`` is never ``clean``: patchline could not check the image (no package database, no update
    route for its distribution or release, update sources that could not be read or trusted).
    """

    CLEAN = "clean"
    EXPOSED = "exposed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Assessment:
    """Everything ``patchline scan`` reports for one image."""

    image: str  # the reference as given
    config_digest: str | None
    pending: tuple[PendingUpdate, ...] = ()
    findings: tuple[Finding, ...] = ()
    ignored: tuple[Ignored, ...] = ()
    skipped: tuple[AssessSkip, ...] = ()
    sources: tuple[str, ...] = ()  # update sources used, "URL suite" each
    feeds: tuple[str, ...] = ()  # advisory feeds used, with their revision
    extra: dict[str, str] = field(default_factory=dict)
    unknown: tuple[str, ...] = ()  # why patchline could not check (part of) the image; empty: it could
    no_advisory_feed: tuple[str, ...] = ()  # ecosystems with packages in the image that no loaded feed covers

    @property
    def state(self) -> AssessState:
        """``exposed`` when anything is pending or affects the image; else ``unknown`` when something could
        not be checked; else ``clean``."""
        if self.pending or self.findings:
            return AssessState.EXPOSED
        return AssessState.UNKNOWN if self.unknown else AssessState.CLEAN

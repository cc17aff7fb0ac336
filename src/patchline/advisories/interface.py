"""The advisory-feed plug-in interface: what a feed yields and how it is read.

A feed is a name, a revision and an iterator of records. Each record is an
:class:`Advisory` (the OSV schema's fields that assessment uses) or an
``AssessSkip`` naming a record the feed could not use and why; a bad record
never stops the feed. Implementations are sibling modules (``osv.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from patchline._findings import AdvisoryId, AssessSkip, SeverityScore
from patchline.errors import AdvisoryError, FeedError
from patchline.versions.osv import OsvRange

__all__ = ["Advisory", "AdvisoryError", "AdvisoryFeed", "Affected", "FeedError"]


@dataclass(frozen=True, slots=True)
class Affected:
    """One ``affected[]`` entry: a package in one ecosystem and the versions hit."""

    ecosystem: str  # as OSV spells it: "PyPI", "Debian:12", "Alpine:v3.19"
    name: str  # as the record spells it (Debian: the source package)
    purl: str | None
    ranges: tuple[OsvRange, ...]
    versions: tuple[str, ...]
    severity_text: str | None = None  # ecosystem_specific / database_specific "severity" word


@dataclass(frozen=True, slots=True)
class Advisory:
    """One advisory record of a feed (withdrawn records are never yielded)."""

    id: AdvisoryId
    aliases: tuple[str, ...]
    summary: str | None
    details: str | None
    modified: str  # RFC 3339 as the record has it
    published: str | None
    severity: tuple[SeverityScore, ...]  # CVSS scores computed from the vectors, then the record's own word
    affected: tuple[Affected, ...]
    references: tuple[str, ...]  # URLs


class AdvisoryFeed(Protocol):
    """A source of advisories (a directory, a zip, a URL of OSV records...)."""

    @property
    def name(self) -> str:
        """What the report calls the feed: its path or URL."""

    @property
    def revision(self) -> str:
        """What identifies this feed's content: a content hash or the newest ``modified``."""

    def records(self) -> Iterator[Advisory | AssessSkip]:
        """Every advisory, and a skip (with its reason) for each record that cannot be used.

        Raises ``FeedError`` only when the feed as a whole cannot be read.
        """

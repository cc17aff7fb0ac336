"""Plain data the store returns: query answers and what a write changed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class WorkloadRow:
    """A workload as the store knows it."""

    runtime: str
    host: str
    namespace: str
    name: str
    container_id: str
    image_ref: str
    image_digest: str | None  # config digest
    started_at: dt.datetime | None
    first_seen: dt.datetime
    last_seen: dt.datetime
    gone_at: dt.datetime | None

    @property
    def running(self) -> bool:
        return self.gone_at is None


@dataclass(frozen=True, slots=True)
class ImageRow:
    """An image: its identity and the names that pointed at it."""

    config_digest: str
    refs: tuple[str, ...]  # "repository:tag" or "repository@digest", newest first
    created: dt.datetime | None
    distro: str | None  # "debian 12"
    package_count: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    unknown: str | None = None  # why patchline could not check it (unknown is never clean); None: it could


@dataclass(frozen=True, slots=True)
class WhereHit:
    """One package in one image, with where it came from and what runs the image."""

    image: ImageRow
    ecosystem: str
    name: str
    version: str
    source_name: str | None
    source_version: str | None
    introduced_in: int  # layer index
    introduced_diff_id: str | None
    changed_in: int
    changed_diff_id: str | None
    workloads: tuple[WorkloadRow, ...]  # running ones


@dataclass(frozen=True, slots=True)
class AdvisoryHit:
    """An image holding a package an advisory affects."""

    image: ImageRow
    ecosystem: str
    package: str  # the installed package's name
    version: str
    severity: int  # Severity value
    fixed_versions: tuple[str, ...]
    fix_available: bool  # a fix is published (fixed version) or the update sources offer one
    feed: str
    feed_revision: str
    workloads: tuple[WorkloadRow, ...]


@dataclass(frozen=True, slots=True)
class AdvisoryReport:
    id: str
    aliases: tuple[str, ...]
    summary: str | None
    known: bool  # the store has the advisory at all
    hits: tuple[AdvisoryHit, ...]


@dataclass(frozen=True, slots=True)
class ExposureRow:
    """One image's exposure for ``patchline fleet``."""

    image: ImageRow
    worst_fixable: int | None  # Severity value of the worst finding with a fix; None: none
    worst: int | None  # worst finding at all
    findings: int
    fixable: int
    pending_updates: int
    age_days: float | None
    base: str | None  # config digest of the base image (by shared layers), when known
    base_outdated_by: str | None  # the newer image the base's tag points at now
    workloads: int  # running
    superseded: bool = False  # nothing runs it and its tags point at newer images: not counted as exposure


@dataclass(frozen=True, slots=True)
class FleetSummary:
    images: tuple[ExposureRow, ...]
    workloads_by_severity: dict[str, int]  # worst fixable severity name -> running workloads
    images_by_severity: dict[str, int]
    pending_updates: int  # total over all images
    images_with_pending: int
    stale_days: int | None
    stale_images: int
    base_outdated: int
    running_workloads: int
    gone_workloads: int
    feeds: tuple[tuple[str, str, str], ...]  # (kind, name, revision)


@dataclass(frozen=True, slots=True)
class IngestResult:
    config_digest: str
    new: bool  # the image was not in the store before
    packages: int
    findings: int  # (advisory, package) pairs affecting it after ingest
    base: str | None


@dataclass(frozen=True, slots=True)
class WorkloadSync:
    """What recording one observation of a runtime changed."""

    new: int
    updated: int
    gone: int
    unresolved: tuple[str, ...] = ()  # workloads whose image is not (yet) in the store


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What re-assessing after a feed refresh did."""

    feed: str
    revision: str
    previous_revision: str
    advisories_added: int = 0
    advisories_changed: int = 0
    advisories_removed: int = 0
    advisories_unchanged: int = 0
    packages_evaluated: int = 0  # distinct (name, version) pairs checked
    findings_added: int = 0
    findings_removed: int = 0
    images_affected: int = 0  # images whose findings changed
    skipped: tuple[tuple[str, str], ...] = field(default=())  # (what, reason)
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class PendingRefresh:
    """What re-assessing pending updates from the stored inventories did."""

    revision: str
    images: int
    pending: int
    changed_images: int
    skipped: tuple[tuple[str, str], ...] = ()

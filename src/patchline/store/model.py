"""Plain data the store returns: query answers and what a write changed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

UNFINISHED_ROLLOUT = ("running", "rolling-back")
UNFINISHED_RUN = ("running",)


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


# -- builds --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuildRow:
    """One stored build."""

    id: int
    run_id: str
    recipe: str
    kind: str
    status: str
    reasons: tuple[dict[str, Any], ...]
    target: str
    input_hash: str
    bases: Mapping[str, str]
    config_digest: str | None
    manifest_digest: str | None
    previous_config_digest: str | None
    verification: Mapping[str, Any]
    error: str
    log_path: str
    source_date_epoch: int | None
    started_at: dt.datetime
    finished_at: dt.datetime


@dataclass(frozen=True, slots=True)
class PendingRow:
    name: str
    installed: str
    candidate: str
    suite: str
    cves: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FixableRow:
    advisory_id: str
    package: str  # the name the advisory matches (the source package for OS packages)
    version: str
    fixed: tuple[str, ...]
    severity: int


# -- rollouts --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplicaRow:
    index: int
    from_image: str | None
    state: str  # pending, replacing, ready, failed, reverting, reverted
    container: str
    detail: str
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class RolloutRow:
    id: int
    service: str
    strategy: str
    from_image: str | None
    to_image: str
    state: str
    phase: str
    reason: str
    spec: Mapping[str, Any]
    owner: str
    heartbeat_at: dt.datetime | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    timings: Mapping[str, float]
    replicas: tuple[ReplicaRow, ...]

    @property
    def finished(self) -> bool:
        return self.state not in UNFINISHED_ROLLOUT


@dataclass(frozen=True, slots=True)
class UnpromotableRow:
    digest: str
    repository: str
    stage: str
    reason: str
    recorded_at: dt.datetime


# -- runs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepRow:
    step: str
    position: int
    state: str  # pending, running, done, failed
    owner: str
    lease_until: dt.datetime | None
    attempts: int
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    output: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RunRow:
    id: int
    trigger: str
    triggered_by: str
    state: str
    step: str
    inputs: Mapping[str, Any]
    summary: Mapping[str, Any]
    error: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    steps: tuple[StepRow, ...]

    @property
    def finished(self) -> bool:
        return self.state not in UNFINISHED_RUN


@dataclass(frozen=True, slots=True)
class PatchItemRow:
    id: int
    kind: str
    item: str
    recipe: str
    state: str
    why: str
    first_seen_at: dt.datetime
    first_seen_run: int | None
    rebuilt_at: dt.datetime | None
    digest: str | None
    deployed_at: dt.datetime | None
    services: tuple[str, ...]


# -- outbox ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SinkRow:
    """A sink's place in the outbox."""

    name: str
    delivered_seq: int
    attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str
    updated_at: dt.datetime | None
    backlog: int  # events after delivered_seq
    owner: str = ""  # host:pid of the process delivering to it now ("" when none)
    lease_until: dt.datetime | None = None

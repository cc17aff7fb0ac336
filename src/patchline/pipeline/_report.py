"""Time-to-patch, what is still exposed and why, and the run history, from the store.

An *item* is one advisory ID or one package update (``patch_items.kind``), followed
across every recipe it was found in. Each ``patch_items`` row is one (item, recipe)
from the moment patchline first saw it to the moment the services running that
recipe run the fixed build. A row is *patched* when it is ``deployed``, or when it
is ``rebuilt`` and no service runs its recipe (a base image: nothing to roll out,
its fix reaches workloads through the images built on it, which have rows of their
own). An item is patched when every one of its rows is; its time to patch is then
the last row's patched time minus the first time any row saw it.

Figures over a set of durations (:class:`TimeToPatch`): ``median`` is the usual
median (the mean of the two middle values when there is an even number);
``p90`` is the nearest-rank 90th percentile, the ``ceil(0.9 * n)``-th smallest
value, so it is always one of the measured durations (with fewer than ten values
it is the worst one); ``worst`` is the largest.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from patchline import _clock

if TYPE_CHECKING:
    from patchline.store import PatchItemRow, RunRow, Store

DEFAULT_RUNS = 10
# What keeps a row open when the store recorded no reason of its own.
_STATE_WHY = {"open": "not rebuilt yet", "rebuilt": "rebuilt, not rolled out yet", "stuck": "stuck",
              "closed": "no longer reported"}


@dataclass(frozen=True, slots=True)
class TimeToPatch:
    """Durations in seconds over ``count`` patched items; ``None`` when there are none."""

    count: int
    median: float | None
    p90: float | None
    worst: float | None


@dataclass(frozen=True, slots=True)
class RecipeExposure:
    """One ``patch_items`` row: an item in one recipe."""

    recipe: str
    state: str  # open, rebuilt, deployed, stuck, closed (no longer reported: neither patched nor exposed)
    why: str  # what keeps it open (the store's reason, else what its state means); "" once patched
    services: tuple[str, ...]  # the services that run the recipe
    patched: bool  # deployed, or rebuilt where no service runs the recipe
    first_seen: dt.datetime
    first_seen_run: int | None
    rebuilt_at: dt.datetime | None
    digest: str | None  # the manifest digest of the build that fixed it
    deployed_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class ItemReport:
    """An advisory or a package update, across every recipe it was found in."""

    kind: str  # advisory, update
    item: str  # advisory ID or package name
    exposed: bool  # some recipe is not patched yet
    first_seen: dt.datetime
    first_rebuilt: dt.datetime | None
    last_rebuilt: dt.datetime | None
    last_deployed: dt.datetime | None  # only once patched everywhere
    time_to_patch: float | None  # seconds from first seen to patched everywhere; None while exposed
    age: float | None  # seconds since first seen, while exposed
    recipes: tuple[RecipeExposure, ...]


@dataclass(frozen=True, slots=True)
class ServiceReport:
    """Time to patch of the items found in the recipes a service runs."""

    service: str
    recipes: tuple[str, ...]
    deployed: int  # items patched in every recipe row that names this service
    open: int  # items still exposed in one of them
    time_to_patch: TimeToPatch


@dataclass(frozen=True, slots=True)
class ExposedItem:
    """One recipe in which an item is still not patched."""

    kind: str
    item: str
    recipe: str
    state: str
    why: str
    services: tuple[str, ...]
    first_seen: dt.datetime
    age: float  # seconds since this recipe's row was first seen


@dataclass(frozen=True, slots=True)
class StepSummary:
    step: str
    state: str  # pending, running, done, failed
    attempts: int
    seconds: float | None  # as measured by the step (its last attempt)
    error: str


@dataclass(frozen=True, slots=True)
class RunSummary:
    """A run for the audit trail: who or what triggered it, its inputs, what each step did."""

    id: int
    trigger: str  # once, interval, manual, demo
    triggered_by: str
    state: str  # running, succeeded, failed, awaiting-approval
    inputs: Mapping[str, Any]  # feed and update-source revisions, built and deployed images
    error: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    seconds: float | None  # wall time from start to finish
    steps: tuple[StepSummary, ...]


@dataclass(frozen=True, slots=True)
class PatchReport:
    generated_at: dt.datetime
    items_total: int
    items_patched: int
    items_exposed: int
    overall: TimeToPatch
    items: tuple[ItemReport, ...]  # by first seen
    services: tuple[ServiceReport, ...]  # by name
    still_exposed: tuple[ExposedItem, ...]  # oldest first
    runs: tuple[RunSummary, ...]  # newest first
    cannot_assess: tuple[CannotAssess, ...] = ()  # images in use patchline could not check: unknown, not clean


@dataclass(frozen=True, slots=True)
class CannotAssess:
    """An image in use (run, or the current image of its tags) that patchline could not assess, and why."""

    image: str  # its first name, else its config digest
    config_digest: str
    workloads: int
    why: str


def nearest_rank(values: Sequence[float], percent: int) -> float:
    """The nearest-rank ``percent``-th percentile: the ``ceil(percent / 100 * n)``-th smallest value."""
    if not values:
        raise ValueError("no values")
    if not 0 < percent <= 100:
        raise ValueError(f"percentile {percent} is outside 1..100")
    ordered = sorted(values)
    rank = -(-percent * len(ordered) // 100)  # integer ceil: no float rounding at exact ranks
    return ordered[rank - 1]


def time_to_patch(values: Sequence[float]) -> TimeToPatch:
    if not values:
        return TimeToPatch(0, None, None, None)
    return TimeToPatch(len(values), float(statistics.median(values)), nearest_rank(values, 90), max(values))


def _patched_at(row: PatchItemRow) -> dt.datetime | None:
    if row.state == "deployed":
        return row.deployed_at
    if row.state == "rebuilt" and not row.services:
        return row.rebuilt_at
    return None


def _seconds(delta: dt.timedelta) -> float:
    return delta.total_seconds()


@dataclass(frozen=True, slots=True)
class _Aggregate:
    first_seen: dt.datetime
    patched_at: dt.datetime | None  # None while one row is not patched


def _aggregate(rows: Sequence[PatchItemRow]) -> _Aggregate:
    """When the item was first seen, and when its last recipe was patched (closed rows count for neither)."""
    first = min(r.first_seen_at for r in rows)
    live = [r for r in rows if r.state != "closed"]
    done = [_patched_at(r) for r in live]
    if not live:
        return _Aggregate(first, None)
    if any(d is None for d in done):
        return _Aggregate(first, None)
    return _Aggregate(first, max(d for d in done if d is not None))


def _exposure(row: PatchItemRow) -> RecipeExposure:
    patched = _patched_at(row) is not None
    why = "" if patched else (row.why or _STATE_WHY.get(row.state, row.state))
    return RecipeExposure(row.recipe, row.state, why, row.services, patched, row.first_seen_at, row.first_seen_run,
                          row.rebuilt_at, row.digest, row.deployed_at)


def _item(kind: str, item: str, rows: Sequence[PatchItemRow], now: dt.datetime) -> ItemReport:
    agg = _aggregate(rows)
    rebuilt = [r.rebuilt_at for r in rows if r.rebuilt_at is not None]
    deployed = [r.deployed_at for r in rows if r.deployed_at is not None]
    exposed = agg.patched_at is None and any(r.state != "closed" for r in rows)
    return ItemReport(
        kind=kind, item=item, exposed=exposed, first_seen=agg.first_seen,
        first_rebuilt=min(rebuilt, default=None), last_rebuilt=max(rebuilt, default=None),
        last_deployed=None if exposed else max(deployed, default=None),
        time_to_patch=None if agg.patched_at is None else _seconds(agg.patched_at - agg.first_seen),
        age=_seconds(now - agg.first_seen) if exposed else None,
        recipes=tuple(_exposure(r) for r in sorted(rows, key=lambda r: (r.recipe, r.first_seen_at, r.id))))


def _service(name: str, rows: Sequence[PatchItemRow]) -> ServiceReport:
    by_item: dict[tuple[str, str], list[PatchItemRow]] = defaultdict(list)
    for r in rows:
        by_item[(r.kind, r.item)].append(r)
    durations: list[float] = []
    still_open = 0
    for item_rows in by_item.values():
        agg = _aggregate(item_rows)
        if agg.patched_at is not None:
            durations.append(_seconds(agg.patched_at - agg.first_seen))
        elif any(r.state != "closed" for r in item_rows):
            still_open += 1
    return ServiceReport(name, tuple(sorted({r.recipe for r in rows})), deployed=len(durations),
                         open=still_open, time_to_patch=time_to_patch(durations))


def _step_seconds(output: Mapping[str, Any], started: dt.datetime | None, finished: dt.datetime | None
                  ) -> float | None:
    seconds = output.get("seconds")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return float(seconds)
    if started is not None and finished is not None:
        return _seconds(finished - started)
    return None


def run_summary(run: RunRow) -> RunSummary:
    """A run as the report shows it."""
    return RunSummary(
        id=run.id, trigger=run.trigger, triggered_by=run.triggered_by, state=run.state, inputs=dict(run.inputs),
        error=run.error, started_at=run.started_at, finished_at=run.finished_at,
        seconds=_seconds(run.finished_at - run.started_at) if run.finished_at else None,
        steps=tuple(StepSummary(s.step, s.state, s.attempts, _step_seconds(s.output, s.started_at, s.finished_at),
                                str(s.output.get("error", ""))) for s in run.steps))


def patch_report(store: Store, *, now: dt.datetime | None = None, runs: int = DEFAULT_RUNS) -> PatchReport:
    """Time to patch per item, per service and overall, what is still exposed and why, and the last ``runs`` runs.

    ``now`` (timezone-aware; default: the current time) is what ages are measured against.
    """
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = (now or _clock.now()).astimezone(dt.UTC)
    rows = store.patch_items()
    by_item: dict[tuple[str, str], list[PatchItemRow]] = defaultdict(list)
    by_service: dict[str, list[PatchItemRow]] = defaultdict(list)
    for r in rows:
        by_item[(r.kind, r.item)].append(r)
        for service in r.services:
            by_service[service].append(r)
    items = sorted((_item(kind, item, item_rows, now) for (kind, item), item_rows in by_item.items()),
                   key=lambda i: (i.first_seen, i.kind, i.item))
    still = sorted((ExposedItem(i.kind, i.item, e.recipe, e.state, e.why, e.services, e.first_seen,
                                _seconds(now - e.first_seen))
                    for i in items for e in i.recipes if not e.patched and e.state != "closed"),
                   key=lambda x: (x.first_seen, x.kind, x.item, x.recipe))
    durations = [i.time_to_patch for i in items if i.time_to_patch is not None]
    return PatchReport(
        generated_at=now, items_total=len(items), items_patched=len(durations),
        items_exposed=sum(i.exposed for i in items), overall=time_to_patch(durations), items=tuple(items),
        services=tuple(_service(name, by_service[name]) for name in sorted(by_service)),
        still_exposed=tuple(still),
        runs=tuple(run_summary(r) for r in store.runs(limit=runs)) if runs > 0 else (),
        cannot_assess=tuple(CannotAssess(e.image.refs[0] if e.image.refs else e.image.config_digest,
                                         e.image.config_digest, e.workloads, e.image.unknown)
                            for e in store.fleet(now=now).images if e.image.unknown and not e.superseded))

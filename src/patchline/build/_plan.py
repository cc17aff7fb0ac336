"""The rebuild plan: which images are dirty, why, and in which order, as the Open Build Service decides.

An image is dirty for its own reasons (never built, recipe or context changed,
a base with a newer digest, pending security updates, a fixable advisory, too
old) and, transitively, because a base it is built FROM is rebuilt by the plan.
Nothing else is rebuilt. Waves: an item's wave is one more than the latest wave
of the plan's items it is built FROM, so every wave can build in parallel.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Literal, Protocol

from patchline.build._graph import BuildGraph
from patchline.build.interface import CurrentImage, PlanItem, Reason, ReasonCode, RebuildPlan
from patchline.errors import ConfigError, Error
from patchline.store import FixableRow, PendingRow, Store

PendingPolicy = Literal["security", "all", "none"]
_SHOWN = 6


class PlanState(Protocol):
    """What the planner needs to know about the world."""

    def current(self) -> Mapping[str, CurrentImage]:
        """Each recipe's current image: its last good build."""
        ...

    def resolve(self, reference: str) -> str:
        """The digest an outside image reference points at now (raises :class:`Error` when it cannot tell)."""
        ...

    def pending(self, config_digests: Collection[str]) -> Mapping[str, list[PendingRow]]: ...

    def fixable(self, config_digests: Collection[str]) -> Mapping[str, list[FixableRow]]: ...

    def unknown(self, config_digests: Collection[str]) -> Mapping[str, str]:
        """Why each image patchline could not assess could not be (the others are absent)."""
        ...


def current_images(store: Store) -> dict[str, CurrentImage]:
    """Each recipe's current image: its latest good build in the store."""
    return {name: CurrentImage(config_digest=b.config_digest, manifest_digest=b.manifest_digest,
                               input_hash=b.input_hash, bases=b.bases, built_at=b.finished_at.timestamp(),
                               source_date_epoch=b.source_date_epoch)
            for name, b in store.current_builds().items() if b.config_digest}


def is_security(p: PendingRow) -> bool:
    return p.suite.endswith("-security") or bool(p.cves)


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def make_plan(graph: BuildGraph, state: PlanState, hashes: Mapping[str, str], *,
              pending_policy: PendingPolicy = "security", now: float | None = None,
              force: Collection[str] = (), only: Collection[str] | None = None,
              refused: Mapping[str, str] | None = None) -> RebuildPlan:
    """Plan the rebuild of ``graph``; ``hashes`` are the recipes' input hashes as they are now.

    ``force`` marks recipes dirty whatever their state; ``only`` limits the plan to those recipes and
    their dependants (a base outside it is not rebuilt even when dirty). ``refused`` (recipe -> why, a
    policy's verdict) are not planned, and neither is anything built FROM them.
    """
    started = time.perf_counter()
    now = time.time() if now is None else now
    current = state.current()
    digests = {c.config_digest for c in current.values()}
    pending = state.pending(digests) if pending_policy != "none" else {}
    fixable = state.fixable(digests)
    unknown = state.unknown(digests)
    resolved: dict[str, str] = {}
    unresolvable: dict[str, str] = {}
    for name in graph.order:
        for ref in graph.external[name]:
            if ref in resolved or ref in unresolvable:
                continue
            try:
                resolved[ref] = state.resolve(ref)
            except Error as exc:
                unresolvable[ref] = str(exc)

    dirty: dict[str, PlanItem] = {}
    skipped: list[tuple[str, str]] = []
    clean: list[str] = []
    cannot_assess: list[tuple[str, str]] = []
    in_scope = None if only is None else _with_dependants(graph, only)
    for name in graph.order:
        recipe = graph.recipes[name]
        if in_scope is not None and name not in in_scope:
            continue
        if refused and name in refused:
            skipped.append((name, refused[name]))
            continue
        missing = [ref for ref in graph.external[name] if ref in unresolvable]
        if missing:
            skipped.append((name, f"base {missing[0]}: {unresolvable[missing[0]]}"))
            continue
        blocked = [base for _, base in graph.local[name] if any(s == base for s, _ in skipped)]
        if blocked:
            skipped.append((name, f"its base {blocked[0]} cannot be planned"))
            continue
        cur = current.get(name)
        reasons: list[Reason] = []
        if name in force:
            reasons.append(Reason(ReasonCode.FORCED, "rebuild requested"))
        rebuilt = [base for _, base in graph.local[name] if base in dirty]
        if rebuilt:
            reasons.append(Reason(ReasonCode.BASE_REBUILT, f"built FROM {_names(rebuilt)}, rebuilt by this plan",
                                  tuple(rebuilt)))
        if cur is None:
            reasons.append(Reason(ReasonCode.NEVER_BUILT, "no build of it is recorded"))
        else:
            reasons.extend(_own_reasons(graph, name, cur, current, resolved, hashes, rebuilt, now,
                                        pending.get(cur.config_digest, []), fixable.get(cur.config_digest, []),
                                        pending_policy))
        why_unknown = unknown.get(cur.config_digest) if cur is not None else None
        if why_unknown and not reasons:
            cannot_assess.append((name, why_unknown))  # unknown is never clean; a rebuild would not verify
            continue
        if why_unknown:
            reasons.append(Reason(ReasonCode.CANNOT_ASSESS, f"the current image cannot be assessed: {why_unknown}"))
        if not reasons:
            clean.append(name)
            continue
        after = tuple(rebuilt)
        wave = 1 + max((dirty[b].wave for b in after), default=-1)
        dirty[name] = PlanItem(recipe=recipe, reasons=tuple(reasons), wave=wave, after=after, current=cur,
                               base_digests={ref: resolved[ref] for ref in graph.external[name]})
    position = {name: i for i, name in enumerate(graph.order)}
    items = sorted(dirty.values(), key=lambda i: (i.wave, position[i.name]))
    return RebuildPlan(items=tuple(items), recipes=len(graph.recipes), clean=tuple(clean), skipped=tuple(skipped),
                       cannot_assess=tuple(cannot_assess), seconds=time.perf_counter() - started)


def _own_reasons(graph: BuildGraph, name: str, cur: CurrentImage, current: Mapping[str, CurrentImage],
                 resolved: Mapping[str, str], hashes: Mapping[str, str], rebuilt: list[str], now: float,
                 pending: list[PendingRow], fixable: list[FixableRow], policy: PendingPolicy) -> list[Reason]:
    recipe = graph.recipes[name]
    reasons: list[Reason] = []
    if hashes.get(name) and cur.input_hash and hashes[name] != cur.input_hash:
        reasons.append(Reason(ReasonCode.RECIPE_CHANGED, "the recipe or its build context changed since the "
                              "last build"))
    moved: list[str] = []
    for ref in graph.external[name]:
        if cur.bases.get(ref) != resolved[ref]:  # moved upstream, or not a base of the current image
            moved.append(ref)
    for ref, base in graph.local[name]:
        if base in rebuilt:
            continue
        base_now = current.get(base)
        if base_now is not None and cur.bases.get(ref) not in (base_now.manifest_digest, base_now.config_digest):
            moved.append(ref)
    if moved:
        reasons.append(Reason(ReasonCode.BASE_UPDATED, f"base {_names(moved)} has a newer digest than the one the "
                              "current image was built from", tuple(moved)))
    wanted = [p for p in pending if policy == "all" or is_security(p)]
    if wanted:
        kind = "security update" if policy == "security" else "update"
        count = f"{len(wanted)} pending {kind}{'s' if len(wanted) != 1 else ''}"
        reasons.append(Reason(ReasonCode.PENDING_UPDATES, f"{count}: {_names([p.name for p in wanted])}",
                              tuple(p.name for p in wanted)))
    ids = sorted({f.advisory_id for f in fixable})
    if ids:
        reasons.append(Reason(ReasonCode.FIXABLE_ADVISORY, f"{len(ids)} advisor{'ies' if len(ids) != 1 else 'y'} "
                              f"with a fix available: {_names(ids)}", tuple(ids)))
    if recipe.max_age_days is not None:
        age = (now - cur.built_at) / 86400
        if age > recipe.max_age_days:
            reasons.append(Reason(ReasonCode.MAX_AGE, f"built {age:.0f} days ago (max_age_days = "
                                  f"{recipe.max_age_days})"))
    return reasons


def _with_dependants(graph: BuildGraph, names: Collection[str]) -> set[str]:
    unknown = [n for n in names if n not in graph.recipes]
    if unknown:
        raise ConfigError(f"no image named {unknown[0]!r} in the fleet")
    out: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out.add(name)
        todo.extend(graph.dependants[name])
    return out

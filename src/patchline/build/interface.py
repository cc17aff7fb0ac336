"""The build graph's and the rebuild's data: recipes, reasons, plans, results.

A :class:`Recipe` is one image of the fleet as ``patchline.toml`` defines it,
with its Containerfile parsed. A :class:`RebuildPlan` is the dirty set in build
order: every :class:`PlanItem` says why it is dirty (:class:`Reason`) and which
of the plan's other items it waits for. A :class:`BuildResult` is what one
build (or patch in place) ended with.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from patchline._config import ImageTest
    from patchline.build._containerfile import Containerfile
    from patchline.sign.interface import SignedImage


class RecipeKind(enum.StrEnum):
    RECIPE = "recipe"  # built from a context and a Containerfile
    PATCH = "patch"  # a third-party image with no recipe: patched in place


@dataclass(frozen=True, slots=True)
class Recipe:
    """One image of the fleet."""

    name: str
    kind: RecipeKind
    target: str  # registry reference pushed to (repository:tag)
    context: Path | None = None
    containerfile: Path | None = None
    args: Mapping[str, str] = field(default_factory=dict)
    build_target: str | None = None
    parsed: Containerfile | None = None
    image: str | None = None  # for PATCH: the upstream image
    max_age_days: int | None = None
    tests: tuple[ImageTest, ...] = ()
    network: str | None = None  # buildah --network of its RUN steps; None: [build] network

    def bases(self) -> tuple[str, ...]:
        """Every image this recipe's build uses (FROM and COPY --from of the built stage), or the patched image."""
        if self.kind is RecipeKind.PATCH:
            assert self.image is not None
            return (self.image,)
        assert self.parsed is not None
        return self.parsed.external_images()


class ReasonCode(enum.StrEnum):
    NEVER_BUILT = "never-built"
    BASE_REBUILT = "base-rebuilt"  # a base is rebuilt by this plan
    BASE_UPDATED = "base-updated"  # a base's digest differs from the one the current image was built from
    PENDING_UPDATES = "pending-updates"
    FIXABLE_ADVISORY = "fixable-advisory"
    RECIPE_CHANGED = "recipe-changed"
    MAX_AGE = "max-age"
    FORCED = "forced"
    CANNOT_ASSESS = "cannot-assess"  # patchline cannot check the current image: its rebuild cannot be verified


@dataclass(frozen=True, slots=True)
class Reason:
    code: ReasonCode
    detail: str
    items: tuple[str, ...] = ()  # package names, advisory IDs or bases behind it

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code.value, "detail": self.detail, "items": list(self.items)}


@dataclass(frozen=True, slots=True)
class CurrentImage:
    """What a recipe's last good build produced, and from what."""

    config_digest: str
    manifest_digest: str | None
    input_hash: str
    bases: Mapping[str, str]  # reference -> digest it was pinned to
    built_at: float  # POSIX seconds
    source_date_epoch: int | None = None


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One image to rebuild: why, after what, in which wave."""

    recipe: Recipe
    reasons: tuple[Reason, ...]
    wave: int  # 0 first; an item waits only for items of earlier waves
    after: tuple[str, ...]  # names of the plan's items it is built FROM
    current: CurrentImage | None = None
    base_digests: Mapping[str, str] = field(default_factory=dict)  # external bases resolved now

    @property
    def name(self) -> str:
        return self.recipe.name

    @property
    def propagated_only(self) -> bool:
        """True when the only reason is a base rebuilt by this plan (skip if that base comes out unchanged)."""
        return all(r.code is ReasonCode.BASE_REBUILT for r in self.reasons)

    def as_dict(self, *, order: int) -> dict[str, object]:
        """This item as the plan document lists it; ``order`` is its 1-based place in the plan."""
        return {"order": order, "name": self.name, "kind": self.recipe.kind.value, "target": self.recipe.target,
                "wave": self.wave, "after": list(self.after), "reasons": [r.as_dict() for r in self.reasons],
                "current": self.current.config_digest if self.current else None,
                "bases": dict(self.base_digests)}


@dataclass(frozen=True, slots=True)
class RebuildPlan:
    """The dirty set in build order; empty over a clean fleet."""

    items: tuple[PlanItem, ...]
    recipes: int  # how many recipes the fleet has
    clean: tuple[str, ...] = ()  # recipes not in the plan
    cannot_assess: tuple[tuple[str, str], ...] = ()  # (recipe, why): not in the plan, not clean either: unknown
    skipped: tuple[tuple[str, str], ...] = ()  # (recipe, why it could not be planned)
    seconds: float = 0.0

    @property
    def waves(self) -> tuple[tuple[PlanItem, ...], ...]:
        out: dict[int, list[PlanItem]] = {}
        for item in self.items:
            out.setdefault(item.wave, []).append(item)
        return tuple(tuple(out[w]) for w in sorted(out))

    def __bool__(self) -> bool:
        return bool(self.items)

    def as_dict(self) -> dict[str, object]:
        """The plan document (``patchline plan --json``, schema patchline/plan/v1, without its schema key)."""
        return {"recipes": self.recipes, "items": [i.as_dict(order=n) for n, i in enumerate(self.items, 1)],
                "waves": [[i.name for i in w] for w in self.waves], "clean": list(self.clean),
                "skipped": [{"name": n, "reason": r} for n, r in self.skipped],
                "cannot_assess": [{"name": n, "reason": r} for n, r in self.cannot_assess],
                "seconds": round(self.seconds, 4)}


class BuildStatus(enum.StrEnum):
    BUILT = "built"  # a new image, pushed
    UNCHANGED = "unchanged"  # the output is the current image: nothing to roll out
    FAILED = "failed"
    VERIFY_FAILED = "verify-failed"  # built, but the rescan still finds what it was for, or something new
    BLOCKED = "blocked"  # a base failed
    SKIPPED = "skipped"  # its only reason was a base that came out unchanged

    @property
    def ok(self) -> bool:
        return self in (BuildStatus.BUILT, BuildStatus.UNCHANGED, BuildStatus.SKIPPED)


@dataclass(frozen=True, slots=True)
class Verification:
    """The rescan of a new image against what its rebuild was for."""

    fixed: tuple[str, ...] = ()  # pending updates (package names) and advisory IDs now gone
    remaining: tuple[str, ...] = ()  # what the rebuild was for and is still there
    new: tuple[str, ...] = ()  # findings or pending updates the old image did not have
    pending_after: int = 0
    tests: tuple[Mapping[str, object], ...] = ()  # each integration test's outcome (TestOutcome.as_dict)

    @property
    def tests_failed(self) -> tuple[str, ...]:
        return tuple(str(t["name"]) for t in self.tests if not t["passed"])

    @property
    def passed(self) -> bool:
        return not self.remaining and not self.new and not self.tests_failed

    def why_failed(self) -> str:
        return "; ".join(filter(None, [
            f"still there: {', '.join(self.remaining)}" if self.remaining else "",
            f"new: {', '.join(self.new)}" if self.new else "",
            f"tests failed: {', '.join(self.tests_failed)}" if self.tests_failed else ""]))

    def as_dict(self) -> dict[str, object]:
        return {"fixed": list(self.fixed), "remaining": list(self.remaining), "new": list(self.new),
                "pending_after": self.pending_after, "tests": [dict(t) for t in self.tests],
                "passed": self.passed}


@dataclass(frozen=True, slots=True)
class BuildResult:
    name: str
    status: BuildStatus
    reasons: tuple[Reason, ...] = ()
    config_digest: str | None = None
    manifest_digest: str | None = None
    previous_digest: str | None = None
    pushed: str | None = None  # repository@digest
    bases: Mapping[str, str] = field(default_factory=dict)
    error: str = ""
    log: Path | None = None
    verification: Verification | None = None
    signed: SignedImage | None = None
    seconds: float = 0.0
    # seconds per phase: prepare, build, rescan, tests, push, sign (the rescan and the tests run at the same time)
    timings: Mapping[str, float] = field(default_factory=dict)
    started: float = 0.0  # time.monotonic() offsets within the rebuild, for the wall-time report
    finished: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "status": self.status.value, "reasons": [x.as_dict() for x in self.reasons],
                "config_digest": self.config_digest, "manifest_digest": self.manifest_digest, "pushed": self.pushed,
                "previous_digest": self.previous_digest, "bases": dict(self.bases), "error": self.error,
                "log": str(self.log) if self.log else None,
                "verification": self.verification.as_dict() if self.verification else None,
                "seconds": round(self.seconds, 2), "started": round(self.started, 2),
                "finished": round(self.finished, 2), "timings": dict(self.timings)}


@dataclass(frozen=True, slots=True)
class RebuildReport:
    run_id: str
    results: tuple[BuildResult, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.status.ok for r in self.results)

    def as_dict(self, *, plan: RebuildPlan) -> dict[str, object]:
        """The rebuild document (``patchline rebuild --json``, patchline/rebuild/v1, without its schema key)."""
        return {"run_id": self.run_id, "seconds": round(self.seconds, 2), "plan": plan.as_dict(),
                "results": [r.as_dict() for r in self.results]}

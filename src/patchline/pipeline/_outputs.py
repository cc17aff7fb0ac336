"""What each step of a patch run records: one frozen dataclass per step.

``as_dict()`` is the step's ``output`` in the run record (``docs/formats/pipeline.md``), ``from_dict()`` reads
a recorded one back. Reading is lenient: a key the record lacks (a step not run yet, a record written by a test
or an older patchline) takes its field's default, so the run's logic reads fields, never string keys.

Typical use::

    build = output_of(run, BuildOutput)
    print(build.failure() or "every image built", [r.name for r in build.results])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from patchline.pipeline.interface import Step

if TYPE_CHECKING:
    from patchline.store import RunRow

_NOT_BUILT = ("failed", "verify-failed", "blocked")


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A part of a step that could not be done, and why; the step goes on without it."""

    error: str

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.error}


@dataclass(frozen=True, slots=True)
class PolicyRow:
    """One verdict of ``[policy]`` a step recorded (``PolicyDecision.records``; at rollout also ``service``)."""

    stage: str  # plan, rollout
    subject: str  # the recipe at plan, the image repository@digest at rollout
    rule: str
    verdict: str  # pass, fail, excepted
    evidence: str
    excepted_by: str | None = None
    service: str | None = None  # rollout only

    def as_dict(self) -> dict[str, Any]:
        row = {"stage": self.stage, "subject": self.subject, "rule": self.rule, "verdict": self.verdict,
               "evidence": self.evidence, "excepted_by": self.excepted_by}
        return row if self.service is None else {**row, "service": self.service}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PolicyRow:
        return cls(stage=d.get("stage", ""), subject=d.get("subject", ""), rule=d.get("rule", ""),
                   verdict=d.get("verdict", ""), evidence=d.get("evidence", ""), excepted_by=d.get("excepted_by"),
                   service=d.get("service"))


def _policy(rows: Sequence[Mapping[str, Any]]) -> tuple[PolicyRow, ...]:
    return tuple(PolicyRow.from_dict(r) for r in rows)


# -- detect ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedUpdate:
    """One ecosystem's archive fetched from the OSV mirror."""

    ecosystem: str
    outcome: str  # updated, unchanged, failed
    reason: str | None
    revision: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"ecosystem": self.ecosystem, "outcome": self.outcome, "reason": self.reason,
                "revision": self.revision}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeedUpdate:
        return cls(d.get("ecosystem", ""), d.get("outcome", ""), d.get("reason"), d.get("revision"))


@dataclass(frozen=True, slots=True)
class FeedRefresh:
    """One advisory feed refreshed into the store."""

    feed: str
    revision: str
    added: int
    changed: int
    removed: int

    def as_dict(self) -> dict[str, Any]:
        return {"feed": self.feed, "revision": self.revision, "added": self.added, "changed": self.changed,
                "removed": self.removed}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeedRefresh:
        return cls(d.get("feed", ""), d.get("revision", ""), d.get("added", 0), d.get("changed", 0),
                   d.get("removed", 0))


@dataclass(frozen=True, slots=True)
class UpdatesRefresh:
    """Pending updates computed again from the update sources."""

    images: int
    pending: int
    images_with_pending: int
    kept_as_they_were: int  # images whose update sources could not all be read
    skipped: tuple[str, ...]  # "what: why", the first 20

    def as_dict(self) -> dict[str, Any]:
        return {"images": self.images, "pending": self.pending, "images_with_pending": self.images_with_pending,
                "kept_as_they_were": self.kept_as_they_were, "skipped": list(self.skipped)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UpdatesRefresh:
        return cls(d.get("images", 0), d.get("pending", 0), d.get("images_with_pending", 0),
                   d.get("kept_as_they_were", 0), tuple(d.get("skipped", ())))


@dataclass(frozen=True, slots=True)
class WorkloadsSeen:
    """What podman discovery saw."""

    running: int
    images: int
    inventoried: int

    def as_dict(self) -> dict[str, Any]:
        return {"running": self.running, "images": self.images, "inventoried": self.inventoried}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> WorkloadsSeen:
        return cls(d.get("running", 0), d.get("images", 0), d.get("inventoried", 0))


@dataclass(frozen=True, slots=True)
class DetectOutput:
    """Feeds and update sources refreshed, podman workloads observed; ``None``: not configured (not recorded)."""

    STEP: ClassVar[Step] = Step.DETECT
    feed_updates: tuple[FeedUpdate, ...] | Unavailable | None = None
    feeds: tuple[FeedRefresh, ...] | None = None
    updates: UpdatesRefresh | None = None
    workloads: WorkloadsSeen | Unavailable | None = None
    seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if isinstance(self.feed_updates, Unavailable):
            out["feed_updates"] = self.feed_updates.as_dict()
        elif self.feed_updates is not None:
            out["feed_updates"] = [u.as_dict() for u in self.feed_updates]
        if self.feeds is not None:
            out["feeds"] = [f.as_dict() for f in self.feeds]
        if self.updates is not None:
            out["updates"] = self.updates.as_dict()
        if self.workloads is not None:
            out["workloads"] = self.workloads.as_dict()
        return _with_seconds(out, self.seconds)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DetectOutput:
        fetched = d.get("feed_updates")
        feed_updates: tuple[FeedUpdate, ...] | Unavailable | None = (
            None if fetched is None else Unavailable(fetched.get("error", "")) if isinstance(fetched, Mapping)
            else tuple(FeedUpdate.from_dict(u) for u in fetched))
        workloads = d.get("workloads")
        seen: WorkloadsSeen | Unavailable | None = (
            None if workloads is None else Unavailable(workloads["error"]) if "error" in workloads
            else WorkloadsSeen.from_dict(workloads))
        feeds = d.get("feeds")
        updates = d.get("updates")
        return cls(feed_updates=feed_updates,
                   feeds=None if feeds is None else tuple(FeedRefresh.from_dict(f) for f in feeds),
                   updates=None if updates is None else UpdatesRefresh.from_dict(updates), workloads=seen,
                   seconds=d.get("seconds"))


# -- assess ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssessOutput:
    """What the fleet is exposed to."""

    STEP: ClassVar[Step] = Step.ASSESS
    exposed_items: int = 0  # distinct (kind, item, recipe) seen
    new_items: int = 0  # opened by this run
    closed_items: int = 0  # open rows no longer reported, closed by this run
    dirty: tuple[str, ...] = ()  # recipes
    pending_updates: int = 0
    images_by_severity: Mapping[str, int] = field(default_factory=dict)
    running_workloads: int = 0
    seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return _with_seconds({
            "exposed_items": self.exposed_items, "new_items": self.new_items, "closed_items": self.closed_items,
            "dirty": list(self.dirty), "pending_updates": self.pending_updates,
            "images_by_severity": dict(self.images_by_severity), "running_workloads": self.running_workloads,
        }, self.seconds)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AssessOutput:
        return cls(exposed_items=d.get("exposed_items", 0), new_items=d.get("new_items", 0),
                   closed_items=d.get("closed_items", 0), dirty=tuple(d.get("dirty", ())),
                   pending_updates=d.get("pending_updates", 0),
                   images_by_severity=dict(d.get("images_by_severity", {})),
                   running_workloads=d.get("running_workloads", 0), seconds=d.get("seconds"))


# -- plan -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedItem:
    """A recipe the policy rebuilds, in its wave, with why."""

    name: str
    wave: int | None = None
    reasons: tuple[Mapping[str, Any], ...] = ()  # Reason.as_dict(): code, detail, items
    after: tuple[str, ...] = ()  # the recipes it is built on

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "wave": self.wave, "reasons": [dict(r) for r in self.reasons],
                "after": list(self.after)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlannedItem:
        return cls(d.get("name", ""), d.get("wave"), tuple(d.get("reasons", ())), tuple(d.get("after", ())))


@dataclass(frozen=True, slots=True)
class PlanOutput:
    """What to rebuild under the policy, what waits for it, what cannot be planned."""

    STEP: ClassVar[Step] = Step.PLAN
    items: tuple[PlannedItem, ...] = ()
    held: Mapping[str, str] = field(default_factory=dict)  # recipe -> "policy: REASONS"
    skipped: tuple[tuple[str, str], ...] = ()  # (recipe, why)
    policy: tuple[PolicyRow, ...] = ()
    seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return _with_seconds({"items": [i.as_dict() for i in self.items], "held": dict(self.held),
                              "skipped": [list(s) for s in self.skipped],
                              "policy": [p.as_dict() for p in self.policy]}, self.seconds)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PlanOutput:
        return cls(items=tuple(PlannedItem.from_dict(i) for i in d.get("items", ())), held=dict(d.get("held", {})),
                   skipped=tuple((str(name), str(why)) for name, why in d.get("skipped", ())),
                   policy=_policy(d.get("policy", ())), seconds=d.get("seconds"))


# -- build ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuildResult:
    """One image the build step built, or found built by an earlier attempt of the step (``attempt``)."""

    name: str
    status: str  # built, unchanged, skipped, failed, verify-failed, blocked
    digest: str | None = None  # the manifest digest
    error: str = ""
    seconds: float = 0.0
    timings: Mapping[str, float] = field(default_factory=dict)  # seconds per phase
    reasons: tuple[Mapping[str, Any], ...] = ()
    started: float | None = None  # this attempt's builds: offsets within the rebuild
    finished: float | None = None
    attempt: int | None = None  # a build an earlier (killed) attempt of the step recorded

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "status": self.status, "digest": self.digest, "error": self.error,
                               "seconds": self.seconds, "timings": dict(self.timings)}
        if self.started is not None:
            out["started"] = self.started
        if self.finished is not None:
            out["finished"] = self.finished
        out["reasons"] = [dict(r) for r in self.reasons]
        if self.attempt is not None:
            out["attempt"] = self.attempt
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BuildResult:
        return cls(name=d.get("name", ""), status=d.get("status", ""), digest=d.get("digest"),
                   error=d.get("error", ""), seconds=d.get("seconds", 0.0), timings=dict(d.get("timings", {})),
                   reasons=tuple(d.get("reasons", ())), started=d.get("started"), finished=d.get("finished"),
                   attempt=d.get("attempt"))


def build_failure(results: Sequence[BuildResult]) -> str:
    """What failed in a build step: ``""`` when every image it needed is fine.

    Any image that failed, failed verification or was blocked by a failed base fails the run: its fix is not
    out, and the one line says which images and why (each image's error names the tool's own error line).
    """
    bad = [r for r in results if r.status in _NOT_BUILT]
    if not bad:
        return ""
    failed = sum(r.status != "blocked" for r in bad)
    head = f"{failed} of {len(results)} image(s) failed" + (f", {len(bad) - failed} blocked" if failed < len(bad)
                                                            else "")
    return head + ": " + "; ".join(f"{r.name} {r.status}: {r.error[:600]}" for r in bad)


@dataclass(frozen=True, slots=True)
class BuildOutput:
    """The build run (none when there was nothing to build) and every image's result."""

    STEP: ClassVar[Step] = Step.BUILD
    run_id: str | None = None
    results: tuple[BuildResult, ...] = ()
    seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        head = {} if self.run_id is None else {"run_id": self.run_id}
        return _with_seconds({**head, "results": [r.as_dict() for r in self.results]}, self.seconds)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BuildOutput:
        return cls(run_id=d.get("run_id"), results=tuple(BuildResult.from_dict(r) for r in d.get("results", ())),
                   seconds=d.get("seconds"))

    def failure(self) -> str:
        """See :func:`build_failure`."""
        return build_failure(self.results)


# -- rollout --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceRollout:
    """What the rollout step did to one service."""

    # current, awaiting-approval, quiet-hours, skipped, refused, or the rollout's succeeded/rolled-back/failed
    state: str
    image: str | None = None  # repository@digest it was to run (None: skipped, no image to run)
    why: str | None = None  # None: nothing to say (current, quiet-hours)
    rollout_id: int | None = None  # when a rollout ran

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state}
        if self.image is not None:
            out["image"] = self.image
        if self.rollout_id is not None:
            out["rollout_id"] = self.rollout_id
        if self.why is not None:
            out["why"] = self.why
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ServiceRollout:
        return cls(state=d.get("state", ""), image=d.get("image"), why=d.get("why"), rollout_id=d.get("rollout_id"))


@dataclass(frozen=True, slots=True)
class RolloutOutput:
    """Each service's outcome, and every rollout-time verdict of the policy."""

    STEP: ClassVar[Step] = Step.ROLLOUT
    services: Mapping[str, ServiceRollout] = field(default_factory=dict)
    policy: tuple[PolicyRow, ...] = ()
    seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return _with_seconds({"services": {n: s.as_dict() for n, s in self.services.items()},
                              "policy": [p.as_dict() for p in self.policy]}, self.seconds)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RolloutOutput:
        return cls(services={n: ServiceRollout.from_dict(s) for n, s in d.get("services", {}).items()},
                   policy=_policy(d.get("policy", ())), seconds=d.get("seconds"))

    def awaiting_approval(self) -> list[str]:
        """The services whose rollout waits for ``patchline approve``."""
        return [n for n, s in self.services.items() if s.state == "awaiting-approval"]


# -- report ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StillExposed:
    """A patch-item row not patched yet."""

    kind: str  # advisory, update
    item: str
    recipe: str
    state: str
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "item": self.item, "recipe": self.recipe, "state": self.state, "why": self.why}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StillExposed:
        return cls(d.get("kind", ""), d.get("item", ""), d.get("recipe", ""), d.get("state", ""), d.get("why", ""))


@dataclass(frozen=True, slots=True)
class ReportOutput:
    """Patch-item rows by state after the run, and the events that could not be delivered."""

    STEP: ClassVar[Step] = Step.REPORT
    open: int = 0
    deployed: int = 0
    closed: int = 0
    event_problems: tuple[str, ...] = ()
    still_exposed: tuple[StillExposed, ...] = ()  # up to 200
    seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return _with_seconds({"open": self.open, "deployed": self.deployed, "closed": self.closed,
                              "event_problems": list(self.event_problems),
                              "still_exposed": [e.as_dict() for e in self.still_exposed]}, self.seconds)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReportOutput:
        return cls(open=d.get("open", 0), deployed=d.get("deployed", 0), closed=d.get("closed", 0),
                   event_problems=tuple(d.get("event_problems", ())),
                   still_exposed=tuple(StillExposed.from_dict(e) for e in d.get("still_exposed", ())),
                   seconds=d.get("seconds"))


# -- any step ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FailedStep:
    """The output of a step that raised: its error and how long it ran."""

    error: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.error, "seconds": self.seconds}


StepOutput = DetectOutput | AssessOutput | PlanOutput | BuildOutput | RolloutOutput | ReportOutput
OutputT = TypeVar("OutputT", DetectOutput, AssessOutput, PlanOutput, BuildOutput, RolloutOutput, ReportOutput)

OUTPUT_TYPES: Mapping[Step, type[StepOutput]] = {
    Step.DETECT: DetectOutput,
    Step.ASSESS: AssessOutput,
    Step.PLAN: PlanOutput,
    Step.BUILD: BuildOutput,
    Step.ROLLOUT: RolloutOutput,
    Step.REPORT: ReportOutput,
}


def output_of(run: RunRow, kind: type[OutputT]) -> OutputT:
    """The output ``run`` recorded for the step of ``kind``; its defaults when the step has not run."""
    row = next((s for s in run.steps if s.step == kind.STEP.value), None)
    return kind.from_dict(row.output if row is not None else {})


def _with_seconds(out: dict[str, Any], seconds: float | None) -> dict[str, Any]:
    """A done step's output ends with ``seconds``, its last attempt's duration, measured by the runner."""
    return out if seconds is None else {**out, "seconds": seconds}

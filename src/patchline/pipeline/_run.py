"""The patch run: detect -> assess -> plan -> build (verify, sign, publish) -> rollout -> report, durable.

Each step is claimed with a lease in the store before it runs and recorded when
it ends; a run killed at any point is resumed by the next start, from the first
step that is not done. Every step is idempotent: it recomputes what is left
from the store (plan again, rebuild what is still dirty, roll out what does not
run the current build yet), so a step interrupted halfway does the rest, never
the same work twice. Two patchline processes never run the same step: the
lease is taken with one conditional update.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from patchline import _clock
from patchline._config import Config, ServiceConfig
from patchline._owner import owner_dead, owner_id
from patchline.errors import Error, RunInProgress, StoreError
from patchline.events.interface import EventDraft, EventType
from patchline.pipeline._outputs import (
    AssessOutput,
    BuildOutput,
    BuildResult,
    DetectOutput,
    FailedStep,
    FeedRefresh,
    FeedUpdate,
    PlannedItem,
    PlanOutput,
    PolicyRow,
    ReportOutput,
    RolloutOutput,
    ServiceRollout,
    StepOutput,
    StillExposed,
    Unavailable,
    UpdatesRefresh,
    WorkloadsSeen,
    output_of,
)
from patchline.pipeline.interface import STEPS, Step
from patchline.rollout import digest_of
from patchline.store import BuildRow, RunRow, Store

if TYPE_CHECKING:
    from patchline.policy import PolicyDecision

Say = Callable[[str], None]
Inputs = dict[str, Any]  # what a step read and produced, merged into the run's ``inputs``
# Fault injection for the crash tests (and for anyone checking a deployment's recovery): the process
# SIGKILLs itself right after this step's result is committed.
CRASH_AFTER_STEP = "PATCHLINE_CRASH_AFTER_STEP"
_SEVERITY = {"none": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


@dataclass(frozen=True, slots=True)
class RunOptions:
    trigger: str = "once"
    triggered_by: str = ""
    lease_seconds: float = 300.0


class _Runner:
    def __init__(self, config: Config, store: Store, run_id: int, say: Say, stop: threading.Event | None,
                 lease_seconds: float) -> None:
        self.config = config
        self.store = store
        self.run_id = run_id
        self.say = say
        self.stop = stop
        self.owner = owner_id()
        self.lease = lease_seconds

    # -- the steps -----------------------------------------------------------------

    def detect(self) -> tuple[DetectOutput, Inputs]:
        """Refresh feeds and update sources; observe what runs on podman."""
        from patchline.assess import options_from_config
        from patchline.fleet import DiscoverOptions, discover_podman, refresh_feeds, refresh_updates

        feed_updates: tuple[FeedUpdate, ...] | Unavailable | None = None
        feeds: tuple[FeedRefresh, ...] | None = None
        updates: UpdatesRefresh | None = None
        workloads: WorkloadsSeen | Unavailable
        inputs: Inputs = {}
        if self.config.advisories.mirror is not None:  # fetch OSV's archives first: the feeds below read them
            from patchline.advisories import update_configured_feeds

            try:
                _dir, fetched = update_configured_feeds(self.config.advisories, progress=self.say)
                feed_updates = tuple(FeedUpdate(u.ecosystem, u.outcome.value, u.reason,
                                                u.revision.revision if u.revision else None) for u in fetched)
            except Error as exc:  # a mirror that cannot be used: the feeds already fetched are still read
                feed_updates = Unavailable(str(exc))
        options = options_from_config(self.config)
        if options.feeds:
            refreshed = refresh_feeds(self.store, options.feeds, progress=self.say)
            feeds = tuple(FeedRefresh(f.feed, f.revision, f.advisories_added, f.advisories_changed,
                                      f.advisories_removed) for f in refreshed)
            inputs["feed_revisions"] = {f.feed: f.revision for f in refreshed}
        if options.updates:
            pending = refresh_updates(self.store, options, progress=self.say)
            updates = UpdatesRefresh(pending.images, pending.pending, pending.images_with_pending, len(pending.kept),
                                     tuple([f"{what}: {why}" for what, why in pending.skipped][:20]))
            inputs["update_revisions"] = {sources: revision for sources, revision, _old in pending.groups}
        try:
            found = discover_podman(self.store, options=DiscoverOptions())
            workloads = WorkloadsSeen(found.workloads, found.images, len(found.inventoried))
        except Error as exc:
            workloads = Unavailable(str(exc))
        return DetectOutput(feed_updates=feed_updates, feeds=feeds, updates=updates, workloads=workloads), inputs

    def _plan(self, *, emit_refusals: bool = False) -> Any:
        """The fleet's plan; only the plan step sends the policy's refusals (assess and build re-plan)."""
        from patchline.build import plan_fleet

        return plan_fleet(self.config, self.store, emit_refusals=emit_refusals)

    def _services_of(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for service in self.config.services:
            out.setdefault(service.image, []).append(service.name)
        return out

    def assess(self) -> tuple[AssessOutput, Inputs]:
        """What the fleet is exposed to: every reason to patch, noted once with when it was first seen."""
        from patchline.build import ReasonCode

        fleet = self._plan()
        items: list[tuple[str, str, str]] = []
        for item in fleet.plan.items:
            for reason in item.reasons:
                if reason.code is ReasonCode.PENDING_UPDATES:
                    items += [("update", x, item.name) for x in reason.items]
                elif reason.code is ReasonCode.FIXABLE_ADVISORY:
                    items += [("advisory", x, item.name) for x in reason.items]
        new = self.store.note_patch_items(items, run_id=self.run_id, services=self._services_of())
        closed = self.store.close_vanished_patch_items(items, run_id=self.run_id)
        summary = self.store.fleet()
        return AssessOutput(exposed_items=len(set(items)), new_items=new, closed_items=closed,
                            dirty=tuple(i.name for i in fleet.plan.items), pending_updates=summary.pending_updates,
                            images_by_severity=summary.images_by_severity,
                            running_workloads=summary.running_workloads), {}

    def _wanted(self, plan: Any) -> tuple[set[str], dict[str, str]]:
        """The plan's items the policy rebuilds automatically, and why the others wait."""
        from patchline.build import ReasonCode

        policy = self.config.pipeline
        reasons = set(policy.rebuild_reasons)
        floor = _SEVERITY[policy.min_severity]
        fixable = self.store.fixable_for([i.current.config_digest for i in plan.items if i.current])
        wanted: set[str] = set()
        held: dict[str, str] = {}
        for item in plan.items:
            ok = []
            for reason in item.reasons:
                if reason.code.value not in reasons:
                    continue
                if reason.code is ReasonCode.FIXABLE_ADVISORY and floor and item.current is not None:
                    worst = max((f.severity for f in fixable.get(item.current.config_digest, [])), default=0)
                    if worst < floor:
                        continue
                ok.append(reason)
            if ok or any(a in wanted for a in item.after):
                wanted.add(item.name)
            else:
                held[item.name] = "policy: " + ", ".join(r.code.value for r in item.reasons)
        return wanted, held

    def plan(self) -> tuple[PlanOutput, Inputs]:
        fleet = self._plan(emit_refusals=True)
        wanted, held = self._wanted(fleet.plan)
        return PlanOutput(items=tuple(PlannedItem(i.name, i.wave, tuple(r.as_dict() for r in i.reasons), tuple(i.after))
                                      for i in fleet.plan.items if i.name in wanted),
                          held=held, skipped=tuple(fleet.plan.skipped),
                          policy=tuple(PolicyRow.from_dict(row) for d in fleet.policy for row in d.records("plan"))), {}

    def build(self) -> tuple[BuildOutput, Inputs]:
        """Rebuild what is still dirty (verify, sign and publish happen per image inside).

        A build step resumed after a kill finds what its earlier attempts built (their build run IDs are
        derived from the run and the attempt): those images are no longer dirty, so they are not rebuilt, but
        their patch items are moved to ``rebuilt`` at the time those builds finished.
        """
        from patchline.build import BuildStatus, clean_leftovers, rebuild, rebuild_options

        run = self.store.run(self.run_id)
        attempt = run.steps[STEPS.index(Step.BUILD)].attempts
        earlier = self._built_before(run, attempt)
        fleet = self._plan()
        wanted, _held = self._wanted(fleet.plan)
        plan = replace(fleet.plan, items=tuple(i for i in fleet.plan.items if i.name in wanted))
        results: list[BuildResult] = []
        built: dict[str, str | None] = {}
        build_run: str | None = None
        if plan.items:
            report = rebuild(plan, fleet.graph, self.store, rebuild_options(self.config, say=self.say),
                             hashes=fleet.hashes, progress=self.say, run_id=build_run_id(run, attempt))
            build_run = report.run_id  # (its ``seconds`` are not recorded: the output's are the whole step's)
            this_time = report.results
        else:
            left = clean_leftovers()  # rebuild() does it when there is something to build
            if left:
                self.say(left.summary())
            this_time = ()
        for name, (b_attempt, b) in earlier.items():
            if name in {r.name for r in this_time}:
                continue
            fixed = set(b.verification.get("fixed", []))
            self.store.update_patch_items(b.recipe, items=None if not fixed else [
                (k, i) for k in ("update", "advisory") for i in fixed], state="rebuilt", digest=b.manifest_digest,
                when=b.finished_at)
            results.append(BuildResult(name=b.recipe, status=b.status, digest=b.manifest_digest, error=b.error,
                                       seconds=round((b.finished_at - b.started_at).total_seconds(), 2),
                                       reasons=tuple(b.reasons), attempt=b_attempt))
            built[b.recipe] = b.manifest_digest
        for r in this_time:
            if r.status is BuildStatus.BUILT:
                fixed = set(r.verification.fixed) if r.verification else set()
                self.store.update_patch_items(r.name, items=None if not fixed else [
                    (k, i) for k in ("update", "advisory") for i in fixed], state="rebuilt",
                    digest=r.manifest_digest)
            elif not r.status.ok:
                self.store.update_patch_items(r.name, state="stuck", why=f"build {r.status}: {r.error}"[:500])
            results.append(BuildResult(name=r.name, status=r.status.value, digest=r.manifest_digest, error=r.error,
                                       seconds=round(r.seconds, 2), timings=dict(r.timings),
                                       reasons=tuple(x.as_dict() for x in r.reasons), started=round(r.started, 3),
                                       finished=round(r.finished, 3)))
            if r.manifest_digest:
                built[r.name] = r.manifest_digest
        return BuildOutput(run_id=build_run, results=tuple(results)), ({"built": built} if built else {})

    def _built_before(self, run: RunRow, attempt: int) -> dict[str, tuple[int, BuildRow]]:
        """recipe -> (attempt, the image an earlier attempt of this run's build step built and recorded, the
        latest)."""
        rows = [(earlier, b) for earlier in range(1, attempt)
                for b in self.store.builds(run_id=build_run_id(run, earlier), limit=100_000)]
        latest: dict[str, tuple[int, BuildRow]] = {}
        for earlier, b in sorted(rows, key=lambda row: row[1].id):
            latest[b.recipe] = (earlier, b)
        return {name: (earlier, b) for name, (earlier, b) in latest.items() if b.status == "built"}

    def rollout(self) -> tuple[RolloutOutput, Inputs]:
        """Every service whose replicas do not run its recipe's current build gets it (policy permitting)."""
        from patchline.rollout import majority_image, make_target, resolve_image, rollout_service

        policy = self.config.pipeline
        approved = self.store.approvals(self.run_id)
        todo = []
        out: dict[str, ServiceRollout] = {}
        if not self.config.services:
            return RolloutOutput(), {"deployed": {}}
        # One target (one signature policy) for every service, and one look at all their replicas.
        target = make_target(self.config)
        seen = target.replicas_of([s.name for s in self.config.services])
        for service in self.config.services:
            try:
                image = resolve_image(self.config, self.store, service, None)
            except Error as exc:
                out[service.name] = ServiceRollout("skipped", why=str(exc))
                continue
            replicas = seen[service.name]
            running = majority_image(replicas)
            if running == image and len(replicas) >= service.replicas:
                out[service.name] = ServiceRollout("current", image)
                continue
            if not service.auto_rollout and service.name not in approved:
                out[service.name] = ServiceRollout("awaiting-approval", image,
                                                   why=f"awaiting approval (patchline approve {self.run_id})")
                continue
            if _in_quiet_hours(policy.quiet_hours):
                out[service.name] = ServiceRollout("quiet-hours", image)
                continue
            todo.append((service, image))

        def one(pair: tuple[Any, str]) -> tuple[str, ServiceRollout, list[PolicyRow]]:
            service, image = pair
            decided: list[PolicyDecision] = []
            state: ServiceRollout
            try:
                result = rollout_service(self.config, self.store, service.name, to=image, target=target,
                                         progress=self.say, on_decision=decided.append)
            except Error as exc:
                state = ServiceRollout("refused", image, why=str(exc))
            else:
                state = ServiceRollout(result.state.value, image, why=result.reason, rollout_id=result.rollout_id)
            return service.name, state, [replace(PolicyRow.from_dict(row), service=service.name) for d in decided
                                         for row in d.records("rollout")]

        decisions: list[PolicyRow] = []
        with ThreadPoolExecutor(max_workers=max(1, policy.max_parallel_rollouts)) as pool:
            for name, state, rows in pool.map(one, todo):
                out[name] = state
                decisions += rows
        for recipe, outcome in recipe_outcomes(self.config.services, out).items():
            if outcome.state == "deployed":
                self.store.update_patch_items(recipe, state="deployed", digest=outcome.digest,
                                              from_states=("rebuilt",))
            elif outcome.state == "stuck":
                self.store.update_patch_items(recipe, state="stuck", why=outcome.why[:500],
                                              from_states=outcome.from_states)
            elif outcome.why:
                self.store.note_patch_why(recipe, why=outcome.why[:500])
        return RolloutOutput(out, tuple(decisions)), {"deployed": {n: s.image for n, s in out.items()}}

    def report(self) -> tuple[ReportOutput, Inputs]:
        from patchline.events import deliver_configured

        delivery = deliver_configured(self.store, self.config.events)
        problems = [f"{s.name}: {s.error} ({s.backlog} kept in the outbox)" for s in delivery.sinks
                    if s.failed] if delivery is not None else []
        for line in problems:
            self.say(f"events: {line}")
        items = self.store.patch_items()
        # An image no service runs (a base, a batch image) is patched once it is rebuilt.
        open_items = [i for i in items if not (i.state in ("deployed", "closed")
                                               or (i.state == "rebuilt" and not i.services))]
        closed = sum(i.state == "closed" for i in items)
        return ReportOutput(open=len(open_items), deployed=len(items) - len(open_items) - closed, closed=closed,
                            event_problems=tuple(problems),
                            still_exposed=tuple(StillExposed(i.kind, i.item, i.recipe, i.state, i.why)
                                                for i in open_items[:200])), {}

    # -- driving ---------------------------------------------------------------------

    def step(self, step: Step) -> None:
        run = self.store.run(self.run_id)
        row = next(s for s in run.steps if s.step == step.value)
        if row.state == "done":
            return
        dead = [row.owner] if row.owner and owner_dead(row.owner) else []
        if not self.store.claim_step(self.run_id, step.value, owner=self.owner, lease_seconds=self.lease,
                                     dead_owners=dead):
            until = f" (lease until {row.lease_until:%H:%M:%S})" if row.lease_until else ""
            raise RunInProgress(f"run {self.run_id} is being driven by {row.owner}: it holds step {step.value}"
                                f"{until}")
        if row.attempts:
            self.say(f"run {self.run_id}: resuming at {step.value} (attempt {row.attempts + 1})")
        keep = _LeaseKeeper(self.store, self.run_id, step.value, self.owner, self.lease)
        t0 = time.monotonic()
        try:
            with keep:
                output, inputs = _STEP_WORK[step](self)
        except Error as exc:
            failed = FailedStep(str(exc), round(time.monotonic() - t0, 2))
            self.store.finish_step(self.run_id, step.value, owner=self.owner, state="failed",
                                   output=failed.as_dict())
            raise
        done = replace(output, seconds=round(time.monotonic() - t0, 2))
        self.store.finish_step(self.run_id, step.value, owner=self.owner, state="done", output=done.as_dict(),
                               inputs=inputs)
        if os.environ.get(CRASH_AFTER_STEP) == step.value:
            os.kill(os.getpid(), signal.SIGKILL)

    def drive(self) -> RunRow:
        for step in STEPS:
            if self.stop is not None and self.stop.is_set():
                self.say(f"run {self.run_id}: stopping before {step.value} (it resumes on the next start)")
                return self.store.run(self.run_id)
            self.say(f"run {self.run_id}: {step.value}")
            try:
                self.step(step)
            except RunInProgress:
                raise  # not ours to finish: the run stays with the process that holds it
            except Error as exc:
                self.store.finish_run(self.run_id, state="failed", summary=_summary(self.store.run(self.run_id)),
                                      error=f"{step.value}: {exc}", events=[EventDraft(
                                          EventType.RUN_FINISHED, f"run {self.run_id}",
                                          {"run_id": self.run_id, "state": "failed", "error": str(exc)})])
                self.deliver_quietly()
                return self.store.run(self.run_id)
        run = self.store.run(self.run_id)
        waiting = output_of(run, RolloutOutput).awaiting_approval()
        # Every step ran (one failed image never stops the others), but a fix that is not out fails the run.
        failure = output_of(run, BuildOutput).failure()
        state = "failed" if failure else "awaiting-approval" if waiting else "succeeded"
        error = f"{Step.BUILD.value}: {failure}" if failure else ""
        data: dict[str, Any] = {"run_id": self.run_id, "state": state, "awaiting_approval": waiting}
        if error:
            data["error"] = error
        self.store.finish_run(self.run_id, state=state, summary=_summary(run), error=error, events=[EventDraft(
            EventType.RUN_FINISHED, f"run {self.run_id}", data)])
        self.deliver_quietly()
        return self.store.run(self.run_id)

    def deliver_quietly(self) -> None:
        """``run.finished`` is written after the report step delivered the rest: send it too (or leave it queued)."""
        from patchline.events import deliver_configured

        try:
            deliver_configured(self.store, self.config.events)
        except Error as exc:
            self.say(f"events: {exc}")


# What each step does, in one table: the runner claims the step, runs this, and records its output.
_STEP_WORK: Mapping[Step, Callable[[_Runner], tuple[StepOutput, Inputs]]] = {
    Step.DETECT: _Runner.detect,
    Step.ASSESS: _Runner.assess,
    Step.PLAN: _Runner.plan,
    Step.BUILD: _Runner.build,
    Step.ROLLOUT: _Runner.rollout,
    Step.REPORT: _Runner.report,
}


class _LeaseKeeper:
    """Renews a step's lease while it runs, so a long build is not taken over; stops with the step."""

    def __init__(self, store: Store, run_id: int, step: str, owner: str, lease: float) -> None:
        self.args = (store, run_id, step, owner, lease)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="patchline-lease")

    def _run(self) -> None:
        store, run_id, step, owner, lease = self.args
        while not self.done.wait(lease / 3):
            try:
                store.renew_lease(run_id, step, owner=owner, lease_seconds=lease)
            except Error:
                continue

    def __enter__(self) -> _LeaseKeeper:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


@dataclass(frozen=True, slots=True)
class RecipeOutcome:
    """What a rollout step means for one recipe's patch items."""

    state: str  # deployed, stuck, or "" (unchanged; ``why`` says what it waits for, if anything)
    why: str = ""
    digest: str | None = None  # deployed: the manifest digest every service now runs
    from_states: tuple[str, ...] = ("rebuilt",)


_DONE = ("current", "succeeded")


def recipe_outcomes(services: Sequence[ServiceConfig], out: Mapping[str, ServiceRollout]
                    ) -> dict[str, RecipeOutcome]:
    """Each recipe's outcome from its services' (``out``: service -> the rollout step's state for it).

    A recipe's items are deployed once *every* service running it runs its build: with two services on one
    recipe, the first to succeed does not make the item patched while the other still runs the old image.
    A refusal or a failed rollout of any of them makes the items stuck, naming the service.
    """
    by_recipe: dict[str, list[tuple[str, ServiceRollout]]] = {}
    for service in services:
        if service.name in out:
            by_recipe.setdefault(service.image, []).append((service.name, out[service.name]))
    outcomes: dict[str, RecipeOutcome] = {}
    for recipe, states in by_recipe.items():
        refused = [(n, s) for n, s in states if s.state == "refused"]
        failed = [(n, s) for n, s in states if s.state not in (*_DONE, "refused", "awaiting-approval",
                                                                "quiet-hours", "skipped")]
        images = {s.image for _n, s in states}
        if refused:
            name, s = refused[0]
            outcomes[recipe] = RecipeOutcome("stuck", f"rollout refused ({name}): {s.why or ''}",
                                             from_states=("rebuilt", "open"))
        elif failed:
            name, s = failed[0]
            outcomes[recipe] = RecipeOutcome("stuck", f"rollout {s.state} ({name}): {s.why or ''}")
        elif all(s.state in _DONE for _n, s in states) and len(images) == 1:
            outcomes[recipe] = RecipeOutcome("deployed", digest=digest_of(str(images.pop())))
        else:
            waiting = [s.why for _n, s in states if s.state == "awaiting-approval" and s.why]
            if not waiting and any(s.state == "quiet-hours" for _n, s in states):
                waiting = ["quiet hours: rolled out when they end"]
            outcomes[recipe] = RecipeOutcome("", waiting[0] if waiting else "")
    return outcomes


def _in_quiet_hours(windows: Sequence[str], now: dt.datetime | None = None) -> bool:
    """``"22:00-06:00"`` windows (UTC) in which nothing is rolled out."""
    t = (now or _clock.now()).time()
    for window in windows:
        start_s, _, end_s = window.partition("-")
        start, end = dt.time.fromisoformat(start_s), dt.time.fromisoformat(end_s)
        if (start <= t < end) if start <= end else (t >= start or t < end):
            return True
    return False


def build_run_id(run: RunRow, attempt: int) -> str:
    """The build run of one attempt of a run's build step (builds are recorded, and their logs kept, under it)."""
    return f"{run.started_at:%Y%m%dT%H%M%SZ}-run{run.id}.{attempt}"


def _summary(run: RunRow) -> dict[str, Any]:
    return {s.step: {"state": s.state, "seconds": s.output.get("seconds"), "attempts": s.attempts}
            for s in run.steps}


def run_once(config: Config, store: Store, *, options: RunOptions | None = None, progress: Say | None = None,
             stop: threading.Event | None = None) -> RunRow:
    """One patch run: resume the unfinished one if there is one, else start a new one."""
    options = options or RunOptions()
    say = progress or (lambda _m: None)
    unfinished = store.runs(unfinished=True, limit=1)
    if unfinished:
        run_id = unfinished[0].id
        say(f"run {run_id} was interrupted at {unfinished[0].step}: resuming it")
    else:
        run_id = store.start_run(trigger=options.trigger, triggered_by=options.triggered_by or owner_id(),
                                 steps=[s.value for s in STEPS])
        say(f"run {run_id} started ({options.trigger})")
    return _Runner(config, store, run_id, say, stop, options.lease_seconds).drive()


def approve(config: Config, store: Store, run_id: int, services: Sequence[str], *, approved_by: str,
            progress: Say | None = None) -> RunRow:
    """Approve services' rollouts in a run waiting for it, and finish the run."""
    run = store.run(run_id)
    names = list(services) or sorted(output_of(run, RolloutOutput).awaiting_approval())
    if not names:
        raise StoreError(f"run {run_id} waits for no approval")
    for name in names:
        store.approve(run_id, name, approved_by=approved_by)
    store.reopen_run(run_id, [Step.ROLLOUT.value, Step.REPORT.value])
    return _Runner(config, store, run_id, progress or (lambda _m: None), None, 300.0).drive()


def run_forever(config: Config, store: Store, *, interval: float, stop: threading.Event,
                options: RunOptions | None = None, progress: Say | None = None,
                on_run: Callable[[RunRow], None] | None = None) -> None:
    """Run on an interval and whenever `patchline trigger` asks; SIGTERM (``stop``) ends after the current step."""
    base = options or RunOptions(trigger="interval")
    while not stop.is_set():
        triggered = store.pending_triggers() > 0
        run = run_once(config, store, options=RunOptions("manual" if triggered else base.trigger,
                                                         base.triggered_by, base.lease_seconds),
                       progress=progress, stop=stop)
        if on_run is not None:
            on_run(run)
        deadline = time.monotonic() + interval
        while not stop.is_set() and time.monotonic() < deadline:
            if store.pending_triggers():
                break
            stop.wait(min(1.0, max(0.0, deadline - time.monotonic())))


def step_outputs(run: RunRow) -> Mapping[str, Mapping[str, Any]]:
    return {s.step: s.output for s in run.steps}

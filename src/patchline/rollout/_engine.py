"""The rollout engine: replaces a service's replicas strategy by strategy, health-gated, durable and resumable.

Every step is written to the store before and after it happens (the rollout's
state and each replica's), so a patchline killed at any point is resumed by the
next one from the record: a replica that was being replaced is replaced again
(starting a replica is idempotent: its container name is its slot), one that is
ready is left alone. Replicas are replaced at most ``max_unavailable`` at a
time, so a kill never takes more than that many down. A replica that fails its
health check or the canary's bake rolls every replica back to the image it ran
before, and the new digest becomes unpromotable.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from patchline import _clock
from patchline._owner import owner_dead, owner_id
from patchline.errors import Error, RolloutError, SignatureRefused, UnpromotableError
from patchline.events.interface import EventDraft, EventType
from patchline.rollout.interface import Replica, RolloutState, RolloutTarget, ServiceSpec, Strategy
from patchline.store import RolloutRow, Store

Progress = Callable[[str], None]

# A driver that has not written to its rollout for this long is presumed gone (another host, or a hang).
STALE_SECONDS = 120.0
_HEARTBEAT_EVERY = 5.0


@dataclass(frozen=True, slots=True)
class RolloutPlan:
    """What a rollout does: the service, where to, how."""

    spec: ServiceSpec
    to_image: str  # repository@digest
    strategy: Strategy
    max_unavailable: int = 1
    bake_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class RolloutResult:
    rollout_id: int
    service: str
    state: RolloutState
    from_image: str | None
    to_image: str
    reason: str
    timings: Mapping[str, float]

    @property
    def ok(self) -> bool:
        return self.state is RolloutState.SUCCEEDED

    def as_dict(self) -> dict[str, object]:
        return {"rollout_id": self.rollout_id, "service": self.service, "state": self.state.value,
                "from_image": self.from_image, "to_image": self.to_image, "reason": self.reason,
                "timings": dict(self.timings)}


def digest_of(image: str | None) -> str | None:
    return image.rpartition("@")[2] if image and "@" in image else None


def spec_hash(spec: ServiceSpec) -> str:
    """SHA-256 of everything a replica is started with (environment values included)."""
    doc = dataclasses.asdict(spec)
    doc["health"] = spec.health.model_dump()
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _spec_dict(plan: RolloutPlan) -> dict[str, Any]:
    # What is stored is for people (and a hash to tell a change): a resumed rollout never starts containers
    # from it, since whoever can write the store could add --privileged; environment values (secrets) are
    # never stored, only their names.
    spec = dataclasses.asdict(plan.spec)
    spec["health"] = plan.spec.health.model_dump()
    spec["env"] = sorted(plan.spec.env)
    return {"service": spec, "spec_sha256": spec_hash(plan.spec), "max_unavailable": plan.max_unavailable,
            "bake_seconds": plan.bake_seconds}


def _plan_from(row: RolloutRow, spec: ServiceSpec) -> RolloutPlan:
    """The rollout's plan: where to and how from the row, the service's spec from the configuration now."""
    return RolloutPlan(spec=spec, to_image=row.to_image, strategy=Strategy(row.strategy),
                       max_unavailable=int(row.spec["max_unavailable"]), bake_seconds=float(row.spec["bake_seconds"]))


class _Failed(Exception):
    """A replica failed its health gate or the bake: the rollout rolls back."""


class _Driver:
    def __init__(self, store: Store, target: RolloutTarget, plan: RolloutPlan, rollout_id: int,
                 progress: Progress | None, timings: Mapping[str, float] | None = None) -> None:
        self.store = store
        self.target = target
        self.plan = plan
        self.spec = plan.spec
        self.id = rollout_id
        self.say: Progress = progress or (lambda _m: None)
        self.timings: dict[str, float] = {"pull": 0.0, "start": 0.0, "health": 0.0, "bake": 0.0, "record": 0.0,
                                          **(timings or {})}
        self._beat = time.monotonic()
        self._image_ids: dict[str, str] = {}

    # -- records ---------------------------------------------------------------------

    def _timed_record(self, fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        t = time.monotonic()
        fn(*args, **kwargs)
        self.timings["record"] += time.monotonic() - t
        self._beat = time.monotonic()

    def heartbeat(self) -> None:
        if time.monotonic() - self._beat > _HEARTBEAT_EVERY:
            self._timed_record(self.store.update_rollout, self.id)

    def replica_state(self, index: int, state: str, *, detail: str = "", container: str | None = None,
                      events: Sequence[EventDraft] = ()) -> None:
        self._timed_record(self.store.update_replica, self.id, index, state=state, detail=detail,
                           container=container, events=events)

    # -- one replica -----------------------------------------------------------------

    def image_id(self, image: str) -> str:
        if image not in self._image_ids:
            t = time.monotonic()
            self._image_ids[image] = self.target.pull(image)
            self.timings["pull"] += time.monotonic() - t
        return self._image_ids[image]

    def wait_healthy(self, index: int) -> str:
        """Probe replica ``index`` until healthy; raise _Failed after the start timeout."""
        health = self.spec.health
        t0 = time.monotonic()
        deadline = t0 + health.start_timeout
        last = "not probed"
        while True:
            probe = self.target.probe(self.spec, index)
            if probe.healthy:
                self.timings["health"] += time.monotonic() - t0
                return probe.detail
            last = probe.detail
            if time.monotonic() >= deadline:
                self.timings["health"] += time.monotonic() - t0
                raise _Failed(f"replica {index} not healthy within {health.start_timeout:g} s: {last}")
            self.heartbeat()
            time.sleep(min(health.interval, max(0.0, deadline - time.monotonic())))

    def start(self, index: int, image: str | None, *, state: str) -> None:
        """Put replica ``index`` on ``image``, or remove it when None; recorded before it happens."""
        self.replica_state(index, state, container=self.spec.container_name(index))
        if image is None:
            self.target.remove(self.spec, index)
            return
        image_id = self.image_id(image)
        t = time.monotonic()
        self.target.start(self.spec, index, image=image, image_id=image_id, rollout_id=self.id)
        self.timings["start"] += time.monotonic() - t

    def replace(self, indexes: Sequence[int], image: str | None, *, state_during: str, state_after: str,
                event: EventType | None) -> None:
        """Start these replicas on ``image`` (all of them first), then gate each on its health check."""
        for index in indexes:
            self.start(index, image, state=state_during)
        for index in indexes:
            detail = self.wait_healthy(index) if image is not None else "removed"
            events = [EventDraft(event, self.spec.name, {"service": self.spec.name, "replica": index,
                                                         "image": image, "health": detail})] if event else []
            self.replica_state(index, state_after, detail=detail, events=events)
            self.say(f"{self.spec.name}: replica {index} on {_short(image)} ({detail})")

    # -- the bake --------------------------------------------------------------------

    def bake(self, indexes: Sequence[int], seconds: float) -> None:
        """Watch the canary replicas: health, and that their containers neither exit nor restart."""
        if seconds <= 0:
            return
        self._timed_record(self.store.update_rollout, self.id, phase=f"bake {seconds:g} s")
        self.say(f"{self.spec.name}: baking replica(s) {', '.join(map(str, indexes))} for {seconds:g} s")
        health = self.spec.health
        t0 = time.monotonic()
        before = {r.index: r.restarts for r in self.target.replicas(self.spec.name) if r.index in indexes}
        failures = dict.fromkeys(indexes, 0)
        while time.monotonic() - t0 < seconds:
            for index in indexes:
                probe = self.target.probe(self.spec, index)
                failures[index] = 0 if probe.healthy else failures[index] + 1
                if failures[index] >= health.failures:
                    self.timings["bake"] += time.monotonic() - t0
                    raise _Failed(f"canary replica {index} unhealthy during the bake: {probe.detail}")
            for replica in self.target.replicas(self.spec.name):
                if replica.index not in indexes:
                    continue
                if not replica.running:
                    self.timings["bake"] += time.monotonic() - t0
                    raise _Failed(f"canary replica {replica.index} exited during the bake")
                if replica.restarts > before.get(replica.index, 0):
                    self.timings["bake"] += time.monotonic() - t0
                    raise _Failed(f"canary replica {replica.index} restarted during the bake "
                                  f"({replica.restarts - before.get(replica.index, 0)} time(s))")
            self.heartbeat()
            time.sleep(min(health.interval, max(0.0, seconds - (time.monotonic() - t0))))
        self.timings["bake"] += time.monotonic() - t0

    # -- the whole rollout ------------------------------------------------------------

    def waves(self, pending: Sequence[int]) -> list[list[int]]:
        if self.plan.strategy is Strategy.ALL_AT_ONCE:
            return [list(pending)] if pending else []
        size = max(1, self.plan.max_unavailable)
        return [list(pending[i:i + size]) for i in range(0, len(pending), size)]

    def forward(self) -> RolloutResult:
        row = self.store.rollout(self.id)
        done = {r.index for r in row.replicas if r.state == "ready"}
        pending = [r.index for r in row.replicas if r.index not in done]
        t_all = time.monotonic()
        try:
            # A canary killed during its bake is baked again in full: the bake is what proves it.
            if self.plan.strategy is Strategy.CANARY and (0 in pending or row.phase.startswith(("canary", "bake"))):
                if 0 in pending:
                    self._timed_record(self.store.update_rollout, self.id, phase="canary")
                    self.replace([0], self.plan.to_image, state_during="replacing", state_after="ready",
                                 event=EventType.ROLLOUT_REPLICA_UPDATED)
                    pending.remove(0)
                self.bake([0], self.plan.bake_seconds)
            for number, wave in enumerate(self.waves(pending), 1):
                self._timed_record(self.store.update_rollout, self.id, phase=f"wave {number}")
                # The wave's size bounds how many replicas are down at once (max_unavailable).
                self.replace(wave, self.plan.to_image, state_during="replacing", state_after="ready",
                             event=EventType.ROLLOUT_REPLICA_UPDATED)
        except _Failed as exc:
            self.timings["total"] = self.timings.get("total", 0.0) + time.monotonic() - t_all
            return self.roll_back(str(exc))
        self.remove_surplus()
        self.timings["total"] = self.timings.get("total", 0.0) + time.monotonic() - t_all
        timings = self._final_timings()
        self._timed_record(self.store.update_rollout, self.id, state=RolloutState.SUCCEEDED.value, phase="done",
                           timings=timings, finished=True, events=[EventDraft(
                               EventType.ROLLOUT_SUCCEEDED, self.spec.name,
                               {"service": self.spec.name, "from_image": row.from_image,
                                "to_image": self.plan.to_image, "replicas": self.spec.replicas,
                                "timings": timings})])
        self.say(f"{self.spec.name}: all {self.spec.replicas} replica(s) on {_short(self.plan.to_image)}")
        return self.result(RolloutState.SUCCEEDED, "")

    def roll_back(self, reason: str) -> RolloutResult:
        row = self.store.rollout(self.id)
        if row.state != RolloutState.ROLLING_BACK.value:
            self.say(f"{self.spec.name}: {reason}; rolling back")
            digest = digest_of(self.plan.to_image)
            if digest:
                self.store.mark_unpromotable(digest=digest, repository=self.spec.repository, stage="rollout",
                                             reason=reason)
            self._timed_record(self.store.update_rollout, self.id, state=RolloutState.ROLLING_BACK.value,
                               phase="rollback", reason=reason, events=[EventDraft(
                                   EventType.ROLLOUT_ROLLING_BACK, self.spec.name,
                                   {"service": self.spec.name, "image": self.plan.to_image, "reason": reason})])
            row = self.store.rollout(self.id)
        reason = row.reason or reason
        t0 = time.monotonic()
        problems = []
        for replica in row.replicas:
            if replica.state in ("pending", "reverted"):
                continue
            try:
                self.replace([replica.index], replica.from_image, state_during="reverting", state_after="reverted",
                             event=None)
            except (_Failed, RolloutError) as exc:
                problems.append(str(exc))
                self.replica_state(replica.index, "failed", detail=str(exc))
        self.timings["rollback"] = self.timings.get("rollback", 0.0) + time.monotonic() - t0
        timings = self._final_timings()
        if problems:
            why = f"{reason}; rollback incomplete: {'; '.join(problems)}"
            self._timed_record(self.store.update_rollout, self.id, state=RolloutState.FAILED.value, phase="done",
                               reason=why, timings=timings, finished=True, events=[EventDraft(
                                   EventType.ROLLOUT_FAILED, self.spec.name,
                                   {"service": self.spec.name, "image": self.plan.to_image, "reason": why})])
            return self.result(RolloutState.FAILED, why)
        self._timed_record(self.store.update_rollout, self.id, state=RolloutState.ROLLED_BACK.value, phase="done",
                           timings=timings, finished=True, events=[EventDraft(
                               EventType.ROLLOUT_ROLLED_BACK, self.spec.name,
                               {"service": self.spec.name, "bad_image": self.plan.to_image,
                                "restored_image": row.from_image, "reason": reason})])
        self.say(f"{self.spec.name}: rolled back to {_short(row.from_image)}")
        return self.result(RolloutState.ROLLED_BACK, reason)

    def remove_surplus(self) -> None:
        for replica in self.target.replicas(self.spec.name):
            if replica.index >= self.spec.replicas:
                self.target.remove(self.spec, replica.index)

    def _final_timings(self) -> dict[str, float]:
        out = {k: round(v, 4) for k, v in self.timings.items()}
        work = sum(out.get(k, 0.0) for k in ("pull", "start", "health", "bake", "rollback"))
        if "total" in out:
            out["overhead"] = round(max(0.0, out["total"] - work), 4)
        return out

    def result(self, state: RolloutState, reason: str) -> RolloutResult:
        row = self.store.rollout(self.id)
        return RolloutResult(self.id, self.spec.name, state, row.from_image, row.to_image, reason, row.timings)


def _short(image: str | None) -> str:
    if not image:
        return "(none)"
    repo, _, digest = image.partition("@")
    return f"{repo.rpartition('/')[2]}@{digest[:19]}" if digest else repo


def majority_image(replicas: Sequence[Replica]) -> str | None:
    counts: dict[str, int] = {}
    for r in replicas:
        counts[r.image] = counts.get(r.image, 0) + 1
    return max(counts, key=lambda k: counts[k]) if counts else None


def check_promotable(store: Store, image: str, *, image_id: str | None = None) -> None:
    bad = store.unpromotable(digest_of(image), image_id and (image_id if ":" in image_id else f"sha256:{image_id}"))
    if bad is not None:
        raise UnpromotableError(f"refused {image}: it is unpromotable since {bad.recorded_at:%Y-%m-%d %H:%M} "
                                f"({bad.stage}: {bad.reason})")


def roll_out(store: Store, target: RolloutTarget, plan: RolloutPlan, *, progress: Progress | None = None
             ) -> RolloutResult:
    """Move the service to ``plan.to_image``; first finish any rollout of it a killed patchline left."""
    say = progress or (lambda _m: None)
    for earlier in store.rollouts(service=plan.spec.name, unfinished=True):
        say(f"{plan.spec.name}: resuming rollout {earlier.id} left unfinished")
        resume(store, target, earlier.id, spec=plan.spec, progress=progress)
    if "@" not in plan.to_image:
        raise RolloutError(f"roll out by digest (repository@sha256:...), not {plan.to_image}")
    check_promotable(store, plan.to_image)
    current = [r for r in target.replicas(plan.spec.name) if r.index < plan.spec.replicas]
    by_index = {r.index: r.image for r in current}
    from_image = majority_image(current)
    if from_image == plan.to_image and len(current) == plan.spec.replicas and all(r.running for r in current):
        say(f"{plan.spec.name}: already on {_short(plan.to_image)}")
    timings = {"pull": 0.0}
    t = time.monotonic()
    try:
        image_id = target.pull(plan.to_image)
    except SignatureRefused as exc:
        rollout_id = store.start_rollout(
            service=plan.spec.name, strategy=plan.strategy.value, from_image=from_image, to_image=plan.to_image,
            spec=_spec_dict(plan), replicas=[], owner=owner_id())
        store.update_rollout(rollout_id, state=RolloutState.FAILED.value, phase="pull", reason=str(exc),
                             finished=True, events=[EventDraft(EventType.ROLLOUT_FAILED, plan.spec.name, {
                                 "service": plan.spec.name, "image": plan.to_image, "reason": str(exc)})])
        raise
    timings["pull"] = timings["total"] = time.monotonic() - t  # the rollout's clock starts with the pull
    check_promotable(store, plan.to_image, image_id=image_id)
    replicas = [(i, by_index.get(i)) for i in range(plan.spec.replicas)]
    rollout_id = store.start_rollout(
        service=plan.spec.name, strategy=plan.strategy.value, from_image=from_image, to_image=plan.to_image,
        spec=_spec_dict(plan), replicas=replicas, owner=owner_id(),
        events=[EventDraft(EventType.ROLLOUT_STARTED, plan.spec.name, {
            "service": plan.spec.name, "strategy": plan.strategy.value, "from_image": from_image,
            "to_image": plan.to_image, "replicas": plan.spec.replicas})])
    say(f"{plan.spec.name}: rollout {rollout_id} {_short(from_image)} -> {_short(plan.to_image)} "
        f"({plan.strategy.value}, {plan.spec.replicas} replica(s))")
    driver = _Driver(store, target, plan, rollout_id, progress, timings)
    driver._image_ids[plan.to_image] = image_id
    # A replica already on the new image (a re-run after success) needs no restart, only a health check.
    for index, image in replicas:
        if image == plan.to_image and any(r.index == index and r.running for r in current):
            try:
                driver.wait_healthy(index)
            except _Failed:
                continue
            driver.replica_state(index, "ready", detail="already on the image")
    return _recorded(store, target, driver.forward(), say)


def _recorded(store: Store, target: RolloutTarget, result: RolloutResult, say: Progress) -> RolloutResult:
    """Record what runs now, whatever the outcome: the fleet views must name what this rollout left running.
    A failure to look is said and left to the next discovery; the rollout's outcome stands."""
    try:
        target.record_running(store)
    except Error as exc:
        say(f"{result.service}: could not record the running workloads ({exc}); the next discovery will")
    return result


def resume(store: Store, target: RolloutTarget, rollout_id: int, *, spec: ServiceSpec,
           progress: Progress | None = None) -> RolloutResult:
    """Finish (or finish rolling back) a rollout whose driver is gone, with the service's ``spec`` as the
    configuration says it now (never the flags, environment or command read back from the store)."""
    row = store.rollout(rollout_id)
    if spec.name != row.service:
        raise RolloutError(f"rollout {rollout_id} is of {row.service}, not {spec.name}")
    plan = _plan_from(row, spec)
    if row.finished:
        return RolloutResult(row.id, row.service, RolloutState(row.state), row.from_image, row.to_image, row.reason,
                             row.timings)
    stale = _clock.now() - dt.timedelta(seconds=STALE_SECONDS)
    dead = [row.owner] if row.owner and owner_dead(row.owner) else []
    if not store.claim_rollout(rollout_id, owner=owner_id(), stale_before=stale, dead_owners=dead):
        raise RolloutError(f"rollout {rollout_id} of {row.service} is being driven by {row.owner} "
                           f"(last heard of {row.heartbeat_at:%H:%M:%S}); wait for it or stop it")
    driver = _Driver(store, target, plan, rollout_id, progress, {k: float(v) for k, v in row.timings.items()})
    say = progress or (lambda _m: None)
    if row.spec.get("spec_sha256") != spec_hash(spec):
        say(f"{row.service}: its configuration changed since rollout {rollout_id} started (or the stored spec "
            "was altered); resuming with the configuration as it is now")
    if row.state == RolloutState.ROLLING_BACK.value:
        return _recorded(store, target, driver.roll_back(row.reason), say)
    return _recorded(store, target, driver.forward(), say)


def resume_all(store: Store, target_for: Callable[[str], RolloutTarget], spec_for: Callable[[str], ServiceSpec], *,
               progress: Progress | None = None) -> list[RolloutResult]:
    """Resume every unfinished rollout (what a restarted patchline does first); ``spec_for`` gives each service's
    spec from the configuration."""
    return [resume(store, target_for(row.service), row.id, spec=spec_for(row.service), progress=progress)
            for row in store.rollouts(unfinished=True)]

"""The rollout engine's order, health gates, availability, rollback and resume, against a target in memory.

The target here is a table of slots, not podman (tests/integration/test_rollout.py runs the real one): what is
under test is the engine's sequencing, which these tests observe at every target call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from patchline._config import HealthCheckConfig
from patchline.errors import SignatureRefused, UnpromotableError
from patchline.rollout import (
    Probe,
    Replica,
    RolloutPlan,
    RolloutState,
    ServiceSpec,
    Strategy,
    resume,
    roll_out,
)
from patchline.store import Store, open_store

OLD = "127.0.0.1:5000/example/web@sha256:" + "a" * 64
NEW = "127.0.0.1:5000/example/web@sha256:" + "b" * 64
BAD = "127.0.0.1:5000/example/web@sha256:" + "c" * 64


class Crash(Exception):
    """Stands for SIGKILL: the engine stops mid-step, nothing after it runs."""


@dataclass
class Slot:
    image: str
    running: bool = True
    restarts: int = 0


@dataclass
class MemoryTarget:
    """Slots by index; an image in ``broken`` never gets healthy; records availability after every call."""

    slots: dict[int, Slot] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)
    unsigned: set[str] = field(default_factory=set)
    calls: list[tuple[str, int, str]] = field(default_factory=list)
    min_healthy: int = 99
    crash_on: Callable[[str, int, str], bool] | None = None
    recorded: list[dict[int, str]] = field(default_factory=list)  # what record_running saw, each time
    started_with: list[tuple[tuple[str, ...], dict[str, str], tuple[str, ...]]] = field(default_factory=list)

    def healthy(self) -> int:
        return sum(1 for s in self.slots.values() if s.running and s.image not in self.broken)

    def _note(self, what: str, index: int, image: str) -> None:
        self.calls.append((what, index, image))
        if self.crash_on is not None and self.crash_on(what, index, image):
            raise Crash(f"{what} {index}")

    def pull(self, image: str) -> str:
        if image in self.unsigned:
            raise SignatureRefused(f"refused {image}: A signature was required, but no signature exists")
        return "id-" + image[-6:]

    def replicas(self, service: str) -> list[Replica]:
        return [Replica(service, i, f"patchline-{service}-{i}", f"c{i}", s.image, "id", s.running, s.restarts, None,
                        None) for i, s in sorted(self.slots.items())]

    def replicas_of(self, services: Collection[str]) -> dict[str, list[Replica]]:
        return {s: self.replicas(s) for s in services}

    def start(self, spec: ServiceSpec, index: int, *, image: str, image_id: str, rollout_id: int) -> Replica:
        self.started_with.append((tuple(spec.podman_args), dict(spec.env), tuple(spec.command)))
        self.slots.pop(index, None)
        self.min_healthy = min(self.min_healthy, self.healthy())
        self._note("start", index, image)
        self.slots[index] = Slot(image)
        return self.replicas(spec.name)[index]

    def remove(self, spec: ServiceSpec, index: int) -> None:
        self.slots.pop(index, None)
        self.min_healthy = min(self.min_healthy, self.healthy())
        self._note("remove", index, "")

    def record_running(self, store: Store) -> None:
        self.recorded.append({i: s.image for i, s in self.slots.items() if s.running})

    def probe(self, spec: ServiceSpec, index: int) -> Probe:
        self.calls.append(("probe", index, ""))
        slot = self.slots.get(index)
        ok = slot is not None and slot.running and slot.image not in self.broken
        return Probe(ok, "200 OK" if ok else "500", 0.0)


def _spec(replicas: int = 3) -> ServiceSpec:
    return ServiceSpec(name="web", repository="127.0.0.1:5000/example/web", replicas=replicas,
                       health=HealthCheckConfig(http=None, interval=0.01, start_timeout=0.2, failures=2))


def _plan(strategy: Strategy, image: str = NEW, *, replicas: int = 3, max_unavailable: int = 1,
          bake: float = 0.05) -> RolloutPlan:
    return RolloutPlan(spec=_spec(replicas), to_image=image, strategy=strategy, max_unavailable=max_unavailable,
                       bake_seconds=bake)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path}/patchline.db")


def _fleet(replicas: int = 3, image: str = OLD) -> MemoryTarget:
    return MemoryTarget(slots={i: Slot(image) for i in range(replicas)})


def _events(store: Store) -> list[str]:
    return [e.type for e in store.events()]


@pytest.mark.parametrize("strategy", [Strategy.ROLLING, Strategy.CANARY])
def test_every_replica_moves_and_at_most_max_unavailable_is_down(store: Store, strategy: Strategy) -> None:
    target = _fleet()
    result = roll_out(store, target, _plan(strategy))
    assert result.state is RolloutState.SUCCEEDED
    assert {s.image for s in target.slots.values()} == {NEW}
    assert [c[1] for c in target.calls if c[0] == "start"] == [0, 1, 2]  # canary (replica 0) first, then waves
    assert target.min_healthy >= 2
    assert _events(store) == ["rollout.started"] + ["rollout.replica_updated"] * 3 + ["rollout.succeeded"]
    row = store.rollout(result.rollout_id)
    assert row.from_image == OLD and [r.state for r in row.replicas] == ["ready"] * 3
    assert {"pull", "start", "health", "bake", "overhead"} <= set(row.timings)
    assert target.recorded == [{0: NEW, 1: NEW, 2: NEW}]  # the store learns what runs now: the views agree


def test_waves_of_max_unavailable(store: Store) -> None:
    target = _fleet(5)
    roll_out(store, target, _plan(Strategy.ROLLING, replicas=5, max_unavailable=2))
    assert target.min_healthy >= 3
    assert {s.image for s in target.slots.values()} == {NEW}


def test_all_at_once_starts_every_replica_before_checking(store: Store) -> None:
    target = _fleet()
    result = roll_out(store, target, _plan(Strategy.ALL_AT_ONCE))
    assert result.ok
    kinds = [c[0] for c in target.calls]
    assert kinds[:3] == ["start"] * 3 and kinds[3] == "probe"


def test_first_deploy_starts_every_replica(store: Store) -> None:
    target = MemoryTarget()
    result = roll_out(store, target, _plan(Strategy.ROLLING))
    assert result.ok and result.from_image is None and len(target.slots) == 3


def test_canary_that_fails_health_rolls_back_and_the_digest_is_refused_next_time(store: Store) -> None:
    target = _fleet()
    target.broken.add(BAD)
    result = roll_out(store, target, _plan(Strategy.CANARY, BAD))
    assert result.state is RolloutState.ROLLED_BACK
    assert "replica 0 not healthy" in result.reason
    assert {s.image for s in target.slots.values()} == {OLD}
    assert target.recorded == [{0: OLD, 1: OLD, 2: OLD}]  # recorded after the rollback too
    assert [c[1] for c in target.calls if c[0] == "start" and c[2] == BAD] == [0]  # only the canary saw it
    assert target.min_healthy >= 2
    assert _events(store)[-3:] == ["rollout.started", "rollout.rolling_back", "rollout.rolled_back"]
    bad = store.unpromotable(BAD.rpartition("@")[2])
    assert bad is not None and bad.stage == "rollout"
    starts = [c for c in target.calls if c[0] == "start"]
    with pytest.raises(UnpromotableError, match="unpromotable"):
        roll_out(store, target, _plan(Strategy.CANARY, BAD))
    assert [c for c in target.calls if c[0] == "start"] == starts  # refused before anything started


def test_canary_that_crashes_during_the_bake_rolls_back(store: Store) -> None:
    target = _fleet()

    class Flaky(MemoryTarget):
        def replicas(self, service: str) -> list[Replica]:
            out = super().replicas(service)
            if self.slots.get(0) and self.slots[0].image == NEW:
                self.slots[0].restarts += 1  # restarts on every look: a crash loop
            return out

    flaky = Flaky(slots=target.slots)
    result = roll_out(store, flaky, _plan(Strategy.CANARY, bake=0.5))
    assert result.state is RolloutState.ROLLED_BACK
    assert "restarted during the bake" in result.reason
    assert {s.image for s in flaky.slots.values()} == {OLD}


def test_unsigned_image_is_refused_and_nothing_starts(store: Store) -> None:
    target = _fleet()
    target.unsigned.add(NEW)
    with pytest.raises(SignatureRefused):
        roll_out(store, target, _plan(Strategy.CANARY))
    assert not [c for c in target.calls if c[0] != "probe"]
    assert store.last_rollout("web") is not None and store.last_rollout("web").state == "failed"  # type: ignore[union-attr]
    assert _events(store) == ["rollout.failed"]


@pytest.mark.parametrize("crash_at", [("start", 0), ("start", 1), ("start", 2)])
def test_killed_mid_rollout_the_next_start_finishes_it(store: Store, crash_at: tuple[str, int]) -> None:
    target = _fleet()
    target.crash_on = lambda what, index, image: (what, index) == crash_at and image == NEW
    with pytest.raises(Crash):
        roll_out(store, target, _plan(Strategy.CANARY))
    target.crash_on = None
    row = store.rollouts(service="web", unfinished=True)[0]
    # Pretend the killed driver's process is gone: another owner claims it as stale.
    store.update_rollout(row.id)
    import patchline.rollout._engine as engine

    result = _resume_as_other_owner(store, target, row.id, engine)
    assert result.state is RolloutState.SUCCEEDED
    assert {s.image for s in target.slots.values()} == {NEW}
    assert len(target.slots) == 3  # nothing orphaned, nothing missing
    assert target.min_healthy >= 2


def test_killed_while_rolling_back_the_next_start_finishes_the_rollback(store: Store) -> None:
    target = _fleet()
    target.broken.add(BAD)
    target.crash_on = lambda what, index, image: what == "start" and image == OLD  # dies reverting the canary
    with pytest.raises(Crash):
        roll_out(store, target, _plan(Strategy.CANARY, BAD))
    target.crash_on = None
    row = store.rollouts(service="web", unfinished=True)[0]
    assert row.state == "rolling-back"
    import patchline.rollout._engine as engine

    result = _resume_as_other_owner(store, target, row.id, engine)
    assert result.state is RolloutState.ROLLED_BACK
    assert {s.image for s in target.slots.values()} == {OLD}
    assert target.recorded[-1] == {0: OLD, 1: OLD, 2: OLD}  # a resumed rollback records what runs too


def test_a_live_driver_is_not_taken_over(store: Store) -> None:
    target = _fleet()
    target.crash_on = lambda what, index, image: (what, index) == ("start", 1)
    with pytest.raises(Crash):
        roll_out(store, target, _plan(Strategy.ROLLING))
    row = store.rollouts(service="web", unfinished=True)[0]
    store.update_rollout(row.id)  # heartbeat just now, by this (live) process
    store.claim_rollout(row.id, owner="otherhost:1", stale_before=row.started_at)  # not stale: refused
    assert store.rollout(row.id).owner != "otherhost:1"


def _resume_as_other_owner(store: Store, target: MemoryTarget, rollout_id: int, engine: object) -> object:
    """A new patchline process resumes: the dead driver's owner entry names a PID that no longer exists."""
    import socket

    from sqlalchemy import update

    from patchline.store._schema import Rollout

    with store.engine.begin() as conn:
        conn.execute(update(Rollout).where(Rollout.id == rollout_id).values(owner=f"{socket.gethostname()}:999999"))
    return resume(store, target, rollout_id, spec=_spec())


def test_killed_during_the_bake_the_canary_is_baked_again_before_the_waves(store: Store) -> None:
    class Baking(MemoryTarget):
        def probe(self, spec: ServiceSpec, index: int) -> Probe:
            unfinished = store.rollouts(service="web", unfinished=True)
            if unfinished and unfinished[0].phase.startswith("bake"):
                raise Crash("killed while baking")
            return super().probe(spec, index)

    target = _fleet()
    with pytest.raises(Crash):
        roll_out(store, Baking(slots=target.slots), _plan(Strategy.CANARY, bake=0.3))
    row = store.rollouts(service="web", unfinished=True)[0]
    assert row.phase.startswith("bake") and [r.state for r in row.replicas] == ["ready", "pending", "pending"]
    import patchline.rollout._engine as engine

    result = _resume_as_other_owner(store, target, row.id, engine)
    assert result.state is RolloutState.SUCCEEDED
    assert store.rollout(row.id).timings["bake"] >= 0.3  # baked again after the restart
    assert {s.image for s in target.slots.values()} == {NEW}


def test_a_resumed_rollout_runs_the_configuration_not_what_the_store_says(store: Store) -> None:
    """Whoever can write the store must not choose podman flags: a tampered row's spec is never executed, and
    no environment value (a secret) is stored."""
    target = _fleet()
    secret = replace(_spec(), env={"API_TOKEN": "s3cr3t"})
    target.crash_on = lambda what, index, image: (what, index) == ("start", 1) and image == NEW
    with pytest.raises(Crash):
        roll_out(store, target, replace(_plan(Strategy.CANARY), spec=secret))
    target.crash_on = None
    row = store.rollouts(service="web", unfinished=True)[0]
    assert "s3cr3t" not in json.dumps(row.spec) and row.spec["service"]["env"] == ["API_TOKEN"]
    from sqlalchemy import update

    from patchline.store._schema import Rollout

    tampered = {**row.spec, "service": {**row.spec["service"], "podman_args": ["--privileged"],
                                        "command": ["sh", "-c", "evil"]}}
    with store.engine.begin() as conn:
        conn.execute(update(Rollout).where(Rollout.id == row.id).values(spec=json.dumps(tampered)))
    target.started_with.clear()
    import patchline.rollout._engine as engine

    _resume_as_other_owner(store, target, row.id, engine)
    assert target.started_with and all(args == () and env == {} and cmd == ()
                                       for args, env, cmd in target.started_with)
    assert {s.image for s in target.slots.values()} == {NEW}

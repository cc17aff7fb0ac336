"""The patch run's pieces that need no podman: leases, resume order, quiet hours, the policy's config."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from patchline._config import Config, ServiceConfig
from patchline.errors import StoreError
from patchline.pipeline import STEPS, ServiceRollout
from patchline.pipeline._run import _in_quiet_hours, recipe_outcomes
from patchline.store import Store, open_store

STEP_NAMES = [s.value for s in STEPS]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path}/patchline.db")


def test_a_step_lease_keeps_a_second_process_out_until_it_expires_or_its_owner_dies(store: Store) -> None:
    run = store.start_run(trigger="once", triggered_by="t", steps=STEP_NAMES)
    assert store.claim_step(run, "detect", owner="host:1", lease_seconds=60)
    assert not store.claim_step(run, "detect", owner="host:2", lease_seconds=60)  # held
    assert store.claim_step(run, "detect", owner="host:2", lease_seconds=60, dead_owners=["host:1"])
    with pytest.raises(StoreError, match="no longer host:1"):
        store.finish_step(run, "detect", owner="host:1", state="done", output={})  # the old owner lost it
    assert not store.claim_step(run, "detect", owner="host:3", lease_seconds=60)
    store.finish_step(run, "detect", owner="host:2", state="done", output={"n": 1}, inputs={"rev": "a"})
    assert not store.claim_step(run, "detect", owner="host:3", lease_seconds=60)  # done is done
    row = store.run(run)
    assert [(s.step, s.state, s.attempts) for s in row.steps][:2] == [("detect", "done", 2), ("assess", "pending", 0)]
    assert row.inputs == {"rev": "a"} and row.steps[0].output == {"n": 1}


def test_an_expired_lease_is_taken_over(store: Store) -> None:
    run = store.start_run(trigger="once", triggered_by="t", steps=STEP_NAMES)
    assert store.claim_step(run, "detect", owner="host:1", lease_seconds=0.001)
    import time

    time.sleep(0.01)
    assert store.claim_step(run, "detect", owner="host:2", lease_seconds=60)
    assert not store.renew_lease(run, "detect", owner="host:1", lease_seconds=60)
    assert store.renew_lease(run, "detect", owner="host:2", lease_seconds=60)


def test_one_unfinished_run_at_a_time_and_triggers_are_recorded_with_it(store: Store) -> None:
    store.add_trigger(requested_by="alice@ops", reason="CVE-2099-1 is out")
    assert store.pending_triggers() == 1
    run = store.start_run(trigger="manual", triggered_by="patchline@host", steps=STEP_NAMES)
    assert store.pending_triggers() == 0
    assert store.run(run).inputs["triggers"][0]["requested_by"] == "alice@ops"
    with pytest.raises(StoreError, match="unfinished"):
        store.start_run(trigger="once", triggered_by="t", steps=STEP_NAMES)
    store.finish_run(run, state="succeeded", summary={})
    assert store.start_run(trigger="once", triggered_by="t", steps=STEP_NAMES) == run + 1


def test_approvals_reopen_only_the_rollout_and_report(store: Store) -> None:
    run = store.start_run(trigger="once", triggered_by="t", steps=STEP_NAMES)
    for step in STEP_NAMES:
        assert store.claim_step(run, step, owner="h:1", lease_seconds=60)
        store.finish_step(run, step, owner="h:1", state="done", output={})
    store.finish_run(run, state="awaiting-approval", summary={})
    store.approve(run, "web", approved_by="bob")
    store.reopen_run(run, ["rollout", "report"])
    row = store.run(run)
    assert row.state == "running" and store.approvals(run) == {"web": "bob"}
    assert [s.state for s in row.steps] == ["done"] * 4 + ["pending", "pending"]
    with pytest.raises(StoreError, match="no run 99"):
        store.approve(99, "web", approved_by="bob")


@pytest.mark.parametrize("windows, at, quiet", [
    ((), "03:00", False),
    (("22:00-06:00",), "23:30", True),
    (("22:00-06:00",), "05:59", True),
    (("22:00-06:00",), "06:00", False),
    (("09:00-17:00",), "12:00", True),
    (("09:00-17:00",), "17:00", False),
    (("09:00-10:00", "13:00-14:00"), "13:30", True),
])
def test_quiet_hours(windows: tuple[str, ...], at: str, quiet: bool) -> None:
    when = dt.datetime.combine(dt.date(2026, 12, 3), dt.time.fromisoformat(at), tzinfo=dt.UTC)
    assert _in_quiet_hours(windows, when) is quiet


@pytest.mark.parametrize("bad", ["22:00", "25:00-01:00", "ten-eleven"])
def test_quiet_hours_are_checked_when_the_config_is_read(bad: str) -> None:
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        Config.model_validate({"pipeline": {"quiet_hours": [bad]}})


def test_patch_items_open_once_and_move_with_the_build_and_rollout(store: Store) -> None:
    seen = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    items = [("update", "libssl3", "base"), ("update", "libssl3", "web"), ("advisory", "DSA-1", "web")]
    assert store.note_patch_items(items, run_id=1, services={"web": ["web"]}, when=seen) == 3
    assert store.note_patch_items(items, run_id=2) == 0  # already open: first seen stays
    assert store.update_patch_items("web", items=[("update", "libssl3")], state="rebuilt", digest="sha256:b") == 1
    assert store.update_patch_items("web", state="deployed", digest="sha256:b", from_states=("rebuilt",)) == 1
    by = {(i.item, i.recipe): i for i in store.patch_items()}
    assert by[("libssl3", "web")].state == "deployed" and by[("libssl3", "web")].first_seen_at == seen
    assert by[("DSA-1", "web")].state == "open" and by[("libssl3", "base")].services == ()
    store.note_patch_why("web", why="awaiting approval", states=("open",))
    assert {i.why for i in store.patch_items(state="open") if i.recipe == "web"} == {"awaiting approval"}


def test_a_second_process_leaves_a_run_it_does_not_hold_alone(store: Store) -> None:
    """While another live process holds a step, `run --once` here says so and does not touch the run."""
    from patchline.errors import RunInProgress
    from patchline.pipeline import run_once

    run = store.start_run(trigger="once", triggered_by="t", steps=STEP_NAMES)
    assert store.claim_step(run, "detect", owner="otherhost:42", lease_seconds=600)
    with pytest.raises(RunInProgress, match="otherhost:42"):
        run_once(Config(), store)
    row = store.run(run)
    assert row.state == "running" and row.steps[0].owner == "otherhost:42" and row.steps[0].attempts == 1


def _services(*pairs: tuple[str, str]) -> list[ServiceConfig]:
    return [ServiceConfig(name=name, image=recipe) for name, recipe in pairs]


NEW = "127.0.0.1:5000/example/web@sha256:" + "e" * 64


def _out(state: str, why: str = "") -> ServiceRollout:
    return ServiceRollout(state, NEW, why=why)


@pytest.mark.parametrize(("states", "expected"), [
    # Two services on one recipe: patched only once both run the build, whichever order they got there in.
    ({"web": _out("succeeded"), "web-b": _out("current")}, ("deployed", "", "sha256:" + "e" * 64)),
    ({"web": _out("current"), "web-b": _out("current")}, ("deployed", "", "sha256:" + "e" * 64)),
    ({"web": _out("succeeded"), "web-b": _out("rolled-back", "health check failed")},
     ("stuck", "rollout rolled-back (web-b): health check failed", None)),
    ({"web": _out("current"), "web-b": _out("refused", "image is not signed")},
     ("stuck", "rollout refused (web-b): image is not signed", None)),
    ({"web": _out("succeeded"), "web-b": _out("awaiting-approval", "awaiting approval (patchline approve 4)")},
     ("", "awaiting approval (patchline approve 4)", None)),
    ({"web": _out("succeeded"), "web-b": _out("quiet-hours")}, ("", "quiet hours: rolled out when they end", None)),
    ({"web": _out("succeeded"), "web-b": _out("skipped", "no pushed build")}, ("", "", None)),
])
def test_a_recipe_is_deployed_once_every_service_running_it_is(
        states: dict[str, ServiceRollout], expected: tuple[str, str, str | None]) -> None:
    services = _services(("web", "web"), ("web-b", "web"), ("tools", "tools"))
    outcomes = recipe_outcomes(services, {**states, "tools": _out("succeeded")})
    got = outcomes["web"]
    assert (got.state, got.why, got.digest) == expected
    assert got.from_states == (("rebuilt", "open") if "refused" in got.why else ("rebuilt",))
    assert outcomes["tools"].state == "deployed"  # another recipe is settled on its own


def test_one_service_rolled_back_keeps_the_recipes_items_stuck_though_the_other_succeeded(
        store: Store) -> None:
    store.note_patch_items([("update", "libssl3", "web")], run_id=1, services={"web": ["web", "web-b"]})
    store.update_patch_items("web", state="rebuilt", digest="sha256:" + "e" * 64)
    services = _services(("web", "web"), ("web-b", "web"))
    (outcome,) = recipe_outcomes(services, {"web": _out("succeeded"), "web-b": _out("rolled-back", "bake")}).values()
    assert outcome.state == "stuck"
    store.update_patch_items("web", state=outcome.state, why=outcome.why, from_states=outcome.from_states)
    (row,) = store.patch_items()
    assert (row.state, row.why, row.deployed_at) == ("stuck", "rollout rolled-back (web-b): bake", None)

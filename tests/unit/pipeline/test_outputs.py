"""Each step's output type writes the run record's JSON (docs/formats/pipeline.md) and reads it back unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from patchline.pipeline import (
    OUTPUT_TYPES,
    STEPS,
    BuildOutput,
    DetectOutput,
    RolloutOutput,
    StepOutput,
    Unavailable,
    output_of,
)
from patchline.pipeline._run import _STEP_WORK
from patchline.store import Store

DIGEST = "sha256:" + "d" * 64
IMAGE = "127.0.0.1:5000/example/web@" + DIGEST
REASON = {"code": "pending-updates", "detail": "1 pending update", "items": ["libssl3"]}
PLAN_ROW = {"stage": "plan", "subject": "web", "rule": "base-signed", "verdict": "fail", "evidence": "unsigned",
            "excepted_by": None}

# One record per step, as the runner writes them: every optional part present, then the sparse variants.
RECORDS: list[tuple[str, dict[str, Any]]] = [
    ("detect", {"feed_updates": [{"ecosystem": "Debian", "outcome": "updated", "reason": None, "revision": "r1"}],
                "feeds": [{"feed": "osv:/srv/osv", "revision": "3f2a", "added": 2, "changed": 1, "removed": 0}],
                "updates": {"images": 3, "pending": 7, "images_with_pending": 2, "kept_as_they_were": 0,
                            "skipped": ["web: no sources"]},
                "workloads": {"running": 4, "images": 2, "inventoried": 1}, "seconds": 2.4}),
    ("detect", {"feed_updates": {"error": "mirror down"}, "workloads": {"error": "podman not found"},
                "seconds": 0.1}),
    ("assess", {"exposed_items": 3, "new_items": 1, "closed_items": 0, "dirty": ["web"], "pending_updates": 7,
                "images_by_severity": {"high": 1}, "running_workloads": 4, "seconds": 0.5}),
    ("plan", {"items": [{"name": "web", "wave": 1, "reasons": [REASON], "after": ["base"]}],
              "held": {"tools": "policy: fixable-advisory"}, "skipped": [["odd", "no Containerfile"]],
              "policy": [PLAN_ROW], "seconds": 0.3}),
    ("build", {"run_id": "20261203T100000Z-run12.1", "seconds": 40.2, "results": [
        {"name": "web", "status": "built", "digest": DIGEST, "error": "", "seconds": 30.12,
         "timings": {"build": 20.0}, "started": 0.0, "finished": 30.12, "reasons": [REASON]},
        {"name": "base", "status": "built", "digest": DIGEST, "error": "", "seconds": 9.5, "timings": {},
         "reasons": [], "attempt": 1}]}),
    ("build", {"results": [], "seconds": 0.01}),
    ("rollout", {"services": {
        "web": {"state": "succeeded", "image": IMAGE, "rollout_id": 5, "why": ""},
        "api": {"state": "current", "image": IMAGE},
        "tool": {"state": "refused", "image": IMAGE, "why": "not signed"},
        "admin": {"state": "awaiting-approval", "image": IMAGE, "why": "awaiting approval (patchline approve 12)"},
        "batch": {"state": "quiet-hours", "image": IMAGE},
        "gone": {"state": "skipped", "why": "no pushed build"}},
        "policy": [{**PLAN_ROW, "stage": "rollout", "subject": IMAGE, "service": "tool"}], "seconds": 12.0}),
    ("report", {"open": 1, "deployed": 2, "closed": 0, "event_problems": ["amqp: refused (3 kept in the outbox)"],
                "still_exposed": [{"kind": "advisory", "item": "DSA-1", "recipe": "web", "state": "stuck",
                                   "why": "build failed"}], "seconds": 0.2}),
]


@pytest.mark.parametrize(("step", "record"), RECORDS)
def test_a_recorded_output_reads_back_and_writes_the_same_json(step: str, record: dict[str, Any]) -> None:
    kind = OUTPUT_TYPES[next(s for s in STEPS if s.value == step)]
    assert kind.from_dict(record).as_dict() == record


def test_every_step_has_one_output_type_and_one_function() -> None:
    assert list(OUTPUT_TYPES) == list(STEPS) == list(_STEP_WORK)
    assert all(kind.STEP is step for step, kind in OUTPUT_TYPES.items())


def test_a_part_that_could_not_be_done_is_data() -> None:
    detect = DetectOutput.from_dict(RECORDS[1][1])
    assert detect.feed_updates == Unavailable("mirror down") and detect.workloads == Unavailable("podman not found")
    assert detect.feeds is None and detect.updates is None  # not configured: not in the record


@pytest.mark.parametrize("kind", list(OUTPUT_TYPES.values()))
def test_a_step_not_run_reads_as_its_defaults(kind: type[StepOutput]) -> None:
    assert kind.from_dict({}) == kind()


def test_the_runs_outputs_are_read_by_step(store: Store) -> None:
    run_id = store.start_run(trigger="once", triggered_by="t", steps=[s.value for s in STEPS])
    for step, record in (("build", RECORDS[4][1]), ("rollout", RECORDS[6][1])):
        assert store.claim_step(run_id, step, owner="h:1", lease_seconds=60)
        store.finish_step(run_id, step, owner="h:1", state="done", output=record)
    run = store.run(run_id)
    assert output_of(run, RolloutOutput).awaiting_approval() == ["admin"]
    assert output_of(run, BuildOutput).failure() == ""
    assert [r.attempt for r in output_of(run, BuildOutput).results] == [None, 1]
    assert output_of(run, DetectOutput) == DetectOutput()  # pending: nothing recorded yet

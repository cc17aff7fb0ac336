"""How a run ends and what `patchline runs` shows, on a real SQLite store: failed builds fail the run (exit 1,
with the cause), a build step resumed after a kill credits what its killed attempt built, a running step says so.
"""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from patchline._config import Config
from patchline.cli import app
from patchline.pipeline import STEPS, BuildResult, build_failure, run_once, step_outputs
from patchline.pipeline._run import build_run_id
from patchline.store import Store

STEP_NAMES = [s.value for s in STEPS]
T0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
DIGEST = "sha256:" + "d" * 64
PUSH_REFUSED = ("push failed: push to 127.0.0.1:5000/example/web:latest failed (exit 125): pushing image ...: "
                "pinging container registry 127.0.0.1:5000: dial tcp 127.0.0.1:5000: connect: connection refused; "
                "log: /logs/web.log")
runner = CliRunner()


def result(name: str, status: str, error: str = "") -> dict[str, Any]:
    return {"name": name, "status": status, "digest": DIGEST if status == "built" else None, "error": error}


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATCHLINE_CONFIG", raising=False)
    monkeypatch.delenv("PATCHLINE_DB", raising=False)
    monkeypatch.chdir(tmp_path)  # no patchline.toml here: the defaults


def steps_done(store: Store, outputs: Mapping[str, Mapping[str, Any]], *, upto: str = "report") -> int:
    """A run whose steps up to ``upto`` are done with these outputs (the rest pending), as a killed process
    leaves it."""
    run = store.start_run(trigger="once", triggered_by="t", steps=STEP_NAMES)
    for step in STEP_NAMES[:STEP_NAMES.index(upto) + 1]:
        assert store.claim_step(run, step, owner="host:1", lease_seconds=60)
        store.finish_step(run, step, owner="host:1", state="done", output=outputs.get(step, {}))
    return run


# -- 1. failed builds fail the run --------------------------------------------------------------------------------


@pytest.mark.parametrize(("results", "failure"), [
    ([result("web", "failed", PUSH_REFUSED), result("api", "failed", "buildah bud failed (exit 125): boom")],
     f"2 of 2 image(s) failed: web failed: {PUSH_REFUSED}; api failed: buildah bud failed (exit 125): boom"),
    ([result("base", "failed", "E: broken"), result("web", "blocked", "base base failed"), result("tools", "built")],
     "1 of 3 image(s) failed, 1 blocked: base failed: E: broken; web blocked: base base failed"),
    ([result("web", "verify-failed", "verification failed: still there: pl-hello"), result("api", "built")],
     "1 of 2 image(s) failed: web verify-failed: verification failed: still there: pl-hello"),
    ([result("web", "built"), result("api", "unchanged"), result("worker", "skipped")], ""),
    ([], ""),
])
def test_any_image_not_rebuilt_fails_the_build_step(results: list[dict[str, Any]], failure: str) -> None:
    assert build_failure([BuildResult.from_dict(r) for r in results]) == failure


def test_a_run_whose_builds_all_failed_ends_failed_naming_the_cause(store: Store) -> None:
    run = steps_done(store, {"build": {"results": [result("web", "failed", PUSH_REFUSED)]},
                             "rollout": {"services": {}}})
    finished = run_once(Config(), store)
    assert finished.id == run and finished.state == "failed"
    assert finished.error == f"build: 1 of 1 image(s) failed: web failed: {PUSH_REFUSED}"
    [event] = store.events(types=["run.finished"])
    assert event.data["state"] == "failed" and "connection refused" in event.data["error"]


def test_a_failed_build_fails_the_run_even_while_another_service_awaits_approval(store: Store) -> None:
    steps_done(store, {"build": {"results": [result("web", "failed", PUSH_REFUSED), result("api", "built")]},
                       "rollout": {"services": {"api": {"state": "awaiting-approval", "image": "x"}}}})
    finished = run_once(Config(), store)
    assert finished.state == "failed" and finished.error.startswith("build: 1 of 2 image(s) failed: web failed")
    [event] = store.events(types=["run.finished"])
    assert event.data["awaiting_approval"] == ["api"]  # still listed: `patchline approve` can move it on


def test_a_run_with_nothing_failed_succeeds(store: Store) -> None:
    steps_done(store, {"build": {"results": [result("web", "built"), result("api", "unchanged")]}})
    finished = run_once(Config(), store)
    assert (finished.state, finished.error) == ("succeeded", "")


def test_run_once_exits_1_and_prints_the_cause_when_the_builds_failed(store: Store, db: Path, cli_env: None) -> None:
    steps_done(store, {"build": {"results": [result("web", "failed", PUSH_REFUSED)]}})
    out = runner.invoke(app, ["run", "--once", "--db", str(db)], terminal_width=400)
    assert out.exit_code == 1, out.output
    assert "failed: build: 1 of 1 image(s) failed: web failed: push failed" in out.output
    assert "connect: connection refused" in out.output


# -- 2. a build step resumed after a kill --------------------------------------------------------------------------


@pytest.fixture
def killed_owner() -> str:
    """A lease holder of this host whose process is gone (it ran, exited and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return f"{socket.gethostname()}:{proc.pid}"


def test_a_resumed_build_step_credits_the_images_its_killed_attempt_built(store: Store, killed_owner: str) -> None:
    """Killed while two images built in parallel: the one recorded before the kill is not dirty any more, so the
    resumed attempt does not rebuild it, and its patch items become rebuilt at the time that build finished."""
    items = [("update", "pl-hello", "app"), ("advisory", "DSA-1", "app"), ("update", "pl-hello", "tool")]
    run = steps_done(store, {}, upto="plan")
    store.note_patch_items(items, run_id=run, services={"app": ["app"]}, when=T0)
    assert store.claim_step(run, "build", owner=killed_owner, lease_seconds=600)  # the killed process's attempt
    row = store.run(run)
    built_at = T0 + dt.timedelta(minutes=3)
    store.record_build(run_id=build_run_id(row, 1), recipe="app", kind="recipe", status="built",
                       target="127.0.0.1:5000/example/app:latest", config_digest="sha256:" + "c" * 64,
                       manifest_digest=DIGEST, verification={"fixed": ["pl-hello", "DSA-1"]},
                       started_at=T0 + dt.timedelta(minutes=1), finished_at=built_at)
    store.record_build(run_id="20261130T100000Z-0a1b2c", recipe="tool", kind="recipe", status="built",
                       target="127.0.0.1:5000/example/tool:latest", manifest_digest=DIGEST,
                       started_at=T0, finished_at=T0)  # another run's: not this run's to credit

    finished = run_once(Config(), store)  # its holder is gone: this process resumes the build step (attempt 2)
    assert finished.state == "succeeded", finished.error
    build = step_outputs(finished)["build"]
    assert [(r["name"], r["status"], r["attempt"]) for r in build["results"]] == [("app", "built", 1)]
    assert finished.inputs["built"] == {"app": DIGEST}
    by = {(i.item, i.recipe): i for i in store.patch_items()}
    for key in (("pl-hello", "app"), ("DSA-1", "app")):
        assert (by[key].state, by[key].rebuilt_at, by[key].digest) == ("rebuilt", built_at, DIGEST)
    assert (by[("pl-hello", "tool")].state, by[("pl-hello", "tool")].rebuilt_at) == ("open", None)
    assert finished.steps[STEP_NAMES.index("build")].attempts == 2


def test_build_runs_are_named_after_the_run_and_the_attempt(store: Store) -> None:
    run = store.run(store.start_run(trigger="once", triggered_by="t", steps=STEP_NAMES))
    assert build_run_id(run, 2) == f"{run.started_at:%Y%m%dT%H%M%SZ}-run{run.id}.2"
    assert build_run_id(run, 1) != build_run_id(run, 2)


# -- 4. what `patchline runs` shows for a step not done yet --------------------------------------------------------


def test_runs_shows_a_running_build_step_as_running(store: Store, db: Path, cli_env: None) -> None:
    run = steps_done(store, {"plan": {"items": [{"name": "web", "reasons": [{"code": "pending-updates"}]}]}},
                     upto="plan")
    assert store.claim_step(run, "build", owner="build-host:4711", lease_seconds=600)
    out = runner.invoke(app, ["runs", "--db", str(db)], terminal_width=300)
    assert out.exit_code == 0, out.output
    cells = [[c.strip() for c in line.split("│")] for line in out.output.splitlines() if "│" in line]
    rows = {c[0]: c for c in cells if c[0] in STEP_NAMES}
    assert "nothing to build" not in out.output
    assert rows["build"][1] == "running" and rows["build"][3].startswith("running since ")
    assert rows["build"][3].endswith("(attempt 1, build-host:4711)")
    assert rows["rollout"] == ["rollout", "pending", "", ""]  # not "no services": it has not run
    assert rows["report"] == ["report", "pending", "", ""]


def test_runs_says_when_a_running_steps_process_is_gone(store: Store, db: Path, cli_env: None,
                                                        killed_owner: str) -> None:
    run = steps_done(store, {}, upto="plan")
    assert store.claim_step(run, "build", owner=killed_owner, lease_seconds=600)
    out = runner.invoke(app, ["runs", "--db", str(db)], terminal_width=300)
    assert f"(attempt 1, {killed_owner}); its process is gone: the next start resumes it" in out.output

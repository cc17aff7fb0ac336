"""`patchline report` on a real SQLite store filled through the store's own methods, at known times."""

from __future__ import annotations

import datetime as dt
import importlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from patchline.cli import app
from patchline.pipeline._report import ItemReport, PatchReport, nearest_rank, patch_report, time_to_patch
from patchline.store import Store

_cli_report = importlib.import_module("patchline.cli._report")

T0 = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(days=2)
STEPS = ("detect", "assess", "plan", "build", "rollout", "report")
D_WEB, D_API = "sha256:" + "a" * 64, "sha256:" + "b" * 64
SERVICES = {"web": ["web"], "api": ["api", "worker"]}  # recipe -> services; the base recipe runs nowhere


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def fleet(store: Store) -> None:
    """Five items: two patched everywhere, one patched in a base image nothing runs, two still exposed.

    DSA-1    web: rebuilt +60, deployed +192; api: rebuilt +120, deployed +3600 -> 3600 s
    liblzma5 web: rebuilt +60, deployed +192                                      -> 192 s
    DSA-3    base (no service): rebuilt +50                                        -> 50 s
    DSA-2    api: build failed at +130                                             -> stuck
    DSA-4    web: first seen +100 (after the web rebuild), not rebuilt             -> open
    """
    store.note_patch_items([("advisory", "DSA-1", "web"), ("update", "liblzma5", "web"), ("advisory", "DSA-1", "api"),
                            ("advisory", "DSA-2", "api"), ("advisory", "DSA-3", "base")],
                           run_id=None, services=SERVICES, when=T0)
    store.update_patch_items("base", state="rebuilt", digest="sha256:" + "c" * 64, when=at(50))
    store.update_patch_items("web", state="rebuilt", digest=D_WEB, when=at(60))
    store.note_patch_items([("advisory", "DSA-4", "web")], run_id=None, services=SERVICES, when=at(100))
    store.update_patch_items("api", items=[("advisory", "DSA-1")], state="rebuilt", digest=D_API, when=at(120))
    store.update_patch_items("api", state="stuck", why="build failed: apt exit 100", from_states=("open",),
                             when=at(130))
    store.update_patch_items("web", state="deployed", digest=D_WEB, from_states=("rebuilt",), when=at(192))
    store.update_patch_items("api", state="deployed", digest=D_API, from_states=("rebuilt",), when=at(3600))


def item(report: PatchReport, kind: str, name: str) -> ItemReport:
    return next(i for i in report.items if (i.kind, i.item) == (kind, name))


# -- percentiles ------------------------------------------------------------------------


@pytest.mark.parametrize(("values", "percent", "expected"), [
    ([5.0], 90, 5.0),
    ([3.0, 1.0, 2.0], 90, 3.0),  # ceil(2.7) = 3rd
    ([float(x) for x in range(1, 11)], 90, 9.0),  # ceil(9.0) = 9th: exact ranks are not rounded up
    ([float(x) for x in range(1, 12)], 90, 10.0),  # ceil(9.9) = 10th
    ([float(x) for x in range(1, 21)], 90, 18.0),
    ([float(x) for x in range(1, 101)], 90, 90.0),
    ([float(x) for x in range(1, 7)], 90, 6.0),  # ceil(5.4) = 6th, not the nearest integer rank
    ([float(x) for x in range(1, 5)], 50, 2.0),
    ([float(x) for x in range(1, 6)], 50, 3.0),  # ceil(2.5) = 3rd
    ([7.0, 1.0], 100, 7.0),
])
def test_nearest_rank(values: list[float], percent: int, expected: float) -> None:
    assert nearest_rank(values, percent) == expected


@pytest.mark.parametrize(("values", "percent"), [([], 90), ([1.0], 0), ([1.0], 101)])
def test_nearest_rank_refuses_what_has_no_answer(values: list[float], percent: int) -> None:
    with pytest.raises(ValueError, match=r"no values|outside"):
        nearest_rank(values, percent)


def test_time_to_patch_figures() -> None:
    assert time_to_patch([]) == time_to_patch(()) and time_to_patch([]).median is None
    t = time_to_patch([40.0, 10.0, 30.0, 20.0])
    assert (t.count, t.median, t.p90, t.worst) == (4, 25.0, 40.0, 40.0)


# -- per item, per service, overall ------------------------------------------------------


def test_items_aggregate_across_recipes(store: Store) -> None:
    fleet(store)
    report = patch_report(store, now=NOW)
    assert [(i.kind, i.item) for i in report.items] == [
        ("advisory", "DSA-1"), ("advisory", "DSA-2"), ("advisory", "DSA-3"), ("update", "liblzma5"),
        ("advisory", "DSA-4")]
    dsa1 = item(report, "advisory", "DSA-1")
    assert not dsa1.exposed
    assert (dsa1.first_seen, dsa1.first_rebuilt, dsa1.last_rebuilt, dsa1.last_deployed) == (
        T0, at(60), at(120), at(3600))
    assert dsa1.time_to_patch == 3600.0 and dsa1.age is None
    assert [(e.recipe, e.state, e.digest, e.services) for e in dsa1.recipes] == [
        ("api", "deployed", D_API, ("api", "worker")), ("web", "deployed", D_WEB, ("web",))]
    assert item(report, "update", "liblzma5").time_to_patch == 192.0


def test_a_base_image_nothing_runs_is_patched_once_rebuilt(store: Store) -> None:
    fleet(store)
    dsa3 = item(patch_report(store, now=NOW), "advisory", "DSA-3")
    assert not dsa3.exposed and dsa3.time_to_patch == 50.0
    assert dsa3.last_deployed is None  # it was never deployed: nothing runs it
    assert [(e.recipe, e.state, e.patched, e.why) for e in dsa3.recipes] == [("base", "rebuilt", True, "")]


def test_overall_and_per_service(store: Store) -> None:
    fleet(store)
    report = patch_report(store, now=NOW)
    assert (report.items_total, report.items_patched, report.items_exposed) == (5, 3, 2)
    o = report.overall
    assert (o.count, o.median, o.p90, o.worst) == (3, 192.0, 3600.0, 3600.0)
    by = {s.service: s for s in report.services}
    assert list(by) == ["api", "web", "worker"]  # the base recipe has no service
    web = by["web"]
    assert (web.recipes, web.deployed, web.open) == (("web",), 2, 1)  # DSA-1 and liblzma5; DSA-4 open
    # DSA-1 counts for web when web's own row was deployed, not when api's was.
    assert (web.time_to_patch.median, web.time_to_patch.p90, web.time_to_patch.worst) == (192.0, 192.0, 192.0)
    for name in ("api", "worker"):
        s = by[name]
        assert (s.recipes, s.deployed, s.open) == (("api",), 1, 1)
        assert (s.time_to_patch.count, s.time_to_patch.median, s.time_to_patch.worst) == (1, 3600.0, 3600.0)


def test_ten_items_give_exact_median_p90_and_worst(store: Store) -> None:
    names = [f"CVE-2026-{n}" for n in range(10)]
    store.note_patch_items([("advisory", n, "web") for n in names], run_id=None, services=SERVICES, when=T0)
    for k, name in enumerate(names):  # item k takes (k + 1) * 10 minutes
        store.update_patch_items("web", items=[("advisory", name)], state="rebuilt", digest=D_WEB, when=at(k * 600))
        store.update_patch_items("web", items=[("advisory", name)], state="deployed", digest=D_WEB,
                                 from_states=("rebuilt",), when=at((k + 1) * 600))
    report = patch_report(store, now=NOW)
    minutes = sorted((i.time_to_patch or 0) / 60 for i in report.items)
    assert minutes == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    for t in (report.overall, report.services[0].time_to_patch):
        assert (t.count, t.median, t.p90, t.worst) == (10, 55 * 60.0, 90 * 60.0, 100 * 60.0)


# -- still exposed ------------------------------------------------------------------------


def test_open_in_one_recipe_and_deployed_in_another_is_still_exposed(store: Store) -> None:
    store.note_patch_items([("advisory", "DSA-5", "web"), ("advisory", "DSA-5", "api")], run_id=None,
                           services=SERVICES, when=T0)
    store.update_patch_items("web", state="rebuilt", digest=D_WEB, when=at(10))
    store.update_patch_items("web", state="deployed", digest=D_WEB, from_states=("rebuilt",), when=at(20))
    report = patch_report(store, now=at(1000))
    dsa5 = item(report, "advisory", "DSA-5")
    assert dsa5.exposed
    assert (dsa5.time_to_patch, dsa5.last_deployed, dsa5.age) == (None, None, 1000.0)
    assert (dsa5.first_rebuilt, dsa5.last_rebuilt) == (at(10), at(10))
    assert [(x.item, x.recipe, x.state, x.why, x.age) for x in report.still_exposed] == [
        ("DSA-5", "api", "open", "not rebuilt yet", 1000.0)]
    assert report.overall.count == 0 and report.overall.median is None
    by = {s.service: (s.deployed, s.open) for s in report.services}
    assert by == {"web": (1, 0), "api": (0, 1), "worker": (0, 1)}


def test_still_exposed_says_why_oldest_first(store: Store) -> None:
    fleet(store)
    report = patch_report(store, now=NOW)
    assert [(x.kind, x.item, x.recipe, x.state, x.why, x.services, x.age) for x in report.still_exposed] == [
        ("advisory", "DSA-2", "api", "stuck", "build failed: apt exit 100", ("api", "worker"), 2 * 86400.0),
        ("advisory", "DSA-4", "web", "open", "not rebuilt yet", ("web",), 2 * 86400.0 - 100)]
    dsa2 = item(report, "advisory", "DSA-2")
    assert dsa2.exposed and dsa2.age == 2 * 86400.0 and dsa2.time_to_patch is None


@pytest.mark.parametrize(("moves", "state", "why"), [
    # rebuilt, then the rollout rolled back: the pipeline marks it stuck with the rollout's reason
    ([("rebuilt", "", ("open",)), ("stuck", "rollout rolled-back: health check failed", ("rebuilt",))],
     "stuck", "rollout rolled-back: health check failed"),
    ([("stuck", "build verify-failed: DSA-9 still present", ("open",))], "stuck",
     "build verify-failed: DSA-9 still present"),
    ([("rebuilt", "", ("open",)), ("rebuilt", "awaiting approval", ("rebuilt",))], "rebuilt", "awaiting approval"),
    ([("rebuilt", "", ("open",))], "rebuilt", "rebuilt, not rolled out yet"),
    ([("rebuilt", "", ("open",)), ("stuck", "rollout refused: image is not signed", ("rebuilt", "open"))],
     "stuck", "rollout refused: image is not signed"),
])
def test_stuck_items_show_their_why(store: Store, moves: Sequence[tuple[str, str, tuple[str, ...]]], state: str,
                                    why: str) -> None:
    store.note_patch_items([("advisory", "DSA-9", "web")], run_id=None, services=SERVICES, when=T0)
    for k, (to, reason, from_states) in enumerate(moves):
        assert store.update_patch_items("web", state=to, why=reason, digest=D_WEB, from_states=from_states,
                                        when=at(k + 1)) == 1
    [exposed] = patch_report(store, now=NOW).still_exposed
    assert (exposed.state, exposed.why) == (state, why)


def test_rows_no_longer_reported_are_closed_neither_patched_nor_exposed(store: Store) -> None:
    fleet(store)  # open: DSA-4 in web; stuck by a failed build: DSA-2 in api; the rest rebuilt or deployed
    store.note_patch_items([("advisory", "DSA-6", "web"), ("advisory", "DSA-6", "api")], run_id=None,
                           services=SERVICES, when=at(200))
    store.update_patch_items("web", items=[("advisory", "DSA-6")], state="rebuilt", digest=D_WEB, when=at(300))
    # The next assessment still reports DSA-6 in api only: DSA-4 and DSA-2 were fixed outside patchline (or
    # withdrawn). DSA-6 in web is rebuilt, not deployed: not reported any more either, but it stays open.
    closed = store.close_vanished_patch_items([("advisory", "DSA-6", "api")], run_id=7, when=at(400))
    assert closed == 2
    rows = {(r.item, r.recipe): r for r in store.patch_items()}
    assert {k: rows[k].state for k in [("DSA-4", "web"), ("DSA-2", "api"), ("DSA-6", "web"), ("DSA-6", "api"),
                                       ("DSA-1", "api"), ("DSA-3", "base")]} == {
        ("DSA-4", "web"): "closed", ("DSA-2", "api"): "closed", ("DSA-6", "web"): "rebuilt",
        ("DSA-6", "api"): "open", ("DSA-1", "api"): "deployed", ("DSA-3", "base"): "rebuilt"}
    assert rows[("DSA-4", "web")].why.startswith("no longer reported (run 7, 2026-12-01 10:06 UTC)")

    report = patch_report(store, now=NOW)
    for name in ("DSA-4", "DSA-2"):
        closed_item = item(report, "advisory", name)
        assert not closed_item.exposed and closed_item.time_to_patch is None and closed_item.age is None
    assert item(report, "advisory", "DSA-6").exposed
    assert [(x.item, x.recipe, x.state) for x in report.still_exposed] == [("DSA-6", "api", "open"),
                                                                            ("DSA-6", "web", "rebuilt")]
    assert (report.items_total, report.items_patched, report.items_exposed) == (6, 3, 1)
    by = {s.service: (s.deployed, s.open) for s in report.services}
    assert by == {"web": (2, 1), "api": (1, 1), "worker": (1, 1)}
    # Seen again later: a new row opens (the closed one stays closed, with its history).
    assert store.note_patch_items([("advisory", "DSA-4", "web")], run_id=8, services=SERVICES, when=at(500)) == 1
    assert item(patch_report(store, now=NOW), "advisory", "DSA-4").exposed


def test_the_cli_table_says_closed(store: Store, db: Path, cli_env: None) -> None:
    store.note_patch_items([("advisory", "DSA-7", "web")], run_id=None, services=SERVICES, when=T0)
    store.close_vanished_patch_items([], run_id=3, when=at(60))
    out = runner.invoke(app, ["report", "--db", str(db)])
    assert out.exit_code == 0, out.output
    assert "closed: no longer reported" in out.output


def test_update_patch_items_stamps_now_without_when(store: Store) -> None:
    store.note_patch_items([("update", "perl-base", "web")], run_id=None, services=SERVICES, when=T0)
    before = dt.datetime.now(dt.UTC)
    store.update_patch_items("web", state="rebuilt", digest=D_WEB)
    [row] = store.patch_items()
    assert row.rebuilt_at is not None and before <= row.rebuilt_at <= dt.datetime.now(dt.UTC)
    # A `when` in another zone is the same instant.
    store.update_patch_items("web", state="deployed", digest=D_WEB, from_states=("rebuilt",),
                             when=at(300).astimezone(dt.timezone(dt.timedelta(hours=2))))
    assert store.patch_items()[0].deployed_at == at(300)


def test_now_must_be_aware(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        patch_report(store, now=dt.datetime(2026, 12, 1))


# -- runs ------------------------------------------------------------------------------------


def run(store: Store, *, trigger: str, by: str, fail_at: str | None = None, inputs: dict[str, Any] | None = None
        ) -> int:
    run_id = store.start_run(trigger=trigger, triggered_by=by, steps=STEPS, inputs=inputs)
    for k, step in enumerate(STEPS):
        assert store.claim_step(run_id, step, owner="h:1", lease_seconds=60)
        if step == fail_at:
            store.finish_step(run_id, step, owner="h:1", state="failed", output={"error": "buildah exit 1",
                                                                               "seconds": 4.25})
            store.finish_run(run_id, state="failed", summary={}, error=f"{step}: buildah exit 1")
            return run_id
        store.finish_step(run_id, step, owner="h:1", state="done", output={"seconds": k + 0.5},
                          inputs={"feed_revisions": {"osv": "r1"}} if step == "detect" else None)
    store.finish_run(run_id, state="succeeded", summary={})
    return run_id


def test_runs_are_the_audit_trail(store: Store) -> None:
    first = run(store, trigger="manual", by="alice@h", inputs={"reason": "DSA-1 out"})
    second = run(store, trigger="interval", by="patchline@h", fail_at="build")
    report = patch_report(store, now=NOW)
    assert [r.id for r in report.runs] == [second, first]
    failed, ok = report.runs
    assert (ok.trigger, ok.triggered_by, ok.state, ok.error) == ("manual", "alice@h", "succeeded", "")
    assert ok.inputs == {"reason": "DSA-1 out", "feed_revisions": {"osv": "r1"}}
    assert [(s.step, s.state, s.seconds, s.attempts) for s in ok.steps] == [
        (step, "done", k + 0.5, 1) for k, step in enumerate(STEPS)]
    assert ok.finished_at is not None and ok.seconds == (ok.finished_at - ok.started_at).total_seconds() >= 0
    assert (failed.state, failed.error) == ("failed", "build: buildah exit 1")
    assert [(s.step, s.state, s.seconds, s.error) for s in failed.steps[3:]] == [
        ("build", "failed", 4.25, "buildah exit 1"), ("rollout", "pending", None, ""), ("report", "pending", None, "")]
    assert [r.id for r in patch_report(store, now=NOW, runs=1).runs] == [second]
    assert patch_report(store, now=NOW, runs=0).runs == ()


def test_a_running_run_without_seconds_in_its_output_uses_its_timestamps(store: Store) -> None:
    run_id = store.start_run(trigger="once", triggered_by="bob@h", steps=STEPS)
    store.claim_step(run_id, "detect", owner="h:1", lease_seconds=60)
    store.claim_step(run_id, "detect", owner="h:1", lease_seconds=60)  # the same owner again: a retry
    store.finish_step(run_id, "detect", owner="h:1", state="done", output={})
    [r] = patch_report(store, now=NOW).runs
    assert (r.state, r.finished_at, r.seconds) == ("running", None, None)
    detect = r.steps[0]
    assert detect.attempts == 2 and detect.seconds is not None and 0 <= detect.seconds < 60


# -- the command ------------------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, freeze_clock: Callable[[dt.datetime], None]) -> None:
    freeze_clock(NOW)  # ages ("exposed 2 d") are measured against the frozen clock, not the day the suite runs
    monkeypatch.delenv("PATCHLINE_CONFIG", raising=False)
    monkeypatch.delenv("PATCHLINE_DB", raising=False)
    monkeypatch.chdir(tmp_path)


def test_cli_json_is_report_v1(store: Store, db: Path, cli_env: None) -> None:
    fleet(store)
    run(store, trigger="manual", by="alice@h")
    result = runner.invoke(app, ["report", "--json", "--db", str(db)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "patchline/report/v1"
    assert set(doc) == {"schema", "generated_at", "items_total", "items_patched", "items_exposed", "overall",
                        "items", "services", "still_exposed", "cannot_assess", "runs"}
    assert doc["cannot_assess"] == []
    assert doc["overall"] == {"count": 3, "median": 192.0, "p90": 3600.0, "worst": 3600.0}
    dsa1 = next(i for i in doc["items"] if i["item"] == "DSA-1")
    assert set(dsa1) == {"kind", "item", "exposed", "first_seen", "first_rebuilt", "last_rebuilt", "last_deployed",
                         "time_to_patch", "age", "recipes"}
    assert (dsa1["first_seen"], dsa1["last_deployed"], dsa1["time_to_patch"]) == (
        "2026-12-01T10:00:00Z", "2026-12-01T11:00:00Z", 3600.0)
    assert set(dsa1["recipes"][0]) == {"recipe", "state", "why", "services", "patched", "first_seen",
                                       "first_seen_run", "rebuilt_at", "digest", "deployed_at"}
    web = next(s for s in doc["services"] if s["service"] == "web")
    assert web == {"service": "web", "recipes": ["web"], "deployed": 2, "open": 1,
                   "time_to_patch": {"count": 2, "median": 192.0, "p90": 192.0, "worst": 192.0}}
    assert [(x["item"], x["why"]) for x in doc["still_exposed"]] == [
        ("DSA-2", "build failed: apt exit 100"), ("DSA-4", "not rebuilt yet")]
    assert doc["generated_at"].endswith("Z")
    [r] = doc["runs"]
    assert (r["trigger"], r["triggered_by"], r["state"], r["inputs"]) == (
        "manual", "alice@h", "succeeded", {"feed_revisions": {"osv": "r1"}})
    assert [s["step"] for s in r["steps"]] == list(STEPS) and r["started_at"].endswith("Z")


def test_cli_tables(store: Store, db: Path, cli_env: None) -> None:
    fleet(store)
    run(store, trigger="manual", by="alice@h", fail_at="rollout")
    result = runner.invoke(app, ["report", "--db", str(db), "--runs", "5"])
    assert result.exit_code == 0, result.output  # still exposed items are a finding, not a failure
    out = result.stdout
    for text in ("time to patch (per advisory and update)", "time to patch (per service)", "still exposed",
                 "runs (newest first)", "3 min 12 s", "1 h", "50 s", "build failed: apt exit 100", "worker",
                 "3 of 5 item(s) patched everywhere", "median 3 min 12 s, p90 1 h, worst 1 h", "alice@h",
                 "rollout: buildah exit 1", "exposed 2 d", "build done 3.5 s"):
        assert text in out, text


def test_cli_on_an_empty_store(db: Path, cli_env: None) -> None:
    result = runner.invoke(app, ["report", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "nothing recorded yet" in result.stdout
    doc = json.loads(runner.invoke(app, ["report", "-f", "json", "--db", str(db)]).stdout)
    assert (doc["items"], doc["runs"], doc["overall"]["median"]) == ([], [], None)


def test_cli_error_is_one_line_and_exit_2(tmp_path: Path, cli_env: None) -> None:
    (tmp_path / "bad.db").write_text("not a database")
    result = runner.invoke(app, ["report", "--db", str(tmp_path / "bad.db")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "-"), (0, "0 s"), (0.44, "0.4 s"), (3.0, "3 s"), (59.6, "1 min"), (192, "3 min 12 s"), (3600, "1 h"),
    (3660, "1 h 1 min"), (86399, "23 h 59 min"), (90000, "1 d 1 h"), (2 * 86400 - 100, "1 d 23 h"),
])
def test_humanize_seconds(seconds: float | None, text: str) -> None:
    assert _cli_report.humanize_seconds(seconds) == text

"""[policy]: each rule's verdict with its evidence, exceptions that expire by themselves, and the gates that use
them: plan refuses a base outside the allow-list; a rollout refuses an image with a fixable finding worse than
allowed, until a rebuild fixes it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchline._config import Config, PolicyConfig, PolicyException
from patchline.advisories import OsvFeed
from patchline.build import build_graph, load_recipes
from patchline.build._state import refused_by_policy
from patchline.cli import app
from patchline.errors import PolicyDenied
from patchline.policy import check_bases, check_image
from patchline.rollout._service import check_rollout_policy
from patchline.sbom import load_inventory_json
from patchline.store import open_store
from tests.unit.build.test_plan import FLEET, UPSTREAM, World, plan_of, write_fleet

TODAY = dt.date(2026, 12, 5)
DATA = Path(__file__).resolve().parents[2] / "data" / "sbom" / "debian-app" / "inventory.json"


def exception(rule: str, subject: str, expires: dt.date) -> PolicyException:
    return PolicyException.model_validate({"rule": rule, "subject": subject, "owner": "alice@platform",
                                           "reason": "migrating in Q1", "expires": expires})


# -- the rules ---------------------------------------------------------------------------------------------


def test_allowed_bases() -> None:
    policy = PolicyConfig(allowed_bases=("127.0.0.1:5000/library/*",))
    ok = check_bases(policy, ["127.0.0.1:5000/library/debian:12"], subject="base", today=TODAY)
    assert ok.ok and ok.verdicts[0].rule == "allowed-bases"
    bad = check_bases(policy, ["docker.io/someone/debian:12@sha256:" + "a" * 64], subject="base", today=TODAY)
    assert not bad.ok and bad.summary() == (
        "policy allowed-bases: docker.io/someone/debian:12@sha256:" + "a" * 64
        + " is not from an allowed repository (127.0.0.1:5000/library/*)")
    assert check_bases(PolicyConfig(), ["anything:1"], subject="x", today=TODAY).verdicts == ()  # rule off


@pytest.mark.parametrize(("today", "ok", "expired"), [(TODAY, True, 0), (dt.date(2027, 1, 2), False, 1)])
def test_an_exception_applies_until_it_expires(today: dt.date, ok: bool, expired: int) -> None:
    policy = PolicyConfig(allowed_bases=("127.0.0.1:5000/*",),
                          exceptions=(exception("allowed-bases", "docker.io/someone/*", dt.date(2027, 1, 1)),))
    decision = check_bases(policy, ["docker.io/someone/debian:12"], subject="base", today=today)
    assert decision.ok is ok and len(decision.expired) == expired
    if ok:
        assert decision.verdicts[0].excepted_by == "alice@platform: migrating in Q1 (until 2027-01-01)"


def test_image_rules() -> None:
    policy = PolicyConfig(max_fixable_severity="high", denied_packages=("telnet*",))
    fixable = [("GHSA-x", "openssl", 5), ("GHSA-y", "zlib", 4)]
    decision = check_image(policy, subject="r/web@sha256:1", fixable=fixable, packages=["bash", "telnetd"],
                           today=TODAY)
    assert [(v.rule, v.passed) for v in decision.verdicts] == [("max-fixable-severity", False),
                                                                ("denied-packages", False)]
    assert "GHSA-x (critical) in openssl" in decision.summary() and "GHSA-y" not in decision.summary()
    assert "denied package(s) present: telnetd" in decision.summary()
    clean = check_image(policy, subject="r/web@sha256:2", fixable=[("GHSA-y", "zlib", 4)], packages=["bash"],
                        today=TODAY)
    assert clean.ok


# -- plan: a base outside the allow-list ---------------------------------------------------------------------


def test_plan_refuses_a_base_outside_the_allow_list_and_what_builds_on_it(
        tmp_path: Path, freeze_clock: Callable[[dt.datetime], None]) -> None:
    freeze_clock(dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC))
    config = write_fleet(tmp_path, FLEET)
    graph = build_graph(load_recipes(config))
    strict = config.model_copy(update={"policy": PolicyConfig(allowed_bases=("127.0.0.1:5000/only/*",))})
    refused = refused_by_policy(strict, graph)
    assert set(refused) == {"base"} and refused["base"].startswith(f"policy allowed-bases: {UPSTREAM}")
    plan = plan_of(config, World(), {}, refused=refused)
    assert not plan.items  # base refused; everything built FROM it cannot be planned either
    assert dict(plan.skipped)["base"] == refused["base"] and "admin" in dict(plan.skipped)
    excepted = strict.model_copy(update={"policy": strict.policy.model_copy(update={"exceptions": (
        exception("allowed-bases", "base", dt.date(2027, 1, 1)),)})})
    assert refused_by_policy(excepted, graph) == {}
    freeze_clock(dt.datetime(2027, 1, 2, tzinfo=dt.UTC))  # the exception has expired by itself
    assert set(refused_by_policy(excepted, graph)) == {"base"}


# -- rollout: a fixable critical finding blocks it until the rebuild fixes it ----------------------------------


def test_a_fixable_critical_finding_blocks_rollout_until_the_rebuild_fixes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "GHSA-crit.json").write_text(json.dumps({
        "id": "GHSA-crit-0001", "modified": "2026-11-01T00:00:00Z", "summary": "urllib3 critical",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": "PyPI", "name": "urllib3"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.2.2"}]}]}]}))
    old = load_inventory_json(DATA.read_text())  # urllib3 2.2.1
    fixed = replace(old, image=replace(old.image, config_digest="sha256:" + "f" * 64),
                    packages=tuple(replace(p, version="2.2.2") if p.name == "urllib3" else p for p in old.packages))
    config = Config.model_validate({"policy": {"max_fixable_severity": "high"}})
    db = tmp_path / "p.db"
    old_ref = "127.0.0.1:5000/example/web@sha256:" + "1" * 64
    new_ref = "127.0.0.1:5000/example/web@sha256:" + "2" * 64
    with open_store(f"sqlite:///{db}") as store:
        store.record_image(old, refs=[("127.0.0.1:5000/example/web", "", "sha256:" + "1" * 64)])
        store.record_image(fixed, refs=[("127.0.0.1:5000/example/web", "", "sha256:" + "2" * 64)])
        store.refresh_feed(OsvFeed(str(feed)))
        with pytest.raises(PolicyDenied, match=r"policy max-fixable-severity: .*GHSA-crit-0001 \(critical\)"):
            check_rollout_policy(config, store, old_ref, service="web")
        [denied] = store.events(types=["policy.denied"])  # the refusal is in the audit trail and on the bus
        assert (denied.subject, denied.data["image"], denied.data["ok"]) == ("web", old_ref, False)
        assert denied.data["verdicts"][0]["rule"] == "max-fixable-severity"
        check_rollout_policy(config, store, new_ref)  # the rebuild fixed it: allowed
        with pytest.raises(PolicyDenied, match="not in the store"):
            check_rollout_policy(config, store, "127.0.0.1:5000/example/web@sha256:" + "9" * 64)

    monkeypatch.chdir(tmp_path)
    (tmp_path / "patchline.toml").write_text(
        f'[store]\nurl = "sqlite:///{db}"\n[policy]\nmax_fixable_severity = "high"\n')
    monkeypatch.setenv("PATCHLINE_CONFIG", str(tmp_path / "patchline.toml"))
    runner = CliRunner()
    refused = runner.invoke(app, ["policy", "check", old_ref, "--json"])
    assert refused.exit_code == 1, refused.output
    doc = json.loads(refused.stdout)
    assert doc["ok"] is False and doc["verdicts"][0]["rule"] == "max-fixable-severity"
    allowed = runner.invoke(app, ["policy", "check", new_ref])
    assert allowed.exit_code == 0 and "pass" in allowed.stdout, allowed.output

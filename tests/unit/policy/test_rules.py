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
from patchline.policy import BaseFacts, PendingSecurityUpdate, check_bases, check_image
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


PASSED = {"signature": ("passed", "gpg"), "cosign": ("passed", "ecdsa"), "sbom": ("passed", "sha256:1"),
          "provenance": ("passed", "SLSA v1")}


@pytest.mark.parametrize(("found", "failure"), [
    (PASSED, None),
    ({**PASSED, "provenance": ("failed", "no provenance (no tag sha256-1.att)")},
     "provenance failed: no provenance (no tag sha256-1.att)"),
    ({**PASSED, "sbom": ("skipped", "[sign] sbom = false")}, "sbom skipped: [sign] sbom = false"),
    ({k: v for k, v in PASSED.items() if k != "sbom"}, "sbom failed: not checked"),
    (None, "the image's attestations could not be verified"),
])
def test_required_attestations(found: dict[str, tuple[str, str]] | None, failure: str | None) -> None:
    policy = PolicyConfig(require_attestations=("signature", "sbom", "provenance"))
    decision = check_image(policy, subject="r/web@sha256:1", fixable=[], packages=[], today=TODAY,
                           attestations=found)
    (verdict,) = decision.verdicts
    assert verdict.rule == "required-attestations"
    assert verdict.passed is (failure is None)
    if failure is not None:
        assert failure in verdict.evidence
    # cosign is not required here: its failure alone does not refuse.
    if found is not None and failure is None:
        alone = check_image(policy, subject="r/web@sha256:1", fixable=[], packages=[], today=TODAY,
                            attestations={**found, "cosign": ("failed", "no .sig")})
        assert alone.ok


@pytest.mark.parametrize(("found", "hit"), [
    ([("libfoo", ("MIT",))], None),
    ([("libfoo", ("AGPL-3.0-only",))], "libfoo (AGPL-3.0-only)"),
    ([("libfoo", ("MIT OR AGPL-3.0-or-later",))], "libfoo (MIT OR AGPL-3.0-or-later)"),
    ([("libfoo", ("(GPL-2.0-only WITH Classpath-exception-2.0)",))], None),
    ([], None),
])
def test_denied_licenses(found: list[tuple[str, tuple[str, ...]]], hit: str | None) -> None:
    policy = PolicyConfig(denied_licenses=("AGPL-*",))
    (verdict,) = check_image(policy, subject="r/web@sha256:1", fixable=[], packages=[], today=TODAY,
                             licenses=found).verdicts
    assert verdict.rule == "denied-licenses" and verdict.passed is (hit is None)
    if hit is not None:
        assert verdict.evidence == f"denied licence(s): {hit}"
    unknown = check_image(policy, subject="r/web@sha256:1", fixable=[], packages=[], today=TODAY,
                          unknown="not in the store")
    assert not unknown.ok


def test_every_rule_can_be_excepted() -> None:
    from typing import get_args

    from patchline.policy import RULES

    assert set(get_args(PolicyException.model_fields["rule"].annotation)) == set(RULES)


BASE = "registry.example/library/debian:12"


def at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)


@pytest.mark.parametrize(("facts", "ok", "evidence"), [
    (BaseFacts(BASE, created=at("2026-11-20")), True, f"1 base(s) created within 30 days (the oldest, {BASE}, 15 "
     "days ago)"),
    (BaseFacts(BASE, created=at("2026-11-05")), True, f"1 base(s) created within 30 days (the oldest, {BASE}, 30 "
     "days ago)"),
    (BaseFacts(BASE, created=at("2026-11-04")), False, f"{BASE} was created on 2026-11-04, 31 days ago "
     "(max_base_age_days = 30)"),
    (BaseFacts(BASE, created_unknown="its image config has no created date"), False,
     f"{BASE}: its creation date is unknown (its image config has no created date), so its age cannot be checked"),
    (BaseFacts(BASE, created=at("1970-01-01")), False, f"{BASE}: its creation date 1970-01-01 is a placeholder "
     "(reproducible builds write one), so its age cannot be checked"),
    (BaseFacts(BASE, created=at("2027-01-01")), False, f"{BASE}: its creation date 2027-01-01 is in the future, so "
     "its age cannot be checked"),
    (None, False, f"{BASE}: its creation date is unknown (it was not looked up), so its age cannot be checked"),
])
def test_base_age(facts: BaseFacts | None, ok: bool, evidence: str) -> None:
    decision = check_bases(PolicyConfig(max_base_age_days=30), [BASE], subject="base", today=TODAY,
                           facts={BASE: facts} if facts else {})
    assert [(v.rule, v.passed, v.evidence) for v in decision.verdicts] == [("base-age", ok, evidence)]


@pytest.mark.parametrize(("today", "ok"), [(TODAY, True), (dt.date(2027, 1, 2), False)])
def test_an_unknown_base_age_is_excepted_like_any_failure(today: dt.date, ok: bool) -> None:
    policy = PolicyConfig(max_base_age_days=30,
                          exceptions=(exception("base-age", "registry.example/library/*", dt.date(2027, 1, 1)),))
    decision = check_bases(policy, [BASE], subject="base", today=today,
                           facts={BASE: BaseFacts(BASE, created_unknown="registry unreachable")})
    assert decision.ok is ok and decision.verdicts[0].outcome == ("excepted" if ok else "fail")


@pytest.mark.parametrize(("facts", "ok", "evidence"), [
    (BaseFacts(BASE, signed_by="keys/vendor.pub"), True, f"signed: {BASE} by keys/vendor.pub"),
    (BaseFacts(BASE, unsigned=f"{BASE} has no cosign signature (no tag sha256-aa.sig)"), False,
     f"{BASE} has no cosign signature that verifies with keys/vendor.pub, keys/mirror.pub: {BASE} has no cosign "
     "signature (no tag sha256-aa.sig)"),
    (None, False, f"{BASE} has no cosign signature that verifies with keys/vendor.pub, keys/mirror.pub: its "
     "signature was not checked"),
])
def test_base_signed(facts: BaseFacts | None, ok: bool, evidence: str) -> None:
    policy = PolicyConfig(allowed_bases_signed_by=(Path("keys/vendor.pub"), Path("keys/mirror.pub")))
    decision = check_bases(policy, [BASE], subject="base", today=TODAY, facts={BASE: facts} if facts else {})
    assert [(v.rule, v.passed, v.evidence) for v in decision.verdicts] == [("base-signed", ok, evidence)]


@pytest.mark.parametrize(("pending", "unknown", "ok", "evidence"), [
    ((), "", True, "no pending security update"),
    ((PendingSecurityUpdate("libssl3", dt.date(2026, 11, 20)),), "", True,
     "the oldest pending security update, libssl3, was first seen 2026-11-20 (15 days ago)"),
    ((PendingSecurityUpdate("libssl3", dt.date(2026, 10, 1)), PendingSecurityUpdate("zlib1g", dt.date(2026, 9, 1)),
      PendingSecurityUpdate("tzdata", dt.date(2026, 12, 1))), "", False,
     "security update(s) pending longer than 30 days: zlib1g (first seen 2026-09-01, 95 days ago), libssl3 (first "
     "seen 2026-10-01, 65 days ago)"),
    ((PendingSecurityUpdate("libc6", None),), "", False, "security update(s) pending with no record of when "
     "patchline first saw them, so their age is unknown: libc6 (a patch run's assess step records it)"),
    ((), "r/web@sha256:1 is not in the store", False, "r/web@sha256:1 is not in the store"),
])
def test_pending_update_age(pending: tuple[PendingSecurityUpdate, ...], unknown: str, ok: bool,
                            evidence: str) -> None:
    decision = check_image(PolicyConfig(max_pending_update_age_days=30), subject="r/web@sha256:1", fixable=(),
                           packages=(), pending=pending, unknown=unknown, today=TODAY)
    assert [(v.rule, v.passed, v.evidence) for v in decision.verdicts] == [("pending-update-age", ok, evidence)]


UNTRUSTED = "registry.example/untrusted/tool@sha256:" + "b" * 64


@pytest.mark.parametrize(("bases", "bases_unknown", "services", "ok", "evidence"), [
    ((UNTRUSTED,), "", (("web", "default"),), False, f"built FROM {UNTRUSTED} (require_runsc_for_bases), it may "
     "run only under runsc, but service(s) web (default) do not"),
    ((UNTRUSTED,), "", (("web", "runsc"),), True, f"built FROM {UNTRUSTED} (require_runsc_for_bases), it may run "
     "only under runsc: service(s) web do"),
    ((BASE,), "", (("web", "default"),), True, "no base of it is in require_runsc_for_bases "
     "(registry.example/untrusted/*)"),
    ((), "r/web is not the target of a recipe", (("web", "default"),), False, "its bases are unknown (r/web is not "
     "the target of a recipe), so it may run only under runsc, but service(s) web (default) do not"),
    ((), "r/web is not the target of a recipe", (("web", "runsc"),), True, "its bases are unknown (r/web is not "
     "the target of a recipe), so it may run only under runsc: service(s) web do"),
])
def test_required_runtime(bases: tuple[str, ...], bases_unknown: str, services: tuple[tuple[str, str], ...],
                          ok: bool, evidence: str) -> None:
    policy = PolicyConfig(require_runsc_for_bases=("registry.example/untrusted/*",))
    decision = check_image(policy, subject="r/web@sha256:1", fixable=(), packages=(), bases=bases,
                           bases_unknown=bases_unknown, services=services, today=TODAY)
    assert [(v.rule, v.passed, v.evidence) for v in decision.verdicts] == [("required-runtime", ok, evidence)]


def test_an_exception_for_an_untrusted_base_lets_it_run_under_runc_until_it_expires() -> None:
    policy = PolicyConfig(require_runsc_for_bases=("registry.example/untrusted/*",), exceptions=(
        exception("required-runtime", "registry.example/untrusted/tool", dt.date(2027, 1, 1)),))
    decision = check_image(policy, subject="r/web@sha256:1", fixable=(), packages=(), bases=(UNTRUSTED,),
                           services=(("web", "default"),), today=TODAY)
    assert decision.ok and decision.records("rollout") == [{
        "stage": "rollout", "subject": "r/web@sha256:1", "rule": "required-runtime", "verdict": "excepted",
        "evidence": decision.verdicts[0].evidence, "excepted_by": "alice@platform: migrating in Q1 (until 2027-01-01)"}]


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

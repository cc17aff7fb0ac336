"""The gates that use [policy]'s newer rules, with the world given as data or a real SQLite store: plan refuses a
base too old or unsigned (and every refusal is a policy.denied event); a rollout refuses an image from an
untrusted base on a service not under runsc, or one with a security update pending too long; a patch run records
every decision, plan's and rollout's."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchline._config import Config
from patchline.assess.model import PackageRef, PendingUpdate
from patchline.build import build_graph, load_recipes, plan_fleet
from patchline.build._state import policy_at_plan
from patchline.cli import app
from patchline.errors import Error, ImageNotFound, PolicyDenied, SignatureRefused
from patchline.pipeline import STEPS
from patchline.policy import PolicyDecision
from patchline.rollout._service import check_rollout_policy, image_bases, rollout_decision
from patchline.sbom import load_inventory_json
from patchline.store import Store, open_store
from tests.unit.rollout.test_engine import MemoryTarget

REG = "registry.example:5000"
DIGEST = "sha256:" + "a" * 64
DEBIAN = f"registry.example/library/debian@{DIGEST}"
UNTRUSTED = "registry.example/untrusted/toolbox@sha256:" + "b" * 64
DATA = Path(__file__).resolve().parents[2] / "data" / "sbom" / "debian-app" / "inventory.json"  # created 2024-03-19
FLEET = {
    "base": f"FROM {DEBIAN}\nRUN true\n",
    "web": "ARG PATCHLINE_REGISTRY\nFROM ${PATCHLINE_REGISTRY}/t/base:latest\nRUN true\n",
    "tool": f"FROM {UNTRUSTED}\nRUN true\n",
}
WEB = f"{REG}/t/web@sha256:" + "1" * 64
TOOL = f"{REG}/t/tool@sha256:" + "2" * 64


def fleet(root: Path, recipes: tuple[str, ...] = tuple(FLEET), **sections: object) -> Config:
    """The recipes of FLEET on disk (base images pinned by digest: resolving them needs no registry)."""
    for name, body in FLEET.items():
        if name not in recipes:
            continue
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "Containerfile").write_text(body)
    return Config.model_validate({"build": {"registry": REG, "namespace": "t"}, "images": [{"glob": "*"}],
                                  "source": root / "patchline.toml", **sections})


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path}/p.db")


# -- plan ----------------------------------------------------------------------------------------------------


def test_a_plan_refusal_is_a_policy_denied_event_and_part_of_the_fleet_plan(tmp_path: Path, store: Store) -> None:
    config = fleet(tmp_path, policy={"allowed_bases": ["registry.example/library/*"]})
    planned = plan_fleet(config, store)
    assert dict(planned.plan.skipped)["tool"].startswith(f"policy allowed-bases: {UNTRUSTED} is not from")
    assert {d.subject: d.ok for d in planned.policy} == {"base": True, "web": True, "tool": False}
    [denied] = store.events(types=["policy.denied"])
    assert denied.subject == "tool"
    assert {k: denied.data[k] for k in ("step", "recipe", "service", "image", "bases", "ok")} == {
        "step": "plan", "recipe": "tool", "service": None, "image": f"{REG}/t/tool:latest", "bases": [UNTRUSTED],
        "ok": False}
    assert denied.data["verdicts"][0]["rule"] == "allowed-bases"
    assert denied.data["reason"] == dict(planned.plan.skipped)["tool"]
    plan_fleet(config, store, emit_refusals=False)  # a re-plan of what was planned already says nothing new
    assert len(store.events(types=["policy.denied"])) == 1


def test_base_age_at_plan_reads_the_created_date_the_store_knows(
        tmp_path: Path, store: Store, freeze_clock: Callable[[dt.datetime], None]) -> None:
    inventory = load_inventory_json(DATA.read_text())
    store.record_image(inventory, refs=[("registry.example/library/debian", "12", DIGEST)])
    config = fleet(tmp_path, ("base", "web"), policy={"max_base_age_days": 30})  # no registry is asked
    freeze_clock(dt.datetime(2024, 4, 1, tzinfo=dt.UTC))
    planned = plan_fleet(config, store)
    base = next(d for d in planned.policy if d.subject == "base")
    assert base.ok
    assert base.verdicts[0].evidence == f"1 base(s) created within 30 days (the oldest, {DEBIAN}, 13 days ago)"
    freeze_clock(dt.datetime(2026, 12, 5, tzinfo=dt.UTC))
    later = plan_fleet(config, store)
    assert dict(later.plan.skipped)["base"] == (
        f"policy base-age: {DEBIAN} was created on 2024-03-19, 991 days ago (max_base_age_days = 30)")
    assert dict(later.plan.skipped)["web"] == "its base base cannot be planned"


class Lookup:
    """The registry's answers as data: digests, created dates, and which key verifies which base."""

    def __init__(self, signed: Mapping[str, str]) -> None:
        self.signed = signed
        self.checked: list[tuple[str, Path]] = []

    def resolve(self, reference: str) -> str:
        return reference.partition("@")[2]

    def created(self, reference: str, digest: str) -> dt.datetime:
        raise ImageNotFound("not asked for")

    def verify_signature(self, reference: str, digest: str, key: Path) -> None:
        self.checked.append((reference, key))
        if self.signed.get(reference) != key.name:
            raise SignatureRefused(f"no cosign signature on {reference} verifies with {key}")


def test_base_signed_at_plan_takes_any_of_the_keys(tmp_path: Path) -> None:
    config = fleet(tmp_path, policy={"allowed_bases_signed_by": ["keys/vendor.pub", "/etc/keys/mirror.pub"]})
    graph = build_graph(load_recipes(config))
    lookup = Lookup({DEBIAN: "mirror.pub"})
    decisions = policy_at_plan(config, graph, lookup, today=dt.date(2026, 12, 5))
    assert decisions["base"].verdicts[0].evidence == f"signed: {DEBIAN} by /etc/keys/mirror.pub"
    assert decisions["base"].ok
    assert decisions["web"].verdicts[0].evidence == "no outside base"  # its base is a recipe, checked itself
    assert decisions["tool"].summary() == (
        f"policy base-signed: {UNTRUSTED} has no cosign signature that verifies with keys/vendor.pub, "
        f"/etc/keys/mirror.pub: no cosign signature on {UNTRUSTED} verifies with {tmp_path}/keys/vendor.pub; "
        f"no cosign signature on {UNTRUSTED} verifies with /etc/keys/mirror.pub")
    assert (DEBIAN, tmp_path / "keys" / "vendor.pub") in lookup.checked  # relative to patchline.toml
    assert policy_at_plan(fleet(tmp_path), graph, lookup) == {}  # no rule: nothing looked up


# -- rollout -------------------------------------------------------------------------------------------------


SERVICES = [{"name": "tool", "image": "tool"}, {"name": "tool-sandboxed", "image": "tool", "runtime": "runsc"},
            {"name": "web", "image": "web"}]


def test_an_image_from_an_untrusted_base_rolls_out_only_under_runsc(tmp_path: Path, store: Store) -> None:
    config = fleet(tmp_path, services=SERVICES, policy={"require_runsc_for_bases": ["registry.example/untrusted/*"]})
    assert image_bases(config, store, TOOL) == ((UNTRUSTED,), ("tool",), "")
    assert image_bases(config, store, WEB) == ((DEBIAN,), ("web", "base"), "")  # through its local base
    with pytest.raises(PolicyDenied, match=r"policy required-runtime: built FROM registry.example/untrusted/"
                                           r"toolbox@sha256:b+ \(require_runsc_for_bases\), it may run only under "
                                           r"runsc, but service\(s\) tool \(default\) do not"):
        check_rollout_policy(config, store, TOOL, service="tool")
    [denied] = store.events(types=["policy.denied"])
    assert (denied.subject, denied.data["step"], denied.data["verdicts"][0]["rule"]) == (
        "tool", "rollout", "required-runtime")
    assert check_rollout_policy(config, store, TOOL, service="tool-sandboxed").ok
    assert check_rollout_policy(config, store, WEB, service="web").verdicts[0].evidence.startswith("no base of it")
    elsewhere = "registry.example/elsewhere/app@" + DIGEST  # built by no recipe: unknown bases, runsc only
    assert "its bases are unknown (registry.example/elsewhere/app is not the target of a recipe of [[images]])" \
        in rollout_decision(config, store, elsewhere, service="web").summary()
    assert rollout_decision(config, store, elsewhere, service="tool-sandboxed").ok
    assert rollout_decision(config, store, elsewhere).verdicts[0].evidence.endswith("no service runs it")


def _pending(name: str, suite: str = "bookworm-security") -> PendingUpdate:
    return PendingUpdate(package=PackageRef("deb", name, "1", f"pkg:deb/debian/{name}@1"), candidate="2",
                         suite=suite, source_name=name, source_version="2")


def test_a_security_update_pending_too_long_blocks_the_rollout(
        tmp_path: Path, store: Store, freeze_clock: Callable[[dt.datetime], None]) -> None:
    inventory = load_inventory_json(DATA.read_text())
    config_digest = inventory.image.config_digest
    store.record_image(inventory, refs=[(f"{REG}/t/web", "", WEB.partition("@")[2])])
    config = fleet(tmp_path, services=SERVICES, policy={"max_pending_update_age_days": 30})
    freeze_clock(dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC))
    assert rollout_decision(config, store, WEB).verdicts[0].evidence == "no pending security update"
    store.record_pending(config_digest, [_pending("libssl3"), _pending("tzdata", "bookworm-updates")], revision="r")
    store.note_patch_items([("update", "libssl3", "web")], run_id=1, when=dt.datetime(2026, 11, 20, tzinfo=dt.UTC))
    assert rollout_decision(config, store, WEB).verdicts[0].evidence == (
        "the oldest pending security update, libssl3, was first seen 2026-11-20 (15 days ago)")  # tzdata: no CVE
    freeze_clock(dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(PolicyDenied, match=r"policy pending-update-age: security update\(s\) pending longer than "
                                           r"30 days: libssl3 \(first seen 2026-11-20, 42 days ago\)"):
        check_rollout_policy(config, store, WEB, service="web")
    store.record_pending(config_digest, [_pending("libc6")], revision="r2")  # no patch run has seen it yet
    assert "their age is unknown: libc6" in rollout_decision(config, store, WEB).summary()
    missing = rollout_decision(config, store, f"{REG}/t/web@sha256:" + "9" * 64)
    assert "is not in the store" in missing.summary()


def test_policy_check_shows_the_plan_and_rollout_rules_of_an_image(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, freeze_clock: Callable[[dt.datetime], None]) -> None:
    db = tmp_path / "p.db"
    with open_store(f"sqlite:///{db}") as s:
        s.record_image(load_inventory_json(DATA.read_text()),
                       refs=[("registry.example/library/debian", "12", DIGEST)])
    fleet(tmp_path, ("base", "web"))

    def configure(max_age: int) -> None:
        (tmp_path / "patchline.toml").write_text(
            f'[store]\nurl = "sqlite:///{db}"\n[build]\nregistry = "{REG}"\nnamespace = "t"\n'
            '[[images]]\nglob = "*"\n[[services]]\nname = "web"\nimage = "web"\n'
            f'[policy]\nmax_base_age_days = {max_age}\nrequire_runsc_for_bases = ["registry.example/untrusted/*"]\n')

    monkeypatch.setenv("PATCHLINE_CONFIG", str(tmp_path / "patchline.toml"))
    freeze_clock(dt.datetime(2026, 12, 5, tzinfo=dt.UTC))
    configure(1000)
    result = CliRunner().invoke(app, ["policy", "check", WEB, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [(v["rule"], v["passed"]) for v in doc["verdicts"]] == [("base-age", True), ("required-runtime", True)]
    assert "991 days ago" in doc["verdicts"][0]["evidence"]
    configure(30)
    table = CliRunner().invoke(app, ["policy", "check", WEB])
    assert table.exit_code == 1, table.output
    assert "base-age" in table.stdout and "fail" in table.stdout and "required-runtime" in table.stdout


# -- the patch run's record -------------------------------------------------------------------------------------


def test_a_patch_run_records_every_policy_decision(tmp_path: Path, store: Store,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from patchline.pipeline._run import _Runner

    config = fleet(tmp_path, services=SERVICES, policy={
        "allowed_bases": ["registry.example/*"], "require_runsc_for_bases": ["registry.example/untrusted/*"]})
    run_id = store.start_run(trigger="once", triggered_by="t", steps=[s.value for s in STEPS])
    runner = _Runner(config, store, run_id, lambda _m: None, None, 60.0)
    plan = runner.plan()[0].as_dict()
    assert {(r["stage"], r["subject"], r["rule"], r["verdict"]) for r in plan["policy"]} == {
        ("plan", name, "allowed-bases", "pass") for name in ("base", "web", "tool")}

    images = {"tool": TOOL, "tool-sandboxed": TOOL, "web": WEB}
    target = MemoryTarget()
    monkeypatch.setattr("patchline.rollout.make_target", lambda *_a, **_k: target)
    monkeypatch.setattr("patchline.rollout.resolve_image",
                        lambda _c, _s, service, to: to or images[service.name])
    rollout = runner.rollout()[0].as_dict()
    assert {n: s["state"] for n, s in rollout["services"].items()} == {
        "tool": "refused", "tool-sandboxed": "succeeded", "web": "succeeded"}
    rows = {(r["service"], r["rule"]): r for r in rollout["policy"]}
    assert set(rows) == {("tool", "required-runtime"), ("tool-sandboxed", "required-runtime"),
                         ("web", "required-runtime")}
    refused = rows[("tool", "required-runtime")]
    assert (refused["stage"], refused["subject"], refused["verdict"]) == ("rollout", TOOL, "fail")
    assert "tool (default) do not" in refused["evidence"]


def test_a_decision_reaches_the_caller_whether_it_refuses_or_not(tmp_path: Path, store: Store) -> None:
    config = fleet(tmp_path, services=SERVICES, policy={"require_runsc_for_bases": ["registry.example/untrusted/*"]})
    seen: list[PolicyDecision] = []
    with pytest.raises(Error):
        check_rollout_policy(config, store, TOOL, service="tool", on_decision=seen.append)
    check_rollout_policy(config, store, TOOL, service="tool-sandboxed", on_decision=seen.append)
    assert [d.ok for d in seen] == [False, True]

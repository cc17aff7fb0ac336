"""The build graph and the planner over recipes on disk, with the world's state given as data."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from patchline._config import Config
from patchline.build import (
    CurrentImage,
    ReasonCode,
    build_graph,
    input_hash,
    load_recipes,
    make_plan,
)
from patchline.errors import BuildError, ConfigError, Error, GraphError, ImageNotFound
from patchline.store import FixableRow, PendingRow

REG = "127.0.0.1:5000"
UPSTREAM = "docker.io/library/debian:bookworm"


def write_fleet(root: Path, recipes: Mapping[str, str]) -> Config:
    """One directory per recipe with a Containerfile whose FROM lines are given; a glob config over them."""
    for name, body in recipes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "Containerfile").write_text(body)
    config_file = root / "patchline.toml"
    config_file.write_text(f'[build]\nregistry = "{REG}"\nnamespace = "t"\n\n[[images]]\nglob = "*"\n')
    return Config.model_validate({"build": {"registry": REG, "namespace": "t"}, "images": [{"glob": "*"}],
                                  "source": config_file})


def local(name: str) -> str:
    return f"ARG PATCHLINE_REGISTRY\nFROM ${{PATCHLINE_REGISTRY}}/t/{name}:latest\nRUN true\n"


FLEET = {
    "base": f"FROM {UPSTREAM}\nRUN true\n",
    "web": local("base"),
    "tools": local("base"),
    "worker": local("base"),
    "admin": local("web"),
}


@dataclass
class World:
    """The state a plan reads: current builds, outside digests, pending updates, fixable findings."""

    current_images: dict[str, CurrentImage] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=lambda: {UPSTREAM: "sha256:" + "a" * 64})
    pending_rows: dict[str, list[PendingRow]] = field(default_factory=dict)
    fixable_rows: dict[str, list[FixableRow]] = field(default_factory=dict)
    unknown_rows: dict[str, str] = field(default_factory=dict)
    resolved: list[str] = field(default_factory=list)

    def current(self) -> Mapping[str, CurrentImage]:
        return self.current_images

    def resolve(self, reference: str) -> str:
        self.resolved.append(reference)
        if reference not in self.digests:
            raise ImageNotFound(f"{reference}: manifest unknown")
        return self.digests[reference]

    def pending(self, config_digests: Collection[str]) -> Mapping[str, list[PendingRow]]:
        return {d: self.pending_rows[d] for d in config_digests if d in self.pending_rows}

    def fixable(self, config_digests: Collection[str]) -> Mapping[str, list[FixableRow]]:
        return {d: self.fixable_rows[d] for d in config_digests if d in self.fixable_rows}

    def unknown(self, config_digests: Collection[str]) -> Mapping[str, str]:
        return {d: self.unknown_rows[d] for d in config_digests if d in self.unknown_rows}


def built_world(config: Config) -> tuple[World, dict[str, str]]:
    """A world where every recipe was built from today's inputs."""
    recipes = load_recipes(config)
    graph = build_graph(recipes)
    hashes = {r.name: input_hash(r) for r in recipes}
    world = World()
    for i, name in enumerate(graph.order):
        bases = {ref: world.digests[ref] for ref in graph.external[name]}
        bases.update({ref: world.current_images[b].manifest_digest or "" for ref, b in graph.local[name]})
        world.current_images[name] = CurrentImage(
            config_digest=f"sha256:{i:064x}", manifest_digest=f"sha256:{i + 100:064x}", input_hash=hashes[name],
            bases=bases, built_at=time.time() - 3600)
    return world, hashes


def plan_of(config: Config, world: World, hashes: Mapping[str, str], **kw: object):  # type: ignore[no-untyped-def]
    graph = build_graph(load_recipes(config))
    return make_plan(graph, world, hashes, **kw)  # type: ignore[arg-type]


def test_graph_edges_order_and_external_bases(tmp_path: Path) -> None:
    graph = build_graph(load_recipes(write_fleet(tmp_path, FLEET)))
    assert graph.external["base"] == (UPSTREAM,)
    assert [b for _, b in graph.local["admin"]] == ["web"]
    assert graph.order.index("base") < graph.order.index("web") < graph.order.index("admin")
    assert set(graph.dependants["base"]) == {"web", "tools", "worker"}


def test_a_never_built_fleet_plans_everything_in_waves(tmp_path: Path) -> None:
    config = write_fleet(tmp_path, FLEET)
    plan = plan_of(config, World(), {})
    assert [sorted(i.name for i in w) for w in plan.waves] == [["base"], ["tools", "web", "worker"], ["admin"]]
    assert all(ReasonCode.NEVER_BUILT in {r.code for r in i.reasons} for i in plan.items)


def test_a_clean_fleet_plans_nothing(tmp_path: Path) -> None:
    config = write_fleet(tmp_path, FLEET)
    world, hashes = built_world(config)
    plan = plan_of(config, world, hashes)
    assert not plan and plan.items == () and set(plan.clean) == set(FLEET)
    assert world.resolved == [UPSTREAM]  # an outside base is resolved once, however many use it


def test_pending_security_update_in_one_image_plans_it_and_its_dependants_only(tmp_path: Path) -> None:
    config = write_fleet(tmp_path, FLEET)
    world, hashes = built_world(config)
    web = world.current_images["web"].config_digest
    world.pending_rows[web] = [PendingRow("libssl3", "3.0.11-1~deb12u1", "3.0.17-1~deb12u2", "bookworm-security",
                                          ("CVE-2024-5535",))]
    plan = plan_of(config, world, hashes)
    assert [i.name for i in plan.items] == ["web", "admin"]
    web_item, admin_item = plan.items
    assert [r.code for r in web_item.reasons] == [ReasonCode.PENDING_UPDATES]
    assert web_item.reasons[0].items == ("libssl3",)
    assert [r.code for r in admin_item.reasons] == [ReasonCode.BASE_REBUILT]
    assert admin_item.after == ("web",) and admin_item.wave == 1 and web_item.wave == 0


def test_an_image_that_cannot_be_assessed_is_neither_clean_nor_rebuilt_for_nothing(tmp_path: Path) -> None:
    config = write_fleet(tmp_path, FLEET)
    world, hashes = built_world(config)
    why = "no package database of the operating system (dpkg, rpm, apk) found"
    world.unknown_rows[world.current_images["tools"].config_digest] = why
    world.unknown_rows[world.current_images["base"].config_digest] = why
    world.pending_rows[world.current_images["base"].config_digest] = [
        PendingRow("libssl3", "3.0.11-1~deb12u1", "3.0.17-1~deb12u2", "bookworm-security", ("CVE-2024-5535",))]
    plan = plan_of(config, world, hashes)
    # base is planned for its pending update and says its rebuild cannot be assessed; tools, planned only because
    # its base is, says so too; nothing is called clean that patchline could not check.
    base = next(i for i in plan.items if i.name == "base")
    assert [r.code for r in base.reasons] == [ReasonCode.PENDING_UPDATES, ReasonCode.CANNOT_ASSESS]
    tools = next(i for i in plan.items if i.name == "tools")
    assert ReasonCode.CANNOT_ASSESS in {r.code for r in tools.reasons}
    world.pending_rows.clear()
    plan = plan_of(config, world, hashes)
    assert not plan and plan.cannot_assess == (("base", why), ("tools", why))
    assert "base" not in plan.clean and "tools" not in plan.clean and "web" in plan.clean


@pytest.mark.parametrize(("policy", "planned"), [("security", False), ("all", True), ("none", False)])
def test_pending_policy(tmp_path: Path, policy: str, planned: bool) -> None:
    config = write_fleet(tmp_path, FLEET)
    world, hashes = built_world(config)
    world.pending_rows[world.current_images["tools"].config_digest] = [
        PendingRow("tzdata", "2024a-0+deb12u1", "2025b-0+deb12u1", "bookworm-updates", ())]
    plan = plan_of(config, world, hashes, pending_policy=policy)
    assert ("tools" in [i.name for i in plan.items]) is planned


def test_fixable_advisory_and_upstream_base_and_recipe_change_and_age(tmp_path: Path) -> None:
    config = write_fleet(tmp_path, FLEET)
    world, hashes = built_world(config)
    world.fixable_rows[world.current_images["worker"].config_digest] = [
        FixableRow("DSA-5000-1", "openssl", "3.0.11-1~deb12u1", ("3.0.11-1~deb12u2",), 8)]
    plan = plan_of(config, world, hashes)
    assert [(i.name, [r.code for r in i.reasons]) for i in plan.items] == [
        ("worker", [ReasonCode.FIXABLE_ADVISORY])]
    assert plan.items[0].reasons[0].items == ("DSA-5000-1",)

    world.fixable_rows.clear()
    world.digests[UPSTREAM] = "sha256:" + "b" * 64  # published upstream
    plan = plan_of(config, world, hashes)
    assert plan.items[0].name == "base" and [r.code for r in plan.items[0].reasons] == [ReasonCode.BASE_UPDATED]
    assert {i.name for i in plan.items} == set(FLEET)

    world.digests[UPSTREAM] = "sha256:" + "a" * 64
    (tmp_path / "tools" / "extra.txt").write_text("changed context\n")
    changed = {r.name: input_hash(r) for r in load_recipes(config)}
    plan = plan_of(config, world, changed)
    assert [(i.name, i.reasons[0].code) for i in plan.items] == [("tools", ReasonCode.RECIPE_CHANGED)]

    aged = Config.model_validate({**config.model_dump(exclude={"source"}), "source": config.source,
                                  "build": {"registry": REG, "namespace": "t", "max_age_days": 7}})
    world.current_images["worker"] = replace(world.current_images["worker"], built_at=time.time() - 30 * 86400)
    plan = plan_of(aged, world, hashes)
    assert [(i.name, i.reasons[0].code) for i in plan.items] == [("worker", ReasonCode.MAX_AGE)]


def test_a_base_rebuilt_earlier_makes_a_stale_dependant_dirty(tmp_path: Path) -> None:
    """The base was rebuilt by an earlier run but this image's build then failed: it is still on the old base."""
    config = write_fleet(tmp_path, FLEET)
    world, hashes = built_world(config)
    old = world.current_images["base"]
    world.current_images["base"] = CurrentImage(config_digest="sha256:" + "c" * 64,
                                                manifest_digest="sha256:" + "d" * 64, input_hash=old.input_hash,
                                                bases=old.bases, built_at=time.time())
    plan = plan_of(config, world, hashes)
    assert {i.name for i in plan.items} == {"web", "tools", "worker", "admin"}
    assert {i.name: i.reasons[0].code for i in plan.items}["web"] is ReasonCode.BASE_UPDATED
    assert {i.name: i.reasons[0].code for i in plan.items}["admin"] is ReasonCode.BASE_REBUILT


def test_only_and_force(tmp_path: Path) -> None:
    config = write_fleet(tmp_path, FLEET)
    world, hashes = built_world(config)
    plan = plan_of(config, world, hashes, force=["web"])
    assert [i.name for i in plan.items] == ["web", "admin"]
    plan = plan_of(config, World(), {}, only=["web"])
    assert [i.name for i in plan.items] == ["web", "admin"]
    with pytest.raises(ConfigError, match="no image named 'nope'"):
        plan_of(config, World(), {}, only=["nope"])


def test_an_unresolvable_base_is_reported_and_blocks_only_its_subtree(tmp_path: Path) -> None:
    config = write_fleet(tmp_path, {**FLEET, "other": "FROM quay.io/vendor/gone:1\nRUN true\n"})
    plan = plan_of(config, World(), {})
    assert "other" not in [i.name for i in plan.items]
    assert plan.skipped == (("other", "base quay.io/vendor/gone:1: quay.io/vendor/gone:1: manifest unknown"),)
    assert len(plan.items) == len(FLEET)


def test_a_cycle_between_local_images_is_a_clear_error(tmp_path: Path) -> None:
    config = write_fleet(tmp_path, {"a": local("c"), "b": local("a"), "c": local("b")})
    with pytest.raises(GraphError, match=r"a cycle between local images: (\w) -> \w -> \w -> \1 "):
        build_graph(load_recipes(config))
    config = write_fleet(tmp_path / "self", {"a": local("a")})
    with pytest.raises(GraphError, match="built FROM its own target"):
        build_graph(load_recipes(config))


def test_a_missing_build_context_is_a_clear_error(tmp_path: Path) -> None:
    config = Config.model_validate({"images": [{"name": "gone", "context": str(tmp_path / "nope")}]})
    with pytest.raises(BuildError, match=r"build context .*nope is not a directory"):
        load_recipes(config)
    (tmp_path / "empty").mkdir()
    config = Config.model_validate({"images": [{"name": "empty", "context": str(tmp_path / "empty")}]})
    with pytest.raises(BuildError, match="no Containerfile in"):
        load_recipes(config)


def test_duplicate_names_and_targets_are_refused(tmp_path: Path) -> None:
    write_fleet(tmp_path, {"a": "FROM scratch\n"})
    for entries, message in [
        ([{"name": "a", "context": "a"}, {"name": "a", "context": "a"}], "two images are named 'a'"),
        ([{"name": "a", "context": "a", "target": "r.example/x:1"},
          {"name": "b", "context": "a", "target": "r.example/x:1"}], "push to the same target"),
    ]:
        config = Config.model_validate({"images": entries, "source": tmp_path / "patchline.toml"})
        with pytest.raises(ConfigError, match=message):
            load_recipes(config)


def test_input_hash_ignores_mtimes_and_ignored_files_but_not_content_or_mode(tmp_path: Path) -> None:
    config = write_fleet(tmp_path, {"a": "FROM scratch\nCOPY . /\n"})
    (tmp_path / "a" / "data").write_text("1")
    (tmp_path / "a" / ".containerignore").write_text("*.log\n")
    first = input_hash(load_recipes(config)[0])
    (tmp_path / "a" / "build.log").write_text("noise")
    import os

    os.utime(tmp_path / "a" / "data", (1, 1))
    assert input_hash(load_recipes(config)[0]) == first
    (tmp_path / "a" / "data").chmod(0o755)
    assert input_hash(load_recipes(config)[0]) != first


def test_patch_in_place_entries_are_planned_from_their_upstream(tmp_path: Path) -> None:
    vendor = f"{REG}/vendor/app:2"
    config = Config.model_validate({"images": [{"name": "vendor", "image": vendor}],
                                    "build": {"registry": REG}, "source": tmp_path / "patchline.toml"})
    world = World(digests={vendor: "sha256:" + "e" * 64})
    plan = plan_of(config, world, {})
    assert [(i.name, i.recipe.kind.value) for i in plan.items] == [("vendor", "patch")]
    assert plan.items[0].recipe.target == f"{REG}/patchline/vendor:latest"


def test_config_refuses_ambiguous_entries() -> None:
    for entry in ({"name": "x"}, {"name": "x", "context": ".", "image": "a/b"}, {"glob": "*", "name": "x"}):
        with pytest.raises(Exception, match=r"exactly one of|glob entry"):
            Config.model_validate({"images": [entry]})
    assert isinstance(ImageNotFound("x"), Error)


def test_cli_plan_reports_bad_recipes_in_one_line_and_exits_2(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from patchline.cli import app

    write_fleet(tmp_path, {"a": "FROM scratch\nCOPY . /\n", "b": "RUN true\nFROM scratch\n"})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATCHLINE_DB", str(tmp_path / "p.db"))
    result = CliRunner().invoke(app, ["plan"])
    assert result.exit_code == 2
    assert "b/Containerfile:1: RUN before the first FROM" in " ".join(result.output.split())

    (tmp_path / "b" / "Containerfile").write_text(local("a"))
    result = CliRunner().invoke(app, ["plan", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [i["name"] for i in doc["items"]] == ["a", "b"]
    assert doc["waves"] == [["a"], ["b"]] and doc["items"][1]["after"] == ["a"]

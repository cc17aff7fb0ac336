"""The planner's view of the world from the fleet store and the registries, and the one-call plan of a fleet."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from patchline._config import Config
from patchline.build._buildah import BuildEnv, resolve_digest
from patchline.build._fleet import input_hash, load_recipes
from patchline.build._graph import BuildGraph, build_graph
from patchline.build._plan import current_images, make_plan
from patchline.build._rebuild import RebuildOptions
from patchline.build.interface import CurrentImage, RebuildPlan
from patchline.store import FixableRow, PendingRow, Store


class StorePlanState:
    """Current builds, pending updates and findings from the store; outside bases resolved live."""

    def __init__(self, store: Store, *, insecure: Collection[str] = ()) -> None:
        self.store = store
        self.insecure = frozenset(insecure)

    def current(self) -> Mapping[str, CurrentImage]:
        return current_images(self.store)

    def resolve(self, reference: str) -> str:
        return resolve_digest(reference, insecure=self.insecure)

    def pending(self, config_digests: Collection[str]) -> Mapping[str, list[PendingRow]]:
        return self.store.pending_for(config_digests)

    def fixable(self, config_digests: Collection[str]) -> Mapping[str, list[FixableRow]]:
        return self.store.fixable_for(config_digests)

    def unknown(self, config_digests: Collection[str]) -> Mapping[str, str]:
        return self.store.unknown_for(config_digests)


@dataclass(frozen=True, slots=True)
class FleetPlan:
    graph: BuildGraph
    hashes: Mapping[str, str]
    plan: RebuildPlan


def refused_by_policy(config: Config, graph: BuildGraph) -> dict[str, str]:
    """Recipes ``[policy] allowed_bases`` refuses (their outside bases), with the rule and the evidence."""
    from patchline import _clock
    from patchline.policy import check_bases

    out = {}
    for name in graph.order:
        decision = check_bases(config.policy, graph.external[name], subject=name, today=_clock.today())
        if not decision.ok:
            out[name] = decision.summary()
    return out


def plan_fleet(config: Config, store: Store, *, force: Collection[str] = (),
               only: Collection[str] | None = None) -> FleetPlan:
    """Load the fleet's recipes, build the graph and plan against the store."""
    recipes = load_recipes(config)
    graph = build_graph(recipes)
    hashes = {r.name: input_hash(r) for r in recipes}
    state = StorePlanState(store, insecure=config.registries.insecure)
    plan = make_plan(graph, state, hashes, pending_policy=config.build.pending, force=force, only=only,
                     refused=refused_by_policy(config, graph))
    return FleetPlan(graph=graph, hashes=hashes, plan=plan)


def default_log_dir() -> Path:
    """``$XDG_DATA_HOME/patchline/builds`` (``~/.local/share/patchline/builds``)."""
    data = os.environ.get("XDG_DATA_HOME")
    return (Path(data) if data else Path.home() / ".local" / "share") / "patchline" / "builds"


def rebuild_options(config: Config, *, jobs: int | None = None, cache: bool = True, sign: bool = True,
                    say: Callable[[str], None] | None = None) -> RebuildOptions:
    """The rebuild's options from ``patchline.toml`` (``[build]``, ``[updates]``, ``[registries]``, ``[cache]``)."""
    from patchline.assess import options_from_config
    from patchline.fleet._discover import DiscoverOptions
    from patchline.inventory import LayerCache, default_cache_dir
    from patchline.sign import sign_options

    layer_cache = None
    if cache and config.cache.enabled:
        from patchline.catalog.list import DEFAULT_CATALOGERS

        layer_cache = LayerCache(config.cache.dir or default_cache_dir(), DEFAULT_CATALOGERS)
    build = config.build
    env = BuildEnv(pull=build.pull, network=build.network, insecure=frozenset(config.registries.insecure),
                   ca_bundle=build.ca_bundle)
    return RebuildOptions(
        logs=build.logs or default_log_dir(), env=env, assess=options_from_config(config),
        discover=DiscoverOptions(cache=layer_cache, platform=config.scan.platform),
        jobs=build.jobs if jobs is None else jobs, source_date_epoch=build.source_date_epoch,
        update_sources=build.update_sources and config.updates.enabled, keyring_in_build=config.updates.keyring,
        sign=sign_options(config, say=say) if sign else None)

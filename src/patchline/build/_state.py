"""The planner's view of the world from the fleet store and the registries, and the one-call plan of a fleet."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from patchline._config import Config
from patchline.build._buildah import BuildEnv, pinned, resolve_digest
from patchline.build._fleet import input_hash, load_recipes
from patchline.build._graph import BuildGraph, build_graph
from patchline.build._plan import current_images, make_plan
from patchline.build._rebuild import RebuildOptions
from patchline.build.interface import CurrentImage, RebuildPlan
from patchline.errors import Error, ManifestError, SignatureRefused
from patchline.store import FixableRow, PendingRow, Store

if TYPE_CHECKING:
    from patchline.policy import BaseFacts, PolicyDecision


class BaseLookup(Protocol):
    """What the plan-time rules of ``[policy]`` need to know about an outside base (each raises :class:`Error`
    when it cannot tell)."""

    def resolve(self, reference: str) -> str:
        """The digest ``reference`` points at now."""
        ...

    def created(self, reference: str, digest: str) -> dt.datetime:
        """The ``created`` of the image config of ``reference`` at ``digest``."""
        ...

    def verify_signature(self, reference: str, digest: str, key: Path) -> None:
        """Return when ``reference`` at ``digest`` carries a cosign signature that verifies with ``key``."""
        ...


class StorePlanState:
    """Current builds, pending updates and findings from the store; outside bases resolved live (once each)."""

    def __init__(self, store: Store, *, insecure: Collection[str] = ()) -> None:
        self.store = store
        self.insecure = frozenset(insecure)
        self._resolved: dict[str, str | Error] = {}

    def current(self) -> Mapping[str, CurrentImage]:
        return current_images(self.store)

    def resolve(self, reference: str) -> str:
        # The policy's look-ups and the plan ask for the same bases: one registry round trip each.
        if reference not in self._resolved:
            try:
                self._resolved[reference] = resolve_digest(reference, insecure=self.insecure)
            except Error as exc:
                self._resolved[reference] = exc
        found = self._resolved[reference]
        if isinstance(found, Error):
            raise found
        return found

    def created(self, reference: str, digest: str) -> dt.datetime:
        """The store's record of the image when it has scanned it, else its config from the registry (or local
        storage for ``localhost/`` images)."""
        from patchline.oci import open_source, parse_image_ref

        config_digest = self.store.image_for_manifest(digest) or (digest if self.store.has_image(digest) else None)
        inventory = self.store.inventory(config_digest) if config_digest else None
        text = inventory.image.created if inventory is not None else None
        if not text:
            ref = parse_image_ref(reference)
            source = pinned(reference, digest)
            if ref.registry == "localhost":
                source = f"containers-storage:{source}"
            with open_source(source, insecure=ref.registry in self.insecure) as opened:
                text = opened.resolve().config.created
        if not text:
            raise ManifestError(f"{reference}@{digest}: its image config has no created date")
        try:
            created = dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise ManifestError(f"{reference}@{digest}: its image config's created {text!r} is not a date") from exc
        return created if created.tzinfo else created.replace(tzinfo=dt.UTC)

    def verify_signature(self, reference: str, digest: str, key: Path) -> None:
        from patchline.oci import RegistryWriter, parse_image_ref
        from patchline.sign import verify_cosign

        ref = parse_image_ref(reference)
        if ref.registry == "localhost":
            raise SignatureRefused(f"{reference} is a local image: no registry holds a cosign signature of it")
        with RegistryWriter(ref.registry, insecure=ref.registry in self.insecure) as registry:
            verify_cosign(registry=registry, repository=ref.repository, manifest_digest=digest, public_key=key)

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
    policy: tuple[PolicyDecision, ...] = ()  # each recipe's plan-time verdicts (none while [policy] sets none)


def _config_path(config: Config, path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else (config.source.parent if config.source else Path.cwd()) / path


def base_facts(config: Config, references: Iterable[str], lookup: BaseLookup) -> dict[str, BaseFacts]:
    """What ``base-age`` and ``base-signed`` need about each outside base, looked up only when they are on;
    what cannot be looked up is recorded with the reason (the rule then fails: unknown is not pass)."""
    from patchline.policy import BaseFacts

    policy = config.policy
    keys = [(str(k), _config_path(config, k)) for k in policy.allowed_bases_signed_by]
    if policy.max_base_age_days is None and not keys:
        return {}
    out = {}
    for ref in dict.fromkeys(references):
        try:
            digest = lookup.resolve(ref)
        except Error as exc:
            out[ref] = BaseFacts(ref, created_unknown=f"cannot resolve it: {exc}", unsigned=f"cannot resolve it: {exc}")
            continue
        created, created_unknown = None, ""
        if policy.max_base_age_days is not None:
            try:
                created = lookup.created(ref, digest)
            except Error as exc:
                created_unknown = str(exc)
        signed_by, refusals = None, []
        for shown, path in keys:
            try:
                lookup.verify_signature(ref, digest, path)
            except Error as exc:
                refusals.append(str(exc))
                continue
            signed_by = shown
            break
        out[ref] = BaseFacts(ref, created=created, created_unknown=created_unknown, signed_by=signed_by,
                             unsigned="" if signed_by else "; ".join(refusals))
    return out


def policy_at_plan(config: Config, graph: BuildGraph, lookup: BaseLookup | None = None, *,
                   today: dt.date | None = None) -> dict[str, PolicyDecision]:
    """Each recipe's plan-time verdicts (``allowed-bases``, ``base-age``, ``base-signed``) on its outside bases;
    without ``lookup`` the rules that need one fail (nothing was looked up)."""
    from patchline import _clock
    from patchline.policy import check_bases

    policy = config.policy
    if not (policy.allowed_bases or policy.max_base_age_days is not None or policy.allowed_bases_signed_by):
        return {}
    references = [ref for name in graph.order for ref in graph.external[name]]
    facts = base_facts(config, references, lookup) if lookup is not None else {}
    day = today or _clock.today()
    return {name: check_bases(policy, graph.external[name], subject=name, today=day, facts=facts)
            for name in graph.order}


def refused_by_policy(config: Config, graph: BuildGraph, lookup: BaseLookup | None = None) -> dict[str, str]:
    """Recipes ``[policy]`` refuses at plan (for their outside bases), with the rules and the evidence."""
    return {name: d.summary() for name, d in policy_at_plan(config, graph, lookup).items() if not d.ok}


def emit_plan_refusals(store: Store, graph: BuildGraph, decisions: Iterable[PolicyDecision]) -> None:
    """One ``policy.denied`` event per recipe the plan refuses, shaped as the rollout's (``step``: plan)."""
    from patchline.events.interface import EventDraft, EventType

    drafts = [EventDraft(EventType.POLICY_DENIED, d.subject, {
        "step": "plan", "recipe": d.subject, "service": None, "image": graph.recipes[d.subject].target,
        "bases": list(graph.external[d.subject]), "reason": d.summary(), **d.as_dict()})
        for d in decisions if not d.ok]
    if drafts:
        store.emit(drafts)


def plan_fleet(config: Config, store: Store, *, force: Collection[str] = (),
               only: Collection[str] | None = None, emit_refusals: bool = True) -> FleetPlan:
    """Load the fleet's recipes, build the graph and plan against the store.

    ``[policy]``'s plan-time rules refuse recipes (and what is built FROM them); each refusal is a
    ``policy.denied`` event unless ``emit_refusals`` is off (a caller re-planning what it planned already).
    """
    recipes = load_recipes(config)
    graph = build_graph(recipes)
    hashes = {r.name: input_hash(r) for r in recipes}
    state = StorePlanState(store, insecure=config.registries.insecure)
    decisions = policy_at_plan(config, graph, state)
    if emit_refusals:
        emit_plan_refusals(store, graph, decisions.values())
    plan = make_plan(graph, state, hashes, pending_policy=config.build.pending, force=force, only=only,
                     refused={name: d.summary() for name, d in decisions.items() if not d.ok})
    return FleetPlan(graph=graph, hashes=hashes, plan=plan, policy=tuple(decisions.values()))


def default_log_dir() -> Path:
    """``$XDG_DATA_HOME/patchline/builds`` (``~/.local/share/patchline/builds``)."""
    data = os.environ.get("XDG_DATA_HOME")
    return (Path(data) if data else Path.home() / ".local" / "share") / "patchline" / "builds"


def rebuild_options(config: Config, *, jobs: int | None = None, cache: bool = True, sign: bool = True,
                    say: Callable[[str], None] | None = None) -> RebuildOptions:
    """The rebuild's options from ``patchline.toml`` (``[build]``, ``[updates]``, ``[registries]``, ``[cache]``)."""
    from patchline.assess import options_from_config
    from patchline.fleet import DiscoverOptions
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
        sign=sign_options(config, say=say) if sign else None, policy=config.policy)

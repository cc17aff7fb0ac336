"""From ``patchline.toml`` to rollouts: services resolved to repositories, the target, status."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from patchline._config import Config, ServiceConfig
from patchline.errors import Error, PolicyDenied, RolloutError
from patchline.rollout._engine import RolloutPlan, RolloutResult, digest_of, resume, roll_out
from patchline.rollout._resolve import service_config, service_repository, service_spec
from patchline.rollout.interface import Probe, Replica, RolloutTarget, Strategy
from patchline.rollout.list import target_kind
from patchline.store import RolloutRow, Store

if TYPE_CHECKING:
    from patchline.policy import PendingSecurityUpdate, PolicyDecision


def resolve_image(config: Config, store: Store, service: ServiceConfig, to: str | None) -> str:
    """``repository@digest`` to roll out: ``--to`` (a digest or a full reference), else the recipe's current build."""
    repository = service_repository(config, service.image)
    if to:
        if to.startswith("sha256:"):
            return f"{repository}@{to}"
        if "@" not in to:
            raise RolloutError(f"--to takes a digest (sha256:...) or repository@digest, not {to!r}")
        check_repository(service, repository, to)
        return to

    builds = store.current_builds()
    build = builds.get(service.image)
    if build is None or not build.manifest_digest:
        raise RolloutError(f"{service.name}: no pushed build of {service.image!r}; give --to DIGEST")
    return f"{repository}@{build.manifest_digest}"


def check_repository(service: ServiceConfig, repository: str, image: str) -> None:
    """A service runs images of its own repository only: anything else is refused before it is pulled."""
    if image.partition("@")[0] != repository:
        raise RolloutError(f"{service.name} runs images of {repository} only, not {image.partition('@')[0]}: "
                           f"refusing {image}")


def _recipes_building(config: Config, repository: str) -> list[str]:
    """The recipes of ``[[images]]`` whose target is in ``repository``."""
    from patchline.build import load_recipes
    from patchline.oci import split_reference

    if not config.images:
        return []
    return [r.name for r in load_recipes(config) if split_reference(r.target)[0] == repository]


def image_bases(config: Config, store: Store, image: str) -> tuple[tuple[str, ...], tuple[str, ...], str]:
    """The outside images ``repository@digest`` is built FROM (through local bases too), from the FROM lines
    of the recipes building its repository and the store's record of the build that made it, with those
    recipes and their local bases; or ``()``, ``()`` and why they are not known."""
    from patchline.build import build_graph, load_recipes

    repository, _, digest = image.partition("@")
    names = _recipes_building(config, repository)
    if not names:
        return (), (), f"{repository} is not the target of a recipe of [[images]]"
    graph = build_graph(load_recipes(config))
    bases: dict[str, None] = {}
    build = store.build_of(digest)  # the build that made this digest may have used other bases than today's
    if build is not None and build.recipe in graph.local:
        local_refs = {ref for ref, _ in graph.local[build.recipe]}
        bases.update(dict.fromkeys(ref for ref in build.bases if ref not in local_refs))
    todo, seen = list(names), dict[str, None]()
    while todo:
        name = todo.pop(0)
        if name not in seen:
            seen[name] = None
            bases.update(dict.fromkeys(graph.external[name]))
            todo.extend(base for _, base in graph.local[name])
    return tuple(bases), tuple(seen), ""


def _pending_security(store: Store, config_digest: str, recipes: Sequence[str]) -> list[PendingSecurityUpdate]:
    """The image's pending security updates, each with the day a patch run first saw it pending for one of
    ``recipes`` (its open patch item; the pending-updates table keeps only the latest assessment's time)."""
    from patchline.build import is_security
    from patchline.policy import PendingSecurityUpdate

    rows = [p for p in store.pending_for([config_digest]).get(config_digest, []) if is_security(p)]
    if not rows:
        return []
    first: dict[str, dt.date] = {}
    for item in store.patch_items(kind="update"):
        if item.recipe in recipes and item.state in ("open", "stuck", "rebuilt"):
            day = item.first_seen_at.astimezone(dt.UTC).date()
            first[item.item] = min(first.get(item.item, day), day)
    return [PendingSecurityUpdate(p.name, first.get(p.name)) for p in rows]


def rollout_decision(config: Config, store: Store, image: str, *, service: str | None = None) -> PolicyDecision:
    """``[policy]``'s rollout rules on ``repository@digest``, from what the store knows of it.

    ``required-runtime`` is checked against ``service``, or (without one) every service of the image's
    repository. An image the store does not know fails the rules that need the store, saying so.
    """
    from patchline import _clock
    from patchline.policy import check_image

    policy = config.policy
    today = _clock.today()
    repository = image.partition("@")[0]
    services = [s for s in config.services if (s.name == service if service else
                                               service_repository(config, s.image) == repository)]
    bases, _recipes, bases_unknown = (image_bases(config, store, image) if policy.require_runsc_for_bases
                                      else ((), (), ""))
    fixable: list[tuple[str, str, int]] = []
    packages: list[str] = []
    licenses: list[tuple[str, tuple[str, ...]]] = []
    pending: list[PendingSecurityUpdate] = []
    unknown = ""
    if policy.max_fixable_severity is not None or policy.denied_packages or policy.denied_licenses or (
            policy.max_pending_update_age_days is not None):
        digest = image.rpartition("@")[2]
        config_digest = store.image_for_manifest(digest) or (digest if store.has_image(digest) else None)
        inventory = store.inventory(config_digest) if config_digest else None
        if config_digest is None or inventory is None:
            unknown = (f"{image} is not in the store, so its rules cannot be checked; "
                       "`patchline discover registry` it first")
        else:
            rows = store.fixable_for([config_digest]).get(config_digest, [])
            fixable = [(f.advisory_id, f.package, f.severity) for f in rows]
            packages = [p.name for p in inventory.packages]
            licenses = [(p.name, p.licenses) for p in inventory.packages if p.licenses]
            if policy.max_pending_update_age_days is not None:
                pending = _pending_security(store, config_digest, _recipes_building(config, repository))
    attestations = _attestations(config, store, image) if policy.require_attestations else None
    return check_image(policy, subject=image, fixable=fixable, packages=packages, today=today, pending=pending,
                       unknown=unknown, bases=bases, bases_unknown=bases_unknown,
                       services=[(s.name, s.runtime) for s in services], attestations=attestations,
                       licenses=licenses)


def _attestations(config: Config, store: Store, image: str) -> dict[str, tuple[str, str]]:
    """What ``patchline verify`` says of ``image``: each check's (state, evidence); an error fails them all."""
    from patchline.sign import CHECKS, verifier_options, verify_attachments

    try:
        options = verifier_options(config)
        build = store.build_of(image.rpartition("@")[2])
        result = verify_attachments(options, image, bases=dict(build.bases) if build is not None else None)
    except Error as exc:
        return dict.fromkeys(CHECKS, ("failed", f"cannot verify: {exc}"))
    return {c.name: (c.state, c.evidence) for c in result.checks}


def check_rollout_policy(config: Config, store: Store, image: str, *, service: str | None = None,
                         on_decision: Callable[[PolicyDecision], None] | None = None) -> PolicyDecision:
    """Refuse ``image`` when a rule of ``[policy]`` does (raises :class:`PolicyDenied` naming the rule); a
    refusal is a ``policy.denied`` event with every verdict, so it reaches the audit trail and the bus.
    ``on_decision`` gets the decision either way (a patch run records it)."""
    from patchline.events.interface import EventDraft, EventType

    decision = rollout_decision(config, store, image, service=service)
    if on_decision is not None:
        on_decision(decision)
    if not decision.ok:
        store.emit([EventDraft(EventType.POLICY_DENIED, service or image, {
            "step": "rollout", "service": service, "image": image, "reason": decision.summary(),
            **decision.as_dict()})])
        raise PolicyDenied(f"{image}: {decision.summary()}")
    return decision


def rollout_plan(config: Config, service: ServiceConfig, to_image: str, *, strategy: str | None = None
                 ) -> RolloutPlan:
    return RolloutPlan(spec=service_spec(config, service), to_image=to_image,
                       strategy=Strategy(strategy or service.strategy), max_unavailable=service.max_unavailable,
                       bake_seconds=service.bake_seconds)


def make_target(config: Config, *, services: Sequence[ServiceConfig] = (), pulls: bool = True) -> RolloutTarget:
    """The target ``[rollout] target`` names, pulling through patchline's signature policy for the repositories of
    ``services`` (default: every service of ``[[services]]``).

    ``pulls=False`` is for a caller that only looks and probes (``patchline status``): no key is read and no
    policy written, so the target must not be asked to pull.
    """
    return target_kind(config.rollout.target).from_config(config, services or config.services, pulls=pulls)


def rollout_service(config: Config, store: Store, name: str, *, to: str | None = None, strategy: str | None = None,
                    target: RolloutTarget | None = None, progress: object = None,
                    on_decision: Callable[[PolicyDecision], None] | None = None) -> RolloutResult:
    service = service_config(config, name)
    image = resolve_image(config, store, service, to)
    check_rollout_policy(config, store, image, service=service.name, on_decision=on_decision)
    plan = rollout_plan(config, service, image, strategy=strategy)
    return roll_out(store, target or make_target(config, services=[service]), plan,
                    progress=progress if callable(progress) else None)


def rollback_service(config: Config, store: Store, name: str, *, target: RolloutTarget | None = None,
                     progress: object = None) -> RolloutResult:
    """Roll the service back to the image it ran before its last successful rollout."""
    service = service_config(config, name)
    last = store.last_rollout(name, state="succeeded")
    if last is None or not last.from_image:
        raise RolloutError(f"{name}: no earlier image to roll back to")
    check_repository(service, service_repository(config, service.image), last.from_image)  # the store is not trusted
    plan = rollout_plan(config, service, last.from_image, strategy="rolling")
    return roll_out(store, target or make_target(config, services=[service]), plan,
                    progress=progress if callable(progress) else None)


def resume_service_rollouts(config: Config, store: Store, *, target: RolloutTarget | None = None,
                            progress: object = None) -> list[RolloutResult]:
    say = progress if callable(progress) else None
    out = []
    for row in store.rollouts(unfinished=True):
        service = service_config(config, row.service)
        repository = service_repository(config, service.image)
        for image in (row.to_image, row.from_image):
            if image:
                check_repository(service, repository, image)  # the store is not trusted
        out.append(resume(store, target or make_target(config, services=[service]), row.id,
                          spec=service_spec(config, service), progress=say))
    return out


@dataclass(frozen=True, slots=True)
class ReplicaStatus:
    replica: Replica
    probe: Probe


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    repository: str
    replicas_wanted: int
    replicas: tuple[ReplicaStatus, ...]
    last_rollout: RolloutRow | None
    unpromotable: tuple[str, ...]  # digests of this repository that are never rolled out

    @property
    def healthy(self) -> int:
        return sum(1 for r in self.replicas if r.probe.healthy)

    def as_dict(self) -> dict[str, object]:
        last = self.last_rollout
        return {
            "name": self.name, "repository": self.repository, "replicas_wanted": self.replicas_wanted,
            "healthy": self.healthy,
            "replicas": [{"index": r.replica.index, "container": r.replica.container, "image": r.replica.image,
                          "digest": digest_of(r.replica.image), "running": r.replica.running,
                          "restarts": r.replica.restarts, "healthy": r.probe.healthy, "health": r.probe.detail,
                          "runtime": r.replica.runtime,
                          "host_port": r.replica.host_port} for r in self.replicas],
            "last_rollout": None if last is None else {
                "id": last.id, "state": last.state, "phase": last.phase, "from_image": last.from_image,
                "to_image": last.to_image, "reason": last.reason, "started_at": last.started_at.isoformat(),
                "finished_at": last.finished_at.isoformat() if last.finished_at else None,
                "timings": dict(last.timings)},
            "unpromotable": list(self.unpromotable),
        }


def service_status(config: Config, store: Store, target: RolloutTarget) -> list[ServiceStatus]:
    out = []
    bad = store.unpromotables()
    for service in config.services:
        spec = service_spec(config, service)
        replicas = tuple(ReplicaStatus(r, target.probe(spec, r.index) if r.running
                                       else Probe(False, "not running", 0.0))
                         for r in target.replicas(service.name))
        out.append(ServiceStatus(service.name, spec.repository, service.replicas, replicas,
                                 store.last_rollout(service.name),
                                 tuple(b.digest for b in bad if b.repository == spec.repository)))
    return out

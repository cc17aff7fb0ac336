"""The report's parts, read from the store and the run: the fleet's images and services, what was rebuilt and
rolled out."""

from __future__ import annotations

from collections.abc import Mapping

from patchline._config import Config
from patchline.demo._report import FleetState, ImageState, RebuiltImage, RolledOut, ServiceState
from patchline.store import BuildRow, RunRow, Store


def service_states(config: Config, store: Store) -> tuple[ServiceState, ...]:
    from patchline.rollout import PodmanTarget, majority_image, service_status

    with PodmanTarget(policy=None) as target:  # looks and probes, never pulls
        statuses = service_status(config, store, target)
    return tuple(ServiceState(s.name, s.repository, majority_image([r.replica for r in s.replicas]),
                              s.replicas_wanted, sum(1 for r in s.replicas if r.replica.running), s.healthy)
                 for s in statuses)


def fleet_state(config: Config, store: Store, builds: Mapping[str, BuildRow],
                 services: tuple[ServiceState, ...]) -> FleetState:
    """The images of ``builds`` with what the store knows about them now."""
    from patchline.build import load_recipes
    from patchline.oci import split_reference

    digests = [b.config_digest for b in builds.values() if b.config_digest]
    pending = store.pending_for(digests)
    fixable = store.fixable_for(digests)
    images = []
    for recipe in load_recipes(config):
        build = builds.get(recipe.name)
        digest = build.config_digest if build else None
        inventory = store.inventory(digest) if digest else None
        images.append(ImageState(recipe.name, split_reference(recipe.target)[0], digest,
                                 build.manifest_digest if build else None,
                                 len(inventory.packages) if inventory else 0,
                                 tuple(pending.get(digest, ())) if digest else (),
                                 tuple(fixable.get(digest, ())) if digest else ()))
    return FleetState(tuple(images), services)


def rebuilt_images(run: RunRow, store: Store, before: Mapping[str, BuildRow]) -> tuple[RebuiltImage, ...]:
    """The run's builds, in the order they started (``before``: recipe -> the build each replaced)."""
    from patchline.pipeline import BuildOutput, PlanOutput, output_of

    build_run = output_of(run, BuildOutput).run_id
    if not build_run:
        return ()
    waves = {i.name: i.wave for i in output_of(run, PlanOutput).items}
    rows = sorted(store.builds(run_id=build_run, limit=1000), key=lambda b: (b.started_at, b.id))
    result = []
    for b in rows:
        verification = b.verification
        tests = verification.get("tests", [])
        old = before.get(b.recipe)
        result.append(RebuiltImage(
            name=b.recipe, status=b.status, wave=waves.get(b.recipe), reasons=b.reasons,
            from_digest=old.manifest_digest if old else None, to_digest=b.manifest_digest,
            fixed=tuple(verification.get("fixed", ())), pending_after=verification.get("pending_after"),
            tests_passed=sum(1 for t in tests if t.get("passed")),
            tests_failed=sum(1 for t in tests if not t.get("passed")), error=b.error,
            seconds=(b.finished_at - b.started_at).total_seconds()))
    return tuple(result)


def rolled_out(run: RunRow, store: Store, before: tuple[ServiceState, ...]) -> tuple[RolledOut, ...]:
    """What the run's rollout step did to each service (``before``: the services as phase 1 left them)."""
    from patchline.pipeline import RolloutOutput, output_of

    result = []
    for name, state in output_of(run, RolloutOutput).services.items():
        was = next((s.image for s in before if s.name == name), None)
        row = store.rollout(state.rollout_id) if state.rollout_id else None
        result.append(RolledOut(
            service=name, state=state.state, strategy=row.strategy if row else None,
            from_image=row.from_image if row else was, to_image=row.to_image if row else state.image,
            reason=str(state.why or (row.reason if row else "") or ""),
            seconds=row.timings.get("total") if row else None))
    return tuple(result)

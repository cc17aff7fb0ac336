"""Phase 1, the fleet as it runs today: the images built without the security suite's updates, pushed and
signed; the services started on podman; the containers of a service found again."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import replace

from patchline._config import Config
from patchline._host import run_tool
from patchline.errors import BuildError, ConfigError, RolloutError
from patchline.store import Store


def build_missing(config: Config, store: Store, say: Callable[[str], None]) -> str:
    """Build, push and sign the recipes with no build yet, from bookworm main only (no update suites mounted):
    the images miss the security suite's updates, as images built some time ago do."""
    from patchline.build import BuildStatus, load_recipes, plan_fleet, rebuild, rebuild_options

    built = store.current_builds()
    missing = [r.name for r in load_recipes(config) if r.name not in built or not built[r.name].manifest_digest]
    if not missing:
        return "every image has a build already: skipped"
    # Only "never built" here: pending updates are phase 2's work, so phase 1 plans as if none were.
    today = config.model_copy(update={"build": config.build.model_copy(update={"pending": "none"})})
    fleet = plan_fleet(today, store, only=missing)
    if fleet.plan.skipped:
        name, why = fleet.plan.skipped[0]
        raise BuildError(f"{name} cannot be planned: {why}")
    options = replace(rebuild_options(today, say=say), update_sources=False)
    report = rebuild(fleet.plan, fleet.graph, store, options, hashes=fleet.hashes, progress=say)
    bad = [r for r in report.results if r.status not in (BuildStatus.BUILT, BuildStatus.UNCHANGED)]
    if bad:
        first = bad[0]
        raise BuildError(f"building {first.name} failed ({first.status}): {first.error}"
                         + (f" (log: {first.log})" if first.log else ""))
    return (f"built, tested, pushed and signed {len(report.results)} image(s) in {report.seconds:.0f} s: "
            + ", ".join(r.name for r in report.results))


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_services(config: Config, store: Store, say: Callable[[str], None]) -> str:
    """Every service that does not run all its replicas gets its current build, all at once."""
    from patchline.rollout import PodmanTarget, rollout_service

    started = []
    with PodmanTarget(policy=None) as probe:
        for service in config.services:
            running = {r.index for r in probe.replicas(service.name) if r.running and r.index < service.replicas}
            if len(running) == service.replicas:
                continue
            if service.host_port is not None:
                busy = [service.host_port + i for i in range(service.replicas)
                        if i not in running and not _free(service.host_port + i)]
                if busy:
                    raise ConfigError(f"{service.name}: 127.0.0.1:{busy[0]} is in use; choose another --port-base")
            result = rollout_service(config, store, service.name, strategy="all-at-once", progress=say)
            if not result.ok:
                raise RolloutError(f"{service.name} could not start: {result.state}: {result.reason}")
            started.append(f"{service.name} ({service.replicas} replica(s))")
    return "started " + ", ".join(started) if started else "every service runs already: skipped"


def service_containers(service: str) -> list[str]:
    from patchline.rollout import LABEL_SERVICE

    proc = run_tool(["podman", "ps", "-a", "--filter", f"label={LABEL_SERVICE}={service}", "--format",
                     "{{.Names}}"], check=True, what="podman ps")
    return proc.stdout.split()

"""Taking down what a signed, rolled-out test world left on the host.

A world (tests/integration/test_rollout.py, test_pipeline.py, bench/bench_rollout.py) leaves containers of its
services, patchline's registries.d scopes for its repositories, a gpg-agent for its keys and images pulled from
its loopback registry. Each of these outlives the test process unless removed.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Sequence

from patchline._config import Config
from patchline.rollout import LABEL_SERVICE
from patchline.sign import load_keys, remove_registries_d_scope, stop_agent
from tests.support.registry import forget_local_images_of


def remove_service_containers(service: str) -> None:
    """Every container labelled as a replica of ``service``, force-removed at once."""
    names = subprocess.run(["podman", "ps", "-a", "--filter", f"label={LABEL_SERVICE}={service}", "--format",
                            "{{.Names}}"], capture_output=True, text=True, check=False).stdout.split()
    if names:
        subprocess.run(["podman", "rm", "-f", "-t", "0", *names], capture_output=True, check=False)


def tear_down_world(config: Config | None, registry_host: str | None, *, services: Sequence[str],
                    repositories: Sequence[str]) -> None:
    """Best effort, each part on its own: one that fails does not keep the others from running."""
    for service in services:
        remove_service_containers(service)
    if config is None or registry_host is None:
        return
    for name in repositories:
        with contextlib.suppress(Exception):
            remove_registries_d_scope(config.sign, f"{registry_host}/{name}")
    with contextlib.suppress(Exception):
        stop_agent(load_keys(config.sign))
    forget_local_images_of(registry_host)

"""Rollouts: services, replicas, strategies, and the target that runs them.

A :class:`RolloutTarget` runs replicas of a service (podman on this host is the
embedded default). The rollout engine asks it to start, check, replace and
remove replicas; the engine owns the order, the health gates and the durable
record, so a killed patchline resumes where it stopped.

Each kind of target is a class with a ``from_config`` constructor (:class:`TargetKind`),
a sibling module of this one, listed in ``rollout/list.py`` under the name
``[rollout] target`` gives it.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from patchline._config import HealthCheckConfig

LABEL_SERVICE = "io.patchline.service"
LABEL_REPLICA = "io.patchline.replica"
LABEL_IMAGE = "io.patchline.image"  # repository@digest the replica runs
LABEL_ROLLOUT = "io.patchline.rollout"  # the rollout id that started it
LABEL_RUNTIME = "io.patchline.runtime"  # "runsc" under gVisor; absent: podman's default runtime

if TYPE_CHECKING:
    from patchline._config import Config, ServiceConfig
    from patchline.store import Store


class Strategy(enum.StrEnum):
    ROLLING = "rolling"
    CANARY = "canary"
    ALL_AT_ONCE = "all-at-once"


class RolloutState(enum.StrEnum):
    RUNNING = "running"
    ROLLING_BACK = "rolling-back"
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled-back"
    FAILED = "failed"  # could not even roll back; a person must look


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A service as the target needs it (from ``[[services]]``, its image resolved to a repository)."""

    name: str
    repository: str  # registry/namespace/name
    replicas: int
    port: int | None = None  # container port
    host_port: int | None = None  # replica N listens on 127.0.0.1:host_port+N
    env: Mapping[str, str] = field(default_factory=dict)
    command: tuple[str, ...] = ()
    podman_args: tuple[str, ...] = ()
    health: HealthCheckConfig = field(default_factory=HealthCheckConfig)
    capabilities: tuple[str, ...] = ()  # kept; every other capability is dropped
    memory: str | None = None
    pids_limit: int = 1024
    userns_auto: bool = False
    runtime: str = "default"  # or "runsc" (gVisor)

    def container_name(self, replica: int) -> str:
        return f"patchline-{self.name}-{replica}"

    def host_port_of(self, replica: int) -> int | None:
        return None if self.host_port is None else self.host_port + replica


@dataclass(frozen=True, slots=True)
class Replica:
    """A running (or stopped) replica as the target sees it."""

    service: str
    index: int
    container: str  # name
    container_id: str
    image: str  # repository@digest from its label
    image_id: str
    running: bool
    restarts: int
    rollout_id: int | None
    host_port: int | None
    runtime: str = "default"  # what patchline started it under ("runsc": gVisor)


@dataclass(frozen=True, slots=True)
class Probe:
    healthy: bool
    detail: str  # "200 OK", "exit 1: ...", "connection refused"
    seconds: float


class RolloutTarget(Protocol):
    """Where a service's replicas run."""

    def pull(self, image: str) -> str:
        """Fetch ``repository@digest`` through the signature policy; return the local image ID.

        Raises :class:`~patchline.errors.SignatureRefused` when the policy refuses it.
        """
        ...

    def replicas(self, service: str) -> Sequence[Replica]:
        """Every container labelled as a replica of this service, by index."""
        ...

    def replicas_of(self, services: Collection[str]) -> Mapping[str, Sequence[Replica]]:
        """:meth:`replicas` of several services, in one look where the target can."""
        ...

    def start(self, spec: ServiceSpec, index: int, *, image: str, image_id: str, rollout_id: int) -> Replica:
        """Start replica ``index`` on ``image`` (removing whatever held that slot first)."""
        ...

    def remove(self, spec: ServiceSpec, index: int) -> None:
        """Stop and remove replica ``index``; nothing if there is none."""
        ...

    def probe(self, spec: ServiceSpec, index: int) -> Probe:
        """One health check of replica ``index``."""
        ...

    def record_running(self, store: Store) -> None:
        """Record in the store what runs on the target now, so that the fleet views (``fleet``, ``where``,
        ``advisory``, ``report``) name the digests a rollout or rollback just deployed."""
        ...


class TargetKind(Protocol):
    """A kind of rollout target: its class, built from ``patchline.toml``."""

    def from_config(self, config: Config, services: Sequence[ServiceConfig], *, pulls: bool = True) -> RolloutTarget:
        """The target for ``services`` (pulls go through the signature policy for their repositories).

        ``pulls=False``: the caller only looks and probes; nothing is set up for pulling.
        """
        ...

"""The podman rollout target: replicas are containers of this host's podman, found by their labels.

Replica N of service S is the container ``patchline-S-N``. The name is
deterministic, so a slot holds at most one container: a patchline killed
between starting and recording a replica can never leave a second copy
behind, and the next run finds it by name or by label.

Replicas run with ``--restart on-failure:3`` (conmon restarts them, no systemd
needed), so a crashing replica shows up as restarts before it stays down, and
``--stop-timeout`` (3 s unless the service's podman_args say otherwise), which
``podman rm -f`` honours: a server that handles SIGTERM finishes its requests,
one that does not (any PID 1 without a SIGTERM handler, e.g. ``sleep``, busybox
httpd, ``python -m http.server``; ``--init`` in podman_args fixes that) is
killed after it.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from patchline._host import run_tool, stderr_tail
from patchline._http import tls_context
from patchline._least_privilege import env_file, least_privilege_flags
from patchline.errors import Error, HostError, SignatureRefused
from patchline.oci import parse_image_ref
from patchline.rollout._resolve import service_repository
from patchline.rollout.interface import (
    LABEL_IMAGE,
    LABEL_REPLICA,
    LABEL_ROLLOUT,
    LABEL_RUNTIME,
    LABEL_SERVICE,
    Probe,
    Replica,
    ServiceSpec,
)
from patchline.sign import pull_verified

if TYPE_CHECKING:
    from patchline._config import Config, ServiceConfig
    from patchline.store import Store

__all__ = [
    "DEFAULT_STOP_TIMEOUT",
    "RESTART_POLICY",
    "PodmanTarget",
    "command_verdict",
    "http_verdict",
    "parse_replicas",
    "parse_restart_counts",
    "run_argv",
]

RESTART_POLICY = "on-failure:3"
RUNSC = "/usr/bin/runsc"  # Debian's runsc package
DEFAULT_STOP_TIMEOUT = 3  # seconds between SIGTERM and SIGKILL when a replica is removed

_TIMEOUT = 60.0  # seconds for podman's bookkeeping calls (ps, inspect, run -d, rm)
_PULL_TIMEOUT = 1800.0  # seconds; a big image over a slow link
_STOP_GRACE = 2.0  # seconds a timed-out `podman exec` gets to exit after SIGTERM
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NO_SUCH_CONTAINER = re.compile(r"no such container", re.IGNORECASE)
# How containers/image words a refusal by the signature policy ("Source image rejected: Running image ...
# is rejected by policy.", "... A signature was required, but no signature exists", "Invalid GPG signature").
_REFUSED = re.compile(r"Source image rejected|signature", re.IGNORECASE)


class PodmanTarget:
    """Replicas as containers of the local podman; see the module docstring.

    ``policy`` is the ``policy.json`` every pull goes through (None pulls without
    one: only when the configuration turned ``require_signature`` off).
    ``insecure`` lists registry hosts reached over plain HTTP. ``pull`` replaces
    the verified pull (``pull(reference, *, policy, insecure) -> image ID``).
    Close it (or use it as a context manager) to release its HTTP client.
    """

    def __init__(
        self,
        *,
        policy: Path | None,
        insecure: Collection[str] = (),
        pull: Callable[..., str] | None = None,
        stop_timeout: int = DEFAULT_STOP_TIMEOUT,
    ) -> None:
        self._policy = policy
        self._insecure = frozenset(insecure)
        self._pull = pull or pull_verified
        self._stop_timeout = stop_timeout
        self._client: httpx.Client | None = None

    @classmethod
    def from_config(cls, config: Config, services: Sequence[ServiceConfig], *, pulls: bool = True) -> PodmanTarget:
        """The target ``[rollout] target = "podman"`` names: pulls go through patchline's signature policy for the
        repositories of ``services`` (unless ``[rollout] require_signature`` is off, or ``pulls`` is False: a
        target that only looks and probes)."""
        insecure = frozenset(config.registries.insecure)
        if not pulls or not config.rollout.require_signature:
            return cls(policy=None, insecure=insecure)
        from functools import partial

        from patchline.sign import (
            load_keys,
            lookaside_dir,
            pull_verified,
            registries_d_dir,
            write_policy,
            write_registries_d,
        )

        keys = load_keys(config.sign)
        scopes = sorted({service_repository(config, s.image) for s in services})
        policy = write_policy(config.sign, keys, scopes=scopes)
        lookaside = lookaside_dir(config.sign)
        for scope in scopes:
            write_registries_d(config.sign, scope=scope, lookaside=lookaside)
        # The pulls read patchline's own registries.d (where the signatures' lookaside store is declared).
        return cls(policy=policy, insecure=insecure,
                   pull=partial(pull_verified, registries_d=registries_d_dir(config.sign)))

    def __enter__(self) -> PodmanTarget:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def pull(self, image: str) -> str:
        """Pull ``image`` (through the policy when there is one); its local image ID."""
        insecure = _registry_host(image) in self._insecure
        if self._policy is None:
            return _pull(image, policy=None, insecure=insecure)
        return self._pull(image, policy=self._policy, insecure=insecure)

    def replicas(self, service: str) -> list[Replica]:
        """The containers labelled as replicas of ``service``, by index (two podman calls)."""
        return self.replicas_of([service])[service]

    def replicas_of(self, services: Collection[str]) -> dict[str, list[Replica]]:
        """The replicas of each of ``services``, by index: the same two podman calls as for one service."""
        label = f"label={LABEL_SERVICE}={next(iter(services))}" if len(services) == 1 else f"label={LABEL_SERVICE}"
        ps = _podman(["podman", "ps", "-a", "--filter", label, "--format", "json"])
        found = [r for r in parse_replicas(ps.stdout) if r.service in services]
        out: dict[str, list[Replica]] = {s: [] for s in services}
        if not found:
            return out
        # `podman ps` does not show restarts: one inspect for all the containers does.
        inspect = _podman(["podman", "container", "inspect", "--format", "{{.Id}} {{.RestartCount}}",
                           *(r.container_id for r in found)], tolerate=_NO_SUCH_CONTAINER)
        restarts = parse_restart_counts(inspect.stdout)
        # A container missing from the inspect output was removed since `podman ps`: it is no replica.
        for r in found:
            if r.container_id in restarts:
                out[r.service].append(replace(r, restarts=restarts[r.container_id]))
        return out

    def start(self, spec: ServiceSpec, index: int, *, image: str, image_id: str, rollout_id: int) -> Replica:
        """Start replica ``index`` of ``spec`` on ``image_id`` (``image`` is its repository@digest).

        Whatever held the slot is stopped and removed first. The replica is returned
        as started (running, no restarts); :meth:`probe` tells whether it serves.
        """
        name = spec.container_name(index)
        with env_file(spec.env) as env_path:
            argv = run_argv(spec, index, image=image, image_id=image_id, rollout_id=rollout_id,
                            stop_timeout=self._stop_timeout, env_file=env_path)
            # One podman call, occupied slot or not: --replace stops and removes whatever holds the name.
            proc = _podman(argv, check=False)
        if proc.returncode != 0:
            # A run that fails to start (a port in use) leaves its container created: free the slot.
            _podman(["podman", "rm", "--force", "--ignore", name], check=False)
            raise HostError(f"podman run of {name} failed: {stderr_tail(proc.stderr)}", detail=proc.stderr)
        container_id = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        if not _HEX64.match(container_id):
            raise HostError(f"podman run printed no container ID for {name}",
                            detail=proc.stdout + proc.stderr)
        return Replica(
            service=spec.name, index=index, container=name, container_id=container_id,
            image=image, image_id=image_id, running=True, restarts=0, rollout_id=rollout_id,
            host_port=spec.host_port_of(index) if spec.port is not None else None,
        )

    def remove(self, spec: ServiceSpec, index: int) -> None:
        """Stop (SIGTERM, then SIGKILL after the container's stop timeout) and remove replica ``index``."""
        _podman(["podman", "rm", "--force", "--ignore", spec.container_name(index)])

    def record_running(self, store: Store) -> None:
        """This host's running containers into the store's workloads (podman discovery)."""
        from patchline.fleet import discover_podman

        discover_podman(store)

    def probe(self, spec: ServiceSpec, index: int) -> Probe:
        """One health check: the service's HTTP GET or command, else whether the container runs."""
        health = spec.health
        started = time.monotonic()
        if health.http is not None:
            healthy, detail = self._probe_http(spec, index)
        elif health.command is not None:
            healthy, detail = _probe_command(spec.container_name(index), health.command, health.timeout)
        else:
            healthy, detail = _probe_running(spec.container_name(index))
        return Probe(healthy=healthy, detail=detail, seconds=time.monotonic() - started)

    def _probe_http(self, spec: ServiceSpec, index: int) -> tuple[bool, str]:
        health = spec.health
        port = spec.host_port_of(index)
        if port is None or spec.port is None:
            return False, "no published port to check"
        if self._client is None:
            # No keep-alive: every probe opens a new connection, as a new client would; a pooled
            # connection to the replica this port had before could otherwise answer for it.
            self._client = httpx.Client(trust_env=False, verify=tls_context(),
                                        limits=httpx.Limits(max_keepalive_connections=0))
        try:
            response = self._client.get(f"http://127.0.0.1:{port}{health.http}", timeout=health.timeout)
        except httpx.TransportError as exc:
            return False, _transport_error(exc, health.timeout)
        return http_verdict(response.status_code, response.reason_phrase, wanted=health.status)


def run_argv(spec: ServiceSpec, index: int, *, image: str, image_id: str, rollout_id: int,
             stop_timeout: int = DEFAULT_STOP_TIMEOUT, env_file: Path | None = None) -> list[str]:
    """``podman run -d`` for replica ``index``.

    Least privilege by default: every capability dropped but the ones the service
    declares, no new privileges, a process limit (and memory, user namespace when
    configured). The service's podman_args come after patchline's defaults, so they
    can change them, and before the name and labels, so they cannot change what
    identifies the replica. Environment values go through ``env_file`` (0600, never
    on a command line that ``ps`` shows); without one they are passed as ``--env``.
    """
    hardening = least_privilege_flags(capabilities=spec.capabilities, pids_limit=spec.pids_limit,
                                      memory=spec.memory, userns_auto=spec.userns_auto)
    if spec.runtime == "runsc":
        # gVisor: a user-space kernel between the service and the host's. Its netstack cannot run in the root
        # network namespace here and its KVM platform hangs in VMs: network=host uses the container's own
        # namespace (published ports work), with the default ptrace platform.
        hardening += ["--runtime", RUNSC, "--runtime-flag=network=host", "--label", f"{LABEL_RUNTIME}=runsc"]
    argv = ["podman", "run", "--detach", "--replace", "--restart", RESTART_POLICY, "--stop-timeout", str(stop_timeout),
            *hardening,
            *spec.podman_args,
            "--name", spec.container_name(index),
            "--label", f"{LABEL_SERVICE}={spec.name}",
            "--label", f"{LABEL_REPLICA}={index}",
            "--label", f"{LABEL_IMAGE}={image}",
            "--label", f"{LABEL_ROLLOUT}={rollout_id}"]
    host_port = spec.host_port_of(index)
    if spec.port is not None and host_port is not None:
        argv += ["--publish", f"127.0.0.1:{host_port}:{spec.port}"]
    if env_file is not None:
        argv += ["--env-file", str(env_file)]
    else:
        for key, value in spec.env.items():
            argv += ["--env", f"{key}={value}"]
    return [*argv, image_id, *spec.command]


def parse_replicas(ps_json: str) -> list[Replica]:
    """Replicas from ``podman ps -a --format json`` output, by index, with ``restarts=0``.

    (``podman ps`` does not show restarts; :func:`parse_restart_counts` reads them.)
    An entry without a service label or a numeric replica label is not
    patchline's replica and is left out.
    """
    try:
        entries = json.loads(ps_json or "[]")
    except json.JSONDecodeError as exc:
        raise HostError(f"podman ps printed invalid JSON: {exc}") from exc
    if not isinstance(entries, list):
        raise HostError("podman ps printed JSON that is not a list")
    replicas = []
    for entry in entries:
        replica = _replica(entry)
        if replica is not None:
            replicas.append(replica)
    return sorted(replicas, key=lambda r: (r.index, r.container))


def parse_restart_counts(text: str) -> dict[str, int]:
    """``ID COUNT`` lines (``podman container inspect --format '{{.Id}} {{.RestartCount}}'``) as a dict."""
    counts = {}
    for line in text.splitlines():
        container_id, _, count = line.strip().partition(" ")
        if _HEX64.match(container_id) and count.isdigit():
            counts[container_id] = int(count)
    return counts


def http_verdict(status: int, reason: str, *, wanted: int) -> tuple[bool, str]:
    """A health check's verdict on an HTTP answer: ``200 OK`` or ``HTTP 500 (wanted 200)``."""
    if status == wanted:
        return True, f"{status} {reason}".rstrip()
    return False, f"HTTP {status} (wanted {wanted})"


def command_verdict(returncode: int, output: str) -> tuple[bool, str]:
    """A health command's verdict: ``exit 0``, or ``exit 1: LAST LINE OF ITS OUTPUT``."""
    if returncode == 0:
        return True, "exit 0"
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return False, f"exit {returncode}: {lines[-1][:200]}" if lines else f"exit {returncode}"


def _pull(reference: str, *, policy: Path | None, insecure: bool) -> str:
    argv = ["podman", "pull", "--quiet"]
    if policy is not None:
        argv += ["--signature-policy", str(policy)]
    if insecure:
        argv.append("--tls-verify=false")
    argv.append(reference)
    proc = _podman(argv, timeout=_PULL_TIMEOUT, check=False)
    if proc.returncode != 0:
        message = stderr_tail(proc.stderr)
        if _REFUSED.search(proc.stderr):
            by = policy or "the host's signature policy"
            raise SignatureRefused(f"{reference} refused by {by}: {message}", detail=proc.stderr)
        raise HostError(f"podman pull {reference} failed: {message}", detail=proc.stderr)
    lines = proc.stdout.split()
    if lines and _HEX64.match(lines[-1]):
        return lines[-1]
    inspect = _podman(["podman", "image", "inspect", "--format", "{{.Id}}", reference])
    return inspect.stdout.strip()


def _probe_command(container: str, command: str, timeout: float) -> tuple[bool, str]:
    argv = ["podman", "exec", container, "/bin/sh", "-c", command]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    except OSError as exc:
        raise HostError(f"cannot run podman: {exc.strerror}") from exc
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM first: a podman killed outright can leave its locks held.
        proc.terminate()
        try:
            proc.communicate(timeout=_STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        return False, f"timed out after {timeout:g} s"
    return command_verdict(proc.returncode, output)


def _probe_running(container: str) -> tuple[bool, str]:
    proc = _podman(["podman", "container", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}",
                    container], tolerate=_NO_SUCH_CONTAINER)
    if proc.returncode != 0:
        return False, "no container"
    status, _, code = proc.stdout.strip().partition(" ")
    if status == "running":
        return True, "running"
    return False, f"{status} (exit {code})"


def _replica(entry: Any) -> Replica | None:
    if not isinstance(entry, dict):
        return None
    labels = entry.get("Labels") or {}
    container_id = entry.get("Id")
    if not isinstance(labels, dict) or not isinstance(container_id, str):
        return None
    service = labels.get(LABEL_SERVICE)
    index = _int(labels.get(LABEL_REPLICA))
    if not isinstance(service, str) or index is None or index < 0:
        return None
    names = entry.get("Names") or []
    image_id = entry.get("ImageID")
    return Replica(
        service=service,
        index=index,
        container=names[0] if isinstance(names, list) and names and isinstance(names[0], str) else "",
        container_id=container_id,
        image=str(labels.get(LABEL_IMAGE, "")),
        image_id=image_id if isinstance(image_id, str) else "",
        running=entry.get("State") == "running",
        restarts=0,
        rollout_id=_int(labels.get(LABEL_ROLLOUT)),
        host_port=_host_port(entry.get("Ports")),
        runtime=str(labels.get(LABEL_RUNTIME) or "default"),
    )


def _host_port(ports: Any) -> int | None:
    if not isinstance(ports, list):
        return None
    for port in ports:
        if isinstance(port, dict) and isinstance(port.get("host_port"), int):
            return int(port["host_port"])
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _registry_host(reference: str) -> str | None:
    try:
        return parse_image_ref(reference).registry
    except Error:
        return None


def _transport_error(exc: httpx.TransportError, timeout: float) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return "connection closed without an answer"
    return f"{type(exc).__name__}: {exc}"


def _podman(argv: Sequence[str], *, timeout: float = _TIMEOUT, check: bool = True,
            tolerate: re.Pattern[str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run podman; with ``check`` a failure raises HostError unless its stderr matches ``tolerate``."""
    return run_tool(argv, what=shlex.join(argv[:3]), missing="podman is not installed", timeout=timeout, check=check,
                    tolerate=tolerate)

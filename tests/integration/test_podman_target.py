"""The podman rollout target with real containers of two tiny busybox HTTP images, and pulls through a
signature policy from a loopback registry.

The images (tests/integration/test_verify_tests.py builds them) run ``busybox httpd`` on port 8080 and
differ in what ``/healthz`` says. busybox httpd as PID 1 ignores SIGTERM, so the services that must stop
fast run with ``--init``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from patchline._config import HealthCheckConfig
from patchline.errors import HostError, SignatureRefused
from patchline.rollout._podman import PodmanTarget
from patchline.rollout.interface import LABEL_SERVICE, Probe, Replica, ServiceSpec
from tests.integration.test_verify_tests import busybox_http_image
from tests.support.registry import RunningRegistry, require_tools

pytestmark = pytest.mark.integration

REPOSITORY = "127.0.0.1:5000/example/web"  # only a label here: these tests start images by ID
V1 = f"{REPOSITORY}@sha256:{'1' * 64}"
V2 = f"{REPOSITORY}@sha256:{'2' * 64}"


@pytest.fixture(scope="module")
def images() -> Iterator[tuple[str, str]]:
    """The image IDs of version 1 and version 2."""
    require_tools("podman", "busybox")
    run = uuid.uuid4().hex[:12]
    ids = [busybox_http_image(f"localhost/patchline-test/rollout-web:{run}-v{n}", healthz=f"v{n}\n")
           for n in (1, 2)]
    yield ids[0], ids[1]
    subprocess.run(["podman", "rmi", "-f", *ids], capture_output=True, timeout=120)


@pytest.fixture
def service() -> Iterator[str]:
    """A fresh service name; its containers are removed afterwards."""
    name = f"pltest-{uuid.uuid4().hex[:8]}"
    yield name
    ids = subprocess.run(["podman", "ps", "-aq", "--filter", f"label={LABEL_SERVICE}={name}"],
                         capture_output=True, text=True, check=True).stdout.split()
    if ids:
        subprocess.run(["podman", "rm", "-f", "-t", "0", *ids], capture_output=True, timeout=60)


@pytest.fixture
def target() -> Iterator[PodmanTarget]:
    with PodmanTarget(policy=None, stop_timeout=1) as t:
        yield t


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        if first + count > 65535:
            continue
        sockets = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no run of free ports")


def until(check: Callable[[], Probe | bool], *, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result is True or (isinstance(result, Probe) and result.healthy):
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {check()}")


def summary(replicas: list[Replica]) -> list[tuple[object, ...]]:
    return [(r.index, r.container, r.image, r.image_id, r.running, r.restarts, r.rollout_id, r.host_port)
            for r in replicas]


def test_replicas_start_serve_get_replaced_and_removed(
        target: PodmanTarget, service: str, images: tuple[str, str]) -> None:
    v1, v2 = images
    port = free_ports(2)
    spec = ServiceSpec(name=service, repository=REPOSITORY, replicas=2, port=8080, host_port=port,
                       podman_args=("--init",), health=HealthCheckConfig(http="/healthz"))
    started = [target.start(spec, i, image=V1, image_id=v1, rollout_id=1) for i in (0, 1)]
    for index in (0, 1):
        until(lambda index=index: target.probe(spec, index))  # type: ignore[misc]
    assert target.probe(spec, 0).detail == "200 OK"

    listed = target.replicas(service)
    assert summary(listed) == [
        (0, f"patchline-{service}-0", V1, v1, True, 0, 1, port),
        (1, f"patchline-{service}-1", V1, v1, True, 0, 1, port + 1),
    ]
    assert [r.container_id for r in listed] == [r.container_id for r in started]
    assert summary(started) == summary(listed)
    # Several services in one look: each gets its own replicas, one with none gets an empty list.
    both = target.replicas_of([service, f"{service}-none"])
    assert {k: summary(v) for k, v in both.items()} == {service: summary(listed), f"{service}-none": []}

    # Replica 0 moves to version 2: start() takes the slot over from the running container.
    moved = target.start(spec, 0, image=V2, image_id=v2, rollout_id=2)
    until(lambda: target.probe(spec, 0))
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", trust_env=False).text == "v2\n"
    listed = target.replicas(service)
    assert summary(listed) == [
        (0, f"patchline-{service}-0", V2, v2, True, 0, 2, port),
        (1, f"patchline-{service}-1", V1, v1, True, 0, 1, port + 1),
    ]
    assert listed[0].container_id == moved.container_id != started[0].container_id

    target.remove(spec, 1)
    target.remove(spec, 1)  # nothing left to remove: no error
    assert [r.index for r in target.replicas(service)] == [0]
    gone = target.probe(spec, 1)
    assert (gone.healthy, gone.detail) == (False, "connection refused")


def test_http_probe_of_the_wrong_status(target: PodmanTarget, service: str, images: tuple[str, str]) -> None:
    port = free_ports(1)
    spec = ServiceSpec(name=service, repository=REPOSITORY, replicas=1, port=8080, host_port=port,
                       podman_args=("--init",), health=HealthCheckConfig(http="/missing"))
    target.start(spec, 0, image=V1, image_id=images[0], rollout_id=1)
    until(lambda: target.probe(spec, 0).detail != "connection refused")
    probe = target.probe(spec, 0)
    assert (probe.healthy, probe.detail) == (False, "HTTP 404 (wanted 200)")


def test_command_health_checks_run_in_the_replica(
        target: PodmanTarget, service: str, images: tuple[str, str]) -> None:
    def spec(health: HealthCheckConfig) -> ServiceSpec:
        return ServiceSpec(name=service, repository=REPOSITORY, replicas=1, env={"GREETING": "hi"},
                           podman_args=("--init",), health=health)

    target.start(spec(HealthCheckConfig()), 0, image=V1, image_id=images[0], rollout_id=1)
    running = target.probe(spec(HealthCheckConfig()), 0)
    assert (running.healthy, running.detail) == (True, "running")

    healthy = target.probe(spec(HealthCheckConfig(command='test "$GREETING" = hi && test -f /www/healthz')), 0)
    assert (healthy.healthy, healthy.detail) == (True, "exit 0")  # the environment came through the env file
    # Least privilege: no capability, no new privileges, a process limit.
    [info] = json.loads(subprocess.run(["podman", "inspect", f"patchline-{service}-0"], capture_output=True,
                                       text=True, check=True).stdout)
    assert info["EffectiveCaps"] in ([], None), info["EffectiveCaps"]
    assert "no-new-privileges" in " ".join(info["HostConfig"]["SecurityOpt"] or [])
    assert info["HostConfig"]["PidsLimit"] == 1024
    failing = target.probe(spec(HealthCheckConfig(command="cat /www/missing")), 0)
    assert (failing.healthy, failing.detail) == (
        False, "exit 1: cat: can't open '/www/missing': No such file or directory")
    slow = target.probe(spec(HealthCheckConfig(command="sleep 10", timeout=0.5)), 0)
    assert (slow.healthy, slow.detail) == (False, "timed out after 0.5 s")
    assert slow.seconds < 4


def test_a_crashing_replica_is_restarted_three_times_then_stays_down(
        target: PodmanTarget, service: str, images: tuple[str, str]) -> None:
    spec = ServiceSpec(name=service, repository=REPOSITORY, replicas=1, command=("sh", "-c", "exit 1"))
    target.start(spec, 0, image=V1, image_id=images[0], rollout_id=5)

    def down_for_good() -> bool:
        (replica,) = target.replicas(service)
        return not replica.running and replica.restarts == 3

    until(down_for_good, seconds=20)
    probe = target.probe(spec, 0)
    # podman says "stopped" until its cleanup process has marked the container "exited".
    assert not probe.healthy and probe.detail in {"exited (exit 1)", "stopped (exit 1)"}


def test_remove_gives_the_replica_its_stop_timeout(target: PodmanTarget, service: str,
                                                   images: tuple[str, str]) -> None:
    plain = ServiceSpec(name=service, repository=REPOSITORY, replicas=2)
    with_init = ServiceSpec(name=service, repository=REPOSITORY, replicas=2, podman_args=("--init",))
    target.start(plain, 0, image=V1, image_id=images[0], rollout_id=1)
    target.start(with_init, 1, image=V1, image_id=images[0], rollout_id=1)
    until(lambda: all(r.running for r in target.replicas(service)))

    began = time.monotonic()
    target.remove(plain, 0)  # httpd as PID 1 ignores SIGTERM: killed after the 1 s stop timeout
    ignored = time.monotonic() - began
    began = time.monotonic()
    target.remove(with_init, 1)  # catatonit passes SIGTERM on and httpd ends at once
    handled = time.monotonic() - began
    assert ignored >= 1.0 > handled
    assert target.replicas(service) == []


def test_a_replica_that_cannot_start_leaves_its_slot_free(
        target: PodmanTarget, service: str, images: tuple[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        spec = ServiceSpec(name=service, repository=REPOSITORY, replicas=1, port=8080, host_port=port)
        with pytest.raises(HostError, match="address already in use"):
            target.start(spec, 0, image=V1, image_id=images[0], rollout_id=1)
    assert target.replicas(service) == []


@pytest.fixture
def pushed(registry: RunningRegistry, images: tuple[str, str], tmp_path: Path) -> str:
    """Version 1 pushed to the test registry; its repository@digest."""
    digest_file = tmp_path / "digest"
    subprocess.run(["podman", "push", "--tls-verify=false", "--digestfile", str(digest_file), images[0],
                    registry.ref("example/web:1")], capture_output=True, check=True, timeout=120)
    return registry.ref(f"example/web@{digest_file.read_text().strip()}")


def policy(tmp_path: Path, requirement: str) -> Path:
    path = tmp_path / f"{requirement}.json"
    path.write_text(json.dumps({"default": [{"type": requirement}]}))
    return path


def test_pull_through_a_policy(registry: RunningRegistry, pushed: str, images: tuple[str, str],
                               tmp_path: Path) -> None:
    refusing = PodmanTarget(policy=policy(tmp_path, "reject"), insecure=[registry.host])
    with pytest.raises(SignatureRefused, match="rejected by policy"):
        refusing.pull(pushed)

    accepting = PodmanTarget(policy=policy(tmp_path, "insecureAcceptAnything"), insecure=[registry.host])
    assert accepting.pull(pushed) == images[0]


def test_pull_without_a_policy(registry: RunningRegistry, pushed: str, images: tuple[str, str]) -> None:
    assert PodmanTarget(policy=None, insecure=[registry.host]).pull(pushed) == images[0]
    # Not listed as insecure: TLS to a plain-HTTP registry fails, and that is no signature refusal.
    with pytest.raises(HostError, match="HTTP response to HTTPS client"):
        PodmanTarget(policy=None).pull(pushed)


@pytest.fixture(scope="module")
def broken_image(images: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Version 2 without /www/healthz: it starts, and its HTTP health check fails."""
    require_tools("buildah")
    context = tmp_path_factory.mktemp("broken")
    (context / "Containerfile").write_text(f'FROM {images[1]}\nUSER 0\nRUN ["/bin/busybox", "rm", "/www/healthz"]\n'
                                           "USER 1000\n")
    tag = f"localhost/patchline-test/rollout-web:broken-{uuid.uuid4().hex[:8]}"
    subprocess.run(["buildah", "bud", "-q", "--layers=false", "-t", tag, str(context)], capture_output=True,
                   check=True, timeout=300)
    image_id = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", tag], capture_output=True,
                              text=True, check=True).stdout.strip()
    yield image_id
    subprocess.run(["podman", "rmi", "-f", tag], capture_output=True, timeout=120)


def test_a_service_under_gvisor_rolls_out_and_back(service: str, images: tuple[str, str], broken_image: str,
                                                   tmp_path: Path) -> None:
    """runtime = "runsc": the replicas answer their HTTP health checks through the published ports, the kernel
    inside is gVisor's, and a canary rollout and an automatic rollback work as under runc."""
    require_tools("runsc")
    from patchline.rollout import RolloutPlan, RolloutState, Strategy, roll_out
    from patchline.store import open_store

    bad = f"{REPOSITORY}@sha256:{'3' * 64}"
    local = {V1: images[0], V2: images[1], bad: broken_image}
    port = free_ports(2)
    spec = ServiceSpec(name=service, repository=REPOSITORY, replicas=2, port=8080, host_port=port,
                       podman_args=("--init",), runtime="runsc",
                       health=HealthCheckConfig(http="/healthz", interval=0.2, start_timeout=60, failures=2))
    # The pull is not what is tested here (test_pull_through_a_policy is): the images are local, started by ID.
    with PodmanTarget(policy=tmp_path / "policy.json", stop_timeout=1, pull=lambda ref, **_kw: local[ref]) as target, \
            open_store(f"sqlite:///{tmp_path / 'p.db'}") as store:
        first = roll_out(store, target, RolloutPlan(spec=spec, to_image=V1, strategy=Strategy.ALL_AT_ONCE))
        assert first.state is RolloutState.SUCCEEDED, first.reason
        replicas = target.replicas(service)
        assert [r.runtime for r in replicas] == ["runsc", "runsc"]
        kernel = subprocess.run(["podman", "exec", replicas[0].container, "/bin/busybox", "dmesg"],
                                capture_output=True, text=True, check=True, timeout=60).stdout
        assert "gVisor" in kernel
        assert httpx.get(f"http://127.0.0.1:{port + 1}/healthz", trust_env=False, timeout=10).text == "v1\n"

        canary = roll_out(store, target, RolloutPlan(spec=spec, to_image=V2, strategy=Strategy.CANARY,
                                                     bake_seconds=1))
        assert canary.state is RolloutState.SUCCEEDED, canary.reason
        assert {r.image for r in target.replicas(service)} == {V2}

        back = roll_out(store, target, RolloutPlan(spec=spec, to_image=bad, strategy=Strategy.CANARY,
                                                   bake_seconds=1))
        assert back.state is RolloutState.ROLLED_BACK, back.reason
        assert {(r.image, r.runtime) for r in target.replicas(service)} == {(V2, "runsc")}
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", trust_env=False, timeout=10).text == "v2\n"

"""Rollouts on real podman: the example fleet's web service, built, signed and pushed by patchline, rolled out
with canary and waves while an HTTP client polls every replica; a bad image rolled back; patchline killed with
SIGKILL mid-rollout and resumed; an unsigned image refused; the events consumed from a real RabbitMQ.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from patchline._config import Config, load_config
from patchline.build import BuildStatus, plan_fleet, rebuild, rebuild_options
from patchline.errors import RolloutError, SignatureRefused, UnpromotableError
from patchline.events import deliver_until_empty, publishers_from_config
from patchline.rollout import PodmanTarget, RolloutState, rollout_service, service_status
from patchline.sign import sign_options, sign_pushed
from patchline.store import Store, open_store
from tests.support.images import BuiltImage
from tests.support.rabbitmq import AmqpConsumer, RunningRabbitMQ
from tests.support.registry import (
    RunningRegistry,
    free_port_run,
    require_tools,
    start_registry,
)
from tests.support.world import remove_service_containers, tear_down_world

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "fleet"
SERVICE = "itest-web"
PATCHLINE = Path(sys.executable).parent / "patchline"


@dataclasses.dataclass(frozen=True)
class World:
    config_path: Path
    config: Config
    registry: RunningRegistry
    ports: tuple[int, ...]
    old: str  # repository@digest of web as first built
    new: str  # web rebuilt (another SOURCE_DATE_EPOCH): the same app, a new digest
    bad: str  # FROM web, listening on another port: signed, but fails its health check
    unsigned: str  # FROM web with a label, pushed and never signed

    def store(self) -> Store:
        assert self.config.store.url is not None
        return open_store(self.config.store.url)


def _sh(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, f"{' '.join(argv)}: {proc.stderr[-2000:]}"
    return proc.stdout


def _derived(tmp: Path, registry: RunningRegistry, base_id: str, name: str, line: str) -> str:
    """Build FROM the web image with one more line, push it; repository@digest."""
    context = tmp / name
    context.mkdir()
    (context / "Containerfile").write_text(f"FROM {base_id}\n{line}\n")
    tag = f"{registry.host}/example/web:{name}"
    _sh("buildah", "bud", "--quiet", "--layers=false", "-t", tag, str(context))
    digest_file = tmp / f"{name}.digest"
    _sh("buildah", "push", "--quiet", "--tls-verify=false", "--digestfile", str(digest_file), tag)
    return f"{registry.host}/example/web@{digest_file.read_text().strip()}"


def _remove_service_containers() -> None:
    remove_service_containers(SERVICE)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, debian_base_image: BuiltImage,
          rabbitmq: RunningRabbitMQ) -> Iterator[World]:
    require_tools("buildah", "podman", "skopeo", "docker-registry", "gpg")
    tmp = tmp_path_factory.mktemp("rollout")
    fleet = tmp / "fleet"
    fleet.mkdir()
    for name in ("base", "web"):
        shutil.copytree(EXAMPLES / name, fleet / name)
    ports = free_port_run(3)
    with start_registry(tmp / "registry") as registry:
        (fleet / "patchline.toml").write_text(f"""
[registries]
insecure = ["{registry.host}"]

[build]
registry = "{registry.host}"
namespace = "example"
jobs = 2
update_sources = false
pending = "none"
logs = "{tmp / 'logs'}"
args = {{DEBIAN_BASE = "{debian_base_image.reference}"}}

[store]
url = "sqlite:///{tmp / 'patchline.db'}"

[sign]
keyring = "{tmp / 'keys'}"
lookaside = "{tmp / 'sigstore'}"
policy = "{tmp / 'policy.json'}"

[events]
amqp_url = "{rabbitmq.url}"

[[images]]
glob = "*"

[[services]]
name = "{SERVICE}"
image = "web"
replicas = 3
port = 8080
host_port = {ports}
strategy = "canary"
bake_seconds = 3
max_unavailable = 1
health = {{ http = "/healthz", interval = 0.2, start_timeout = 8 }}
""")
        config = load_config(fleet / "patchline.toml")
        repository = f"{registry.host}/example/web"
        try:
            with open_store(config.store.url) as store:
                fleet_plan = plan_fleet(config, store)
                first = rebuild(fleet_plan.plan, fleet_plan.graph, store, rebuild_options(config),
                                hashes=fleet_plan.hashes)
                assert {r.name: r.status for r in first.results} == {"base": BuildStatus.BUILT,
                                                                      "web": BuildStatus.BUILT}, first.results
                web = next(r for r in first.results if r.name == "web")
                assert web.signed is not None and web.signed.cosign_tag and web.signed.sbom_digest
                forced = plan_fleet(config, store, force=["web"])
                second = rebuild(forced.plan, forced.graph, store,
                                 dataclasses.replace(rebuild_options(config), source_date_epoch=1_700_000_000),
                                 hashes=forced.hashes)
                web2 = next(r for r in second.results if r.name == "web")
                assert web2.status is BuildStatus.BUILT, web2.error
                assert web.config_digest is not None
                bad = _derived(tmp, registry, web.config_digest, "bad", "ENV PORT=9090")
                unsigned = _derived(tmp, registry, web.config_digest, "unsigned", "LABEL unsigned=yes")
                options = sign_options(config)
                assert options is not None
                sign_pushed(options, repository=repository, manifest_digest=bad.rpartition("@")[2], sbom=None)
            yield World(fleet / "patchline.toml", config, registry, tuple(range(ports, ports + 3)),
                        f"{repository}@{web.manifest_digest}", f"{repository}@{web2.manifest_digest}", bad, unsigned)
        finally:
            tear_down_world(config, registry.host, services=[SERVICE], repositories=["example/base", "example/web"])


def _deliver(world: World, store: Store) -> None:
    publishers = publishers_from_config(world.config.events)
    try:
        deliver_until_empty(store, publishers, timeout=30)
    finally:
        for p in publishers:
            p.close()


def _on(world: World, store: Store, image: str) -> None:
    """Start each test from the service running ``image`` on every replica."""
    result = rollout_service(world.config, store, SERVICE, to=image, strategy="all-at-once")
    assert result.ok, result.reason


def _images(world: World, store: Store) -> list[str]:
    """The image each replica runs, once every replica answers its health check (a replica of a loaded
    two-core machine may miss one 2 s probe; one that stays down for 10 s fails the test)."""
    deadline = time.monotonic() + 10
    while True:
        with PodmanTarget(policy=None) as target:
            status = service_status(world.config, store, target)[0]
        if all(r.probe.healthy for r in status.replicas) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert all(r.probe.healthy for r in status.replicas), [r.probe for r in status.replicas]
    return [r.replica.image for r in status.replicas]


class Poller:
    """Polls every replica's /healthz every 50 ms; remembers the fewest healthy seen at once."""

    def __init__(self, ports: tuple[int, ...]) -> None:
        self.ports = ports
        self.fewest = len(ports)
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        # A replica counts as down when it refuses, errs or takes longer than the health check allows (2 s).
        # The replicas are polled at once, so that a round is one moment: polled one after the other, a slow
        # answer from one replica could stretch a round across the replacement of the next.
        from concurrent.futures import ThreadPoolExecutor

        with httpx.Client(timeout=2.0, trust_env=False) as client, ThreadPoolExecutor(len(self.ports)) as pool:
            def healthy(port: int) -> bool:
                try:
                    return client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
                except httpx.HTTPError:
                    return False

            while not self._stop.is_set():
                self.fewest = min(self.fewest, sum(pool.map(healthy, self.ports)))
                self.rounds += 1
                self._stop.wait(0.05)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _rollout_events(consumer: AmqpConsumer, rollout_id: int, count: int) -> list[str]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        mine = [m for m in consumer.collect(0, timeout=0.2)
                if m.routing_key.startswith("patchline.rollout.") and m.json()["data"].get("rollout_id") == rollout_id]
        if len(mine) >= count:
            return [m.routing_key for m in mine]
        consumer.collect(len(consumer.messages) + 1, timeout=0.5)
    return [m.routing_key for m in consumer.messages if m.json()["data"].get("rollout_id") == rollout_id]


def test_canary_rollout_keeps_two_replicas_healthy_and_reports_in_order(world: World,
                                                                        rabbitmq: RunningRabbitMQ) -> None:
    with world.store() as store, AmqpConsumer(rabbitmq.url) as consumer:
        _on(world, store, world.old)
        with Poller(world.ports) as poller:
            result = rollout_service(world.config, store, SERVICE, to=world.new)
            _deliver(world, store)
        assert result.state is RolloutState.SUCCEEDED, result.reason
        assert poller.rounds > 20 and poller.fewest >= 2, (poller.rounds, poller.fewest)
        assert _images(world, store) == [world.new] * 3
        # The rollout recorded what it deployed: the fleet views name the new image, with no discovery run.
        new_id = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", world.new],
                                capture_output=True, text=True, check=True).stdout.strip()
        running = {w.name: w.image_digest for w in store.workloads() if w.name.startswith(f"patchline-{SERVICE}-")}
        assert running == {f"patchline-{SERVICE}-{i}": f"sha256:{new_id}" for i in range(3)}
        keys = _rollout_events(consumer, result.rollout_id, 5)
        assert keys == ["patchline.rollout.started"] + ["patchline.rollout.replica_updated"] * 3 + [
            "patchline.rollout.succeeded"]
        timings = store.rollout(result.rollout_id).timings
        assert timings["bake"] >= 3 and {"pull", "start", "health", "overhead"} <= set(timings)
        # The rebuild's events are in the outbox too, with what the rollout consumers need.
        rebuilt = [e for e in store.events(types=["image.rebuilt"]) if e.data["recipe"] == "web"]
        assert rebuilt[-1].data["new_digest"] == world.new.rpartition("@")[2]
        assert rebuilt[-1].data["old_digest"] == world.old.rpartition("@")[2]
        assert {"added", "removed", "changed"} <= set(rebuilt[-1].data["sbom_diff"])
        # An image podman pulled with its signature can still be inventoried from local storage (no cache: read).
        from patchline.fleet._discover import DiscoverOptions, inventory

        assert inventory(f"containers-storage:{world.new}", DiscoverOptions()).packages


def test_a_rebuilt_image_that_fails_its_health_check_is_rolled_back_and_refused_after(
        world: World, rabbitmq: RunningRabbitMQ) -> None:
    with world.store() as store, AmqpConsumer(rabbitmq.url) as consumer:
        _on(world, store, world.old)
        with Poller(world.ports) as poller:
            result = rollout_service(world.config, store, SERVICE, to=world.bad)
            _deliver(world, store)
        assert result.state is RolloutState.ROLLED_BACK
        assert "replica 0 not healthy" in result.reason
        assert poller.fewest >= 2
        assert _images(world, store) == [world.old] * 3  # the old digest serves again, on every replica
        assert store.unpromotable(world.bad.rpartition("@")[2]) is not None
        keys = _rollout_events(consumer, result.rollout_id, 4)
        assert keys == ["patchline.rollout.started", "patchline.rollout.rolling_back",
                        "patchline.rollout.rolled_back"]
        with pytest.raises(UnpromotableError, match="unpromotable"):
            rollout_service(world.config, store, SERVICE, to=world.bad)
        # The CLI says the same, with exit 2 and one line.
        proc = subprocess.run([str(PATCHLINE), "--config", str(world.config_path), "rollout", SERVICE, "--to",
                               world.bad], capture_output=True, text=True, check=False, timeout=120)
        assert proc.returncode == 2 and "unpromotable" in proc.stderr


def test_an_unsigned_image_is_refused_and_never_started(world: World) -> None:
    with world.store() as store:
        _on(world, store, world.old)
        with pytest.raises(SignatureRefused, match="signature"):
            rollout_service(world.config, store, SERVICE, to=world.unsigned)
        assert _images(world, store) == [world.old] * 3
        last = store.last_rollout(SERVICE)
        assert last is not None and last.state == "failed" and "signature" in last.reason
        ancestors = _sh("podman", "ps", "-a", "--filter", f"ancestor={world.unsigned}", "--format", "{{.Names}}")
        assert ancestors.strip() == ""


def test_an_unsigned_image_of_another_repository_never_starts(world: World) -> None:
    """`rollout --to` another repository's image, a rollback to one the store names, and a pull through
    patchline's own policy: each refused, nothing started (the policy accepted anything outside the services'
    repositories, and --to took any repository)."""
    from patchline.rollout import make_target, rollback_service

    digest = world.unsigned.rpartition("@")[2]
    host = world.registry.host
    _sh("skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
        f"docker://{world.unsigned}", f"docker://{host}/elsewhere/web:unsigned")
    other = f"{host}/elsewhere/web@{digest}"
    with world.store() as store:
        _on(world, store, world.old)
        with pytest.raises(RolloutError, match=r"runs images of .*/example/web only"):
            rollout_service(world.config, store, SERVICE, to=other)
        # Whoever can write the store names it as the image to roll back to: refused too.
        rid = store.start_rollout(service=SERVICE, strategy="rolling", from_image=other, to_image=world.old,
                                  spec={}, replicas=[], owner="tampered")
        store.update_rollout(rid, state=RolloutState.SUCCEEDED.value, finished=True)
        with pytest.raises(RolloutError, match="runs images of"):
            rollback_service(world.config, store, SERVICE)
        # And patchline's policy itself rejects what is outside the services' repositories.
        with make_target(world.config) as target, pytest.raises(SignatureRefused):
            target.pull(other)
        assert _images(world, store) == [world.old] * 3
    ancestors = _sh("podman", "ps", "-a", "--filter", f"ancestor={other}", "--format", "{{.Names}}")
    assert ancestors.strip() == ""


@pytest.mark.parametrize("kill_at", ["canary", "wave"])
def test_killed_with_sigkill_mid_rollout_the_next_start_finishes_it(world: World, kill_at: str) -> None:
    with world.store() as store:
        _on(world, store, world.old)
        before = store.last_rollout(SERVICE)
        assert before is not None
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with Poller(world.ports) as poller:
            proc = subprocess.Popen([str(PATCHLINE), "--config", str(world.config_path), "rollout", SERVICE,
                                     "--to", world.new], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            deadline = time.monotonic() + 120
            killed = False
            while time.monotonic() < deadline and proc.poll() is None:
                last = store.last_rollout(SERVICE)
                if last is not None and last.id != before.id:
                    states = [r.state for r in last.replicas]
                    if (kill_at == "canary" and states[0] == "replacing") or (
                            kill_at == "wave" and states[0] == "ready" and "replacing" in states[1:]):
                        proc.send_signal(signal.SIGKILL)
                        killed = True
                        break
                time.sleep(0.02)
            proc.wait(timeout=60)
            assert killed, f"never saw the moment to kill; exit {proc.returncode}: {proc.stderr.read()!r}"
            interrupted = store.last_rollout(SERVICE)
            assert interrupted is not None and interrupted.state == "running"
            resumed = subprocess.run([str(PATCHLINE), "--config", str(world.config_path), "rollout", "--resume",
                                      "--json"], capture_output=True, text=True, check=False, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        document = json.loads(resumed.stdout)
        assert [r["state"] for r in document["rollouts"]] == ["succeeded"]
        assert store.rollout(interrupted.id).state == "succeeded"
        containers = _sh("podman", "ps", "-a", "--filter", f"label=io.patchline.service={SERVICE}", "--format",
                         "{{.Names}}").split()
        assert sorted(containers) == [f"patchline-{SERVICE}-{i}" for i in range(3)]  # none orphaned, none missing
        assert _images(world, store) == [world.new] * 3
        assert poller.fewest >= 2, "the kill must never take more than max_unavailable replicas down"


def test_status_and_rollback_through_the_cli(world: World) -> None:
    with world.store() as store:
        _on(world, store, world.old)
        result = rollout_service(world.config, store, SERVICE, to=world.new, strategy="rolling")
        assert result.ok
    cli = [str(PATCHLINE), "--config", str(world.config_path)]
    status = subprocess.run([*cli, "status", "--json"], capture_output=True, text=True, check=True, timeout=60)
    service = next(s for s in json.loads(status.stdout)["services"] if s["name"] == SERVICE)
    assert service["healthy"] == 3 and {r["image"] for r in service["replicas"]} == {world.new}
    back = subprocess.run([*cli, "rollback", SERVICE, "--json"], capture_output=True, text=True, check=False,
                          timeout=300)
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["rollouts"][0]["to_image"] == world.old
    with world.store() as store:
        assert _images(world, store) == [world.old] * 3

"""`patchline run` end to end on real parts: a local signed apt repository publishes a fixed package, and with no
other action the image is rebuilt, verified, signed, rolled out on podman, reported on RabbitMQ and recorded for
time-to-patch. Then a bad rebuild, and a SIGKILL at every step boundary.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchline._config import Config, load_config
from patchline.pipeline import CRASH_AFTER_STEP, STEPS, run_once, step_outputs
from patchline.rollout import PodmanTarget, service_status
from patchline.store import Store, open_store
from tests.support.aptrepo import AptRepo, missing_apt_tools
from tests.support.images import BuiltImage
from tests.support.rabbitmq import AmqpConsumer, RunningRabbitMQ
from tests.support.registry import (
    RunningRegistry,
    free_port_run,
    require_tools,
    start_registry,
)
from tests.support.world import tear_down_world

pytestmark = pytest.mark.integration

SERVICE = "itest-hello"
PATCHLINE = Path(sys.executable).parent / "patchline"
CLEANUP = "rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log /var/cache/ldconfig/aux-cache"


@dataclasses.dataclass
class World:
    config_path: Path
    config: Config
    registry: RunningRegistry
    repo: AptRepo
    ports: tuple[int, ...]
    versions: Iterator[int]

    def store(self) -> Store:
        assert self.config.store.url is not None
        return open_store(self.config.store.url)

    def publish_next(self, *, bad: bool = False) -> str:
        """Publish the next pl-hello (a security update naming a CVE); ``bad`` ones fail the image's test."""
        n = next(self.versions)
        version = f"1.0-{n}{'bad' if bad else ''}"
        self.repo.add("pl-hello", version, changelog_cves=[f"CVE-2099-{n:04d}"], urgency="high")
        self.repo.publish("stable-security")
        return version


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, debian_base_image: BuiltImage,
          rabbitmq: RunningRabbitMQ) -> Iterator[World]:
    require_tools("buildah", "podman", "skopeo", "docker-registry", "gpg", "busybox")
    if missing_apt_tools():
        pytest.skip(f"a local apt repository needs {', '.join(missing_apt_tools())} "
                    "(scripts/setup-host.sh installs them: dpkg-dev apt-utils gnupg)")
    tmp = tmp_path_factory.mktemp("pipeline")
    fleet = tmp / "fleet"
    (fleet / "base").mkdir(parents=True)
    (fleet / "app").mkdir()
    (fleet / "base" / "Containerfile").write_text(f"FROM {debian_base_image.reference}\n"
                                                  "RUN echo base > /etc/fleet-base\n")
    (fleet / "app" / "Containerfile").write_text(
        "ARG PATCHLINE_REGISTRY\nFROM ${PATCHLINE_REGISTRY}/example/base:latest\n"
        f"RUN set -e; apt-get update -q; DEBIAN_FRONTEND=noninteractive apt-get install -y -q pl-hello; {CLEANUP}\n"
        "COPY busybox /bin/busybox\nRUN mkdir -p /www && echo ok > /www/healthz\n"
        'CMD ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n')
    shutil.copy("/bin/busybox", fleet / "app" / "busybox")
    repo = AptRepo(tmp / "aptrepo")
    repo.root.mkdir()
    repo.serve()
    ports = free_port_run(2)
    with start_registry(tmp / "registry") as registry:
        (fleet / "patchline.toml").write_text(f"""
[registries]
insecure = ["{registry.host}"]

[updates]
keyring = "{repo.keyring}"
[[updates.sources]]
url = "{repo.url}"
suite = "stable-security"

[build]
registry = "{registry.host}"
namespace = "example"
jobs = 2
logs = "{tmp / 'logs'}"

[store]
url = "sqlite:///{tmp / 'patchline.db'}"

[sign]
keyring = "{tmp / 'keys'}"
lookaside = "{tmp / 'sigstore'}"
policy = "{tmp / 'policy.json'}"

[events]
amqp_url = "{rabbitmq.url}"

[[images]]
name = "base"
context = "base"

[[images]]
name = "app"
context = "app"
tests = [
    {{ http = "/healthz", port = 8080, body = "^ok", timeout = 20 }},
    "dpkg-query -W -f '${{Version}}' pl-hello | grep -v bad",
]

[[services]]
name = "{SERVICE}"
image = "app"
replicas = 2
port = 8080
host_port = {ports}
strategy = "canary"
bake_seconds = 1
health = {{ http = "/healthz", interval = 0.2, start_timeout = 15 }}
""")
        config = load_config(fleet / "patchline.toml")
        world = World(fleet / "patchline.toml", config, registry, repo, (ports, ports + 1), itertools.count(1))
        try:
            world.publish_next()
            with world.store() as store:
                first = run_once(config, store)
                assert first.state == "succeeded", (first.error, step_outputs(first))
                assert _running(world, store) == {_current(store)}
            yield world
        finally:
            tear_down_world(config, registry.host, services=[SERVICE], repositories=["example/base", "example/app"])
            repo.close()


def _current(store: Store) -> str:
    build = store.current_builds()["app"]
    assert build.manifest_digest is not None
    return build.manifest_digest


def _running(world: World, store: Store) -> set[str]:
    with PodmanTarget(policy=None) as target:
        status = next(s for s in service_status(world.config, store, target) if s.name == SERVICE)
    assert status.healthy == 2, [r.probe for r in status.replicas]
    return {r.replica.image.rpartition("@")[2] for r in status.replicas}


def test_a_published_fix_is_rebuilt_verified_rolled_out_reported_and_timed(world: World,
                                                                          rabbitmq: RunningRabbitMQ) -> None:
    with world.store() as store, AmqpConsumer(rabbitmq.url) as consumer:
        before = _current(store)
        version = world.publish_next()
        run = run_once(world.config, store)
        assert run.state == "succeeded", (run.error, step_outputs(run))
        out = step_outputs(run)
        assert [i["name"] for i in out["plan"]["items"]] == ["app"]
        assert out["plan"]["items"][0]["reasons"][0]["code"] == "pending-updates"
        assert [(r["name"], r["status"]) for r in out["build"]["results"]] == [("app", "built")]
        after = _current(store)
        assert after != before and _running(world, store) == {after}
        assert out["rollout"]["services"][SERVICE]["state"] == "succeeded"
        build = store.builds(recipe="app", limit=1)[0]
        assert build.verification["fixed"] == ["pl-hello"] and build.verification["passed"]
        # In order on RabbitMQ: the rebuild, the rollout, the run.
        keys = [m.routing_key for m in consumer.collect(7, timeout=20)]
        assert keys == ["patchline.image.rebuilt", "patchline.rollout.started"]\
            + ["patchline.rollout.replica_updated"] * 2 + ["patchline.rollout.succeeded", "patchline.run.finished"]
        rebuilt = consumer.messages[0].json()["data"]
        assert (rebuilt["old_digest"], rebuilt["new_digest"]) == (before, after)
        assert rebuilt["pending_resolved"] == ["pl-hello"]
        # Time-to-patch: first seen by this run, rebuilt, then deployed on the fixed digest.
        item = next(i for i in store.patch_items(kind="update") if i.first_seen_run == run.id)
        assert (item.item, item.recipe, item.state, item.digest) == ("pl-hello", "app", "deployed", after)
        assert item.first_seen_at <= item.rebuilt_at <= item.deployed_at  # type: ignore[operator]
        assert item.services == (SERVICE,)
        assert version.startswith("1.0-")

        again = run_once(world.config, store)
        out = step_outputs(again)
        assert again.state == "succeeded" and again.id != run.id
        assert out["plan"]["items"] == [] and out["build"]["results"] == []
        assert out["rollout"]["services"][SERVICE]["state"] == "current"


def test_a_bad_rebuild_keeps_the_service_on_its_digest_and_the_report_says_why(world: World) -> None:
    with world.store() as store:
        before = _current(store)
        world.publish_next(bad=True)
        run = run_once(world.config, store)
        out = step_outputs(run)
        assert [(r["name"], r["status"]) for r in out["build"]["results"]] == [("app", "verify-failed")]
        assert "tests failed" in out["build"]["results"][0]["error"]
        assert _current(store) == before and _running(world, store) == {before}
        assert out["rollout"]["services"][SERVICE]["state"] == "current"
        stuck = [i for i in store.patch_items(kind="update") if i.state == "stuck"]
        assert stuck and "verify-failed" in stuck[-1].why
        assert any(e["item"] == "pl-hello" and "verify-failed" in e["why"] for e in out["report"]["still_exposed"])


@pytest.mark.parametrize("step", [s.value for s in STEPS])
def test_killed_at_a_step_boundary_the_next_start_finishes_the_run_doing_nothing_twice(world: World,
                                                                                     step: str) -> None:
    with world.store() as store:
        since = dt.datetime.now(dt.UTC)
        last_event = max((e.seq for e in store.events(limit=100_000)), default=0)
        world.publish_next()
        cli = [str(PATCHLINE), "--config", str(world.config_path), "run", "--once"]
        killed = subprocess.run(cli, env={**os.environ, CRASH_AFTER_STEP: step}, capture_output=True, text=True,
                                timeout=600)
        assert killed.returncode == -9, killed.stderr[-2000:]
        interrupted = store.runs(limit=1)[0]
        assert interrupted.state == "running"
        assert [s.state for s in interrupted.steps][:[s.value for s in STEPS].index(step) + 1] == ["done"] * (
            [s.value for s in STEPS].index(step) + 1)
        resumed = subprocess.run(cli, capture_output=True, text=True, timeout=600)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        run = store.run(interrupted.id)
        assert run.state == "succeeded" and "resuming" in resumed.stderr
        assert all(s.attempts == 1 for s in run.steps), [(s.step, s.attempts) for s in run.steps]
        # Nothing done twice, nothing lost: one build, one rollout, one image.rebuilt for this change.
        builds = [b for b in store.builds(recipe="app", limit=20) if b.finished_at >= since]
        assert [b.status for b in builds] == ["built"]
        rollouts = [r for r in store.rollouts(service=SERVICE, limit=20) if r.started_at >= since]
        assert [r.state for r in rollouts] == ["succeeded"]
        new = store.events(after=last_event, limit=1000)
        assert [e.type for e in new].count("image.rebuilt") == 1
        assert [e.type for e in new].count("rollout.succeeded") == 1
        assert _running(world, store) == {_current(store)} == {builds[0].manifest_digest}

"""`patchline run` end to end on real parts: a local signed apt repository publishes a fixed package, and with no
other action the image is rebuilt, verified, signed, rolled out on podman, reported on RabbitMQ and recorded for
time-to-patch. Then a bad rebuild, and a SIGKILL at every step boundary.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchline._config import Config, load_config
from patchline.pipeline import CRASH_AFTER_STEP, STEPS, Step, run_once, step_outputs
from patchline.rollout import PodmanTarget, service_status
from patchline.sign import sign_options, verify_attachments
from patchline.store import PatchItemRow, Store, open_store
from tests.support.aptrepo import AptRepo, missing_apt_tools
from tests.support.images import BuiltImage
from tests.support.rabbitmq import AmqpConsumer, RunningRabbitMQ
from tests.support.registry import (
    RunningRegistry,
    _wait_until_serving,
    forget_local_images_of,
    free_port,
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
network = "host"  # RUN steps reach the test's apt repository on the host's loopback
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
        # What runs carries verified provenance: this build's run, its bases as recorded, the suites it read.
        verdict = verify_attachments(sign_options(world.config), f"{world.registry.ref('example/app')}@{after}",
                                     bases=dict(build.bases))
        assert verdict.ok, verdict.as_dict()
        assert verdict.provenance is not None and verdict.provenance.invocation_id == build.run_id
        deps = verdict.provenance.statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        assert [d["name"] for d in deps if d["annotations"].get("role") == "apt-suite"] == [
            f"{world.repo.url.rstrip('/')} stable-security"]
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


# -- two images built side by side, in their own registry: a stopped registry, a kill mid-build ---------------------


class Gate:
    """A loopback port that a RUN step of ``a2`` waits for: its builds go on only while the gate listens, so a
    kill can be timed to land while ``a1`` is recorded and ``a2`` is still building."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sock: socket.socket | None = None

    def open(self) -> None:
        if self.sock is None:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
            sock.listen(64)
            self.sock = sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


@dataclasses.dataclass
class Pair:
    world: World
    config_path: Path
    config: Config
    registry: RunningRegistry
    gate: Gate
    tmp: Path

    def store(self) -> Store:
        assert self.config.store.url is not None
        return open_store(self.config.store.url)

    def cli(self) -> list[str]:
        return [str(PATCHLINE), "--config", str(self.config_path), "run", "--once"]

    def restart_registry(self) -> None:
        """The registry again on its port, with its storage (the fixture's teardown stops this process)."""
        log = self.registry.workdir / "registry.log"
        with log.open("ab") as fh:
            self.registry.process = subprocess.Popen(["docker-registry", "serve", str(self.registry.workdir /
                                                                                      "config.yml")],
                                                     stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _wait_until_serving(f"{self.registry.url}/v2/", self.registry.process, log)


@pytest.fixture(scope="module")
def pair(world: World, debian_base_image: BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """``a1`` and ``a2``, both installing pl-hello from the world's apt repository, built in parallel and pushed to
    a registry of their own; no services, no signing (what is tested here is the build step)."""
    tmp = tmp_path_factory.mktemp("pair")
    gate = Gate()
    install = ("RUN set -e; apt-get update -q; DEBIAN_FRONTEND=noninteractive apt-get install -y -q pl-hello; "
               f"{CLEANUP}\n")
    wait = (f'RUN ["/bin/bash", "-c", "for i in $(seq 2400); do (exec 3<>/dev/tcp/127.0.0.1/{gate.port}) '
            '2>/dev/null && exit 0; sleep 0.25; done; echo the gate never opened; exit 1"]\n')
    for name, extra in (("a1", ""), ("a2", wait)):
        (tmp / name).mkdir()
        (tmp / name / "Containerfile").write_text(f"FROM {debian_base_image.reference}\n{install}{extra}")
    with start_registry(tmp / "registry") as registry:
        (tmp / "patchline.toml").write_text(f"""
[registries]
insecure = ["{registry.host}"]

[updates]
keyring = "{world.repo.keyring}"
[[updates.sources]]
url = "{world.repo.url}"
suite = "stable-security"

[build]
registry = "{registry.host}"
namespace = "pair"
jobs = 2
network = "host"  # RUN steps reach the test's apt repository on the host's loopback
logs = "{tmp / 'logs'}"

[store]
url = "sqlite:///{tmp / 'pair.db'}"

[sign]
enabled = false
keyring = "{tmp / 'keys'}"

[[images]]
name = "a1"
context = "a1"

[[images]]
name = "a2"
context = "a2"
""")
        config = load_config(tmp / "patchline.toml")
        pair = Pair(world, tmp / "patchline.toml", config, registry, gate, tmp)
        try:
            gate.open()
            with pair.store() as store:
                first = run_once(config, store)
                assert first.state == "succeeded", (first.error, step_outputs(first))
            yield pair
        finally:
            gate.close()
            forget_local_images_of(registry.host)


def _open_items(store: Store, *recipes: str) -> list[PatchItemRow]:
    """Items still exposed (no service runs these images: rebuilt is patched)."""
    return [i for i in store.patch_items() if i.recipe in recipes and i.state in ("open", "stuck")]


def test_a_run_whose_every_build_failed_ends_failed_exits_1_and_says_why(pair: Pair) -> None:
    """The registry is stopped: both pushes fail. The run is failed, `run --once` exits 1, and the console and
    the record name the registry's refusal (not only buildah's exit status)."""
    pair.world.publish_next()
    pair.gate.open()
    pair.registry.kill()
    try:
        done = subprocess.run(pair.cli(), capture_output=True, text=True, timeout=600,
                              env={**os.environ, "COLUMNS": "400"})
    finally:
        pair.restart_registry()
    with pair.store() as store:
        run = store.runs(limit=1)[0]
        assert done.returncode == 1, (done.stdout[-2000:], done.stderr[-3000:])
        assert run.state == "failed" and run.error.startswith("build: 2 of 2 image(s) failed: a1 failed: push failed")
        results = step_outputs(run)["build"]["results"]
        assert sorted((r["name"], r["status"]) for r in results) == [("a1", "failed"), ("a2", "failed")]
        assert all("connect: connection refused" in r["error"] for r in results), [r["error"] for r in results]
        assert "connect: connection refused" in run.error
        assert "connect: connection refused" in " ".join(done.stdout.split())  # the table wraps long lines
        assert "[a1] push failed:" in done.stderr and "connect: connection refused" in done.stderr
        stuck = _open_items(store, "a1", "a2")
        assert stuck and all(i.state == "stuck" and "connection refused" in i.why for i in stuck)
        assert [s.state for s in run.steps] == ["done"] * len(STEPS)  # the report still ran


def test_killed_while_two_images_built_the_resumed_run_credits_both_and_leaves_nothing_behind(pair: Pair) -> None:
    """SIGKILL (patchline and its process group, buildah with it) once a1 is recorded, while a2 is mid-build.
    The resumed run rebuilds only a2, counts a1's items as rebuilt at a1's build time, and removes the scratch
    directories and the working container the killed process left; a later run does not close any of them."""
    pair.world.publish_next()
    scratch = pair.tmp / f"tmp-{len(list(pair.tmp.glob('tmp-*')))}"
    scratch.mkdir()
    with pair.store() as store:
        before = max((b.id for b in store.builds(limit=1)), default=0)
        pair.gate.close()  # a2's build waits in its RUN step
        with (scratch / "killed.out").open("w") as out:
            killed = subprocess.Popen(pair.cli(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                      env={**os.environ, "TMPDIR": str(scratch)})
            try:
                deadline = time.monotonic() + 300
                while not [b for b in store.builds(recipe="a1", limit=1) if b.id > before]:
                    assert killed.poll() is None and time.monotonic() < deadline, (
                        scratch / "killed.out").read_text()[-3000:]
                    time.sleep(0.2)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(killed.pid, signal.SIGKILL)  # patchline, and the buildah of a2 it was running
                killed.wait()
        pair.gate.open()  # a2's RUN step, in a session of its own, ends
        left = {p for p in scratch.iterdir() if p.name != "killed.out"}
        orphans = [c for c in _buildah_containers() if _default_mounts(c).startswith(f"{scratch}/")]
        interrupted = store.runs(limit=1)[0]
        assert interrupted.state == "running" and interrupted.step == "build"
        a1 = store.builds(recipe="a1", limit=1)[0]
        assert a1.status == "built"

        resumed = subprocess.run(pair.cli(), capture_output=True, text=True, timeout=600,
                                 env={**os.environ, "TMPDIR": str(scratch)})
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        run = store.run(interrupted.id)
        assert run.state == "succeeded" and run.steps[STEPS.index(Step.BUILD)].attempts == 2
        results = step_outputs(run)["build"]["results"]
        assert [(r["name"], r["status"], r.get("attempt")) for r in results] == [("a1", "built", 1),
                                                                                ("a2", "built", None)]
        a2 = store.builds(recipe="a2", limit=1)[0]
        assert [b.status for b in store.builds(recipe="a1", limit=5) if b.finished_at > a1.finished_at] == []
        assert not _open_items(store, "a1", "a2")
        by_recipe = {i.recipe: i for i in store.patch_items() if i.state == "rebuilt"}
        assert (by_recipe["a1"].rebuilt_at, by_recipe["a1"].digest) == (a1.finished_at, a1.manifest_digest)
        assert by_recipe["a2"].digest == a2.manifest_digest
        # Nothing of the killed process is left: its scratch directories, a2's working container.
        assert "left by patchline processes that are gone" in resumed.stderr
        assert {p.name.rsplit("-", 1)[0] for p in left} == {f"patchline-build-{killed.pid}",
                                                            f"patchline-export-{killed.pid}"}
        assert not [p for p in left if p.exists()]
        assert orphans, "the kill should have left a2's working container"
        assert not {c["id"] for c in orphans} & {c["id"] for c in _buildah_containers()}

        later = run_once(pair.config, store)  # rebuilt items are not "fixed outside patchline"
        assert later.state == "succeeded", later.error
        now = {i.id: (i.state, i.rebuilt_at) for i in store.patch_items()}
        assert all(now[i.id] == ("rebuilt", i.rebuilt_at) for i in by_recipe.values())


def _buildah_containers() -> list[dict[str, str]]:
    out = subprocess.run(["buildah", "containers", "--json"], capture_output=True, text=True, check=True).stdout
    return json.loads(out) or []  # type: ignore[no-any-return]


def _default_mounts(container: dict[str, str]) -> str:
    """The default mounts file buildah recorded for the container: a patchline build's names its scratch dir."""
    return subprocess.run(["buildah", "inspect", "--type", "container", "--format", "{{.DefaultMountsFilePath}}",
                           container["id"]], capture_output=True, text=True, check=False).stdout.strip()

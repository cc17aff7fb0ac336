"""Rolling a new digest of the example fleet's web out to 3 podman replicas, against bare podman in the same run.

    .venv/bin/python bench/bench_rollout.py [--rounds 3] [--bake 2] [--interval 0.1] [--no-init] [--workdir DIR]
                                            [--json FILE]

Set-up (not timed): the debootstrap base image (``patchline demo``'s, built here if it is missing, ~35 s), a
loopback docker-registry, the example fleet's ``base`` and ``web`` built, pushed and GPG-signed by patchline
twice (the second build of web with another SOURCE_DATE_EPOCH: the same app, a second digest), patchline's
keys, lookaside store and policy.json in the work directory. The service ``bench-web``: 3 replicas of web on a
free run of 3 loopback ports, health GET /healthz every ``--interval`` s, ``--init`` in podman_args (the app's
PID 1 ignores SIGTERM: without it every replacement waits podman's 3 s stop timeout; ``--no-init`` shows that).

baseline (bare podman, the same ports and the same ``podman run`` flags as patchline's replicas): ``--rounds``
times, each of the 3 replicas replaced by hand: ``podman rm -f`` + ``podman run -d`` of the other digest, then
GET /healthz every 10 ms until it answers; before them, ``podman pull`` of that digest through the same policy.

patchline: the service is first put on digest A (all-at-once, not timed); then each round rolls A -> B with
``canary`` (``--bake`` s) and B -> A with ``rolling`` (no bake), through ``rollout_service``. Timed: the call
(new digest given -> every replica on it and healthy), and the engine's own figures (pull, start, health, bake,
record). Reported, medians over the rounds: the breakdown, patchline's overhead per replica
``(wall - pull - start - health - bake) / replicas`` (target < 200 ms), start per replica minus the bare
``rm -f`` + ``run -d``, and the wall against a bare rollout (pull + 3 x (rm -f + run -d + first /healthz answer));
then the podman calls the podman target made per rollout, by kind (its subprocess helper is wrapped to time them).

Not a test: it prints figures, targets and ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

import patchline.rollout._podman as _podman_module  # noqa: E402
from patchline._baseimage import build_debian_base, image_exists  # noqa: E402
from patchline._config import Config, load_config  # noqa: E402
from patchline.build import BuildStatus, plan_fleet, rebuild, rebuild_options  # noqa: E402
from patchline.rollout import (  # noqa: E402
    PodmanTarget,
    make_target,
    rollout_service,
    service_config,
    service_spec,
)
from patchline.rollout._podman import run_argv  # noqa: E402
from patchline.sign import policy_path  # noqa: E402
from patchline.store import open_store  # noqa: E402

DEMO_BASE = "localhost/patchline-demo/debian:bookworm"
SERVICE = "bench-web"
BARE = "bench-web-bare"  # the baseline's containers: the same flags, their own names and labels
REPLICAS = 3
TARGET_OVERHEAD_MS = 200.0


def _sh(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout


def _timed(*argv: str) -> float:
    started = time.perf_counter()
    _sh(*argv)
    return time.perf_counter() - started


def _config_text(work: Path, registry_host: str, port: int, bake: float, interval: float, init: bool) -> str:
    podman_args = '["--init"]' if init else "[]"
    return f"""
[registries]
insecure = ["{registry_host}"]

[build]
registry = "{registry_host}"
namespace = "example"
jobs = 2
update_sources = false
pending = "none"
logs = "{work / 'logs'}"
args = {{DEBIAN_BASE = "{DEMO_BASE}"}}

[store]
url = "sqlite:///{work / 'patchline.db'}"

[sign]
keyring = "{work / 'keys'}"
lookaside = "{work / 'sigstore'}"
policy = "{work / 'policy.json'}"

[[images]]
glob = "*"

[[services]]
name = "{SERVICE}"
image = "web"
replicas = {REPLICAS}
port = 8080
host_port = {port}
strategy = "canary"
bake_seconds = {bake}
max_unavailable = 1
podman_args = {podman_args}
health = {{ http = "/healthz", interval = {interval}, start_timeout = 30 }}
"""


def _build_two_digests(config: Config) -> tuple[str, str]:
    """web built, pushed and signed twice (another SOURCE_DATE_EPOCH the second time); both repository@digest."""
    assert config.store.url is not None
    with open_store(config.store.url) as store:
        fleet = plan_fleet(config, store)
        first = rebuild(fleet.plan, fleet.graph, store, rebuild_options(config), hashes=fleet.hashes)
        forced = plan_fleet(config, store, force=["web"])
        second = rebuild(forced.plan, forced.graph, store,
                         dataclasses.replace(rebuild_options(config), source_date_epoch=1_700_000_000),
                         hashes=forced.hashes)
    digests = []
    for report in (first, second):
        web = next((r for r in report.results if r.name == "web"), None)
        if web is None or web.status is not BuildStatus.BUILT or web.signed is None or web.pushed is None:
            raise SystemExit(f"web did not build and sign: {report.results}")
        digests.append(web.pushed)
    return digests[0], digests[1]


def _wait_healthy(client: httpx.Client, port: int, timeout: float = 30.0) -> float:
    """Seconds until GET /healthz on ``port`` answers 200 (a new connection every 10 ms)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        with contextlib.suppress(httpx.TransportError):
            if client.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return time.perf_counter() - started
        time.sleep(0.01)
    raise SystemExit(f"bare replica on port {port} not healthy within {timeout:g} s")


def _remove_containers(service: str) -> None:
    from tests.support.world import remove_service_containers

    remove_service_containers(service)


def bench_bare(config: Config, images: tuple[str, str], rounds: int) -> dict[str, list[float]]:
    """Replace each replica by hand with podman, ``rounds`` times: rm -f, run -d, first /healthz answer; pulls."""
    spec = dataclasses.replace(service_spec(config, service_config(config, SERVICE)), name=BARE)
    policy = policy_path(config.sign)
    pull = ("podman", "pull", "--quiet", "--signature-policy", str(policy), "--tls-verify=false")
    # The builds left the images in local storage by tag; a first pull makes them known by digest too.
    ids = {image: _sh(*pull, image).split()[-1] for image in images}
    out: dict[str, list[float]] = {"rm": [], "run": [], "rm_run": [], "health": [], "pull": []}
    with httpx.Client(trust_env=False, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        for index in range(REPLICAS):  # the replicas a rollout replaces, not timed
            _sh(*run_argv(spec, index, image=images[0], image_id=ids[images[0]], rollout_id=0))
            _wait_healthy(client, port=spec.host_port_of(index) or 0)
        for number in range(rounds):
            image = images[(number + 1) % 2]
            out["pull"].append(_timed(*pull, image))
            for index in range(REPLICAS):
                rm = _timed("podman", "rm", "--force", "--ignore", spec.container_name(index))
                run = _timed(*run_argv(spec, index, image=image, image_id=ids[image], rollout_id=0))
                out["rm"].append(rm)
                out["run"].append(run)
                out["rm_run"].append(rm + run)
                out["health"].append(_wait_healthy(client, port=spec.host_port_of(index) or 0))
    _remove_containers(BARE)
    return out


class PodmanCalls:
    """Times every podman call the podman target makes (its one subprocess helper, wrapped; nothing else changes)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self._original = _podman_module._podman

    def __enter__(self) -> PodmanCalls:
        def timed(argv: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
            started = time.perf_counter()
            proc = self._original(argv, **kwargs)
            name = " ".join(argv[1:3]) if argv[1] == "container" else argv[1]
            if name == "run" and proc.returncode != 0:
                name = "run, failed (name in use)" if "already in use" in proc.stderr else "run, failed"
            self.calls.append((name, time.perf_counter() - started))
            return proc

        _podman_module._podman = timed
        return self

    def __exit__(self, *exc: object) -> None:
        _podman_module._podman = self._original

    def take(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for name, seconds in self.calls:
            out.setdefault(name, []).append(seconds)
        self.calls = []
        return out


def bench_patchline(config: Config, images: tuple[str, str], rounds: int
                    ) -> tuple[dict[str, list[dict[str, float]]], dict[str, list[dict[str, list[float]]]]]:
    assert config.store.url is not None
    out: dict[str, list[dict[str, float]]] = {"canary": [], "rolling": []}
    calls: dict[str, list[dict[str, list[float]]]] = {"canary": [], "rolling": []}
    with open_store(config.store.url) as store, PodmanCalls() as podman:
        result = rollout_service(config, store, SERVICE, to=images[0], strategy="all-at-once")
        if not result.ok:
            raise SystemExit(f"the first rollout failed: {result.reason}")
        for number in range(rounds):
            for strategy, image in (("canary", images[1]), ("rolling", images[0])):
                podman.take()
                started = time.perf_counter()
                result = rollout_service(config, store, SERVICE, to=image, strategy=strategy)
                wall = time.perf_counter() - started
                if not result.ok:
                    raise SystemExit(f"round {number + 1}, {strategy}: {result.state}: {result.reason}")
                out[strategy].append({"wall": wall, **{k: float(v) for k, v in result.timings.items()}})
                calls[strategy].append(podman.take())
            c, r = out["canary"][-1], out["rolling"][-1]
            print(f"  round {number + 1}: canary {c['wall']:.2f} s (bake {c['bake']:.2f} s), "
                  f"rolling {r['wall']:.2f} s", flush=True)
    return out, calls


def _median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row.get(key, 0.0) for row in rows)


def summarize_calls(calls: dict[str, list[dict[str, list[float]]]]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per strategy and kind of podman call: (median count, median seconds) per rollout."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for strategy, rollouts in calls.items():
        kinds = sorted({k for r in rollouts for k in r})
        out[strategy] = {k: (statistics.median(len(r.get(k, [])) for r in rollouts),
                             statistics.median(sum(r.get(k, [])) for r in rollouts)) for k in kinds}
    return out


def print_calls(calls: dict[str, dict[str, tuple[float, float]]]) -> None:
    print("\npodman calls of the podman target per rollout (pulls excluded), median count and seconds")
    kinds = sorted({k for per in calls.values() for k in per}, key=lambda k: -calls["canary"].get(k, (0, 0))[1])
    print(f"  {'':<40} {'canary':>12} {'rolling':>12}")
    for kind in kinds:
        cells = []
        for strategy in ("canary", "rolling"):
            count, seconds = calls[strategy].get(kind, (0, 0.0))
            cells.append(f"{count:g} x, {seconds:.2f}")
        print(f"  podman {kind:<33} {cells[0]:>12} {cells[1]:>12}")


def summarize(bare: dict[str, list[float]], runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    b = {k: statistics.median(v) for k, v in bare.items()}
    bare_rollout = b["pull"] + REPLICAS * (b["rm_run"] + b["health"])
    summary: dict[str, Any] = {"bare": b, "bare_rollout_seconds": bare_rollout}
    for strategy, rows in runs.items():
        # Per round first, then the median: the parts of one rollout belong together.
        overheads = [(r["wall"] - r["pull"] - r["start"] - r["health"] - r["bake"]) / REPLICAS for r in rows]
        engine = [(r["total"] - r["start"] - r["health"] - r["bake"]) / REPLICAS for r in rows]
        summary[strategy] = {
            **{k: _median(rows, k) for k in ("wall", "pull", "start", "health", "bake", "record", "total",
                                             "overhead")},
            "overhead_seconds": statistics.median(overheads) * REPLICAS,
            "overhead_per_replica": statistics.median(overheads),
            "overhead_per_replica_in_engine": statistics.median(engine),
            "start_per_replica": _median(rows, "start") / REPLICAS,
            "health_per_replica": _median(rows, "health") / REPLICAS,
            "start_minus_bare_per_replica": _median(rows, "start") / REPLICAS - b["rm_run"],
            "wall_without_bake_over_bare": statistics.median((r["wall"] - r["bake"]) / bare_rollout for r in rows),
        }
    return summary


def print_table(s: dict[str, Any], rounds: int, bake: float, interval: float) -> None:
    c, r, b = s["canary"], s["rolling"], s["bare"]
    ms = 1000.0

    def row(name: str, canary: str, rolling: str, bare: str = "", note: str = "") -> None:
        print(f"  {name:<40} {canary:>12} {rolling:>12} {bare:>12}  {note}")

    print(f"\nrollout of {SERVICE} ({REPLICAS} replicas of web, max_unavailable 1, GET /healthz every {interval:g} s), "
          f"medians of {rounds} round(s)")
    row("", f"canary {bake:g}s", "rolling", "bare podman")
    row("digest given -> all replicas on it, s", f"{c['wall']:.2f}", f"{r['wall']:.2f}",
        f"{s['bare_rollout_seconds']:.2f}", "bare: pull + 3 x (rm -f + run -d + first 200)")
    row("  pull (signature-verified), s", f"{c['pull']:.2f}", f"{r['pull']:.2f}", f"{b['pull']:.2f}")
    row("  start (3 replicas), s", f"{c['start']:.2f}", f"{r['start']:.2f}", f"{3 * b['rm_run']:.2f}",
        "bare: 3 x (rm -f + run -d)")
    row("  health (3 replicas), s", f"{c['health']:.2f}", f"{r['health']:.2f}", f"{3 * b['health']:.2f}",
        "bare: polled every 10 ms")
    row("  bake, s", f"{c['bake']:.2f}", f"{r['bake']:.2f}", "")
    row("  patchline overhead, s", f"{c['overhead_seconds']:.3f}", f"{r['overhead_seconds']:.3f}", "",
        "wall - pull - start - health - bake")
    row("    of which store writes (engine 'record'), s", f"{c['record']:.3f}", f"{r['record']:.3f}")
    row("    engine's own 'overhead' figure, s", f"{c['overhead']:.3f}", f"{r['overhead']:.3f}", "",
        "total - pull - start - health - bake (see bench/README.md)")
    print("  per replica")
    row("  start, ms", f"{c['start_per_replica'] * ms:.0f}", f"{r['start_per_replica'] * ms:.0f}",
        f"{b['rm_run'] * ms:.0f}", f"bare rm -f {b['rm'] * ms:.0f} + run -d {b['run'] * ms:.0f}")
    row("  health (first 200), ms", f"{c['health_per_replica'] * ms:.0f}", f"{r['health_per_replica'] * ms:.0f}",
        f"{b['health'] * ms:.0f}")
    row("  overhead per replica, ms", f"{c['overhead_per_replica'] * ms:.0f}",
        f"{r['overhead_per_replica'] * ms:.0f}", "", f"target < {TARGET_OVERHEAD_MS:.0f} ms")
    row("  start - bare (rm -f + run -d), ms", f"{c['start_minus_bare_per_replica'] * ms:.0f}",
        f"{r['start_minus_bare_per_replica'] * ms:.0f}", "", f"target < {TARGET_OVERHEAD_MS:.0f} ms")
    row("  sum of the two, ms", f"{(c['overhead_per_replica'] + c['start_minus_bare_per_replica']) * ms:.0f}",
        f"{(r['overhead_per_replica'] + r['start_minus_bare_per_replica']) * ms:.0f}", "",
        "patchline's cost per replica beyond podman")
    row("wall (without bake) / bare rollout", f"{c['wall_without_bake_over_bare']:.2f}x",
        f"{r['wall_without_bake_over_bare']:.2f}x", "1.00x")


def cleanup(config: Config | None, registry_host: str | None) -> None:
    from tests.support.world import tear_down_world

    tear_down_world(config, registry_host, services=[SERVICE, BARE], repositories=["example/web", "example/base"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="A -> B canary and B -> A rolling per round")
    parser.add_argument("--bake", type=float, default=2.0, help="The canary's bake, seconds")
    parser.add_argument("--interval", type=float, default=0.1, help="Seconds between patchline's health probes")
    parser.add_argument("--no-init", action="store_true", help="Run replicas without --init (3 s stop timeout)")
    parser.add_argument("--workdir", type=Path, help="Keep the world here (default: a temporary directory, removed)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    missing = [t for t in ("podman", "buildah", "skopeo", "docker-registry", "gpg", "debootstrap")
               if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"skipped: {', '.join(missing)} not installed: run scripts/setup-host.sh")

    from tests.support.registry import free_port_run, start_registry

    if not image_exists(DEMO_BASE):
        print(f"building {DEMO_BASE} with debootstrap (once per machine, ~35 s)", flush=True)
        build_debian_base(DEMO_BASE, progress=lambda line: None if line.startswith("debootstrap: ") else print(
            f"  {line}", flush=True))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="patchline-bench-rollout-"))
    work.mkdir(parents=True, exist_ok=True)
    fleet = work / "fleet"
    shutil.rmtree(fleet, ignore_errors=True)
    for name in ("base", "web"):
        shutil.copytree(ROOT / "examples" / "fleet" / name, fleet / name)
    config: Config | None = None
    registry_host: str | None = None
    try:
        with start_registry(work / "registry") as registry:
            registry_host = registry.host
            port = free_port_run(REPLICAS)
            (fleet / "patchline.toml").write_text(
                _config_text(work, registry.host, port, args.bake, args.interval, init=not args.no_init))
            config = load_config(fleet / "patchline.toml")
            print("set-up: building, pushing and signing base and web, then web again (not timed)", flush=True)
            started = time.perf_counter()
            images = _build_two_digests(config)
            print(f"  {time.perf_counter() - started:.0f} s: A {images[0].rpartition('@')[2][:19]}, "
                  f"B {images[1].rpartition('@')[2][:19]} in {registry.host}; ports {port}-{port + REPLICAS - 1}",
                  flush=True)
            target = make_target(config)  # writes the policy and registries.d scope the bare pulls use too
            if isinstance(target, PodmanTarget):
                target.close()
            print(f"baseline: bare podman, {args.rounds} round(s) of {REPLICAS} replacements", flush=True)
            bare = bench_bare(config, images, args.rounds)
            print(f"patchline: {args.rounds} round(s) of canary A -> B and rolling B -> A", flush=True)
            runs, calls = bench_patchline(config, images, args.rounds)
            summary = summarize(bare, runs)
            call_summary = summarize_calls(calls)
            print_table(summary, args.rounds, args.bake, args.interval)
            print_calls(call_summary)
            if args.json:
                args.json.write_text(json.dumps({"summary": summary, "bare": bare, "runs": runs,
                                                 "podman_calls": call_summary,
                                                 "rounds": args.rounds, "bake": args.bake,
                                                 "interval": args.interval, "init": not args.no_init},
                                                indent=2))
    finally:
        cleanup(config, registry_host)
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

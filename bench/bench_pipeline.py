"""Time-to-patch of the demo fleet (5 images, 3 services), broken down by stage, and patchline's own share of it.

    .venv/bin/python bench/bench_pipeline.py [--workdir DIR] [--keep] [--json FILE]

Runs `patchline demo` (the library's ``demo_up``) in a fresh work directory on free loopback ports: the example
fleet built from bookworm main (missing its real security updates), pushed, signed, its services started; then
one ``patchline run --once`` patches everything. The run is the time-to-patch: from the moment patchline can see
the published updates (the run's detect step refreshes the update sources) to every workload on the fixed digest.

Stages are the run's steps; the build step is split by each image's phase timings (prepare, build = buildah with
its package downloads, rescan, tests, push, sign) and the rollout step by each rollout's timings (pull, start,
health, bake, overhead). patchline's own overhead is everything but package downloads and builds (buildah),
pushes, and container starts (image tests, pulls, starts, health checks); the canary's bake is a deliberate
wait and is reported apart. An image's rescan runs while its tests do: only what outlasts them is charged.
Builds run 2 at a time: what the wall time waited for is the critical chain of builds; the build step's wall
time divided in the proportions of the summed phase times is printed too.

Baselines in the same run: a second ``run --once`` with nothing to do (pure overhead), and the web image's
rescan and tests one after the other, then side by side (what running them together saves).

Not a test: it prints figures, the goals (time-to-patch < 5 min, overhead < 10%) and ratios.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from patchline._config import load_config  # noqa: E402
from patchline.demo import DemoOptions, demo_down, demo_up  # noqa: E402
from patchline.pipeline import run_once  # noqa: E402
from patchline.store import open_store  # noqa: E402

WORK_PHASES = ("build", "push", "tests")  # buildah (downloads included), registry transfer, containers of tests
OWN_PHASES = ("prepare", "rescan", "sign")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _exposed(timings: dict[str, float]) -> dict[str, float]:
    """An image's phases as they add to its wall time: the rescan runs while the tests do, so only the part
    of it that outlasts the tests is waited for."""
    out = {k: float(v) for k, v in timings.items()}
    if "rescan" in out and "tests" in out:
        out["rescan"] = max(0.0, out["rescan"] - out["tests"])
    return out


def _split_build(step: dict[str, Any]) -> dict[str, float]:
    sums: dict[str, float] = {}
    for result in step.get("results", []):
        for phase, seconds in _exposed(result.get("timings") or {}).items():
            sums[phase] = sums.get(phase, 0.0) + seconds
    total = sum(sums.values()) or 1.0
    wall = float(step.get("seconds", 0.0))
    return {phase: wall * seconds / total for phase, seconds in sums.items()}


def _critical_chain(step: dict[str, Any], plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The builds the step's wall time waited for: from the last to finish, back through the base each waited on."""
    results = {r["name"]: r for r in step.get("results", []) if "finished" in r}
    after = {i["name"]: i.get("after", []) for i in plan.get("items", [])}
    chain: list[dict[str, Any]] = []
    current = max(results.values(), key=lambda r: r["finished"], default=None)
    while current is not None:
        chain.append(current)
        bases = [results[b] for b in after.get(current["name"], []) if b in results]
        current = max(bases, key=lambda r: r["finished"], default=None)
    return list(reversed(chain))


def _rescan_and_tests(config: Any, repeats: int = 3) -> dict[str, float]:
    """The web image's rescan (its base's layers cached, as in a run) and its tests: in turn, then together."""
    import statistics
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    from patchline.build import load_recipes
    from patchline.catalog.list import DEFAULT_CATALOGERS
    from patchline.inventory import LayerCache, scan_image
    from patchline.oci import open_source
    from patchline.verify import run_image_tests

    recipes = {r.name: r for r in load_recipes(config)}

    def image_id(ref: str) -> str:
        return subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", ref], capture_output=True,
                              text=True, check=True).stdout.strip()

    web, base = image_id(recipes["web"].target), image_id(recipes["base"].target)
    scratch = Path(tempfile.mkdtemp(prefix="patchline-bench-verify-"))

    def primed(n: int) -> LayerCache:
        cache = LayerCache(scratch / f"cache-{n}", DEFAULT_CATALOGERS)
        with open_source(f"containers-storage:{base}") as source:
            scan_image(source, cache=cache)
        return cache

    def rescan(cache: LayerCache) -> float:
        t = time.monotonic()
        with open_source(f"containers-storage:{web}") as source:
            scan_image(source, cache=cache)
        return time.monotonic() - t

    def tests(n: int) -> float:
        t = time.monotonic()
        run_image_tests(web, recipes["web"].tests, log_dir=scratch / "logs", run_id=f"bench-{n}-{time.time_ns()}")
        return time.monotonic() - t

    walls: dict[str, list[float]] = {"in_turn": [], "together": [], "rescan": [], "tests": []}
    for n in range(repeats):
        cache = primed(2 * n)
        t = time.monotonic()
        walls["rescan"].append(rescan(cache))
        walls["tests"].append(tests(2 * n))
        walls["in_turn"].append(time.monotonic() - t)
        cache = primed(2 * n + 1)
        with ThreadPoolExecutor(max_workers=1) as pool:
            t = time.monotonic()
            running = pool.submit(tests, 2 * n + 1)
            rescan(cache)
            running.result()
            walls["together"].append(time.monotonic() - t)
    shutil.rmtree(scratch, ignore_errors=True)
    return {k: round(statistics.median(v), 3) for k, v in walls.items()}


def _split_rollout(store: Any, step: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for state in step.get("services", {}).values():
        if "rollout_id" not in state:
            continue
        for key, seconds in store.rollout(int(state["rollout_id"])).timings.items():
            if key != "total":
                out[key] = out.get(key, 0.0) + float(seconds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="Keep the demo here (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="Leave the demo running (`patchline demo down` later)")
    parser.add_argument("--json", type=Path, help="Also write the figures here")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="patchline-bench-pipeline-")) / "demo"
    from tests.support.registry import free_port_run

    options = DemoOptions(workdir=workdir, registry_port=_free_port(), port_base=free_port_run(11),
                          name_prefix="bench-")
    t0 = time.monotonic()
    try:
        report = demo_up(options)
        total = time.monotonic() - t0
        if not report.ok:
            raise SystemExit(f"the demo did not succeed: run {report.run.state} {report.run.error}")
        config = load_config(report.config_path)
        assert config.store.url is not None
        with open_store(config.store.url) as store:
            steps = {s.step: dict(s.output) for s in report.run.steps}
            assert report.run.finished_at is not None
            ttp = (report.run.finished_at - report.run.started_at).total_seconds()
            build = _split_build(steps["build"])
            rollout = _split_rollout(store, steps["rollout"])
            t = time.monotonic()
            empty = run_once(config, store)
            noop = time.monotonic() - t
        overlap = _rescan_and_tests(config)
        stage = {name: float(steps[name].get("seconds", 0.0)) for name in steps}
        # Builds run in parallel: what the wall time waited for is the critical chain of builds (base -> web ->
        # web-admin here). Its work phases are work; its own phases, and the build step's time outside the
        # chain's builds (planning, scheduling, loading keys), are patchline's.
        chain = _critical_chain(steps["build"], steps["plan"])
        chain_work = sum(float(r["timings"].get(p, 0.0)) for r in chain for p in WORK_PHASES)
        chain_own = sum(_exposed(r["timings"]).get(p, 0.0) for r in chain for p in OWN_PHASES)
        build_outside = stage["build"] - sum(float(r["seconds"]) for r in chain)
        rollout_work = sum(rollout.get(k, 0.0) for k in ("pull", "start", "health"))
        bake = rollout.get("bake", 0.0)
        work = chain_work + rollout_work
        own = ttp - work - bake
        proportional_own = ttp - (sum(build.get(p, 0.0) for p in WORK_PHASES) + rollout_work) - bake
        figures = {
            "time_to_patch_seconds": round(ttp, 2), "goal_seconds": 300,
            "stages": {k: round(v, 2) for k, v in stage.items()},
            "build_split": {k: round(v, 2) for k, v in build.items()},
            "rollout_split": {k: round(v, 2) for k, v in rollout.items()},
            "critical_chain": [r["name"] for r in chain], "chain_work_seconds": round(chain_work, 2),
            "chain_timings": {r["name"]: r["timings"] for r in chain},
            "chain_own_seconds": round(chain_own, 2), "build_step_outside_chain_seconds": round(build_outside, 2),
            "overhead_seconds_proportional": round(proportional_own, 2),
            "work_seconds": round(work, 2), "bake_seconds": round(bake, 2), "overhead_seconds": round(own, 2),
            "overhead_share": round(own / ttp, 4), "overhead_share_goal": 0.10,
            "overhead_share_without_bake": round(own / max(ttp - bake, 1e-9), 4),
            "second_run_nothing_to_do_seconds": round(noop, 2), "second_run_state": empty.state,
            "web_rescan_and_tests_median_seconds": overlap,
            "demo_total_seconds": round(total, 2),
            "demo_phases": {p.name: round(p.seconds, 2) for p in report.phases},
        }
    finally:
        if not args.keep:
            demo_down(workdir, purge=args.workdir is None)
            if args.workdir is None:
                shutil.rmtree(workdir.parent, ignore_errors=True)
    print(f"time-to-patch of the demo fleet (5 images, 3 services): {figures['time_to_patch_seconds']:.1f} s "
          f"(goal < {figures['goal_seconds']} s)")
    print("  by stage:  " + "  ".join(f"{k} {v:.1f} s" for k, v in stage.items()))
    print("  build:     " + "  ".join(f"{k} {v:.1f} s" for k, v in build.items())
          + "   (wall of the build step, in the proportions of the images' summed phases)")
    print("  rollout:   " + "  ".join(f"{k} {v:.2f} s" for k, v in rollout.items()))
    print(f"  critical chain of builds: {' -> '.join(r['name'] for r in chain)}: work {chain_work:.1f} s, "
          f"patchline's phases {chain_own:.1f} s; build step outside the chain {build_outside:.1f} s")
    for r in chain:
        print(f"    {r['name']:10} " + "  ".join(f"{k} {float(v):.2f}" for k, v in r["timings"].items()))
    print(f"  work on the critical path (buildah with downloads, pushes, container starts): "
          f"{figures['work_seconds']:.1f} s; canary bake {figures['bake_seconds']:.1f} s")
    print(f"  patchline's own: {figures['overhead_seconds']:.1f} s = {figures['overhead_share']:.1%} of the "
          f"time-to-patch ({figures['overhead_share_without_bake']:.1%} without the bake); goal < 10%")
    print(f"  (charging every image's phases in proportion instead of the critical path: "
          f"{proportional_own:.1f} s = {proportional_own / ttp:.1%})")
    print(f"baseline, a second run --once with nothing to do: {figures['second_run_nothing_to_do_seconds']:.1f} s "
          f"({figures['second_run_state']})")
    print(f"baseline, the web image's rescan {overlap['rescan']:.2f} s and tests {overlap['tests']:.2f} s: in turn "
          f"{overlap['in_turn']:.2f} s, side by side {overlap['together']:.2f} s "
          f"({overlap['together'] / overlap['in_turn']:.2f}x; median of 3)")
    print(f"the whole demo: {figures['demo_total_seconds']:.1f} s: "
          + "; ".join(f"{p.name} {p.seconds:.1f} s" for p in report.phases))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()

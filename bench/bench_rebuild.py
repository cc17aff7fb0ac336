"""Planning a large synthetic fleet, and rebuilding the example fleet, against baselines in the same run.

    .venv/bin/python bench/bench_rebuild.py [--recipes 2000] [--repeat 3] [--no-rebuild] [--workdir DIR]
                                            [--json FILE]

plan: ``--recipes`` recipe directories (a Containerfile and one context file each) in a build graph of
depth 5 (level sizes 0.5%, 2%, 7.5%, 25%, 65%; each recipe FROM a random recipe of the level above,
level 0 FROM one outside image in local storage), every one recorded in a SQLite store as built from
today's inputs. Then 1% of the contexts change and one root's outside base "moves" (its recorded digest
is an older one). Timed: ``plan_fleet`` end to end (parse every Containerfile, hash every context, graph,
store queries, resolve the outside base), median of --repeat, clean fleet and dirty fleet. Baseline:
"rebuild everything nightly" builds every recipe; the plan's builds avoided are reported against it.

rebuild: the example fleet (examples/fleet, 5 images, the longest chain base -> web -> web-admin) on a
loopback registry, FROM the debootstrap image ``patchline demo`` builds. Each round forces every image
with a new SOURCE_DATE_EPOCH (so each build is a real new image): once with ``--jobs 1`` (the serial
baseline; its per-image times give the critical path, the longest chain of builds measured one by one)
and once with ``--jobs`` = cores. Reported: parallel wall / critical path (target <= 1.3) and serial wall
/ parallel wall.

Not a test: it prints figures, targets and ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from patchline._config import Config, load_config  # noqa: E402
from patchline.build import (  # noqa: E402
    BuildStatus,
    build_graph,
    input_hash,
    load_recipes,
    plan_fleet,
    rebuild,
    rebuild_options,
)
from patchline.store import open_store  # noqa: E402

DEMO_BASE = "localhost/patchline-demo/debian:bookworm"
LEVELS = (0.005, 0.02, 0.075, 0.25, 0.65)


def _synthetic_fleet(root: Path, recipes: int, seed: int) -> tuple[Config, list[list[str]]]:
    rng = random.Random(seed)
    sizes = [max(1, round(recipes * f)) for f in LEVELS]
    sizes[-1] = recipes - sum(sizes[:-1])
    levels: list[list[str]] = []
    for depth, size in enumerate(sizes):
        names = [f"l{depth}-{i:05d}" for i in range(size)]
        for name in names:
            d = root / name
            d.mkdir(parents=True)
            if depth == 0:
                base = f"ARG DEBIAN_BASE={DEMO_BASE}\nFROM ${{DEBIAN_BASE}}\n"
            else:
                parent = rng.choice(levels[-1])
                base = f"ARG PATCHLINE_REGISTRY\nFROM ${{PATCHLINE_REGISTRY}}/bench/{parent}:latest AS build\n"
            (d / "Containerfile").write_text(
                f"# synthetic recipe {name}\n{base}ARG VERSION=1\nCOPY app.txt /srv/{name}.txt\n"
                f"RUN set -e; \\\n    echo {name} > /etc/{name}; \\\n    true\nLABEL name={name}\n")
            (d / "app.txt").write_text(f"{name} {rng.random()}\n" * 20)
        levels.append(names)
    (root / "patchline.toml").write_text('[build]\nregistry = "127.0.0.1:5999"\nnamespace = "bench"\n'
                                         f'[store]\nurl = "sqlite:///{root / "bench.db"}"\n[[images]]\nglob = "l*"\n')
    return load_config(root / "patchline.toml"), levels


def bench_plan(workdir: Path, recipes: int, repeat: int, seed: int) -> dict[str, Any]:
    import datetime as dt

    from patchline.build._buildah import local_image_id

    if local_image_id(DEMO_BASE) is None:
        return {"skipped": f"{DEMO_BASE} is not in local storage: run `patchline demo` once"}
    root = workdir / "plan"
    shutil.rmtree(root, ignore_errors=True)
    config, levels = _synthetic_fleet(root, recipes, seed)
    fleet = load_recipes(config)
    graph = build_graph(fleet)
    depth = len(levels)
    outside = str(local_image_id(DEMO_BASE))
    now = dt.datetime.now(dt.UTC)
    with open_store(config.store.url) as store:
        moved_root = levels[0][0]
        for name in graph.order:  # record every recipe as built from today's inputs
            recipe = graph.recipes[name]
            bases = {ref: outside if name != moved_root else "sha256:" + "0" * 64 for ref in graph.external[name]}
            bases.update({ref: fake_digest("manifest", base) for ref, base in graph.local[name]})
            store.record_build(run_id="seed", recipe=name, kind="recipe", status="built", target=recipe.target,
                               input_hash=input_hash(recipe), bases=bases,
                               config_digest=fake_digest("config", name),
                               manifest_digest=fake_digest("manifest", name),
                               started_at=now, finished_at=now)
        # Local bases were recorded with the digest each base's current build has, so only the moved root's
        # subtree is dirty; then 1% of the contexts change.
        clean_times, dirty_times = [], []
        first = plan_fleet(config, store)
        for _ in range(repeat):
            started = time.perf_counter()
            plan_fleet(config, store)
            clean_times.append(time.perf_counter() - started)
        rng = random.Random(seed + 1)
        changed = rng.sample(sorted(graph.recipes), max(1, recipes // 100))
        for name in changed:
            (root / name / "app.txt").write_text("changed\n")
        for _ in range(repeat):
            started = time.perf_counter()
            dirty = plan_fleet(config, store)
            dirty_times.append(time.perf_counter() - started)
    avoided = recipes - len(dirty.plan.items)
    return {
        "recipes": recipes, "depth": depth, "level_sizes": [len(x) for x in levels],
        "moved_root_subtree": len(first.plan.items), "contexts_changed": len(changed),
        "plan_items": len(dirty.plan.items), "waves": len(dirty.plan.waves),
        "plan_seconds_clean_median": statistics.median(clean_times),
        "plan_seconds_dirty_median": statistics.median(dirty_times),
        "planner_only_seconds": dirty.plan.seconds,
        "nightly_builds": recipes, "builds_avoided": avoided, "builds_avoided_ratio": avoided / recipes,
        "target_seconds": 1.0,
    }


def fake_digest(kind: str, name: str) -> str:
    return "sha256:" + hashlib.sha256(f"{kind} {name}".encode()).hexdigest()


def _round(config_text: str, fleet_dir: Path, epoch: int, jobs: int) -> dict[str, Any]:
    (fleet_dir / "patchline.toml").write_text(config_text.replace("@EPOCH@", str(epoch)))
    config = load_config(fleet_dir / "patchline.toml")
    with open_store(config.store.url) as store:
        fleet = plan_fleet(config, store, force=["base", "web", "tools", "worker", "web-admin"])
        started = time.perf_counter()
        report = rebuild(fleet.plan, fleet.graph, store, rebuild_options(config, jobs=jobs), hashes=fleet.hashes)
        wall = time.perf_counter() - started
    bad = [(r.name, r.status.value, r.error) for r in report.results if r.status is not BuildStatus.BUILT]
    if bad:
        raise SystemExit(f"a benchmark build did not build: {bad}")
    return {"wall": wall, "per_image": {r.name: r.seconds for r in report.results}, "graph": fleet.graph}


def bench_rebuild(workdir: Path, repeat: int) -> dict[str, Any]:
    from tests.support.registry import start_registry

    from patchline.build._buildah import local_image_id

    if local_image_id(DEMO_BASE) is None:
        return {"skipped": f"{DEMO_BASE} is not in local storage: run `patchline demo` once"}
    jobs = os.cpu_count() or 1
    root = workdir / "rebuild"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    fleet_dir = root / "fleet"
    shutil.copytree(ROOT / "examples" / "fleet", fleet_dir)
    with start_registry(root / "registry") as registry:
        config_text = (f'[registries]\ninsecure = ["{registry.host}"]\n[build]\nregistry = "{registry.host}"\n'
                       f'namespace = "example"\nsource_date_epoch = @EPOCH@\nlogs = "{root / "logs"}"\n'
                       f'[store]\nurl = "sqlite:///{root / "bench.db"}"\n[[images]]\nglob = "*"\n')
        print("  warm-up build of the example fleet (pulls packages into the mirror's caches)", flush=True)
        _round(config_text, fleet_dir, 1_000_000, jobs)
        serial_walls, parallel_walls, critical_paths = [], [], []
        epoch = 1_000_001
        for i in range(repeat):
            serial = _round(config_text, fleet_dir, epoch, 1)
            epoch += 1
            parallel = _round(config_text, fleet_dir, epoch, jobs)
            epoch += 1
            graph = serial["graph"]
            chain: dict[str, float] = {}
            for name in graph.order:
                chain[name] = serial["per_image"][name] + max((chain[b] for _, b in graph.local[name]), default=0)
            critical = max(chain.values())
            serial_walls.append(serial["wall"])
            parallel_walls.append(parallel["wall"])
            critical_paths.append(critical)
            print(f"  round {i + 1}: serial {serial['wall']:.1f} s, parallel ({jobs} jobs) {parallel['wall']:.1f} s, "
                  f"critical path {critical:.1f} s ({max(chain, key=chain.__getitem__)})", flush=True)
        subprocess_cleanup(registry.host)
    return {
        "jobs": jobs, "rounds": repeat,
        "serial_wall_median": statistics.median(serial_walls),
        "parallel_wall_median": statistics.median(parallel_walls),
        "critical_path_median": statistics.median(critical_paths),
        "parallel_over_critical_path": statistics.median(p / c for p, c in zip(parallel_walls, critical_paths,
                                                                                 strict=True)),
        "serial_over_parallel": statistics.median(s / p for s, p in zip(serial_walls, parallel_walls, strict=True)),
        "target_parallel_over_critical_path": 1.3,
    }


def subprocess_cleanup(host: str) -> None:
    from tests.support.registry import forget_local_images_of

    forget_local_images_of(host)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--no-rebuild", action="store_true", help="Only the planning benchmark")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="patchline-bench-rebuild-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    print(f"plan: {args.recipes} recipes, depth 5", flush=True)
    results["plan"] = plan = bench_plan(workdir, args.recipes, args.repeat, args.seed)
    if "skipped" in plan:
        print(f"  skipped: {plan['skipped']}")
    else:
        print(f"  clean fleet: {plan['plan_seconds_clean_median']:.3f} s; dirty fleet ({plan['contexts_changed']} "
              f"contexts changed, one root's base moved): {plan['plan_seconds_dirty_median']:.3f} s "
              f"(target < {plan['target_seconds']} s); planner alone {plan['planner_only_seconds'] * 1000:.0f} ms")
        print(f"  plan: {plan['plan_items']} builds in {plan['waves']} waves; rebuild-everything-nightly: "
              f"{plan['nightly_builds']}; avoided {plan['builds_avoided']} ({plan['builds_avoided_ratio']:.1%})")
    if not args.no_rebuild:
        print(f"rebuild: the example fleet, {args.repeat} round(s)", flush=True)
        results["rebuild"] = rb = bench_rebuild(workdir, args.repeat)
        if "skipped" in rb:
            print(f"  skipped: {rb['skipped']}")
        else:
            print(f"  serial {rb['serial_wall_median']:.1f} s, parallel {rb['parallel_wall_median']:.1f} s, "
                  f"critical path {rb['critical_path_median']:.1f} s: parallel / critical path "
                  f"{rb['parallel_over_critical_path']:.2f} (target <= 1.3), serial / parallel "
                  f"{rb['serial_over_parallel']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()

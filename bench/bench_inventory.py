"""Inventory speed: cold and warm scans against their floors, measured in one run.

    .venv/bin/python bench/bench_inventory.py [--repeat N] [--image REF]

Measured on the inventory test image (tests/support/recipes/inventory, built
and cached by tests/support/images.py unless --image names another image in
podman storage), exported once to an OCI layout with gzip layers:

- floor: ``tar -tzf`` over the same layer blobs, one after another. That is the
  cost of merely decompressing and reading the tar stream;
- cold: ``scan_image`` with an empty layer cache (the issue's target: within
  1.5x of the floor), layers walked in parallel, and on one core (``jobs=1``);
- warm: ``scan_image`` with every layer cached (target: under 5% of cold);
- cli-warm: the whole ``patchline sbom --json`` process, warm (what a user waits for);
- naive: what a team does today, ``podman run --rm IMAGE dpkg-query -W`` plus
  ``pip list`` and ``npm ls --all`` in containers of the image.

Each figure is the median of --repeat runs. Not a test: it prints ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from patchline.catalog.list import DEFAULT_CATALOGERS  # noqa: E402
from patchline.inventory import LayerCache, scan_image  # noqa: E402
from patchline.oci._layout import LayoutSource  # noqa: E402


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, list[float]]:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), runs


def layer_blobs(layout: Path) -> list[Path]:
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    return [layout / "blobs/sha256" / layer["digest"][7:] for layer in manifest["layers"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--image", help="an image in podman storage (default: the inventory test image)")
    parser.add_argument("--skip-naive", action="store_true", help="do not run containers for the naive baseline")
    args = parser.parse_args()

    if args.image:
        image = args.image
    else:
        from tests.support.images import build_debian_base, build_inventory

        image = build_inventory(build_debian_base()).reference
    work = Path(tempfile.mkdtemp(prefix="patchline-bench-"))
    try:
        layout = work / "layout"
        subprocess.run(["skopeo", "copy", "--quiet", f"containers-storage:{image}", f"oci:{layout}:bench"],
                       check=True, capture_output=True)
        blobs = layer_blobs(layout)
        size = sum(b.stat().st_size for b in blobs)
        print(f"image {image}: {len(blobs)} layers, {size / 1e6:.1f} MB compressed (gzip)")

        def floor() -> None:
            for blob in blobs:
                subprocess.run(["tar", "-tzf", str(blob)], check=True, stdout=subprocess.DEVNULL)

        def cold() -> None:
            cache_dir = Path(tempfile.mkdtemp(dir=work))
            with LayoutSource(layout, name="bench") as source:
                scan_image(source, cache=LayerCache(cache_dir, DEFAULT_CATALOGERS))
            shutil.rmtree(cache_dir)

        def cold_serial() -> None:
            cache_dir = Path(tempfile.mkdtemp(dir=work))
            with LayoutSource(layout, name="bench") as source:
                scan_image(source, cache=LayerCache(cache_dir, DEFAULT_CATALOGERS), jobs=1)
            shutil.rmtree(cache_dir)

        warm_cache = LayerCache(work / "warm-cache", DEFAULT_CATALOGERS)
        with LayoutSource(layout, name="bench") as source:
            packages = len(scan_image(source, cache=warm_cache).packages)

        def warm() -> None:
            with LayoutSource(layout, name="bench") as source:
                scan_image(source, cache=warm_cache)

        env = {**os.environ, "PATCHLINE_CACHE_DIR": str(work / "warm-cache")}
        patchline = str(Path(sys.executable).with_name("patchline"))

        def cli_warm() -> None:
            subprocess.run([patchline, "sbom", f"oci:{layout}:bench", "--json"], check=True, env=env,
                           stdout=subprocess.DEVNULL)

        def naive() -> None:
            for argv in (["dpkg-query", "-W"], ["/opt/app/bin/pip", "list"],
                         ["sh", "-c", "cd /srv/web && npm ls --all"]):
                subprocess.run(["podman", "run", "--rm", "--network", "none", image, *argv],
                               check=True, capture_output=True)

        results = {"floor (tar -tzf)": timed(floor, args.repeat), "cold scan": timed(cold, args.repeat),
                   "cold scan, 1 job": timed(cold_serial, args.repeat),
                   "warm scan": timed(warm, max(args.repeat, 5)), "cli warm (process)": timed(cli_warm, args.repeat)}
        if not args.skip_naive:
            results["naive (podman run x3)"] = timed(naive, args.repeat)
        print(f"{packages} packages; median of {args.repeat} runs (warm: {max(args.repeat, 5)})\n")
        for name, (median, runs) in results.items():
            print(f"  {name:24} {median * 1000:9.1f} ms   runs: {', '.join(f'{r * 1000:.0f}' for r in runs)}")
        floor_t, cold_t, warm_t = (results[k][0] for k in ("floor (tar -tzf)", "cold scan", "warm scan"))
        print()
        print(f"  cold / floor      = {cold_t / floor_t:.2f}x   (target <= 1.5x; one core: "
              f"{results['cold scan, 1 job'][0] / floor_t:.2f}x)")
        print(f"  warm / cold       = {warm_t / cold_t * 100:.1f}%   (target < 5%)")
        if "naive (podman run x3)" in results:
            naive_t = results["naive (podman run x3)"][0]
            print(f"  naive / cold      = {naive_t / cold_t:.1f}x   naive / cli warm = "
                  f"{naive_t / results['cli warm (process)'][0]:.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

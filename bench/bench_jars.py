"""A large image of Java archives: the cold scan against the floor of decompressing its layers.

    .venv/bin/python bench/bench_jars.py [--megabytes 500] [--repeat 3]

Writes an OCI layout (gzip layers) of about --megabytes of jars: plain jars with
``pom.properties``, jars known only by their manifest, and fat jars carrying
jars in ``BOOT-INF/lib`` (nested archives the Java cataloger opens in memory).
Class entries are random bytes, stored, so the layers are as large as the jars.

- floor: ``tar -tzf`` over the same layer blobs, one after another;
- cold: ``scan_image`` with every default cataloger and an empty layer cache
  (issue 16's target: within 2x of the floor), and on one core (``jobs=1``).

Each figure is the median of --repeat runs. Not a test: it prints ratios.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from patchline.catalog.list import DEFAULT_CATALOGERS  # noqa: E402
from patchline.inventory import LayerCache, scan_image  # noqa: E402
from patchline.oci._layout import LayoutSource  # noqa: E402

_CLASS_BYTES = 24 << 10


def jar(rng: random.Random, group: str, artifact: str, version: str, *, classes: int, pom: bool = True,
        nested: list[bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", f"Manifest-Version: 1.0\nImplementation-Title: {artifact}\n"
                                            f"Implementation-Version: {version}\n")
        if pom:
            zf.writestr(f"META-INF/maven/{group}/{artifact}/pom.properties",
                        f"groupId={group}\nartifactId={artifact}\nversion={version}\n")
        for i in range(classes):
            zf.writestr(f"{group.replace('.', '/')}/{artifact}/C{i}.class", rng.randbytes(_CLASS_BYTES))
        for i, inner in enumerate(nested or []):
            zf.writestr(f"BOOT-INF/lib/lib{i}.jar", inner)
    return out.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_layout(root: Path, megabytes: int, layers: int, seed: int) -> int:
    """An OCI layout of jars; returns how many archives (nested ones included) it holds."""
    rng = random.Random(seed)
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    per_layer = megabytes * (1 << 20) // layers
    descriptors, diff_ids, archives = [], [], 0
    for n in range(layers):
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            written, k = 0, 0
            while written < per_layer:
                k += 1
                name = f"lib{n}-{k}"
                if k % 10 == 0:  # a fat jar: five libraries inside
                    inner = [jar(rng, f"org.example.dep{j}", f"dep{j}", f"1.{j}.{k}", classes=4) for j in range(5)]
                    data = jar(rng, "com.example.app", name, "2.0.0", classes=8, nested=inner)
                    archives += 6
                else:
                    data = jar(rng, f"org.example.g{k % 7}", name, f"1.{k % 13}.{k}", classes=40, pom=k % 3 != 0)
                    archives += 1
                info = tarfile.TarInfo(f"opt/app{n}/lib/{name}.jar")
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
                written += len(data)
        uncompressed = raw.getvalue()
        blob = gzip.compress(uncompressed, compresslevel=1, mtime=0)
        (blobs / sha256(blob)).write_bytes(blob)
        descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": f"sha256:{sha256(blob)}", "size": len(blob)})
        diff_ids.append(f"sha256:{sha256(uncompressed)}")
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    (blobs / sha256(config)).write_bytes(config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": f"sha256:{sha256(config)}", "size": len(config)},
                           "layers": descriptors}).encode()
    (blobs / sha256(manifest)).write_bytes(manifest)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{sha256(manifest)}",
         "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}))
    return archives


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, list[float]]:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=500)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix=f"patchline-bench-jars-{os.getpid()}-"))
    try:
        layout = work / "layout"
        started = time.perf_counter()
        archives = write_layout(layout, args.megabytes, args.layers, args.seed)
        blobs = [layout / "blobs/sha256" / d["digest"][7:] for d in json.loads(
            (layout / "blobs/sha256" / json.loads((layout / "index.json").read_text())["manifests"][0]["digest"][7:])
            .read_text())["layers"]]
        size = sum(b.stat().st_size for b in blobs)
        print(f"layout: {len(blobs)} layers, {size / 1e6:.0f} MB compressed, {archives} archives "
              f"(written in {time.perf_counter() - started:.0f} s)")

        def floor() -> None:
            for blob in blobs:
                subprocess.run(["tar", "-tzf", str(blob)], check=True, stdout=subprocess.DEVNULL)

        found: list[int] = []

        def cold(jobs: int | None) -> Callable[[], None]:
            def run() -> None:
                cache_dir = Path(tempfile.mkdtemp(dir=work))
                with LayoutSource(layout, name="bench") as source:
                    inventory = scan_image(source, cache=LayerCache(cache_dir, DEFAULT_CATALOGERS),
                                           **({"jobs": jobs} if jobs else {}))
                found.append(sum(1 for p in inventory.packages if p.ecosystem.value == "maven"))
                shutil.rmtree(cache_dir)
            return run

        results = {"floor (tar -tzf)": timed(floor, args.repeat), "cold scan": timed(cold(None), args.repeat),
                   "cold scan, 1 job": timed(cold(1), args.repeat)}
        print(f"{found[-1]} Maven packages found; median of {args.repeat} runs\n")
        for name, (median, runs) in results.items():
            print(f"  {name:20} {median:8.2f} s   runs: {', '.join(f'{r:.2f}' for r in runs)}")
        floor_t = results["floor (tar -tzf)"][0]
        print(f"\n  cold / floor = {results['cold scan'][0] / floor_t:.2f}x   (target <= 2x; one core: "
              f"{results['cold scan, 1 job'][0] / floor_t:.2f}x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

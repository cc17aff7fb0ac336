"""Assessment speed, against apt itself, measured in one run.

    .venv/bin/python bench/bench_assess.py [--repeat N]

- match: the packages of the inventory test image (about 500: debs, pip, npm)
  against the full PyPI OSV snapshot (../shared/data/osv/pypi) plus the Debian
  bookworm and bookworm-security indexes, warm (feeds and indexes cached):
  index lookups, OSV range evaluation and apt's upgrade plan (target < 200 ms);
- match-500-pypi: the worst case for the feed, 500 PyPI packages that all have
  advisories (names and versions taken from the snapshot itself);
- parse-main: loading the bookworm main Packages index (about 60,000 stanzas)
  warm from the cache (target < 2 s), and cold (download + verify + parse);
- apt: ``apt-get update`` + ``apt-get -s upgrade`` in a container of the image,
  with the same suites: what the same answer costs the usual way.

Each figure is the median of --repeat runs. Not a test: it prints ratios.
"""

from __future__ import annotations

import argparse
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

from patchline._hostapt import host_debian_mirror  # noqa: E402
from patchline.advisories import AdvisoryIndex, OsvFeed, match_packages  # noqa: E402
from patchline.assess import PackageRef, from_inventory  # noqa: E402
from patchline.inventory import scan_image  # noqa: E402
from patchline.oci import open_source  # noqa: E402
from patchline.updates import AptSuite, FetchOptions, load_sources, plan_upgrade  # noqa: E402

SNAPSHOT = ROOT.parent / "shared" / "data" / "osv" / "pypi"


def timed(fn: Callable[[], object], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from tests.support.images import build_debian_base, build_inventory

    base = build_debian_base()
    image = build_inventory(base)
    with open_source(image.storage_ref) as source:
        inventory = scan_image(source)
    scan = from_inventory(inventory)
    host = host_debian_mirror("bookworm")
    assert host.security, "the host has no Debian security mirror"
    suites = [AptSuite(host.security, "bookworm-security", ("main",)),
              AptSuite(host.mirror, "bookworm", ("main",))]
    status = inventory.system_file("/var/lib/dpkg/status")
    work = Path(tempfile.mkdtemp(prefix="patchline-bench-"))
    try:
        cold_cache = work / "apt-cold"
        start = time.perf_counter()
        load_sources(suites, FetchOptions(cache_dir=cold_cache))
        parse_cold = time.perf_counter() - start
        loaded = load_sources(suites, FetchOptions(cache_dir=cold_cache))
        stanzas = sum(len(i.packages) for i in loaded.indexes)
        parse_warm = timed(lambda: load_sources([suites[1]], FetchOptions(cache_dir=cold_cache)), args.repeat)

        feed = OsvFeed(SNAPSHOT, cache_dir=work / "osv")
        AdvisoryIndex.build([feed])  # fills the feed's parsed cache
        index = AdvisoryIndex.build([OsvFeed(SNAPSHOT, cache_dir=work / "osv")])

        def match() -> None:
            warm_index = AdvisoryIndex.build_lazy([OsvFeed(SNAPSHOT, cache_dir=work / "osv")])
            match_packages(scan.packages, warm_index, distro=scan.distro)
            plan_upgrade(list(inventory.packages), loaded.indexes, dpkg_status=status)

        def match_only() -> None:
            match_packages(scan.packages, index, distro=scan.distro)
            plan_upgrade(list(inventory.packages), loaded.indexes, dpkg_status=status)

        from patchline.advisories import Advisory

        pypi: list[PackageRef] = []
        for advisory in OsvFeed(SNAPSHOT, cache_dir=work / "osv").records():
            if not isinstance(advisory, Advisory):
                continue
            for affected in advisory.affected:
                if affected.versions and len(pypi) < 500:
                    v = affected.versions[0]
                    pypi.append(PackageRef("pypi", affected.name, v, f"pkg:pypi/{affected.name}@{v}"))
        findings_500 = len(match_packages(pypi, index, distro=None)[0])

        def match_pypi() -> None:
            match_packages(pypi, index, distro=None)

        sources = "\n".join([f"deb {host.mirror} bookworm main", f"deb {host.mirror} bookworm-updates main",
                             f"deb {host.security} bookworm-security main"])
        script = f"printf '%s\\n' '{sources}' > /etc/apt/sources.list && apt-get update -qq && apt-get -s upgrade"

        def apt() -> None:
            subprocess.run(["podman", "run", "--rm", "--network", "host", image.reference, "sh", "-c", script],
                           check=True, capture_output=True)

        results = {
            "match (warm feed load + index + match + apt plan)": timed(match, args.repeat),
            "match (index already built)": timed(match_only, args.repeat),
            "match 500 pypi (worst case)": timed(match_pypi, args.repeat),
            "parse bookworm main, warm": parse_warm,
            "parse bookworm + security, cold (download)": parse_cold,
            "apt-get update + -s upgrade in a container": timed(apt, max(1, args.repeat // 2)),
        }
        print(f"image {image.reference}: {len(scan.packages)} packages; {stanzas} index stanzas; "
              f"{index.advisories} advisories; worst case: {len(pypi)} packages, {findings_500} findings\n")
        for name, seconds in results.items():
            print(f"  {name:48} {seconds * 1000:9.1f} ms")
        apt_t = results["apt-get update + -s upgrade in a container"]
        print()
        match_t = results["match (warm feed load + index + match + apt plan)"]
        print(f"  match / target 200 ms          = {match_t / 0.2:.2f}")
        print(f"  parse main warm / target 2 s   = {parse_warm / 2:.2f}")
        print(f"  apt in a container / patchline warm (parse + match) = "
              f"{apt_t / (parse_warm + results['match (warm feed load + index + match + apt plan)']):.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Fleet store at scale (SQLite and PostgreSQL), against naive baselines measured in the same run.

    .venv/bin/python bench/bench_store.py [--images 10000] [--packages 300] [--backend sqlite,postgresql]
                                          [--workdir DIR] [--json FILE] [--quick] [--seed N]

A synthetic Debian 12 fleet is generated deterministically (``random.Random(seed)``):
a universe of ~3,000 source packages with 1-3 binary packages and 2-4 versions each
(``1.2.3-1``, ``1.2.3-1+deb12u1``, ...), 3 generations of a debian root image, 20 base
image families per generation (~120 packages, layers shared by every image built on
them), and ``--images`` app images (5 tags per repository, 2-4 app layers of their own)
with exactly ``--packages`` packages each. Roots and bases are recorded too, so base
detection has work; they add a few thousand package rows.

- ingest: ``record_image(..., sbom=False)`` for every image (no SBOM document: the
  figure is the package rows), images/s and package rows/s (side figure);
- where: ``Store.where`` warm, median and p95 of --repeat runs, for a rare package
  (~1% of images), a common one (~50%) and the common one with ``version_below``.
  Baseline: the same question answered without a store, by scanning the generated
  inventories already in memory (a lower bound of the no-store cost: reading
  10,000 SBOM files first would cost far more);
- refresh: a feed directory of 5,000 OSV records (Debian:12, fixed at one of the
  package's versions or unfixed), ``refresh_feed`` on a store with no advisories
  (target < 60 s; it is also the baseline: a full recomputation), then with no change,
  then after one new advisory naming a common package (three times, a different one
  each; target < 1 s);
- size: SQLite file (+ -wal after ``wal_checkpoint(TRUNCATE)``), PostgreSQL
  ``pg_database_size``; ``image_packages`` with the interned names and versions vs. a
  denormalized copy (name and version strings on every row, same indexes) built in
  the same database from a join, measured, then dropped.

PostgreSQL is a private cluster started like the test suite's (tests/support/postgres.py,
fsync off); when it cannot start, the reason is printed and only SQLite runs.
Not a test: it prints figures, targets and ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from patchline._model import Distro, Ecosystem, ImageInfo, Inventory, Layer, Package, Purl  # noqa: E402
from patchline.advisories import OsvFeed  # noqa: E402
from patchline.store import Store, open_store  # noqa: E402
from patchline.versions import scheme_for  # noqa: E402

DISTRO = Distro(id="debian", version_id="12", version_codename="bookworm",
                pretty_name="Debian GNU/Linux 12 (bookworm)")
SOURCES = 3000
GENERATIONS = 3
FAMILIES = 20
TAGS_PER_REPO = 5
CORE_BINARIES = 80  # in every image (the debian root layer)
BASE_BINARIES = 120  # root + family layer
ADVISORIES = 5000
SEVERITIES = ("low", "medium", "high", "critical")
SYLLABLES = tuple(c + v for c in "bcdfgklmnprstvz" for v in "aeiou")
TARGET_WHERE_MS = 50
TARGET_ONE_S = 1.0
TARGET_FULL_S = 60.0


def sha(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Source:
    name: str
    binaries: tuple[str, ...]
    versions: tuple[str, ...]  # ascending, dpkg order


@dataclass
class Fleet:
    sources: list[Source]  # by popularity rank
    inventories: list[Inventory]  # roots, bases, then apps
    refs: list[tuple[str, str, str]]
    apps: int
    rows: int


# -- the synthetic fleet ---------------------------------------------------------------------------

def make_sources(rng: random.Random) -> list[Source]:
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < SOURCES:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3))))
        if rng.random() < 0.3:
            name += str(rng.randint(2, 9))
        if name not in seen and not name.startswith("lib"):
            seen.add(name)
            names.append(name)
    dpkg = scheme_for("deb")
    out = []
    for name in names:
        count = rng.choices((1, 2, 3), weights=(40, 35, 25))[0]
        binaries = (name, f"lib{name}{rng.randint(0, 9)}", f"{name}-common")[:count]
        major, minor, patch = rng.randint(0, 9), rng.randint(0, 30), rng.randint(0, 12)
        up, nxt = f"{major}.{minor}.{patch}", f"{major}.{minor}.{patch + 1}"
        candidates = (f"{up}-1", f"{up}-1+deb12u1", f"{up}-1+deb12u2", f"{nxt}-1~deb12u1")
        versions = candidates[:rng.choice((2, 3, 3, 4))]
        assert all(dpkg.compare(a, b) < 0 for a, b in itertools.pairwise(versions))
        out.append(Source(name, binaries, versions))
    every = [b for s in out for b in s.binaries]
    assert len(every) == len(set(every)), "binary package names collide"
    return out


def weighted_order(rng: random.Random, items: list[Source], offset: float) -> list[Source]:
    """Items in a random order biased to their rank (Efraimidis-Spirakis keys, weight 1/(rank+offset))."""
    keyed = [(rng.random() ** (rank + offset), s) for rank, s in enumerate(items)]
    keyed.sort(key=lambda k: -k[0])
    return [s for _, s in keyed]


class Builder:
    """Package objects shared between inventories: a fleet repeats the same few thousand (name, version)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, str, int, int], Package] = {}

    def package(self, src: Source, binary: str, version: str, introduced: int, changed: int) -> Package:
        key = (src.name, binary, version, introduced, changed)
        p = self._cache.get(key)
        if p is None:
            p = Package(Ecosystem.DEB, binary, version,
                        Purl(f"pkg:deb/debian/{binary}@{version}?arch=amd64&distro=debian-12"),
                        introduced, changed, ("/var/lib/dpkg/status",), source_name=src.name,
                        source_version=version, arch="amd64", cataloger="dpkg")
            self._cache[key] = p
        return p


def generate(images: int, packages: int, seed: int) -> Fleet:
    rng = random.Random(seed)
    sources = make_sources(rng)
    core: list[Source] = []
    for s in sources:
        if sum(len(c.binaries) for c in core) >= CORE_BINARIES:
            break
        core.append(s)
    pool = sources[len(core):len(core) + 400]  # base families draw from here
    rest = sources[len(core):]  # apps draw from everything but the core
    build = Builder()
    inventories: list[Inventory] = []
    refs: list[tuple[str, str, str]] = []
    created0 = 1_700_000_000

    def inventory(ident: str, layers: list[tuple[str, int]], pkgs: list[Package], ref: tuple[str, str],
                  age_days: int) -> None:
        manifest = sha(f"manifest:{ident}")
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created0 + age_days * 86400))
        info = ImageInfo(reference=f"{ref[0]}:{ref[1]}", manifest_digest=manifest,  # type: ignore[arg-type]
                         config_digest=sha(f"config:{ident}"), created=created)  # type: ignore[arg-type]
        lay = tuple(Layer(i, d, sha(f"blob:{d}"), "application/vnd.oci.image.layer.v1.tar+gzip",  # type: ignore[arg-type]
                          size, f"RUN step {i}") for i, (d, size) in enumerate(layers))
        inventories.append(Inventory(image=info, layers=lay, distro=DISTRO, packages=tuple(pkgs)))
        refs.append((ref[0], ref[1], manifest))

    # roots: the debian layer of each generation, with the core packages
    core_idx: dict[tuple[int, str], int] = {}
    root_layer = {}
    for g in range(GENERATIONS):
        for s in core:
            core_idx[(g, s.name)] = min(len(s.versions) - 1, max(0, g - rng.choice((0, 0, 1))))
        root_layer[g] = (sha(f"layer:root:{g}"), rng.randint(20, 30) * 1_000_000)
        pkgs = [build.package(s, b, s.versions[core_idx[(g, s.name)]], 0, 0) for s in core for b in s.binaries]
        inventory(f"root:{g}", [root_layer[g]], pkgs, ("registry.example/debian", f"bookworm-{g}"), g * 60)

    # base families: root layer + one family layer (~120 packages)
    family_sources = []
    for _f in range(FAMILIES):
        chosen: list[Source] = []
        want = BASE_BINARIES - sum(len(s.binaries) for s in core)
        for s in weighted_order(rng, pool, 1.0):
            if sum(len(c.binaries) for c in chosen) >= want:
                break
            chosen.append(s)
        family_sources.append(chosen)
    base: dict[tuple[int, int], tuple[list[tuple[str, int]], list[tuple[Source, str, str, int]]]] = {}
    for g in range(GENERATIONS):
        for f, chosen in enumerate(family_sources):
            layers = [root_layer[g], (sha(f"layer:family:{f}:{g}"), rng.randint(5, 80) * 1_000_000)]
            entries = [(s, b, s.versions[core_idx[(g, s.name)]], 0) for s in core for b in s.binaries]
            for s in chosen:
                idx = min(len(s.versions) - 1, max(0, g - rng.choice((0, 1))))
                entries.extend((s, b, s.versions[idx], 1) for b in s.binaries)
            base[(g, f)] = (layers, entries)
            inventory(f"base:{f}:{g}", layers, [build.package(s, b, v, i, i) for s, b, v, i in entries],
                      (f"registry.example/base/family{f}", f"2024.{g}"), g * 60 + 5)

    # apps: repositories of TAGS_PER_REPO images on one family, moving through the generations
    repos = math.ceil(images / TAGS_PER_REPO)
    apps = 0
    for r in range(repos):
        f = rng.randrange(FAMILIES)
        in_base = {s.name for s in core} | {s.name for s in family_sources[f]}
        need = packages - BASE_BINARIES
        chosen_apps: list[tuple[Source, tuple[str, ...], int]] = []
        have = 0
        for s in weighted_order(rng, rest, 10.0):
            if have >= need + 10:  # a little over: base sizes vary by family
                break
            if s.name in in_base:
                continue
            chosen_apps.append((s, s.binaries, rng.randrange(len(s.versions))))
            have += len(s.binaries)
        for t in range(TAGS_PER_REPO):
            if apps >= images:
                break
            g = min(GENERATIONS - 1, t * GENERATIONS // TAGS_PER_REPO)
            layers, entries = base[(g, f)]
            n_app = rng.randint(2, 4)
            app_layers = [(sha(f"layer:app:{r}:{t}:{i}"), rng.randint(1, 50) * 1_000_000) for i in range(n_app)]
            pkgs = []
            for s, b, v, i in entries:  # an apt-get upgrade in the first app layer touches a few
                idx = s.versions.index(v)
                if idx + 1 < len(s.versions) and rng.random() < 0.05:
                    pkgs.append(build.package(s, b, s.versions[idx + 1], i, 2))
                else:
                    pkgs.append(build.package(s, b, v, i, i))
            for j, (s, binaries, idx0) in enumerate(chosen_apps):
                idx = min(len(s.versions) - 1, idx0 + (t * (len(s.versions) - 1 - idx0)) // (TAGS_PER_REPO - 1))
                layer = 2 + j % n_app
                for b in binaries:
                    if len(pkgs) < packages:
                        pkgs.append(build.package(s, b, s.versions[idx], layer, layer))
            assert len(pkgs) == packages, (len(pkgs), packages)
            inventory(f"app:{r}:{t}", layers + app_layers, pkgs,
                      (f"registry.example/team{r % 50}/app{r}", f"v1.{t}"), g * 60 + 10 + t)
            apps += 1
    rows = sum(len(inv.packages) for inv in inventories)
    return Fleet(sources, inventories, refs, apps, rows)


def pick_targets(fleet: Fleet) -> dict[str, Any]:
    """A rare (~1% of images) and a common (~50%) binary package, and a version to compare the common one with."""
    images_with: Counter[str] = Counter()
    for inv in fleet.inventories:
        images_with.update({p.name for p in inv.packages})
    total = len(fleet.inventories)

    def closest(share: float, skip: set[str]) -> str:
        return min((n for n in images_with if n not in skip),
                   key=lambda n: (abs(images_with[n] / total - share), n))

    rare = closest(0.01, set())
    common = closest(0.5, set())
    second = closest(0.5, {common})
    more = [second, closest(0.5, {common, second})]
    by_name = {b: s for s in fleet.sources for b in s.binaries}
    versions = by_name[common].versions
    return {"rare": rare, "common": common, "common_versions": versions, "below": versions[len(versions) // 2],
            "share": {n: images_with[n] / total for n in (rare, common, *more)},
            "new_advisory_sources": [by_name[n] for n in (common, *more)]}


# -- the feed --------------------------------------------------------------------------------------

def osv_record(ident: int, src: Source, fixed: str | None, severity: str, modified: str) -> dict[str, Any]:
    events: list[dict[str, str]] = [{"introduced": "0"}]
    if fixed is not None:
        events.append({"fixed": fixed})
    return {
        "schema_version": "1.6.0", "id": f"DEBIAN-CVE-2024-{ident:05d}", "modified": modified,
        "published": modified, "aliases": [f"CVE-2024-{ident:05d}"],
        "summary": f"synthetic advisory {ident} for {src.name}",
        "affected": [{"package": {"ecosystem": "Debian:12", "name": src.name},
                      "ranges": [{"type": "ECOSYSTEM", "events": events}],
                      "database_specific": {"severity": severity}}],
    }


def write_feed(directory: Path, sources: list[Source], seed: int) -> None:
    """ADVISORIES records: half drawn by popularity, half uniformly; fixed at one of the versions, 10% unfixed."""
    rng = random.Random(seed + 1)
    directory.mkdir(parents=True)
    popular = weighted_order(rng, sources, 20.0)
    for i in range(ADVISORIES):
        src = popular[i % len(popular)] if rng.random() < 0.5 else rng.choice(sources)
        fixed = None if rng.random() < 0.1 else src.versions[rng.randint(1, len(src.versions) - 1)]
        modified = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_000 + i * 60))
        record = osv_record(10000 + i, src, fixed, rng.choice(SEVERITIES), modified)
        (directory / f"{record['id']}.json").write_text(json.dumps(record))


# -- measuring -------------------------------------------------------------------------------------

def runs_of(fn: Callable[[], object], repeat: int, warm: int = 1) -> list[float]:
    for _ in range(warm):
        fn()
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def med_p95(runs: list[float]) -> dict[str, float]:
    ordered = sorted(runs)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return {"median": statistics.median(ordered), "p95": p95}


def naive_where(inventories: list[Inventory], name: str, below: str | None) -> list[tuple[str, str, str]]:
    """The no-store answer: every package of every inventory, by binary or source name (what ``where`` matches)."""
    scheme = scheme_for("deb")
    verdict: dict[str, bool] = {}
    out = []
    for inv in inventories:
        for p in inv.packages:
            if p.name == name:
                version = p.version
            elif p.source_name == name:
                version = p.source_version or p.version
            else:
                continue
            if below is not None:
                ok = verdict.get(version)
                if ok is None:
                    ok = verdict[version] = scheme.compare(version, below) < 0
                if not ok:
                    continue
            out.append((inv.image.config_digest, p.name, p.version))
    return out


def where_queries(targets: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {
        "rare": (targets["rare"], None),
        "common": (targets["common"], None),
        "common, version_below": (targets["common"], targets["below"]),
    }


def measure_baseline(fleet: Fleet, targets: dict[str, Any], repeat: int) -> dict[str, Any]:
    out = {}
    for label, (name, below) in where_queries(targets).items():
        hits = len(naive_where(fleet.inventories, name, below))
        runs = runs_of(lambda n=name, b=below: naive_where(fleet.inventories, n, b), repeat, warm=0)
        out[label] = {"hits": hits, **med_p95(runs)}
    return out


def ingest(store: Store, fleet: Fleet, label: str) -> dict[str, float]:
    total = len(fleet.inventories)
    step = max(1, total // 10)
    start = last = time.perf_counter()
    rates = []
    for i, (inv, ref) in enumerate(zip(fleet.inventories, fleet.refs, strict=True), 1):
        store.record_image(inv, refs=[ref], sbom=False)
        if i % step == 0 or i == total:
            now = time.perf_counter()
            rate = (step if i % step == 0 else i % step) / (now - last)
            rates.append(rate)
            print(f"    [{label}] ingest {i}/{total} images, {now - start:7.1f} s, {rate:6.1f} images/s now",
                  file=sys.stderr, flush=True)
            last = now
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "images_per_s": total / seconds, "rows_per_s": fleet.rows / seconds,
            "first_decile_images_per_s": rates[0], "last_decile_images_per_s": rates[-1]}


def sqlite_sizes(store: Store, db: Path, rows: int) -> dict[str, float]:
    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    files = [db, db.with_name(db.name + "-wal")]
    total = sum(f.stat().st_size for f in files if f.exists())

    def tables_bytes(conn: Any, tables: tuple[str, ...]) -> int:
        marks = ",".join(f"'{t}'" for t in tables)
        return int(conn.exec_driver_sql(
            f"SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN "
            f"(SELECT name FROM sqlite_schema WHERE tbl_name IN ({marks}))").scalar_one())

    with store.engine.begin() as conn:
        interned = tables_bytes(conn, ("image_packages", "package_names", "versions"))
        ip_only = tables_bytes(conn, ("image_packages",))
        create_denormalized(conn)
        denorm = tables_bytes(conn, ("bench_denorm",))
        conn.exec_driver_sql("DROP TABLE bench_denorm")
    return size_figures(total, interned, ip_only, denorm, rows)


def postgres_sizes(store: Store, rows: int) -> dict[str, float]:
    with store.engine.begin() as conn:
        def size(table: str) -> int:
            return int(conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": table}).scalar_one())

        total = int(conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one())
        ip_only = size("image_packages")
        interned = ip_only + size("package_names") + size("versions")
        create_denormalized(conn)
        denorm = size("bench_denorm")
        conn.exec_driver_sql("DROP TABLE bench_denorm")
    return size_figures(total, interned, ip_only, denorm, rows)


def create_denormalized(conn: Any) -> None:
    """image_packages with the strings on every row, and the same keys and indexes."""
    conn.exec_driver_sql(
        "CREATE TABLE bench_denorm AS SELECT ip.image_id, ip.seq, n1.ecosystem, n1.name, v1.version, "
        "n2.name AS match_name, v2.version AS match_version, ip.introduced_in, ip.changed_in "
        "FROM image_packages ip JOIN package_names n1 ON n1.id = ip.name_id JOIN versions v1 ON v1.id = ip.version_id "
        "JOIN package_names n2 ON n2.id = ip.match_name_id JOIN versions v2 ON v2.id = ip.match_version_id")
    conn.exec_driver_sql("CREATE UNIQUE INDEX bench_denorm_pk ON bench_denorm (image_id, seq)")
    conn.exec_driver_sql("CREATE INDEX bench_denorm_name ON bench_denorm (ecosystem, name, version)")
    conn.exec_driver_sql("CREATE INDEX bench_denorm_match ON bench_denorm (ecosystem, match_name, match_version)")


def size_figures(total: int, interned: int, ip_only: int, denorm: int, rows: int) -> dict[str, float]:
    return {"db_bytes": total, "db_bytes_per_row": total / rows,
            "image_packages_bytes": ip_only, "interned_bytes": interned, "interned_bytes_per_row": interned / rows,
            "denormalized_bytes": denorm, "denormalized_bytes_per_row": denorm / rows,
            "denormalized_over_interned": denorm / interned}


@contextlib.contextmanager
def postgres_url() -> Iterator[str | None]:
    """A fresh database on a private PostgreSQL cluster, or None (the reason printed)."""
    try:
        import pytest
        from tests.support.postgres import start_postgres
    except ImportError as exc:
        print(f"PostgreSQL skipped: {exc}")
        yield None
        return
    try:
        with start_postgres() as server:
            yield server.create_database("patchline_bench")
    except pytest.skip.Exception as exc:  # start_postgres says why it cannot start as a pytest skip
        print(f"PostgreSQL skipped: {exc.msg}")
        yield None


def run_backend(backend: str, url: str, fleet: Fleet, targets: dict[str, Any], work: Path, args: argparse.Namespace,
                baseline: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"backend": backend}
    with open_store(url) as store:
        out["ingest"] = ingest(store, fleet, backend)
        counts = store.counts()
        assert counts["image_packages"] == fleet.rows, (counts["image_packages"], fleet.rows)
        out["counts"] = counts

        where: dict[str, Any] = {}
        for label, (name, below) in where_queries(targets).items():
            hits = len(store.where(name, version_below=below))
            assert hits == baseline[label]["hits"], (label, hits, baseline[label]["hits"])
            runs = runs_of(lambda n=name, b=below: store.where(n, version_below=b), args.repeat)
            where[label] = {"package": name, "version_below": below, "hits": hits, **med_p95(runs)}
        out["where"] = where

        feed_dir = work / f"feed-{backend}"
        cache = work / f"osv-cache-{backend}"
        write_feed(feed_dir, fleet.sources, args.seed)
        start = time.perf_counter()
        full = store.refresh_feed(OsvFeed(feed_dir, cache_dir=cache))
        full_s = time.perf_counter() - start
        out["refresh_full"] = {"seconds": full_s, "store_seconds": full.seconds, "advisories": full.advisories_added,
                               "findings": full.findings_added, "pairs_evaluated": full.packages_evaluated,
                               "images_affected": full.images_affected, "skipped": len(full.skipped)}
        nochange = runs_of(lambda: store.refresh_feed(OsvFeed(feed_dir, cache_dir=cache)), 3, warm=0)
        out["refresh_nochange"] = {"median": statistics.median(nochange), "max": max(nochange)}
        ones = []
        for k, src in enumerate(targets["new_advisory_sources"]):
            record = osv_record(90000 + k, src, src.versions[-1], "high", f"2030-01-0{k + 1}T00:00:00Z")
            (feed_dir / f"{record['id']}.json").write_text(json.dumps(record))
            start = time.perf_counter()
            result = store.refresh_feed(OsvFeed(feed_dir, cache_dir=cache))
            seconds = time.perf_counter() - start
            assert result.advisories_added == 1 and result.advisories_unchanged == ADVISORIES + k, result
            ones.append({"seconds": seconds, "store_seconds": result.seconds, "package": src.name,
                         "findings": result.findings_added, "images_affected": result.images_affected})
        out["refresh_one"] = {"runs": ones, "median": statistics.median(r["seconds"] for r in ones),
                              "max": max(r["seconds"] for r in ones)}
        start = time.perf_counter()
        report = store.advisory("DEBIAN-CVE-2024-90000")
        out["advisory_report"] = {"seconds": time.perf_counter() - start, "hits": len(report.hits)}

        if backend == "sqlite":
            out["size"] = sqlite_sizes(store, Path(url.removeprefix("sqlite:///")), fleet.rows)
        else:
            out["size"] = postgres_sizes(store, fleet.rows)
    return out


# -- reporting -------------------------------------------------------------------------------------

def report(results: dict[str, Any], baseline: dict[str, Any], fleet: Fleet, targets: dict[str, Any]) -> None:
    backends = [b for b in ("sqlite", "postgresql") if b in results]
    width = 16
    head = f"  {'':46}" + "".join(f"{b:>{width}}" for b in backends) + f"{'baseline':>{width}}"
    print("\n" + head)

    def line(label: str, values: list[str], base: str = "") -> None:
        print(f"  {label:46}" + "".join(f"{v:>{width}}" for v in values) + f"{base:>{width}}")

    line("ingest images/s (sbom=False)", [f"{results[b]['ingest']['images_per_s']:.1f}" for b in backends])
    line("ingest package rows/s", [f"{results[b]['ingest']['rows_per_s']:,.0f}" for b in backends])
    line("ingest total s", [f"{results[b]['ingest']['seconds']:.1f}" for b in backends])
    for label in baseline:
        hits = baseline[label]["hits"]
        name = results[backends[0]]["where"][label]["package"]
        line(f"where {label} ({name}: {hits} hits) median ms",
             [f"{results[b]['where'][label]['median'] * 1000:.1f}" for b in backends],
             f"{baseline[label]['median'] * 1000:.1f}")
        line("    p95 ms", [f"{results[b]['where'][label]['p95'] * 1000:.1f}" for b in backends],
             f"{baseline[label]['p95'] * 1000:.1f}")
        line("    baseline / store (median)",
             [f"{baseline[label]['median'] / results[b]['where'][label]['median']:.1f}x" for b in backends])
        line(f"    vs target {TARGET_WHERE_MS} ms",
             [verdict(results[b]['where'][label]['p95'] * 1000, TARGET_WHERE_MS) for b in backends])
    line(f"refresh full feed ({ADVISORIES} advisories) s", [f"{results[b]['refresh_full']['seconds']:.2f}"
                                                          for b in backends])
    line(f"    vs target {TARGET_FULL_S:.0f} s",
         [verdict(results[b]["refresh_full"]["seconds"], TARGET_FULL_S) for b in backends])
    line("    findings / images affected",
         [f"{results[b]['refresh_full']['findings']}/{results[b]['refresh_full']['images_affected']}"
          for b in backends])
    line("refresh no change, median s", [f"{results[b]['refresh_nochange']['median']:.3f}" for b in backends])
    line("refresh one new advisory, median s (max)",
         [f"{results[b]['refresh_one']['median']:.3f} ({results[b]['refresh_one']['max']:.2f})" for b in backends])
    line(f"    vs target {TARGET_ONE_S:.0f} s", [verdict(results[b]["refresh_one"]["max"], TARGET_ONE_S)
                                                for b in backends])
    line("    full recompute / one new (baseline ratio)",
         [f"{results[b]['refresh_full']['seconds'] / results[b]['refresh_one']['median']:.0f}x" for b in backends])
    line("    images affected by the new one", ["/".join(str(r["images_affected"]) for r in
                                                          results[b]["refresh_one"]["runs"]) for b in backends])
    line("advisory(new id) report s (side figure)", [f"{results[b]['advisory_report']['seconds']:.3f}"
                                                      for b in backends])
    line("store size, whole DB bytes/package row", [f"{results[b]['size']['db_bytes_per_row']:.1f}" for b in backends])
    line("    whole DB MB", [f"{results[b]['size']['db_bytes'] / 1e6:.0f}" for b in backends])
    line("image_packages+names+versions bytes/row", [f"{results[b]['size']['interned_bytes_per_row']:.1f}"
                                                     for b in backends])
    line("denormalized image_packages bytes/row", [f"{results[b]['size']['denormalized_bytes_per_row']:.1f}"
                                                   for b in backends])
    line("    denormalized / interned", [f"{results[b]['size']['denormalized_over_interned']:.2f}x"
                                         for b in backends])
    print("\n  where baseline: a scan of the generated inventories held in memory (no store, no file reading);"
          "\n  refresh baseline: the full recomputation (every advisory, every (name, version) they name)."
          f"\n  target shares: {', '.join(f'{n} {s:.1%}' for n, s in targets['share'].items())} of images")


def verdict(value: float, target: float) -> str:
    return f"{'ok' if value < target else 'OVER'} {value / target:.2f}"


def source_revision() -> str:
    """The commit the figures are for (store code changes quickly): ``abc1234``, ``+dirty`` with local edits in src."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--packages", type=int, default=300)
    parser.add_argument("--backend", default="sqlite,postgresql")
    parser.add_argument("--workdir", type=Path, help="where the SQLite file and the feed go (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--quick", action="store_true", help="500 images, 5 runs: a smoke run")
    parser.add_argument("--repeat", type=int, default=20, help="runs per where query")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.images, args.repeat = 500, 5
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(sorted(unknown))}")
    if args.packages < BASE_BINARIES + 20:
        parser.error(f"--packages must be at least {BASE_BINARIES + 20}")

    started = time.perf_counter()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="patchline-bench-store-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        fleet = generate(args.images, args.packages, args.seed)
        targets = pick_targets(fleet)
        gen_s = time.perf_counter() - t0
        distinct = len({(p.name, p.version) for inv in fleet.inventories for p in inv.packages})
        revision = source_revision()
        print(f"patchline {revision}")
        print(f"fleet: {fleet.apps} app images x {args.packages} packages + {len(fleet.inventories) - fleet.apps} "
              f"root/base images = {fleet.rows:,} package rows, {distinct:,} distinct (name, version); "
              f"{SOURCES} source packages; generated in {gen_s:.1f} s. Ingest with sbom=False.")
        baseline = measure_baseline(fleet, targets, max(3, args.repeat // 4))
        results: dict[str, Any] = {}
        for backend in backends:
            print(f"\n== {backend}", flush=True)
            if backend == "sqlite":
                db = work / "store.db"
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(str(db) + suffix)
                results[backend] = run_backend(backend, f"sqlite:///{db}", fleet, targets, work, args, baseline)
            else:
                with postgres_url() as url:
                    if url is not None:
                        results[backend] = run_backend(backend, url, fleet, targets, work, args, baseline)
            shutil.rmtree(work / f"feed-{backend}", ignore_errors=True)
            shutil.rmtree(work / f"osv-cache-{backend}", ignore_errors=True)
            if backend in results:
                print(json.dumps({k: results[backend][k] for k in ("ingest", "refresh_full", "size")}, indent=1),
                      flush=True)
        report(results, baseline, fleet, targets)
        total = time.perf_counter() - started
        print(f"\n  bench run time {total / 60:.1f} min")
        if args.json:
            args.json.write_text(json.dumps({
                "revision": revision, "images": fleet.apps, "packages": args.packages,
                "all_images": len(fleet.inventories),
                "package_rows": fleet.rows, "distinct_name_versions": distinct, "seed": args.seed,
                "targets": {k: v for k, v in targets.items() if k != "new_advisory_sources"},
                "baseline_where": baseline, "results": results, "seconds": total,
            }, indent=1, default=str))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

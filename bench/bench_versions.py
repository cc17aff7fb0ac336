"""Version comparisons: 100k random pairs over 2,000 distinct versions, per scheme.

    .venv/bin/python bench/bench_versions.py

Baseline in the same run: python-debian's ``Version`` for dpkg and ``packaging.version.Version`` for PEP 440,
compared the same way over the same pairs (both are what most Python tools use). Not a test: figures and ratios.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from debian.debian_support import Version as DebVersion
from packaging.version import Version as PepVersion

from patchline.versions import scheme_for


def _pairs(versions: list[str], n: int = 100_000) -> list[tuple[str, str]]:
    rand = random.Random(0)
    return [(rand.choice(versions), rand.choice(versions)) for _ in range(n)]


def _time(compare: Callable[[str, str], object], pairs: list[tuple[str, str]]) -> float:
    start = time.perf_counter()
    for a, b in pairs:
        compare(a, b)
    return time.perf_counter() - start


def main() -> None:
    rand = random.Random(1)
    deb = [f"{rand.randint(0, 2)}:{rand.randint(0, 30)}.{rand.randint(0, 99)}-{rand.randint(1, 9)}+deb12u{n}"
           for n in range(2000)]
    pep = [f"{rand.randint(0, 30)}.{rand.randint(0, 99)}.{rand.randint(0, 9)}"
           f"{rand.choice(['', 'rc1', '.post1', '.dev2'])}" for _ in range(2000)]
    dpkg, pep440 = scheme_for("deb"), scheme_for("pypi")
    for name, ours, theirs, versions in (
        ("dpkg", dpkg.compare, lambda a, b: DebVersion(a) < DebVersion(b), deb),
        ("PEP 440", pep440.compare, lambda a, b: PepVersion(a) < PepVersion(b), pep),
    ):
        pairs = _pairs(versions)
        mine, base = _time(ours, pairs), _time(theirs, pairs)
        print(f"{name:8} 100k comparisons: patchline {mine:.3f} s, baseline {base:.3f} s ({mine / base:.2f}x)")


if __name__ == "__main__":
    main()

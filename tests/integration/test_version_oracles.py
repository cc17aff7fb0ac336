"""Our version schemes against the real tools: dpkg, rpm 4.18, node-semver, and a real Debian index.

The oracles are the host's binaries: ``dpkg --compare-versions`` (run from one
shell loop per batch), rpm's ``rpm.vercmp`` (many calls in one Lua chunk per
``rpm --eval``) and npm's ``semver`` package (installed once with the host's npm
into ``~/.cache/patchline-tests/node-semver``, all calls in one ``node`` process).
Each test is skipped, with the reason, when its tool is missing. The Debian index
test downloads ``Packages.xz`` from the host's own mirrors (read from its apt
sources) once and caches it under ``~/.cache/patchline-tests``.

apk has no oracle: Debian 12 has no apk-tools package, so the hand-written tables
in tests/unit/versions/test_apk.py are its test.
"""

from __future__ import annotations

import itertools
import json
import lzma
import random
import shutil
import subprocess
import urllib.request
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchline._hostapt import host_debian_mirror
from patchline.errors import ConfigError
from patchline.versions import DpkgScheme, InvalidVersion, RpmScheme, SemverScheme
from tests.unit.versions.test_dpkg import DPKG_VERSIONS, ORDERED
from tests.unit.versions.test_rpm import RPM_CASES, RPM_PART
from tests.unit.versions.test_semver import SEMVER_CASES, SEMVER_INVALID, SEMVER_VALID

pytestmark = pytest.mark.integration

DPKG = DpkgScheme()
RPM = RpmScheme()
SEMVER = SemverScheme()
CACHE = Path.home() / ".cache" / "patchline-tests"

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed on this host")
needs_rpm = pytest.mark.skipif(shutil.which("rpm") is None, reason="rpm is not installed (apt-get install -y rpm)")

# For each "a b" line: -1, 0 or 1 as dpkg orders a and b (2 lt-calls at most per pair).
_DPKG_LOOP = r"""
while read -r a b; do
  if dpkg --compare-versions "$a" lt "$b"; then echo -1
  elif dpkg --compare-versions "$a" eq "$b"; then echo 0
  else echo 1; fi
done
"""


def dpkg_compare_all(pairs: Sequence[tuple[str, str]], *, workers: int = 4) -> list[int]:
    """dpkg's verdict on every pair, batched into a few shell processes."""
    size = max(1, -(-len(pairs) // workers))
    batches = [pairs[i : i + size] for i in range(0, len(pairs), size)]

    def run(batch: Sequence[tuple[str, str]]) -> list[int]:
        text = "".join(f"{a} {b}\n" for a, b in batch)
        out = subprocess.run(["sh", "-c", _DPKG_LOOP], input=text, capture_output=True, text=True, check=True)
        assert not out.stderr, out.stderr  # a warning means dpkg found a version we accepted dubious
        return [int(x) for x in out.stdout.split()]

    with ThreadPoolExecutor(workers) as pool:
        results = [r for batch in pool.map(run, batches) for r in batch]
    assert len(results) == len(pairs)
    return results


def rpm_vercmp_all(pairs: Sequence[tuple[str, str]], *, batch: int = 1000) -> list[int]:
    """rpm.vercmp on every pair, a thousand calls per ``rpm --eval`` (strings must be Lua-safe)."""
    results: list[int] = []
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        assert all('"' not in a + b and "\\" not in a + b for a, b in chunk)
        lua = " ".join(f'print(rpm.vercmp("{a}", "{b}") .. " ")' for a, b in chunk)
        out = subprocess.run(["rpm", "--eval", f"%{{lua: {lua}}}"], capture_output=True, text=True, check=True)
        got = [int(x) for x in out.stdout.split()]
        assert len(got) == len(chunk), out.stderr
        results += got
    return results


def _mismatches(
    scheme: DpkgScheme | RpmScheme | SemverScheme, pairs: Sequence[tuple[str, str]], want: Sequence[int]
) -> list[str]:
    return [
        f"{a} vs {b}: tool {w}, ours {scheme.compare(a, b)}"
        for (a, b), w in zip(pairs, want, strict=True)
        if scheme.compare(a, b) != w
    ]


# Hypothesis draws 40 versions per example (drawing is the slow part), the test
# compares all 780 pairs of them: 8 examples, 6,240 pairs per test.
_HYPOTHESIS = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@needs_dpkg
@_HYPOTHESIS
@given(st.lists(DPKG_VERSIONS, min_size=40, max_size=40))
def test_dpkg_random_pairs(versions: list[str]) -> None:
    pairs = list(itertools.combinations(versions, 2))
    assert _mismatches(DPKG, pairs, dpkg_compare_all(pairs)) == []


@needs_dpkg
def test_dpkg_hand_written_table_against_dpkg() -> None:
    """Every row of test_dpkg.ORDERED: its expected sign is dpkg's, and ours."""
    got = dpkg_compare_all([(a, b) for a, b, _ in ORDERED])
    assert got == [want for _, _, want in ORDERED]
    assert _mismatches(DPKG, [(a, b) for a, b, _ in ORDERED], got) == []


@needs_dpkg
def test_dpkg_rejects_what_dpkg_errors_on() -> None:
    """What ``dpkg --compare-versions`` refuses (exit 2) or warns about, we refuse."""
    for bad in ["a:1", ":1", "1:", "1.0-", "-1", "1a:2", "a1", "1.0_1", "1.0-a_b"]:
        out = subprocess.run(["dpkg", "--compare-versions", bad, "lt", "1"], capture_output=True, text=True)
        assert out.returncode == 2 or "bad syntax" in out.stderr, bad
        with pytest.raises(Exception, match="invalid dpkg version"):
            DPKG.validate(bad)


_RPM_EVR = st.builds(
    lambda epoch, version, release: (
        (f"{epoch}:" if epoch is not None else "") + version + (f"-{release}" if release else "")
    ),
    st.one_of(st.none(), st.integers(0, 2)),
    RPM_PART,
    # Releases may start with "~" or "^": the missing-release rule shows there.
    st.one_of(st.just(""), RPM_PART, st.builds(str.__add__, st.sampled_from(["~", "^"]), RPM_PART)),
)


@needs_rpm
@_HYPOTHESIS
@given(st.lists(RPM_PART, min_size=40, max_size=40))
def test_rpmvercmp_random_pairs(versions: list[str]) -> None:
    # A bare version is an EVR without epoch and release, so rpm.vercmp is rpmvercmp here.
    pairs = list(itertools.combinations(versions, 2))
    assert _mismatches(RPM, pairs, rpm_vercmp_all(pairs)) == []


@needs_rpm
@_HYPOTHESIS
@given(st.lists(_RPM_EVR, min_size=40, max_size=40))
def test_rpm_evr_random_pairs(versions: list[str]) -> None:
    pairs = list(itertools.combinations(versions, 2))
    assert _mismatches(RPM, pairs, rpm_vercmp_all(pairs)) == []


@needs_rpm
def test_rpm_hand_written_table_against_rpm() -> None:
    """Every row of test_rpm.RPM_CASES: its expected sign is rpm's, and ours."""
    pairs = [(a, b) for a, b, _ in RPM_CASES]
    got = rpm_vercmp_all(pairs)
    assert got == [want for _, _, want in RPM_CASES]
    assert _mismatches(RPM, pairs, got) == []


# node-semver, the implementation npm itself uses.
NODE_SEMVER = CACHE / "node-semver"

# Reads {"pairs": [[a, b], ...], "versions": [...]} on stdin; writes
# {"compare": [semver.compare(a, b), ...], "valid": [semver.valid(v) !== null, ...]}.
_NODE_SEMVER_SCRIPT = """
const semver = require(%s);
let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const job = JSON.parse(input);
  process.stdout.write(JSON.stringify({
    version: require(%s).version,
    compare: job.pairs.map(([a, b]) => semver.compare(a, b)),
    valid: job.versions.map((v) => semver.valid(v) !== null),
  }));
});
"""


@pytest.fixture(scope="module")
def node_semver() -> Path:
    """The ``semver@7`` package directory, installed with npm on first use and then reused."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the node-semver oracle (apt-get install -y nodejs npm)")
    package = NODE_SEMVER / "node_modules" / "semver"
    if not (package / "package.json").exists():
        part = NODE_SEMVER.with_name("node-semver.part")
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir(parents=True)
        command = ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(part), "semver@7"]
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            pytest.skip("npm install semver@7 took more than 300 s")
        if out.returncode != 0 or not (part / "node_modules" / "semver" / "package.json").exists():
            pytest.skip(f"npm install semver@7 failed (exit {out.returncode}): {out.stderr.strip()[-500:]}")
        shutil.rmtree(NODE_SEMVER, ignore_errors=True)
        part.rename(NODE_SEMVER)
    return package


def node_semver_run(
    package: Path, pairs: Sequence[tuple[str, str]], versions: Sequence[str] = ()
) -> tuple[str, list[int], list[bool]]:
    """node-semver's version, ``semver.compare`` on every pair and ``semver.valid`` on every version."""
    script = _NODE_SEMVER_SCRIPT % (json.dumps(str(package)), json.dumps(str(package / "package.json")))
    job = json.dumps({"pairs": [list(p) for p in pairs], "versions": list(versions)})
    out = subprocess.run(["node", "-e", script], input=job, capture_output=True, text=True, check=True, timeout=120)
    result = json.loads(out.stdout)
    assert len(result["compare"]) == len(pairs) and len(result["valid"]) == len(versions)
    return result["version"], result["compare"], result["valid"]


def _random_semver(rng: random.Random, core: str) -> str:
    """A valid SemVer on ``core`` whose pre-release mixes numeric and alphanumeric identifiers."""
    idents = []
    for _ in range(rng.choice([0, 1, 1, 2, 2, 3, 4])):
        kind = rng.random()
        if kind < 0.4:
            idents.append(str(rng.choice([0, 1, 2, 3, 9, 10, 11, 99, 100, rng.randrange(100_000)])))
        elif kind < 0.8:
            idents.append(rng.choice(["alpha", "beta", "rc", "pre", "dev", "Beta", "RC", "next", "canary"]))
        else:
            idents.append(rng.choice(["a1", "1a", "0x", "rc-1", "-", "--1", "x-y", "20240101T1200", "9z", "Z"]))
    build = rng.choice(["", "", "", "+b7", "+sha.deadbee", "+001.x-y"])
    return core + ("-" + ".".join(idents) if idents else "") + build


def _random_semver_pairs(count: int, seed: int = 20240611) -> list[tuple[str, str]]:
    """Pairs that mostly share MAJOR.MINOR.PATCH, so the pre-release rules decide."""
    rng = random.Random(seed)
    cores = ["0.0.0", "0.1.0", "1.0.0", "1.2.3", "1.10.0", "2.0.0", "10.0.1"]
    pairs = []
    for _ in range(count):
        core = rng.choice(cores)
        other = core if rng.random() < 0.8 else rng.choice(cores)
        prefix_a, prefix_b = rng.choice(["", "", "", "v"]), rng.choice(["", "", "", "v"])
        pairs.append((prefix_a + _random_semver(rng, core), prefix_b + _random_semver(rng, other)))
    return pairs


def test_semver_against_node_semver(node_semver: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The hand-written table and 600 random pairs: semver.compare agrees with the table and with us;
    node-semver accepts our valid table and rejects our invalid one."""
    table = [(a, b) for a, b, _ in SEMVER_CASES]
    generated = _random_semver_pairs(600)
    for a, b in generated:
        SEMVER.validate(a)
        SEMVER.validate(b)
    version, got, valid = node_semver_run(node_semver, table + generated, SEMVER_VALID + SEMVER_INVALID)

    table_got, generated_got = got[: len(table)], got[len(table) :]
    assert table_got == [want for _, _, want in SEMVER_CASES]
    assert _mismatches(SEMVER, table, table_got) == []
    assert _mismatches(SEMVER, generated, generated_got) == []
    assert len(set(generated_got)) == 3, "the random pairs should hit <, = and >"
    node_valid = dict(zip(SEMVER_VALID + SEMVER_INVALID, valid, strict=True))
    assert [v for v in SEMVER_VALID if not node_valid[v]] == []
    assert [v for v in SEMVER_INVALID if node_valid[v]] == []
    for v in SEMVER_INVALID:
        with pytest.raises(InvalidVersion):
            SEMVER.validate(v)
    with capsys.disabled():
        print(
            f"\nnode-semver {version} oracle: {len(table)} table pairs and {len(generated)} random pairs agree; "
            f"{len(SEMVER_VALID)} valid and {len(SEMVER_INVALID)} invalid versions agree"
        )


def _packages_index(url: str, name: str) -> dict[str, set[str]]:
    """Package name -> versions of a cached ``Packages.xz``."""
    path = CACHE / name
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        try:
            with urllib.request.urlopen(url, timeout=120) as response:
                data = response.read()
        except OSError as exc:
            pytest.skip(f"cannot download {url}: {exc}")
        path.with_suffix(".part").write_bytes(data)
        path.with_suffix(".part").rename(path)
    versions: dict[str, set[str]] = defaultdict(set)
    package = None
    for line in lzma.decompress(path.read_bytes()).decode("utf-8").splitlines():
        if line.startswith("Package: "):
            package = line.removeprefix("Package: ").strip()
        elif line.startswith("Version: ") and package is not None:
            versions[package].add(line.removeprefix("Version: ").strip())
    return versions


@needs_dpkg
def test_every_pair_of_a_real_debian_index(capsys: pytest.CaptureFixture[str]) -> None:
    """bookworm-security and bookworm main: every pair of versions of one package, and
    every adjacent pair of all their versions sorted by our key, agree with dpkg."""
    try:
        mirrors = host_debian_mirror("bookworm")
    except ConfigError as exc:
        pytest.skip(f"no Debian mirror in the host's apt sources: {exc}")
    if mirrors.security is None:
        pytest.skip("the host's apt sources have no bookworm-security mirror")
    security = _packages_index(
        f"{mirrors.security}/dists/bookworm-security/main/binary-amd64/Packages.xz", "bookworm-security-main-amd64.xz"
    )
    main = _packages_index(f"{mirrors.mirror}/dists/bookworm/main/binary-amd64/Packages.xz", "bookworm-main-amd64.xz")

    merged = {name: vs | main.get(name, set()) for name, vs in security.items()}
    per_package = [pair for vs in merged.values() for pair in itertools.combinations(sorted(vs), 2)]
    every = sorted({v for vs in merged.values() for v in vs}, key=DPKG.key)
    adjacent = list(itertools.pairwise(every))
    pairs = per_package + adjacent
    assert len(per_package) > 100, "the index should hold packages with several versions"

    assert _mismatches(DPKG, pairs, dpkg_compare_all(pairs)) == []
    with capsys.disabled():
        print(
            f"\nDebian index oracle: {len(security)} packages in bookworm-security, "
            f"{len(per_package)} same-package pairs and {len(adjacent)} adjacent sorted pairs agree with dpkg"
        )

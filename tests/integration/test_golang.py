"""Real Go binaries built with Debian's Go 1.19.8, in an image, scanned and assessed.

The test builds a module-mode program with one local dependency (``replace
example.com/dep => ./dep``) and a GOPATH-mode program (``GO111MODULE=off``),
network-free (``GOPROXY=off``, caches in the temporary directory), puts them and
Debian's own ``go`` binary into an OCI layout, and checks what ``go version -m``
prints against the inventory; then the Go vulnerability database's stdlib records
(tests/data/advisories/osv-go) covering 1.19.8 are the assessment's stdlib findings.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest

from patchline import Ecosystem, Inventory
from patchline.assess import AssessOptions, assess, from_inventory
from patchline.inventory import scan_image
from patchline.oci._layout import LayoutSource
from tests.support.ocibuild import Entry, write_layout

pytestmark = pytest.mark.integration

GO = Path("/usr/lib/go-1.19/bin/go")
RECORDS = Path(__file__).resolve().parents[1] / "data" / "advisories" / "osv-go"
STDLIB_1_19_8 = set((RECORDS / "stdlib-1.19.8.txt").read_text().split())

_FILES = {
    "app/go.mod": "module example.com/app\n\ngo 1.19\n\nrequire example.com/dep v0.0.0-00010101000000-000000000000\n\n"
                  "replace example.com/dep => ./dep\n",
    "app/main.go": 'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/dep"\n)\n\n'
                   "func main() { fmt.Println(dep.Hello()) }\n",
    "app/dep/go.mod": "module example.com/dep\n\ngo 1.19\n",
    "app/dep/dep.go": 'package dep\n\nfunc Hello() string { return "hello" }\n',
    "gopath/src/hello/main.go": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hi") }\n',
}


def _go(args: list[str], *, cwd: Path, work: Path, **env: str) -> str:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "GOCACHE": str(work / "cache"),
        "GOPATH": str(work / "gopath"), "GOPROXY": "off", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0", **env,
    }
    done = subprocess.run([str(GO), *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not GO.exists():
        pytest.skip(f"{GO} is missing: install golang-1.19-go (scripts/setup-host.sh)")
    work = tmp_path_factory.mktemp("go")
    for name, text in _FILES.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    _go(["build", "-o", str(work / "server"), "."], cwd=work / "app", work=work)
    _go(["build", "-o", str(work / "hello"), "."], cwd=work / "gopath/src/hello", work=work,
        GO111MODULE="off", GOFLAGS="")
    return {"server": work / "server", "hello": work / "hello", "go": GO}


@pytest.fixture(scope="module")
def inventory(built: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    layout = tmp_path_factory.mktemp("layout")
    write_layout(layout, [
        [Entry("usr/lib/go-1.19/bin/go", built["go"].read_bytes(), mode=0o755)],
        [Entry("ko-app/server", built["server"].read_bytes(), mode=0o755),
         Entry("usr/local/bin/hello", built["hello"].read_bytes(), mode=0o755)],
    ])
    with LayoutSource(layout) as source:
        return scan_image(source)


def test_go_version_m_agrees(built: dict[str, Path]) -> None:
    # The oracle: Go's own reader, so that the assertions below are about what the binaries hold.
    printed = _go(["version", "-m", str(built["server"])], cwd=built["server"].parent, work=built["server"].parent)
    assert "\tdep\texample.com/dep\tv0.0.0-00010101000000-000000000000" in printed
    assert "\t=>\t./dep\t(devel)\t" in printed
    assert printed.startswith(f"{built['server']}: go1.19.8\n")


def test_modules_and_toolchain_of_every_binary(inventory: Inventory) -> None:
    found = {(p.name, p.version, p.purl, p.locations, p.introduced_in)
             for p in inventory.packages if p.ecosystem is Ecosystem.GOLANG}
    assert found == {
        ("stdlib", "1.19.8", "pkg:golang/stdlib@1.19.8", ("/usr/lib/go-1.19/bin/go",), 0),
        ("stdlib", "1.19.8", "pkg:golang/stdlib@1.19.8", ("/ko-app/server",), 1),
        ("stdlib", "1.19.8", "pkg:golang/stdlib@1.19.8", ("/usr/local/bin/hello",), 1),
        ("example.com/app", "(devel)", "pkg:golang/example.com/app@%28devel%29", ("/ko-app/server",), 1),
        ("example.com/dep", "(devel)", "pkg:golang/example.com/dep@%28devel%29", ("/ko-app/server",), 1),
    }
    dep = next(p for p in inventory.packages if p.name == "example.com/dep")
    assert (dep.source_name, dep.source_version) == ("./dep", "(devel)")
    assert inventory.skipped == ()


def test_stdlib_advisories_covering_1_19_8_are_reported(
    inventory: Inventory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATCHLINE_CACHE_DIR", str(tmp_path / "cache"))
    result = assess(from_inventory(inventory), AssessOptions(
        updates=False, changelogs=False, feeds=(str(RECORDS),), today=dt.date(2026, 12, 1)))
    by_binary: dict[str, set[str]] = {}
    for finding in result.findings:
        assert finding.package.name == "stdlib"
        by_binary.setdefault(finding.package.purl, set()).add(str(finding.advisory))
    assert by_binary == {"pkg:golang/stdlib@1.19.8": STDLIB_1_19_8}
    assert len(result.findings) == 3 * len(STDLIB_1_19_8)  # one per binary: each carries its own stdlib
    assert "golang" not in result.no_advisory_feed
    assert not [s for s in result.skipped if "stdlib" in s.what]

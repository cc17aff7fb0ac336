"""Go packages against real Go vulnerability database records (tests/data/advisories/osv-go, CC-BY 4.0).

The toolchain as ``stdlib`` (``1.19.8`` against ``introduced: 0, fixed: 1.19.9``),
modules with Go's ``v`` prefix, and pseudo-versions on both sides.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from patchline.advisories import AdvisoryIndex, OsvFeed, match_packages
from patchline.advisories.index import normalize_ecosystem
from patchline.assess._input import from_cyclonedx
from patchline.assess.model import PackageRef
from patchline.versions import scheme_for

RECORDS = Path(__file__).resolve().parents[2] / "data" / "advisories" / "osv-go"
STDLIB_1_19_8 = set((RECORDS / "stdlib-1.19.8.txt").read_text().split())


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> AdvisoryIndex:
    return AdvisoryIndex.build([OsvFeed(RECORDS, cache_dir=tmp_path_factory.mktemp("osv"))])


def go(name: str, version: str) -> PackageRef:
    return PackageRef("golang", name, version, f"pkg:golang/{name}@{version}")


def ids(index: AdvisoryIndex, *packages: PackageRef) -> set[str]:
    findings, skips = match_packages(packages, index, distro=None)
    assert skips == []
    return {str(f.advisory) for f in findings}


def test_debian_go_1_19_8_gets_exactly_the_stdlib_records_that_cover_it(index: AdvisoryIndex) -> None:
    assert len(STDLIB_1_19_8) == 80
    assert ids(index, go("stdlib", "1.19.8")) == STDLIB_1_19_8


@pytest.mark.parametrize(("package", "expected"), [
    (go("golang.org/x/text", "v0.3.6"), {"GO-2021-0113"}),
    (go("golang.org/x/text", "v0.3.7"), set()),
    (go("golang.org/x/crypto", "v0.0.0-20200219000000-abcdef123456"), {"GO-2020-0012"}),
    (go("golang.org/x/crypto", "v0.0.0-20200220183623-bac4c82f6975"), set()),  # the fix itself
    (go("golang.org/x/crypto", "v0.1.0"), set()),
    (go("golang.org/x/text", "v0.3.5+incompatible"), {"GO-2021-0113"}),
])
def test_module_versions_with_v_prefix_and_pseudo_versions(
    index: AdvisoryIndex, package: PackageRef, expected: set[str]
) -> None:
    assert ids(index, package) == expected


def test_a_devel_version_is_a_skip_when_advisories_name_the_module(index: AdvisoryIndex) -> None:
    findings, skips = match_packages([go("golang.org/x/text", "(devel)")], index, distro=None)
    assert findings == []
    assert len(skips) == 1 and "'(devel)' is not a valid semver version" in skips[0].reason


def test_go_ecosystem_names() -> None:
    assert scheme_for("Go").compare("v1.19.8", "1.19.9") < 0
    assert scheme_for("golang").compare("v0.0.0-20210101000000-abcdef123456", "0.0.0-20201231000000-ffffff") > 0
    key = normalize_ecosystem("Go")
    assert key is not None and key.ecosystem == "golang"


def test_golang_purls_from_an_sbom_keep_the_whole_module_path() -> None:
    doc = {"components": [{"type": "library", "purl": "pkg:golang/golang.org/x/text@v0.3.6"},
                          {"type": "library", "purl": "pkg:golang/stdlib@1.19.8"}]}
    scan = from_cyclonedx(doc, where="sbom.json")
    assert [(p.ecosystem, p.name, p.version) for p in scan.packages] == [
        ("golang", "golang.org/x/text", "v0.3.6"), ("golang", "stdlib", "1.19.8")]

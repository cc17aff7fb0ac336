"""Packages of an ecosystem no loaded feed covers: a warning and a field in every format, never a silent 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from patchline._model import Distro
from patchline.advisories._coverage import feed_coverage, uncovered_ecosystems
from patchline.assess import Assessment, AssessOptions, ScanInput, assess, render_assessment
from patchline.assess.model import PackageRef
from patchline.sbom import load_inventory_json
from tests.unit.advisories.conftest import DATA
from tests.unit.advisories.test_match import DEBIAN_12, deb, pypi

INVENTORY = DATA.parent / "sbom" / "debian-app" / "inventory.json"
LOG4J = PackageRef("maven", "log4j:log4j", "1.2.17", "pkg:maven/log4j/log4j@1.2.17")


def test_assessment_names_the_ecosystems_no_feed_covers(pypi_records: Path) -> None:
    scan = ScanInput(image="test", config_digest=None, packages=(pypi("requests", "2.25.0"), LOG4J,
                                                                 deb("libc6", "2.36-9")), distro=DEBIAN_12)
    result = assess(scan, AssessOptions(updates=False, feeds=(str(pypi_records),)))
    assert result.findings  # the PyPI feed still matched
    assert result.no_advisory_feed == ("deb", "maven")
    none = assess(scan, AssessOptions(updates=False))
    assert none.no_advisory_feed == ("deb", "maven", "pypi")


UBUNTU = Distro(id="ubuntu", version_id="22.04", version_codename="jammy")


@pytest.mark.parametrize(
    ("ecosystems", "distro", "uncovered"),
    [
        (["Debian:12", "PyPI"], DEBIAN_12, ()),
        (["Debian:12", "PyPI"], UBUNTU, ("deb",)),  # a Debian feed does not cover Ubuntu's packages
        (["Debian:11"], DEBIAN_12, ("deb", "pypi")),  # nor another release's
        (["Debian"], DEBIAN_12, ("pypi",)),  # every release
        (["Maven", "npm"], None, ("deb", "pypi")),  # Maven is not (yet) an ecosystem patchline indexes
    ],
)
def test_coverage_by_ecosystem_distribution_and_release(
    ecosystems: list[str], distro: Distro | None, uncovered: tuple[str, ...]
) -> None:
    docs = [{"id": f"X-{i}", "affected": [{"package": {"ecosystem": e, "name": "p"}}]}
            for i, e in enumerate(ecosystems)]
    packages = [deb("libc6", "2.36-9"), pypi("requests", "2.25.0")]
    assert uncovered_ecosystems(packages, feed_coverage(docs), distro=distro) == uncovered


def test_every_format_says_so() -> None:
    inventory = load_inventory_json(INVENTORY.read_text())
    result = Assessment(image="test", config_digest=None, no_advisory_feed=("maven",))
    doc = json.loads(render_assessment(result, "json"))
    assert doc["no_advisory_feed"] == ["maven"]
    sarif = json.loads(render_assessment(result, "sarif"))
    (note,) = sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert (note["level"], note["descriptor"]["id"], note["properties"]["ecosystems"]) == (
        "warning", "patchline/no-advisory-feed", ["maven"])
    assert "maven" in note["message"]["text"]
    text = render_assessment(result, "cyclonedx", inventory=inventory)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    properties = json.loads(text)["metadata"]["properties"]
    assert {"name": "patchline:assessment:no-advisory-feed", "value": "maven"} in properties
    covered = json.loads(render_assessment(Assessment(image="test", config_digest=None), "sarif"))
    assert covered["runs"][0]["invocations"][0]["toolExecutionNotifications"] == []

"""Assessment outputs: patchline JSON, SARIF 2.1.0 and CycloneDX 1.6 with vulnerabilities."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from patchline import Inventory
from patchline.assess import (
    Assessment,
    Finding,
    PackageRef,
    PendingUpdate,
    Severity,
    SeverityScore,
    from_cyclonedx,
    from_inventory,
    read_sbom_file,
    render_assessment,
)
from patchline.assess.model import AdvisoryId, AssessSkip
from patchline.sbom import load_inventory_json, render_sbom

FIXTURE = Path(__file__).resolve().parents[2] / "data" / "sbom" / "debian-app" / "inventory.json"


@pytest.fixture
def inventory() -> Inventory:
    return load_inventory_json(FIXTURE.read_text())


@pytest.fixture
def assessment(inventory: Inventory) -> Assessment:
    refs = {p.name: p for p in from_inventory(inventory).packages}
    deb = next(p for p in refs.values() if p.ecosystem == "deb")
    pypi = next(p for p in refs.values() if p.ecosystem == "pypi")
    finding = Finding(
        advisory=AdvisoryId("PYSEC-2099-1"), aliases=("CVE-2099-1",), package=pypi, fixed_versions=("99.0",),
        severity=Severity.CRITICAL,
        scores=(SeverityScore(Severity.CRITICAL, "CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),),
        summary="remote code execution", feed="osv-pypi", references=("https://advisory.invalid/PYSEC-2099-1",),
    )
    no_fix = Finding(advisory=AdvisoryId("DEBIAN-CVE-2099-2"), aliases=(), package=deb, fixed_versions=(),
                     severity=Severity.LOW, feed="osv-debian", fix_available=False)
    pending = PendingUpdate(package=deb, candidate=deb.version + "+deb12u9", suite="bookworm-security",
                            source_name=deb.source_name or deb.name, source_version=deb.version + "+deb12u9",
                            cves=("CVE-2099-3",))
    return Assessment(image=inventory.image.reference, config_digest=inventory.image.config_digest,
                      pending=(pending,), findings=(finding, no_fix),
                      skipped=(AssessSkip("feed/x.yaml", "not an OSV record"),))


def test_json_holds_pending_updates_and_findings(assessment: Assessment) -> None:
    doc = json.loads(render_assessment(assessment, "json"))
    assert doc["schema"] == "patchline/assessment/v1"
    assert doc["summary"]["pending_updates"] == 1 and doc["summary"]["findings"] == 2
    assert doc["summary"]["findings_by_severity"]["critical"] == 1
    assert doc["pending"][0]["cves"] == ["CVE-2099-3"]
    assert doc["findings"][0]["severity"] == "critical" and doc["findings"][0]["scores"][0]["score"] == 9.8
    assert doc["skipped"] == [{"what": "feed/x.yaml", "reason": "not an OSV record"}]


def test_cyclonedx_carries_findings_as_vulnerabilities_and_validates(
    assessment: Assessment, inventory: Inventory
) -> None:
    text = render_assessment(assessment, "cyclonedx", inventory=inventory)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    doc = json.loads(text)
    vulns = {v["id"]: v for v in doc["vulnerabilities"]}
    assert set(vulns) == {"PYSEC-2099-1", "DEBIAN-CVE-2099-2"}
    refs = {c["bom-ref"] for c in doc["components"]}
    assert all(a["ref"] in refs for v in vulns.values() for a in v["affects"])
    assert vulns["PYSEC-2099-1"]["ratings"][0]["score"] == 9.8
    assert vulns["PYSEC-2099-1"]["recommendation"].endswith("99.0")


def test_cyclonedx_from_a_foreign_sbom_keeps_its_components(assessment: Assessment, inventory: Inventory) -> None:
    sbom = json.loads(render_sbom(inventory, "cyclonedx"))
    scan = from_cyclonedx(sbom, where="sbom.json")
    assert {p.purl for p in scan.packages} >= {assessment.findings[0].package.purl}
    text = render_assessment(assessment, "cyclonedx", sbom=sbom)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None


def test_sarif_structure(assessment: Assessment) -> None:
    doc = json.loads(render_assessment(assessment, "sarif"))
    assert doc["version"] == "2.1.0"
    run = doc["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert rules["PYSEC-2099-1"]["properties"]["security-severity"] == "9.8"
    assert "patchline/pending-security-update" in rules
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels == {"PYSEC-2099-1": "error", "DEBIAN-CVE-2099-2": "note",
                      "patchline/pending-security-update": "warning"}
    assert all(r["ruleId"] in rules and r["locations"] for r in run["results"])


def test_sbom_inputs(tmp_path: Path, inventory: Inventory) -> None:
    (tmp_path / "inv.json").write_text(render_sbom(inventory, "json"))
    (tmp_path / "cdx.json").write_text(render_sbom(inventory, "cyclonedx"))
    (tmp_path / "spdx.json").write_text(render_sbom(inventory, "spdx"))
    own = read_sbom_file(tmp_path / "inv.json")
    cdx = read_sbom_file(tmp_path / "cdx.json")
    assert own.inventory is not None and set(own.packages) == set(from_inventory(inventory).packages)
    assert {(p.ecosystem, p.name, p.version) for p in cdx.packages} == {
        (p.ecosystem, p.name, p.version) for p in own.packages}
    assert {p.source_name for p in cdx.packages if p.ecosystem == "deb"} == {
        p.source_name for p in own.packages if p.ecosystem == "deb"}
    from patchline.errors import SbomError

    with pytest.raises(SbomError, match="SPDX"):
        read_sbom_file(tmp_path / "spdx.json")
    (tmp_path / "junk.json").write_text("[1, 2]")
    with pytest.raises(SbomError, match="neither"):
        read_sbom_file(tmp_path / "junk.json")


def test_package_ref_fields_survive(inventory: Inventory) -> None:
    refs = from_inventory(inventory).packages
    assert all(isinstance(r, PackageRef) and r.layer_diff_id for r in refs)

"""A finding whose own record states no severity takes its alias record's (PYSEC -> GHSA), and says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from patchline.advisories._alias_severity import AliasSeverities
from patchline.assess import Assessment, AssessOptions, ScanInput, assess, from_inventory, render_assessment
from patchline.assess.model import AdvisoryId, Finding, PackageRef, Severity, SeverityScore
from patchline.sbom import load_inventory_json
from tests.unit.advisories.conftest import DATA
from tests.unit.advisories.test_match import DEBIAN_12, PINNED, pypi

GHSA_RECORDS = DATA / "ghsa" / "pypi"
INVENTORY = DATA.parent / "sbom" / "debian-app" / "inventory.json"


def _assess(packages: list[PackageRef], *feeds: Path) -> Assessment:
    scan = ScanInput(image="test", config_digest=None, packages=tuple(packages), distro=DEBIAN_12)
    return assess(scan, AssessOptions(updates=False, feeds=tuple(str(f) for f in feeds)))


def test_pinned_image_findings_take_their_ghsa_aliases_severity(pypi_records: Path) -> None:
    packages = [pypi(n, v) for n, v in PINNED.items()]
    alone = {f.advisory: f for f in _assess(packages, pypi_records).findings}
    assert alone["PYSEC-2023-74"].severity is Severity.UNKNOWN  # requests: the PYSEC record states none
    assert alone["PYSEC-2021-66"].severity is Severity.UNKNOWN  # jinja2

    with_aliases = {f.advisory: f for f in _assess(packages, pypi_records, GHSA_RECORDS).findings}
    requests = with_aliases["PYSEC-2023-74"]
    assert (requests.severity, requests.severity_source) == (Severity.MEDIUM, "GHSA-j8r2-6x86-q33q")
    borrowed = [s for s in requests.scores if s.source == "GHSA-j8r2-6x86-q33q"]
    assert [(s.type, s.version, s.score) for s in borrowed if s.score is not None] == [("CVSS_V3", "3.1", 6.1)]
    jinja = with_aliases["PYSEC-2021-66"]
    assert (jinja.severity, jinja.severity_source) == (Severity.MEDIUM, "GHSA-g3rq-g295-4j3m")
    assert max(s.score or 0 for s in jinja.scores) == 5.3
    # Records that state their own severity keep it, and say nothing of a source.
    assert with_aliases["PYSEC-2023-228"].severity_source is None
    assert with_aliases["PYSEC-2023-228"].severity is alone["PYSEC-2023-228"].severity
    pysec = [f for f in with_aliases.values() if f.advisory.startswith("PYSEC-")]
    assert all(f.severity is not Severity.UNKNOWN for f in pysec)


def test_ghsa_word_when_it_has_no_vector(pypi_records: Path) -> None:
    (finding,) = [f for f in _assess([pypi("Jinja2", "2.7.1")], pypi_records, GHSA_RECORDS).findings
                  if f.advisory == "PYSEC-2014-8"]
    assert (finding.severity, finding.severity_source) == (Severity.MEDIUM, "GHSA-8r7q-cvjq-x353")
    assert [(s.type, s.source) for s in finding.scores] == [("record", "GHSA-8r7q-cvjq-x353")]


def _doc(ident: str, aliases: list[str], *, vector: str | None = None, word: str | None = None) -> dict[str, object]:
    doc: dict[str, object] = {"id": ident, "modified": "2024-01-01T00:00:00Z", "aliases": aliases}
    if vector:
        doc["severity"] = [{"type": "CVSS_V3", "score": vector}]
    if word:
        doc["database_specific"] = {"severity": word}
    return doc


CRITICAL_V31 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
LOW_V30 = "CVSS:3.0/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N"


@pytest.mark.parametrize(
    ("docs", "expected"),
    [
        ([_doc("GHSA-a", ["CVE-1"], vector=LOW_V30)], ("GHSA-a", Severity.LOW)),  # direct alias
        ([_doc("NVD-x", ["CVE-1"], vector=CRITICAL_V31)], ("NVD-x", Severity.CRITICAL)),  # shares the CVE
        ([_doc("CVE-1", [], word="HIGH")], ("CVE-1", Severity.HIGH)),  # the CVE's own record, a word
        # a direct alias before one that only shares the CVE, even if less severe
        ([_doc("NVD-x", ["CVE-1"], vector=CRITICAL_V31), _doc("GHSA-a", ["CVE-1"], vector=LOW_V30)],
         ("GHSA-a", Severity.LOW)),
        # a vector before a word
        ([_doc("GHSA-a", [], word="CRITICAL"), _doc("GHSA-b", [], vector=LOW_V30)], ("GHSA-b", Severity.LOW)),
        ([_doc("GHSA-zz", ["CVE-9"], vector=CRITICAL_V31)], None),  # not an alias
        ([_doc("GHSA-a", ["CVE-1"])], None),  # states nothing
        ([_doc("PYSEC-1", ["CVE-1"], vector=CRITICAL_V31)], None),  # the finding's own record
    ],
)
def test_which_alias_record_is_used(docs: list[dict[str, object]], expected: tuple[str, Severity] | None) -> None:
    finding = Finding(advisory=AdvisoryId("PYSEC-1"), aliases=("CVE-1", "GHSA-a", "GHSA-b"),
                      package=pypi("x", "1.0"), fixed_versions=(), severity=Severity.UNKNOWN)
    (filled,) = AliasSeverities.from_documents(docs).fill([finding])
    got = None if filled.severity_source is None else (filled.severity_source, filled.severity)
    assert got == expected


def test_every_format_says_where_the_severity_came_from_and_which_cvss_version() -> None:
    inventory = load_inventory_json(INVENTORY.read_text())
    package = next(p for p in from_inventory(inventory).packages if p.ecosystem == "pypi")
    finding = Finding(
        advisory=AdvisoryId("PYSEC-2099-1"), aliases=("GHSA-aaaa-bbbb-cccc",), package=package, fixed_versions=(),
        severity=Severity.LOW, severity_source="GHSA-aaaa-bbbb-cccc",
        scores=(SeverityScore(Severity.LOW, "CVSS_V3", LOW_V30, 3.1, version="3.0", source="GHSA-aaaa-bbbb-cccc"),
                SeverityScore(Severity.MEDIUM, "record", None, None, source="GHSA-aaaa-bbbb-cccc")))
    result = Assessment(image="test", config_digest=None, findings=(finding,))
    doc = json.loads(render_assessment(result, "json"))
    (out,) = doc["findings"]
    assert out["severity_source"] == "GHSA-aaaa-bbbb-cccc"
    assert out["scores"][0] | {"severity": "low"} == {"severity": "low", "type": "CVSS_V3", "vector": LOW_V30,
                                                        "score": 3.1, "version": "3.0",
                                                        "source": "GHSA-aaaa-bbbb-cccc"}
    sarif = json.loads(render_assessment(result, "sarif"))
    props = sarif["runs"][0]["results"][0]["properties"]
    assert (props["cvss_version"], props["severity_source"]) == ("3.0", "GHSA-aaaa-bbbb-cccc")
    text = render_assessment(result, "cyclonedx", inventory=inventory)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    ratings = json.loads(text)["vulnerabilities"][0]["ratings"]
    assert [r["method"] for r in ratings] == ["CVSSv3", "other"]  # a 3.0 vector is CVSSv3, not CVSSv31
    assert ratings[0]["source"] == {"name": "GHSA-aaaa-bbbb-cccc"}

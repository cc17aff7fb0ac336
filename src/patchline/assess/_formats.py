"""Machine-readable assessment outputs: patchline JSON, SARIF 2.1.0, CycloneDX 1.6.

All three are stable and documented in docs/formats/assessment.md. The JSON
holds both the pending updates and the findings; SARIF has one result per
finding and per pending update; CycloneDX is the image's SBOM with the findings
as ``vulnerabilities`` under the advisory's own ID.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from packageurl import PackageURL

from patchline import _clock
from patchline._model import Inventory
from patchline.assess.model import Assessment, Finding, PendingUpdate, Severity
from patchline.errors import SbomError
from patchline.sbom.interface import tool_version

SCHEMA = "patchline/assessment/v1"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
PENDING_RULE = "patchline/pending-security-update"
UNKNOWN_NOTIFICATION = "patchline/could-not-assess"
NO_FEED_NOTIFICATION = "patchline/no-advisory-feed"
_CYCLONEDX_METHOD = {"2.0": "CVSSv2", "3.0": "CVSSv3", "3.1": "CVSSv31", "4.0": "CVSSv4"}
_TYPE_METHOD = {"CVSS_V2": "CVSSv2", "CVSS_V3": "CVSSv3", "CVSS_V4": "CVSSv4"}  # a vector that could not be scored
_SARIF_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.NONE: "note",
    Severity.UNKNOWN: "warning",
}


def summary(assessment: Assessment) -> dict[str, Any]:
    by_severity = {s.name.lower(): 0 for s in sorted(Severity, reverse=True)}
    for f in assessment.findings:
        by_severity[f.severity.name.lower()] += 1
    return {
        "state": assessment.state.value,
        "pending_updates": len(assessment.pending),
        "pending_sources": len({(p.source_name, p.candidate) for p in assessment.pending}),
        "findings": len(assessment.findings),
        "findings_by_severity": by_severity,
        "fixable": sum(1 for f in assessment.findings if f.fixed_versions),
        "ignored": len(assessment.ignored),
        "skipped": len(assessment.skipped),
    }


def _finding(f: Finding) -> dict[str, Any]:
    doc = asdict(f)
    doc["severity"] = f.severity.name.lower()
    doc["scores"] = [{**asdict(s), "severity": s.severity.name.lower()} for s in f.scores]
    return doc


def assessment_to_dict(assessment: Assessment, *, created: datetime | None = None) -> dict[str, Any]:
    created = created or _clock.now()
    return {
        "schema": SCHEMA,
        "created": created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tool": {"name": "patchline", "version": tool_version()},
        "image": {"reference": assessment.image, "config_digest": assessment.config_digest},
        "summary": summary(assessment),
        "state": assessment.state.value,
        "unknown": list(assessment.unknown),
        "no_advisory_feed": list(assessment.no_advisory_feed),
        "sources": list(assessment.sources),
        "feeds": list(assessment.feeds),
        "pending": [asdict(p) for p in assessment.pending],
        "findings": [_finding(f) for f in assessment.findings],
        "ignored": [{**asdict(i), "finding": _finding(i.finding)} for i in assessment.ignored],
        "skipped": [asdict(s) for s in assessment.skipped],
    }


def _score(f: Finding) -> float | None:
    scores = [s.score for s in f.scores if s.score is not None]
    return max(scores) if scores else None


def _cvss_version(f: Finding) -> str | None:
    """The CVSS version of the highest score (the one the severity comes from)."""
    scored = [s for s in f.scores if s.score is not None]
    return max(scored, key=lambda s: s.score or 0.0).version if scored else None


def no_feed_warning(ecosystems: tuple[str, ...]) -> str:
    """The one line every format and the table say when the image has packages no advisory feed covers."""
    return (f"no advisory feed covers the image's {', '.join(ecosystems)} packages: their advisories were not "
            "checked (0 advisories for them means nothing)")


def _sarif(assessment: Assessment) -> dict[str, Any]:
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    location = [{"physicalLocation": {"artifactLocation": {"uri": assessment.image}}}]
    for f in assessment.findings:
        if f.advisory not in rules:
            rule: dict[str, Any] = {
                "id": f.advisory,
                "shortDescription": {"text": f.summary or f.advisory},
                "properties": {"tags": ["security", "vulnerability"]},
            }
            score = _score(f)
            if score is not None:
                rule["properties"]["security-severity"] = f"{score:.1f}"
            if f.references:
                rule["helpUri"] = f.references[0]
            rules[f.advisory] = rule
        fixed = ", ".join(f.fixed_versions) or "no fix published"
        results.append({
            "ruleId": f.advisory,
            "level": _SARIF_LEVEL[f.severity],
            "message": {"text": f"{f.package.name} {f.package.version} is affected by {f.advisory} "
                                f"({f.severity.name.lower()}); fixed in: {fixed}"},
            "locations": location,
            "properties": {"purl": f.package.purl, "aliases": list(f.aliases),
                           "severity": f.severity.name.lower(), "cvss_version": _cvss_version(f),
                           "severity_source": f.severity_source},
        })
    if assessment.pending:
        rules[PENDING_RULE] = {
            "id": PENDING_RULE,
            "shortDescription": {"text": "A security update is published for an installed package"},
            "properties": {"tags": ["security", "patch"]},
        }
    for p in assessment.pending:
        cves = ", ".join(p.cves) or "no CVE named in the changelog"
        results.append({
            "ruleId": PENDING_RULE,
            "level": "warning",
            "message": {"text": f"{p.package.name} {p.package.version} -> {p.candidate} ({p.suite}); {cves}"},
            "locations": location,
            "properties": {"purl": p.package.purl, "cves": list(p.cves), "candidate": p.candidate},
        })
    # What could not be checked is not a result (no finding) but must not read as "no results: clean":
    # SARIF says so in the invocation, which fails when the image could not be assessed.
    invocation: dict[str, Any] = {
        "executionSuccessful": not assessment.unknown,
        "toolExecutionNotifications": [{"level": "error", "descriptor": {"id": UNKNOWN_NOTIFICATION},
                                        "message": {"text": f"could not assess: {reason}"}}
                                       for reason in assessment.unknown],
    }
    if assessment.no_advisory_feed:
        invocation["toolExecutionNotifications"].append({
            "level": "warning", "descriptor": {"id": NO_FEED_NOTIFICATION},
            "message": {"text": no_feed_warning(assessment.no_advisory_feed)},
            "properties": {"ecosystems": list(assessment.no_advisory_feed)}})
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "patchline", "version": tool_version(),
                                "informationUri": "https://github.com/patchline", "rules": list(rules.values())}},
            "invocations": [invocation],
            "results": results,
            "properties": {"patchline:state": assessment.state.value,
                           "patchline:no-advisory-feed": list(assessment.no_advisory_feed)},
        }],
    }


def _canonical(purl: str) -> str:
    try:
        return str(PackageURL.from_string(purl).to_string())
    except ValueError:
        return purl


def _cyclonedx(assessment: Assessment, sbom: Mapping[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(sbom))  # a deep copy: the caller's stays as it was
    refs: dict[str, str] = {}
    for component in doc.get("components") or []:
        if component.get("purl") and component.get("bom-ref"):
            refs.setdefault(_canonical(component["purl"]), component["bom-ref"])
    vulnerabilities: dict[str, dict[str, Any]] = {}
    for f in assessment.findings:
        vuln = vulnerabilities.get(f.advisory)
        if vuln is None:
            vuln = {"bom-ref": f"vuln:{f.advisory}", "id": f.advisory, "source": {"name": f.feed or "osv"}}
            if f.aliases:
                vuln["references"] = [{"id": a, "source": {"name": "alias"}} for a in f.aliases]
            ratings = [{"severity": s.severity.name.lower() if s.severity is not Severity.UNKNOWN else "unknown",
                        **({"score": s.score} if s.score is not None else {}),
                        **({"vector": s.vector} if s.vector else {}),
                        **({"source": {"name": s.source}} if s.source else {}),
                        "method": _CYCLONEDX_METHOD.get(s.version or "") or _TYPE_METHOD.get(s.type, "other")}
                       for s in f.scores] or [{"severity": f.severity.name.lower()}]
            vuln["ratings"] = ratings
            if f.summary:
                vuln["description"] = f.summary
            if f.references:
                vuln["advisories"] = [{"url": r} for r in f.references[:20]]
            vuln["affects"] = []
            vulnerabilities[f.advisory] = vuln
        ref = refs.get(_canonical(f.package.purl))
        if ref is None:
            continue  # the package is not in this SBOM (cannot happen for patchline's own)
        affect = {"ref": ref, "versions": [{"version": f.package.version, "status": "affected"}]}
        if affect not in vuln["affects"]:
            vuln["affects"].append(affect)
        if f.fixed_versions:
            vuln["recommendation"] = f"Upgrade {f.package.name} to {', '.join(f.fixed_versions)}"
    doc["vulnerabilities"] = list(vulnerabilities.values())
    metadata = doc.setdefault("metadata", {})
    properties = [p for p in metadata.get("properties") or []
                  if not str(p.get("name", "")).startswith("patchline:assessment:")]
    properties.append({"name": "patchline:assessment:state", "value": assessment.state.value})
    properties += [{"name": "patchline:assessment:unknown", "value": reason} for reason in assessment.unknown]
    properties += [{"name": "patchline:assessment:no-advisory-feed", "value": ecosystem}
                   for ecosystem in assessment.no_advisory_feed]
    metadata["properties"] = properties
    return doc


def render_assessment(
    assessment: Assessment,
    fmt: str,
    *,
    inventory: Inventory | None = None,
    sbom: Mapping[str, Any] | None = None,
    created: datetime | None = None,
) -> str:
    """``json``, ``sarif`` or ``cyclonedx`` (which needs the inventory or a CycloneDX SBOM)."""
    if fmt == "json":
        out = assessment_to_dict(assessment, created=created)
    elif fmt == "sarif":
        out = _sarif(assessment)
    elif fmt == "cyclonedx":
        if sbom is None:
            if inventory is None:
                raise SbomError("a CycloneDX assessment needs the image's inventory or its CycloneDX SBOM")
            from patchline.sbom import render_sbom

            sbom = json.loads(render_sbom(inventory, "cyclonedx", created=created))
        out = _cyclonedx(assessment, sbom)
    else:
        raise SbomError(f"unknown assessment format {fmt!r}")
    return json.dumps(out, indent=2, ensure_ascii=False) + "\n"


__all__ = ["PENDING_RULE", "SCHEMA", "PendingUpdate", "assessment_to_dict", "render_assessment", "summary"]

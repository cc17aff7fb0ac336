"""SARIF 2.1.0: one result per finding and per pending update; what could not be checked in the invocation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from patchline._model import Inventory
from patchline.assess.formats.interface import no_feed_warning
from patchline.assess.model import Assessment, Finding, Severity
from patchline.sbom.interface import tool_version

__all__ = ["NO_FEED_NOTIFICATION", "PENDING_RULE", "SARIF_SCHEMA", "UNKNOWN_NOTIFICATION", "SarifAssessment"]

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
PENDING_RULE = "patchline/pending-security-update"
UNKNOWN_NOTIFICATION = "patchline/could-not-assess"
NO_FEED_NOTIFICATION = "patchline/no-advisory-feed"
_SARIF_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.NONE: "note",
    Severity.UNKNOWN: "warning",
}


class SarifAssessment:
    @property
    def name(self) -> str:
        return "sarif"

    def render(self, assessment: Assessment, *, inventory: Inventory | None, sbom: Mapping[str, Any] | None,
               created: datetime | None) -> dict[str, Any]:
        return _sarif(assessment)


def _score(f: Finding) -> float | None:
    scores = [s.score for s in f.scores if s.score is not None]
    return max(scores) if scores else None


def _cvss_version(f: Finding) -> str | None:
    """The CVSS version of the highest score (the one the severity comes from)."""
    scored = [s for s in f.scores if s.score is not None]
    return max(scored, key=lambda s: s.score or 0.0).version if scored else None


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

"""CycloneDX 1.6: the image's SBOM with the findings as ``vulnerabilities`` under the advisory's own ID."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from packageurl import PackageURL

from patchline._model import Inventory
from patchline.assess.model import Assessment, Severity
from patchline.errors import SbomError

__all__ = ["CycloneDxAssessment"]

_CYCLONEDX_METHOD = {"2.0": "CVSSv2", "3.0": "CVSSv3", "3.1": "CVSSv31", "4.0": "CVSSv4"}
_TYPE_METHOD = {"CVSS_V2": "CVSSv2", "CVSS_V3": "CVSSv3", "CVSS_V4": "CVSSv4"}  # a vector that could not be scored


class CycloneDxAssessment:
    @property
    def name(self) -> str:
        return "cyclonedx"

    def render(self, assessment: Assessment, *, inventory: Inventory | None, sbom: Mapping[str, Any] | None,
               created: datetime | None) -> dict[str, Any]:
        """Needs the image's inventory or its CycloneDX SBOM."""
        if sbom is None:
            if inventory is None:
                raise SbomError("a CycloneDX assessment needs the image's inventory or its CycloneDX SBOM")
            from patchline.sbom import render_sbom

            sbom = json.loads(render_sbom(inventory, "cyclonedx", created=created))
        return _cyclonedx(assessment, sbom)


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

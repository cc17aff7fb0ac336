"""``patchline/assessment/v1``: patchline's own assessment JSON, pending updates and findings together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from patchline import _clock
from patchline._model import Inventory
from patchline.assess.formats.interface import summary
from patchline.assess.model import Assessment, Finding
from patchline.sbom.interface import tool_version

__all__ = ["SCHEMA", "JsonAssessment", "assessment_to_dict"]

SCHEMA = "patchline/assessment/v1"


class JsonAssessment:
    @property
    def name(self) -> str:
        return "json"

    def render(self, assessment: Assessment, *, inventory: Inventory | None, sbom: Mapping[str, Any] | None,
               created: datetime | None) -> dict[str, Any]:
        return assessment_to_dict(assessment, created=created)


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

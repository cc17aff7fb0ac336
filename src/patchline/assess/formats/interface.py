"""The assessment output format plug-in interface, and what every format says the same way.

An :class:`AssessmentFormat` turns an :class:`~patchline.assess.model.Assessment` into one JSON
document. Formats are sibling modules (``json``, ``sarif``, ``cyclonedx``), listed in ``list.py``;
``patchline.assess.render_assessment`` writes one. (The terminal table is the CLI's.)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from patchline._model import Inventory
from patchline.assess.model import Assessment, Severity

__all__ = ["AssessmentFormat", "no_feed_warning", "summary"]


class AssessmentFormat(Protocol):
    """One machine-readable assessment format."""

    @property
    def name(self) -> str:
        """What ``--format`` calls it."""
        ...

    def render(self, assessment: Assessment, *, inventory: Inventory | None, sbom: Mapping[str, Any] | None,
               created: datetime | None) -> dict[str, Any]:
        """The document. ``inventory`` or ``sbom`` (a CycloneDX SBOM) is the image's, when the caller has it;
        ``created`` is the document's time (default: now).

        Raise :class:`~patchline.errors.SbomError` when the format needs what the caller does not have.
        """
        ...


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


def no_feed_warning(ecosystems: tuple[str, ...]) -> str:
    """The one line every format and the table say when the image has packages no advisory feed covers."""
    return (f"no advisory feed covers the image's {', '.join(ecosystems)} packages: their advisories were not "
            "checked (0 advisories for them means nothing)")

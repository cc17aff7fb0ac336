"""The one explicit list of machine-readable assessment formats (STYLE.md 4)."""

from __future__ import annotations

from patchline.assess.formats.cyclonedx import CycloneDxAssessment
from patchline.assess.formats.interface import AssessmentFormat
from patchline.assess.formats.json import JsonAssessment
from patchline.assess.formats.sarif import SarifAssessment
from patchline.errors import SbomError

__all__ = ["ASSESSMENT_FORMATS", "assessment_format"]

ASSESSMENT_FORMATS: tuple[AssessmentFormat, ...] = (
    JsonAssessment(),
    SarifAssessment(),
    CycloneDxAssessment(),
)


def assessment_format(name: str) -> AssessmentFormat:
    """The format ``name``; raises ``SbomError`` for an unknown one."""
    for fmt in ASSESSMENT_FORMATS:
        if fmt.name == name:
            return fmt
    raise SbomError(f"unknown assessment format {name!r}")

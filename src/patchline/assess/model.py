"""Plain data of an assessment: pending updates and advisory findings.

The types live on a low floor (``patchline._findings``) that the advisory feeds, the update sources, the
policy rules and the store import without importing the assessment; this is their public name.
"""

from patchline._findings import (
    AdvisoryId,
    Assessment,
    AssessSkip,
    AssessState,
    Finding,
    Ignored,
    PackageRef,
    PendingUpdate,
    Severity,
    SeverityScore,
)

__all__ = ["AdvisoryId", "AssessSkip", "AssessState", "Assessment", "Finding", "Ignored", "PackageRef",
           "PendingUpdate", "Severity", "SeverityScore"]

"""Assessment: which images need updates, and why.

::

    from patchline.assess import AssessOptions, assess, from_inventory
    result = assess(from_inventory(inventory), AssessOptions(feeds=("/srv/osv",)))
"""

from patchline.assess._assess import (
    AssessOptions,
    IgnoreSpec,
    UpdateSuiteSpec,
    assess,
    debian_release,
    fetch_options,
    options_from_config,
    out_of_support,
    pending_against,
    unchecked_sources,
    update_suites_for,
)
from patchline.assess._formats import no_feed_warning, render_assessment, summary
from patchline.assess._input import ScanInput, from_cyclonedx, from_inventory, read_sbom_file
from patchline.assess.model import (
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

__all__ = [
    "AdvisoryId",
    "AssessOptions",
    "AssessSkip",
    "AssessState",
    "Assessment",
    "Finding",
    "IgnoreSpec",
    "Ignored",
    "PackageRef",
    "PendingUpdate",
    "ScanInput",
    "Severity",
    "SeverityScore",
    "UpdateSuiteSpec",
    "assess",
    "debian_release",
    "fetch_options",
    "from_cyclonedx",
    "from_inventory",
    "no_feed_warning",
    "options_from_config",
    "out_of_support",
    "pending_against",
    "read_sbom_file",
    "render_assessment",
    "summary",
    "unchecked_sources",
    "update_suites_for",
]

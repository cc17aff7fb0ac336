"""Advisory feeds (OSV), their index, matching installed packages, and ignoring findings.

Typical use::

    index = AdvisoryIndex.build([OsvFeed("/srv/osv/PyPI/all.zip")])
    findings, skipped = match_packages(packages, index, distro=inventory.distro)
    kept, ignored = apply_ignores(findings, rules, vex_docs, today=date.today())
"""

from patchline.advisories.ignore import (
    IgnoreRule,
    VexDocument,
    VexStatement,
    apply_ignores,
    expired_rules,
    ignore_rules_from_config,
    purl_matches,
)
from patchline.advisories.index import AdvisoryIndex, EcosystemKey, IndexEntry, normalize_ecosystem, normalize_name
from patchline.advisories.interface import Advisory, AdvisoryFeed, Affected
from patchline.advisories.match import affects, finding_severity, match_packages
from patchline.advisories.osv import OsvFeed, parse_record

FEEDS: tuple[type[OsvFeed], ...] = (OsvFeed,)
"""Every feed implementation, in one explicit list."""

__all__ = [
    "FEEDS",
    "Advisory",
    "AdvisoryFeed",
    "AdvisoryIndex",
    "Affected",
    "EcosystemKey",
    "IgnoreRule",
    "IndexEntry",
    "OsvFeed",
    "VexDocument",
    "VexStatement",
    "affects",
    "apply_ignores",
    "expired_rules",
    "finding_severity",
    "ignore_rules_from_config",
    "match_packages",
    "normalize_ecosystem",
    "normalize_name",
    "parse_record",
    "purl_matches",
]

"""Advisory feeds (OSV), their index, matching installed packages, and ignoring findings.

Typical use::

    index = AdvisoryIndex.build([OsvFeed("/srv/osv/PyPI/all.zip")])
    findings, skipped = match_packages(packages, index, distro=inventory.distro)
    kept, ignored = apply_ignores(findings, rules, vex_docs, today=date.today())
"""

from patchline.advisories._alias_severity import AliasSeverities
from patchline.advisories._coverage import feed_coverage, uncovered_ecosystems
from patchline.advisories._feeds import (
    UpdateOutcome,
    feeds_directory,
    fetched_feeds,
    status_document,
    update_configured_feeds,
)
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
from patchline.advisories.match import ScopedMatch, affects, finding_severity, match_packages, match_version
from patchline.advisories.osv import OsvFeed, parse_record

FEEDS: tuple[type[OsvFeed], ...] = (OsvFeed,)
"""Every feed implementation, in one explicit list."""

__all__ = [
    "FEEDS",
    "Advisory",
    "AdvisoryFeed",
    "AdvisoryIndex",
    "Affected",
    "AliasSeverities",
    "EcosystemKey",
    "IgnoreRule",
    "IndexEntry",
    "OsvFeed",
    "ScopedMatch",
    "UpdateOutcome",
    "VexDocument",
    "VexStatement",
    "affects",
    "apply_ignores",
    "expired_rules",
    "feed_coverage",
    "feeds_directory",
    "fetched_feeds",
    "finding_severity",
    "ignore_rules_from_config",
    "match_packages",
    "match_version",
    "normalize_ecosystem",
    "normalize_name",
    "parse_record",
    "purl_matches",
    "status_document",
    "uncovered_ecosystems",
    "update_configured_feeds",
]

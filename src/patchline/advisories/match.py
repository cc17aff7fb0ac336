"""Installed packages against an advisory index: which advisories affect which package.

Distribution packages are matched by their source package (Debian, Ubuntu and
the rpm distributions name source packages in OSV), language packages by their
own name. A version is affected if it is listed in the entry's ``versions`` or
falls in one of its ranges, compared with the ecosystem's own version scheme.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from patchline._findings import AssessSkip, Finding, PackageRef, Severity, SeverityScore
from patchline._model import Distro
from patchline.advisories.index import AdvisoryIndex, EcosystemKey, IndexEntry, normalize_ecosystem, normalize_name
from patchline.advisories.interface import Advisory, Affected
from patchline.versions import UnknownEcosystem, scheme_for
from patchline.versions.interface import InvalidVersion, VersionScheme
from patchline.versions.osv import RangeError, fixed_versions, is_affected

__all__ = ["ScopedMatch", "affects", "finding_severity", "match_packages", "match_version"]

_OS_ECOSYSTEMS = ("deb", "apk", "rpm")
_SUMMARY_MAX = 200


class _InvalidInstalled(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def match_packages(
    packages: Sequence[PackageRef], index: AdvisoryIndex, *, distro: Distro | None
) -> tuple[list[Finding], list[AssessSkip]]:
    """One finding per (advisory, package) that affects it, and a skip for each thing that could not be decided.

    An installed version the ecosystem's scheme rejects skips that package; a range
    that cannot be evaluated (a GIT-only range) skips that advisory for that package.
    """
    findings: list[Finding] = []
    skips: dict[tuple[str, str], AssessSkip] = {}
    schemes: dict[str, VersionScheme | None] = {}
    valid: dict[tuple[str, str], str | None] = {}  # (scheme, version) -> why invalid (None: valid)
    for package in packages:
        os_package = package.ecosystem in _OS_ECOSYSTEMS
        name = (package.source_name or package.name) if os_package else package.name
        version = (package.source_version or package.version) if os_package else package.version
        candidates = index.candidates(package.ecosystem, name)
        if not candidates:
            continue
        hits: dict[str, list[IndexEntry]] = {}
        try:
            for entry in candidates:
                if not entry.key.applies_to(distro):
                    continue
                affected = _decide(entry, version, index, schemes, valid, skips, package)
                if affected:
                    hits.setdefault(entry.advisory.id, []).append(entry)
        except _InvalidInstalled as exc:
            skips[(package.purl, exc.reason)] = AssessSkip(what=package.purl, reason=exc.reason)
            continue
        for entries in hits.values():
            findings.append(_finding(package, entries))
    return findings, list(skips.values())


def affects(affected: Affected, version: str, scheme: VersionScheme | None = None) -> bool:
    """Whether ``version`` is affected by one OSV ``affected`` entry: listed in its ``versions``, or inside one of
    its ranges, compared in the entry's ecosystem's own scheme. The one decision `scan` and the store's feed
    refresh both make. Raises InvalidVersion, RangeError or UnknownEcosystem when it cannot be decided."""
    if version in affected.versions:
        return True
    scheme = scheme or scheme_for(affected.ecosystem)
    return is_affected(version, ranges=affected.ranges, versions=affected.versions, scheme=scheme)


@dataclass(frozen=True, slots=True)
class ScopedMatch:
    """What the entries affecting one package version say within one scope (a distribution release, or none)."""

    key: EcosystemKey
    severity: Severity  # the worst of the entries'
    fixed_versions: tuple[str, ...]  # every entry's, in order, without duplicates


def match_version(records: Sequence[Advisory], *, ecosystem: str, name: str, version: str) -> list[ScopedMatch]:
    """Which scopes of these records' ``affected`` entries hit (ecosystem, name) at ``version``: the findings the
    fleet store keeps per (name, version). An entry that cannot be decided is left out; ``match_packages``
    reports it as a skip."""
    out: dict[EcosystemKey, ScopedMatch] = {}
    for record in records:
        for affected in record.affected:
            key = normalize_ecosystem(affected.ecosystem)
            if key is None or key.ecosystem != ecosystem or normalize_name(ecosystem, affected.name) != name:
                continue
            try:
                hit = affects(affected, version)
            except (InvalidVersion, RangeError, UnknownEcosystem):
                continue
            if not hit:
                continue
            severity, _scores = finding_severity(record, [affected.severity_text])
            fixed = fixed_versions(affected.ranges)
            prior = out.get(key)
            if prior is not None:
                fixed = tuple(dict.fromkeys((*prior.fixed_versions, *fixed)))
                severity = max(severity, prior.severity)
            out[key] = ScopedMatch(key, severity, fixed)
    return list(out.values())


def _scheme(ecosystem: str, schemes: dict[str, VersionScheme | None]) -> VersionScheme | None:
    if ecosystem not in schemes:
        try:
            schemes[ecosystem] = scheme_for(ecosystem)
        except UnknownEcosystem:
            schemes[ecosystem] = None
    return schemes[ecosystem]


def _decide(
    entry: IndexEntry,
    version: str,
    index: AdvisoryIndex,
    schemes: dict[str, VersionScheme | None],
    valid: dict[tuple[str, str], str | None],
    skips: dict[tuple[str, str], AssessSkip],
    package: PackageRef,
) -> bool:
    if version in entry.versions:
        return True
    memo_key = (id(entry), version)
    known = index.memo.get(memo_key)
    if known is not None:
        return known
    scheme = _scheme(entry.affected.ecosystem, schemes)
    if scheme is None:
        reason = f"{package.purl}: no version scheme for OSV ecosystem {entry.affected.ecosystem!r}"
        skips[(entry.advisory.id, reason)] = AssessSkip(what=entry.advisory.id, reason=reason)
        return False
    check = (scheme.name, version)
    if check not in valid:
        try:
            scheme.validate(version)
            valid[check] = None
        except InvalidVersion as exc:
            valid[check] = (
                f"installed version {version!r} is not a valid {scheme.name} version ({package.ecosystem}): {exc}"
            )
    why = valid[check]
    if why is not None:
        raise _InvalidInstalled(why)
    try:
        result = affects(entry.affected, version, scheme)
    except InvalidVersion as exc:  # validated above; a scheme that disagrees with itself still only skips
        raise _InvalidInstalled(f"installed version {version!r} cannot be compared ({scheme.name}): {exc}") from exc
    except RangeError as exc:  # GIT-only ranges, a broken range
        reason = f"{package.purl}: this advisory's ranges cannot be evaluated: {exc}"
        skips[(entry.advisory.id, reason)] = AssessSkip(what=entry.advisory.id, reason=reason)
        return False
    index.memo[memo_key] = result
    return result


def finding_severity(
    advisory: Advisory, words: Iterable[str | None] = ()
) -> tuple[Severity, tuple[SeverityScore, ...]]:
    """Highest CVSS base score computed from a vector; otherwise the record's own word(s); else UNKNOWN."""
    scores = list(advisory.severity)
    for word in words:
        if word:
            extra = SeverityScore(Severity.parse(word), "record", None, None)
            if extra not in scores:
                scores.append(extra)
    computed = [s.severity for s in scores if s.score is not None]
    if computed:
        return max(computed), tuple(scores)
    stated = [s.severity for s in scores if s.vector is None]
    return (max(stated) if stated else Severity.UNKNOWN), tuple(scores)


def _finding(package: PackageRef, entries: list[IndexEntry]) -> Finding:
    advisory = entries[0].advisory
    fixed: list[str] = []
    for entry in entries:
        for v in fixed_versions(entry.affected.ranges):
            if v not in fixed:
                fixed.append(v)
    severity, scores = finding_severity(advisory, (e.affected.severity_text for e in entries))
    summary = advisory.summary
    if not summary and advisory.details:
        first = advisory.details.strip().split("\n", 1)[0]
        summary = first if len(first) <= _SUMMARY_MAX else first[: _SUMMARY_MAX - 1] + "…"
    return Finding(
        advisory=advisory.id,
        aliases=advisory.aliases,
        package=package,
        fixed_versions=tuple(fixed),
        severity=severity,
        scores=scores,
        summary=summary,
        feed=entries[0].feed,
        references=advisory.references,
    )

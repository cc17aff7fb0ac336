"""A severity for findings whose own record states none, taken from a record of one of its aliases.

PYSEC records rarely carry a severity; the GHSA (or NVD) record for the same
CVE usually does. When the loaded feeds hold such a record, a finding with an
UNKNOWN severity takes that record's, and says where from
(``Finding.severity_source``, ``SeverityScore.source``). A record counts as an
alias when the finding names it among its aliases, or when both name the same
ID (the same CVE).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from patchline._findings import Finding, Severity, SeverityScore
from patchline.advisories.osv import record_severity

__all__ = ["AliasSeverities"]


@dataclass(frozen=True, slots=True)
class _Stated:
    id: str
    severity: Severity
    scored: bool  # from a CVSS vector, not only a word
    scores: tuple[SeverityScore, ...]


def _strings(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


class AliasSeverities:
    """Records that state a severity, by their ID and by each of their aliases."""

    def __init__(self) -> None:
        self._by_name: dict[str, list[Mapping[str, Any]]] = {}
        self._stated: dict[int, _Stated | None] = {}

    @classmethod
    def from_documents(cls, documents: Iterable[object]) -> AliasSeverities:
        """From raw OSV documents (``OsvFeed.documents()``); records without any severity are left out."""
        table = cls()
        for doc in documents:
            if not isinstance(doc, Mapping) or not isinstance(doc.get("id"), str) or doc.get("withdrawn"):
                continue
            specific = doc.get("database_specific")
            if not doc.get("severity") and not (isinstance(specific, Mapping) and specific.get("severity")):
                continue
            for name in {doc["id"], *_strings(doc.get("aliases"))}:
                table._by_name.setdefault(name, []).append(doc)
        return table

    def __len__(self) -> int:
        return len(self._by_name)

    def _statement(self, doc: Mapping[str, Any]) -> _Stated | None:
        key = id(doc)
        if key not in self._stated:
            scores = record_severity(doc)
            computed = [s.severity for s in scores if s.score is not None]
            words = [s.severity for s in scores if s.vector is None and s.severity is not Severity.UNKNOWN]
            if computed:
                self._stated[key] = _Stated(doc["id"], max(computed), True, scores)
            elif words:
                self._stated[key] = _Stated(doc["id"], max(words), False, scores)
            else:
                self._stated[key] = None
        return self._stated[key]

    def best_for(self, advisory: str, aliases: Sequence[str]) -> _Stated | None:
        """The alias record's statement to use: a direct alias before one sharing a CVE, a CVSS score before
        a word, then the highest severity, then the smallest ID (so that the choice is stable)."""
        direct = set(aliases)
        seen: set[int] = set()
        ranked: list[_Stated] = []
        for name in (advisory, *aliases):
            for doc in self._by_name.get(name, ()):
                if id(doc) in seen or doc["id"] == advisory:
                    continue
                seen.add(id(doc))
                stated = self._statement(doc)
                if stated is None:
                    continue
                ranked.append(stated)
        if not ranked:
            return None
        ranked.sort(key=lambda s: s.id)  # max() keeps the first of equals: the smallest ID
        return max(ranked, key=lambda s: (s.id in direct, s.scored, int(s.severity)))

    def fill(self, findings: Iterable[Finding]) -> list[Finding]:
        """Each finding, an UNKNOWN one with its alias record's severity when there is one."""
        out = []
        for finding in findings:
            if finding.severity is not Severity.UNKNOWN:
                out.append(finding)
                continue
            stated = self.best_for(finding.advisory, finding.aliases)
            if stated is None:
                out.append(finding)
                continue
            borrowed = tuple(replace(s, source=stated.id) for s in stated.scores)
            out.append(replace(finding, severity=stated.severity, scores=(*finding.scores, *borrowed),
                               severity_source=stated.id))
        return out


"""The rules of ``[policy]`` and their evaluation (pure functions of plain data)."""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from patchline._config import PolicyConfig, PolicyException
from patchline.assess.model import Severity

RULES = ("allowed-bases", "max-fixable-severity", "denied-packages")


@dataclass(frozen=True, slots=True)
class Verdict:
    """One rule on one subject: passed or not, why, and the exception that set it aside, if one did."""

    rule: str
    passed: bool
    evidence: str
    excepted_by: str | None = None  # "owner: reason (until DATE)"

    def as_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "passed": self.passed, "evidence": self.evidence, "excepted_by": self.excepted_by}


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    subject: str
    verdicts: tuple[Verdict, ...]
    expired: tuple[str, ...] = ()  # exceptions for this subject that no longer apply

    @property
    def ok(self) -> bool:
        return all(v.passed for v in self.verdicts)

    def summary(self) -> str:
        """``policy RULE: EVIDENCE; ...`` of the failed rules."""
        return "; ".join(f"policy {v.rule}: {v.evidence}" for v in self.verdicts if not v.passed)

    def as_dict(self) -> dict[str, object]:
        return {"subject": self.subject, "ok": self.ok, "verdicts": [v.as_dict() for v in self.verdicts],
                "expired_exceptions": list(self.expired)}


def _repository(reference: str) -> str:
    """``registry/name`` of a reference (its tag and digest dropped)."""
    name = reference.split("@", 1)[0]
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


def _exception(policy: PolicyConfig, rule: str, subjects: Iterable[str], today: dt.date
               ) -> tuple[PolicyException | None, list[str]]:
    live, expired = None, []
    for exc in policy.exceptions:
        if exc.rule != rule or not any(fnmatch.fnmatchcase(s, exc.subject) for s in subjects):
            continue
        if exc.expires < today:
            expired.append(f"{exc.rule} for {exc.subject} ({exc.owner}) expired on {exc.expires}")
        elif live is None:
            live = exc
    return live, expired


def _verdict(policy: PolicyConfig, rule: str, failures: Sequence[str], subjects: Sequence[str], today: dt.date,
             *, passed_evidence: str) -> tuple[Verdict, list[str]]:
    if not failures:
        return Verdict(rule, True, passed_evidence), []
    exc, expired = _exception(policy, rule, subjects, today)
    evidence = "; ".join(failures)
    if exc is not None:
        return Verdict(rule, True, evidence, f"{exc.owner}: {exc.reason} (until {exc.expires})"), expired
    return Verdict(rule, False, evidence), expired


def check_bases(policy: PolicyConfig, bases: Sequence[str], *, subject: str, today: dt.date) -> PolicyDecision:
    """``allowed-bases`` for a recipe built FROM ``bases`` (outside references as its Containerfile names them)."""
    if not policy.allowed_bases:
        return PolicyDecision(subject, ())
    bad = [f"{b} is not from an allowed repository ({', '.join(policy.allowed_bases)})" for b in bases
           if not any(fnmatch.fnmatchcase(_repository(b), p) for p in policy.allowed_bases)]
    verdict, expired = _verdict(policy, "allowed-bases", bad, [subject, *bases, *map(_repository, bases)], today,
                                passed_evidence=f"{len(bases)} base(s) from allowed repositories")
    return PolicyDecision(subject, (verdict,), tuple(expired))


def check_image(policy: PolicyConfig, *, subject: str, fixable: Sequence[tuple[str, str, int]],
                packages: Sequence[str], today: dt.date) -> PolicyDecision:
    """``max-fixable-severity`` and ``denied-packages`` for an image about to be rolled out.

    ``fixable`` is (advisory, package, severity) of its findings that have a fix; ``packages`` its package names.
    """
    verdicts: list[Verdict] = []
    expired: list[str] = []
    subjects = [subject, _repository(subject)]
    if policy.max_fixable_severity is not None:
        limit = Severity[policy.max_fixable_severity.upper()]
        worse = sorted({f"{adv} ({Severity(sev).name.lower()}) in {pkg}" for adv, pkg, sev in fixable
                        if Severity(sev) > limit})
        shown = worse[:5] + ([f"and {len(worse) - 5} more"] if len(worse) > 5 else [])
        failures = [f"fixable findings above {limit.name.lower()}: {', '.join(shown)}"] if worse else []
        v, e = _verdict(policy, "max-fixable-severity", failures, subjects, today,
                        passed_evidence=f"no fixable finding above {limit.name.lower()}")
        verdicts.append(v)
        expired += e
    if policy.denied_packages:
        found = sorted({p for p in packages if any(fnmatch.fnmatchcase(p, d) for d in policy.denied_packages)})
        failures = [f"denied package(s) present: {', '.join(found)}"] if found else []
        v, e = _verdict(policy, "denied-packages", failures, subjects, today,
                        passed_evidence="no denied package")
        verdicts.append(v)
        expired += e
    return PolicyDecision(subject, tuple(verdicts), tuple(expired))

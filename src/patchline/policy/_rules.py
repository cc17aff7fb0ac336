"""The rules of ``[policy]`` and their evaluation (pure functions of plain data).

What a rule needs from the world (a base's creation date, whether a signature verifies, the first-seen date
of a pending update) is looked up by the caller and passed in as data; a fact the caller could not learn
says why, and a rule that needs it fails (unknown is not pass).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from patchline._config import PolicyConfig, PolicyException
from patchline._findings import Severity

RULES = ("allowed-bases", "base-age", "base-signed", "max-fixable-severity", "denied-packages",
         "pending-update-age", "required-runtime", "required-attestations", "denied-licenses")
_SHOWN = 5


@dataclass(frozen=True, slots=True)
class Verdict:
    """One rule on one subject: passed or not, why, and the exception that set it aside, if one did."""

    rule: str
    passed: bool
    evidence: str
    excepted_by: str | None = None  # "owner: reason (until DATE)"

    @property
    def outcome(self) -> str:
        """``pass``, ``excepted`` (failed, set aside by an exception) or ``fail``."""
        return "excepted" if self.passed and self.excepted_by else "pass" if self.passed else "fail"

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

    def records(self, stage: str) -> list[dict[str, object]]:
        """One row per verdict for a run's record: ``stage`` (plan, rollout), subject, rule, verdict, evidence."""
        return [{"stage": stage, "subject": self.subject, "rule": v.rule, "verdict": v.outcome,
                 "evidence": v.evidence, "excepted_by": v.excepted_by} for v in self.verdicts]

    def merged(self, other: PolicyDecision) -> PolicyDecision:
        """Both decisions' verdicts on this subject."""
        return PolicyDecision(self.subject, self.verdicts + other.verdicts,
                              tuple(dict.fromkeys(self.expired + other.expired)))


@dataclass(frozen=True, slots=True)
class BaseFacts:
    """What the caller looked up about one outside base; what it could not learn says why."""

    reference: str
    created: dt.datetime | None = None  # its image config's ``created``
    created_unknown: str = ""  # why ``created`` is None
    signed_by: str | None = None  # the key a cosign signature on it verifies with
    unsigned: str = ""  # why no signature verifies with any of the keys (when ``signed_by`` is None)


@dataclass(frozen=True, slots=True)
class PendingSecurityUpdate:
    """A security update an image lacks, and the day patchline first saw it pending (None: no record of it)."""

    package: str
    first_seen: dt.date | None


def _repository(reference: str) -> str:
    """``registry/name`` of a reference (its tag and digest dropped)."""
    name = reference.split("@", 1)[0]
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


def _names(items: Sequence[str]) -> str:
    return ", ".join(items[:_SHOWN]) + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


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


def _age_failure(facts: BaseFacts | None, reference: str, limit: int, today: dt.date) -> tuple[str, int | None]:
    """(why the base fails ``base-age``, or "" when it passes; its age in days when known)."""
    if facts is None or facts.created is None:
        why = facts.created_unknown if facts is not None and facts.created_unknown else "it was not looked up"
        return f"{reference}: its creation date is unknown ({why}), so its age cannot be checked", None
    created = facts.created.astimezone(dt.UTC).date() if facts.created.tzinfo else facts.created.date()
    if created <= dt.date(1970, 1, 1):  # reproducible builds write the epoch (or Go's zero time): not a date
        return (f"{reference}: its creation date {created} is a placeholder (reproducible builds write one), "
                "so its age cannot be checked"), None
    if created > today:
        return f"{reference}: its creation date {created} is in the future, so its age cannot be checked", None
    age = (today - created).days
    if age > limit:
        return f"{reference} was created on {created}, {age} days ago (max_base_age_days = {limit})", age
    return "", age


def check_bases(policy: PolicyConfig, bases: Sequence[str], *, subject: str, today: dt.date,
                facts: Mapping[str, BaseFacts] | None = None, aliases: Sequence[str] = ()) -> PolicyDecision:
    """The base rules for a recipe built FROM ``bases`` (outside references as its Containerfile names them).

    ``allowed-bases``: each base's repository matches ``allowed_bases``. ``base-age``: each base was created at
    most ``max_base_age_days`` ago. ``base-signed``: each base carries a cosign signature that verifies with one
    of ``allowed_bases_signed_by``. ``facts`` (by reference) are what the caller looked up; a base without them
    fails the rules that need them. ``aliases`` are other names an exception may give the subject (its recipes).
    """
    facts = facts or {}
    verdicts: list[Verdict] = []
    expired: list[str] = []
    subjects = [subject, *aliases, *bases, *map(_repository, bases)]
    if policy.allowed_bases:
        bad = [f"{b} is not from an allowed repository ({', '.join(policy.allowed_bases)})" for b in bases
               if not any(fnmatch.fnmatchcase(_repository(b), p) for p in policy.allowed_bases)]
        v, e = _verdict(policy, "allowed-bases", bad, subjects, today,
                        passed_evidence=f"{len(bases)} base(s) from allowed repositories")
        verdicts.append(v)
        expired += e
    if policy.max_base_age_days is not None:
        limit = policy.max_base_age_days
        ages = {b: _age_failure(facts.get(b), b, limit, today) for b in bases}
        oldest = max(((age, b) for b, (_, age) in ages.items() if age is not None), default=None)
        v, e = _verdict(policy, "base-age", [why for why, _ in ages.values() if why], subjects, today,
                        passed_evidence=f"{len(bases)} base(s) created within {limit} days" + (
                            f" (the oldest, {oldest[1]}, {oldest[0]} days ago)" if oldest else ""))
        verdicts.append(v)
        expired += e
    if policy.allowed_bases_signed_by:
        keys = ", ".join(str(k) for k in policy.allowed_bases_signed_by)
        bad = []
        signed = []
        for b in bases:
            fact = facts.get(b)
            if fact is not None and fact.signed_by:
                signed.append(f"{b} by {fact.signed_by}")
            else:
                why = fact.unsigned if fact is not None and fact.unsigned else "its signature was not checked"
                bad.append(f"{b} has no cosign signature that verifies with {keys}: {why}")
        v, e = _verdict(policy, "base-signed", bad, subjects, today,
                        passed_evidence=f"signed: {_names(signed)}" if signed else "no outside base")
        verdicts.append(v)
        expired += e
    return PolicyDecision(subject, tuple(verdicts), tuple(dict.fromkeys(expired)))


def check_image(policy: PolicyConfig, *, subject: str, fixable: Sequence[tuple[str, str, int]],
                packages: Sequence[str], today: dt.date, pending: Sequence[PendingSecurityUpdate] = (),
                unknown: str = "", bases: Sequence[str] = (), bases_unknown: str = "",
                services: Sequence[tuple[str, str]] = (),
                attestations: Mapping[str, tuple[str, str]] | None = None,
                licenses: Sequence[tuple[str, Sequence[str]]] = ()) -> PolicyDecision:
    """The rules on an image about to be rolled out.

    ``fixable`` is (advisory, package, severity) of its findings that have a fix; ``packages`` its package names;
    ``pending`` its pending security updates (``pending-update-age``); ``unknown`` why the store knows nothing of
    it (then those rules fail saying so). ``bases`` are its outside bases (``bases_unknown``: why they are not
    known) and ``services`` the (service, runtime) pairs that would run it (``required-runtime``).
    ``attestations`` maps each check of ``patchline verify`` (signature, cosign, sbom, provenance) to its state
    (passed, failed, skipped) and evidence (``required-attestations``; None: not verified, which fails).
    ``licenses`` is (package, its licence expressions) of each package (``denied-licenses``).
    """
    verdicts: list[Verdict] = []
    expired: list[str] = []
    subjects = [subject, _repository(subject)]

    def add(rule: str, failures: Sequence[str], passed: str, extra: Sequence[str] = ()) -> None:
        v, e = _verdict(policy, rule, failures, [*subjects, *extra], today, passed_evidence=passed)
        verdicts.append(v)
        expired.extend(e)

    if policy.max_fixable_severity is not None:
        limit = Severity[policy.max_fixable_severity.upper()]
        worse = sorted({f"{adv} ({Severity(sev).name.lower()}) in {pkg}" for adv, pkg, sev in fixable
                        if Severity(sev) > limit})
        failures = [unknown] if unknown else (
            [f"fixable findings above {limit.name.lower()}: {_names(worse)}"] if worse else [])
        add("max-fixable-severity", failures, f"no fixable finding above {limit.name.lower()}")
    if policy.denied_packages:
        found = sorted({p for p in packages if any(fnmatch.fnmatchcase(p, d) for d in policy.denied_packages)})
        failures = [unknown] if unknown else [f"denied package(s) present: {', '.join(found)}"] if found else []
        add("denied-packages", failures, "no denied package")
    if policy.denied_licenses:
        hits = sorted({f"{name} ({lic})" for name, found in licenses for lic in found
                       if any(fnmatch.fnmatchcase(term, d) for term in _license_terms(lic)
                              for d in policy.denied_licenses)})
        failures = [unknown] if unknown else [f"denied licence(s): {_names(hits)}"] if hits else []
        add("denied-licenses", failures, "no package under a denied licence")
    if policy.max_pending_update_age_days is not None:
        add("pending-update-age", [unknown] if unknown else _pending_failures(policy, pending, today),
            _pending_passed(pending, today))
    if policy.require_runsc_for_bases:
        failures, passed = _runtime_failures(policy, bases, bases_unknown, services)
        add("required-runtime", failures, passed, [*bases, *map(_repository, bases)])
    if policy.require_attestations:
        add("required-attestations", _attestation_failures(policy.require_attestations, attestations),
            f"{', '.join(policy.require_attestations)} verified")
    return PolicyDecision(subject, tuple(verdicts), tuple(dict.fromkeys(expired)))


def _license_terms(expression: str) -> list[str]:
    """The licence ids of an SPDX expression (``GPL-2.0-only OR MIT`` -> both): a denied one anywhere counts,
    since which side of an OR applies is the user's choice, not the scanner's."""
    words = expression.replace("(", " ").replace(")", " ").split()
    return [w for w in words if w.upper() not in ("AND", "OR", "WITH")] or [expression]


def _attestation_failures(required: Sequence[str], found: Mapping[str, tuple[str, str]] | None) -> list[str]:
    if found is None:
        return ["the image's attestations could not be verified"]
    failures = []
    for name in required:
        state, evidence = found.get(name, ("failed", "not checked"))
        if state != "passed":  # skipped ([sign] turned it off) is not verified either
            failures.append(f"{name} {state}: {evidence}")
    return failures


def _pending_failures(policy: PolicyConfig, pending: Sequence[PendingSecurityUpdate], today: dt.date) -> list[str]:
    limit = policy.max_pending_update_age_days
    assert limit is not None
    old = sorted(((today - p.first_seen).days, p.package, p.first_seen) for p in pending
                 if p.first_seen is not None and (today - p.first_seen).days > limit)
    untracked = sorted({p.package for p in pending if p.first_seen is None})
    failures = []
    if old:
        shown = [f"{name} (first seen {seen}, {age} days ago)" for age, name, seen in reversed(old)]
        failures.append(f"security update(s) pending longer than {limit} days: {_names(shown)}")
    if untracked:
        failures.append(f"security update(s) pending with no record of when patchline first saw them, so "
                        f"their age is unknown: {_names(untracked)} (a patch run's assess step records it)")
    return failures


def _pending_passed(pending: Sequence[PendingSecurityUpdate], today: dt.date) -> str:
    dated = sorted((p.first_seen, p.package) for p in pending if p.first_seen is not None)
    if not dated:
        return "no pending security update"
    seen, name = dated[0]
    return f"the oldest pending security update, {name}, was first seen {seen} ({(today - seen).days} days ago)"


def _runtime_failures(policy: PolicyConfig, bases: Sequence[str], bases_unknown: str,
                      services: Sequence[tuple[str, str]]) -> tuple[list[str], str]:
    """``required-runtime``: an image built FROM a base of ``require_runsc_for_bases`` runs only under runsc."""
    globs = policy.require_runsc_for_bases
    other = [f"{name} ({runtime})" for name, runtime in services if runtime != "runsc"]
    runsc = [name for name, runtime in services if runtime == "runsc"]
    if bases_unknown:
        what = f"its bases are unknown ({bases_unknown}), so it may run only under runsc"
    else:
        matched = [b for b in bases if any(fnmatch.fnmatchcase(_repository(b), g) for g in globs)]
        if not matched:
            return [], f"no base of it is in require_runsc_for_bases ({', '.join(globs)})"
        what = f"built FROM {_names(matched)} (require_runsc_for_bases), it may run only under runsc"
    if other:
        return [f"{what}, but service(s) {', '.join(other)} do not"], ""
    return [], f"{what}: " + (f"service(s) {', '.join(runsc)} do" if runsc else "no service runs it")

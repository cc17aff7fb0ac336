"""Moving findings aside: ignore rules from patchline.toml and OpenVEX statements.

An ignore rule names an advisory (its id or any alias), optionally a package (a
name or a purl), a reason, and optionally the last day it applies (``expires``);
an expired rule no longer applies and :func:`expired_rules` lists it for the
report. An OpenVEX statement (https://github.com/openvex/spec, v0.2.0, and the
older string forms) whose status is ``not_affected`` or ``fixed`` moves aside the
findings of that vulnerability for the packages its products name;
``affected`` and ``under_investigation`` leave them in place. Later statements
override earlier ones, as the spec says.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from packageurl import PackageURL

from patchline._findings import Finding, Ignored
from patchline.errors import ConfigError, VexError

__all__ = [
    "IgnoreRule",
    "VexDocument",
    "VexStatement",
    "apply_ignores",
    "expired_rules",
    "ignore_rules_from_config",
]

VEX_STATUSES = ("not_affected", "affected", "fixed", "under_investigation")
_IGNORING = ("not_affected", "fixed")
_PEP503 = re.compile(r"[-_.]+")


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    """``[[ignore]]`` in patchline.toml: ``id``, ``reason``, optional ``package`` and ``expires``."""

    id: str  # advisory id or alias
    reason: str
    package: str | None = None  # a package name, or a purl (without version: any version)
    expires: dt.date | None = None  # last day the rule applies

    def is_expired(self, today: dt.date) -> bool:
        return self.expires is not None and today > self.expires

    def matches(self, finding: Finding) -> bool:
        if self.id != finding.advisory and self.id not in finding.aliases:
            return False
        if self.package is None:
            return True
        if self.package.startswith("pkg:"):
            return purl_matches(self.package, finding.package.purl)
        return _norm_name(finding.package.ecosystem, self.package) in (
            _norm_name(finding.package.ecosystem, finding.package.name),
            _norm_name(finding.package.ecosystem, finding.package.source_name or ""),
        )


def ignore_rules_from_config(items: object, *, where: str = "patchline.toml") -> list[IgnoreRule]:
    """Parse the ``ignore`` list of the configuration; ``ConfigError`` names the bad entry."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigError(f"{where}: ignore must be a list of tables")
    rules: list[IgnoreRule] = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where}: ignore[{i}] must be a table")
        unknown = set(item) - {"id", "package", "reason", "expires"}
        if unknown:
            raise ConfigError(f"{where}: ignore[{i}] has unknown keys {', '.join(sorted(unknown))}")
        ident, reason, package, expires = (item.get(k) for k in ("id", "reason", "package", "expires"))
        if not isinstance(ident, str) or not ident.strip():
            raise ConfigError(f"{where}: ignore[{i}] needs an id (an advisory id or alias)")
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigError(f"{where}: ignore[{i}] ({ident}) needs a reason")
        if package is not None and (not isinstance(package, str) or not package.strip()):
            raise ConfigError(f"{where}: ignore[{i}] ({ident}) package must be a name or a purl")
        if isinstance(package, str) and package.startswith("pkg:"):
            try:
                PackageURL.from_string(package)
            except ValueError as exc:
                raise ConfigError(f"{where}: ignore[{i}] ({ident}) package is not a valid purl: {exc}") from exc
        rules.append(
            IgnoreRule(id=ident.strip(), reason=reason.strip(), package=package, expires=_date(expires, where, i))
        )
    return rules


def _date(value: object, where: str, i: int) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(f"{where}: ignore[{i}] expires must be a date (YYYY-MM-DD), not {value!r}")


def expired_rules(rules: Sequence[IgnoreRule], *, today: dt.date) -> list[IgnoreRule]:
    """The rules that no longer apply, for the report to name."""
    return [r for r in rules if r.is_expired(today)]


@dataclass(frozen=True, slots=True)
class VexStatement:
    """One OpenVEX statement, reduced to what matching needs."""

    vulnerability: str
    aliases: tuple[str, ...]
    products: tuple[str, ...]  # product and subcomponent identifiers (purls)
    status: str
    justification: str | None = None
    impact_statement: str | None = None
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class VexDocument:
    """An OpenVEX document: its ``@id`` and its statements."""

    id: str
    timestamp: str | None
    statements: tuple[VexStatement, ...]

    @classmethod
    def load(cls, path: Path) -> VexDocument:
        try:
            data = json.loads(path.read_bytes())
        except OSError as exc:
            raise VexError(f"cannot read VEX document {path}: {exc.strerror or exc}") from exc
        except ValueError as exc:
            raise VexError(f"VEX document {path} is not valid JSON: {exc}") from exc
        return cls.from_json(data, source=str(path))

    @classmethod
    def from_json(cls, data: object, *, source: str) -> VexDocument:
        """Validate and reduce a parsed OpenVEX document; ``VexError`` names what is wrong."""
        if not isinstance(data, Mapping):
            raise VexError(f"VEX document {source} is not a JSON object")
        context = data.get("@context")
        if not isinstance(context, str) or "openvex" not in context:
            raise VexError(f"VEX document {source} has no OpenVEX @context")
        doc_id = data.get("@id") if isinstance(data.get("@id"), str) else source
        doc_time = data.get("timestamp") if isinstance(data.get("timestamp"), str) else None
        raw_statements = data.get("statements")
        if not isinstance(raw_statements, list):
            raise VexError(f"VEX document {source} has no statements list")
        statements = [_statement(s, i, source, doc_time) for i, s in enumerate(raw_statements)]
        return cls(id=str(doc_id), timestamp=doc_time, statements=tuple(statements))


def _statement(raw: object, i: int, source: str, doc_time: str | None) -> VexStatement:
    where = f"VEX document {source} statements[{i}]"
    if not isinstance(raw, Mapping):
        raise VexError(f"{where} is not an object")
    vuln = raw.get("vulnerability")
    aliases: list[str] = []
    if isinstance(vuln, Mapping):  # v0.2.0: {"@id": ..., "name": ..., "aliases": [...]}
        name = vuln.get("name")
        aliases = [a for a in vuln.get("aliases") or [] if isinstance(a, str)]
    else:  # v0.0.x: a string
        name = vuln
    if not isinstance(name, str) or not name:
        raise VexError(f"{where} has no vulnerability name")
    status = raw.get("status")
    if status not in VEX_STATUSES:
        raise VexError(f"{where} has status {status!r}; OpenVEX knows {', '.join(VEX_STATUSES)}")
    justification = raw.get("justification") if isinstance(raw.get("justification"), str) else None
    impact = raw.get("impact_statement") if isinstance(raw.get("impact_statement"), str) else None
    if status == "not_affected" and not justification and not impact:
        raise VexError(f"{where} is not_affected without a justification or impact_statement")
    products: list[str] = []
    for product in raw.get("products") or []:
        products.extend(_identifiers(product))
        if isinstance(product, Mapping):
            for sub in product.get("subcomponents") or []:
                products.extend(_identifiers(sub))
    if not products:
        raise VexError(f"{where} names no products")
    stamp = raw.get("timestamp") if isinstance(raw.get("timestamp"), str) else doc_time
    return VexStatement(
        vulnerability=name,
        aliases=tuple(aliases),
        products=tuple(products),
        status=status,
        justification=justification,
        impact_statement=impact,
        timestamp=stamp,
    )


def _identifiers(component: object) -> list[str]:
    if isinstance(component, str):
        return [component]
    if not isinstance(component, Mapping):
        return []
    found = [component["@id"]] if isinstance(component.get("@id"), str) else []
    identifiers = component.get("identifiers")
    if isinstance(identifiers, Mapping) and isinstance(identifiers.get("purl"), str):
        found.append(identifiers["purl"])
    return found


def _norm_name(ecosystem: str, name: str) -> str:
    return _PEP503.sub("-", name).lower() if ecosystem == "pypi" else name.lower()


@lru_cache(maxsize=4096)
def _parse_purl(text: str) -> PackageURL | None:
    try:
        return PackageURL.from_string(text)
    except ValueError:
        return None


def purl_matches(pattern: str, purl: str) -> bool:
    """Whether ``purl`` is what ``pattern`` names: a pattern without version matches any version,
    one without qualifiers matches any qualifiers (its qualifiers must all be present otherwise)."""
    want, have = _parse_purl(pattern), _parse_purl(purl)
    if want is None or have is None:
        return pattern == purl
    if want.type.lower() != have.type.lower():
        return False
    if (want.namespace or "").lower() != (have.namespace or "").lower():
        return False
    if _norm_name(want.type.lower(), want.name) != _norm_name(have.type.lower(), have.name):
        return False
    if want.version and want.version != have.version:
        return False
    have_q = have.qualifiers if isinstance(have.qualifiers, dict) else {}
    want_q = want.qualifiers if isinstance(want.qualifiers, dict) else {}
    return all(have_q.get(k) == v for k, v in want_q.items())


def _vex_verdict(finding: Finding, docs: Sequence[VexDocument]) -> tuple[VexDocument, VexStatement] | None:
    names = {finding.advisory, *finding.aliases}
    latest: tuple[str, int, VexDocument, VexStatement] | None = None
    order = 0
    for doc in docs:
        for st in doc.statements:
            order += 1
            if st.vulnerability not in names and not names.intersection(st.aliases):
                continue
            if not any(purl_matches(p, finding.package.purl) for p in st.products):
                continue
            rank = (st.timestamp or "", order)
            if latest is None or rank >= latest[:2]:
                latest = (*rank, doc, st)
    return None if latest is None else (latest[2], latest[3])


def apply_ignores(
    findings: Sequence[Finding],
    rules: Sequence[IgnoreRule],
    vex_docs: Sequence[VexDocument],
    *,
    today: dt.date,
) -> tuple[list[Finding], list[Ignored]]:
    """Split findings into those kept and those an unexpired rule or a VEX statement moves aside."""
    active = [r for r in rules if not r.is_expired(today)]
    kept: list[Finding] = []
    ignored: list[Ignored] = []
    for finding in findings:
        rule = next((r for r in active if r.matches(finding)), None)
        if rule is not None:
            expires = rule.expires.isoformat() if rule.expires else None
            ignored.append(Ignored(finding=finding, reason=rule.reason, rule="patchline.toml", expires=expires))
            continue
        verdict = _vex_verdict(finding, vex_docs)
        if verdict is not None and verdict[1].status in _IGNORING:
            doc, st = verdict
            why = st.justification or st.impact_statement
            reason = f"VEX {st.status}" + (f": {why}" if why else "")
            ignored.append(Ignored(finding=finding, reason=reason, rule=doc.id))
            continue
        kept.append(finding)
    return kept, ignored

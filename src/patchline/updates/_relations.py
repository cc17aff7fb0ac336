"""Debian package relations (Depends, Breaks, Provides, ...) and their satisfaction.

Parsing follows Debian Policy 7.1: comma-separated clauses of ``|`` alternatives,
each ``name[:archqual] [(op version)] [[arch list]] [<profiles>]``. Architecture
lists and build profiles only appear in source relations; a binary index never
has them, but they are parsed (and an arch list honoured) so that odd input is
not misread.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from debian.debian_support import Version

from patchline.errors import IndexFormatError

__all__ = [
    "Installed",
    "Relation",
    "World",
    "compare_versions",
    "parse_provides",
    "parse_relations",
    "relation_holds",
]

_OPS = {"<<", "<=", "=", ">=", ">>", "<", ">"}
_ATOM = re.compile(
    r"""^\s*(?P<name>[a-zA-Z0-9][a-zA-Z0-9+.\-]*)
        (?::(?P<archqual>[a-zA-Z0-9\-]+))?
        \s*(?:\(\s*(?P<op><<|<=|>=|>>|=|<|>)\s*(?P<version>[^)\s]+)\s*\))?
        \s*(?:\[(?P<archs>[^\]]*)\])?
        \s*(?:<[^>]*>\s*)*$""",
    re.VERBOSE,
)


class Relation(NamedTuple):
    """One alternative of a relation clause."""

    name: str
    archqual: str | None = None  # "any", "native" or an architecture
    op: str | None = None
    version: str | None = None


@functools.lru_cache(maxsize=65536)
def _version(text: str) -> Version:
    return Version(text)


@functools.lru_cache(maxsize=1 << 17)  # a fleet compares the same few thousand pairs image after image
def compare_versions(a: str, b: str) -> int:
    """dpkg's ordering: negative, zero or positive like ``dpkg --compare-versions``."""
    va, vb = _version(a), _version(b)
    return -1 if va < vb else (1 if va > vb else 0)


def relation_holds(version: str, op: str, wanted: str) -> bool:
    """Whether ``version OP wanted`` holds; ``<`` and ``>`` are the obsolete ``<=``/``>=``."""
    c = compare_versions(version, wanted)
    if op == "<<":
        return c < 0
    if op in ("<=", "<"):
        return c <= 0
    if op == "=":
        return c == 0
    if op in (">=", ">"):
        return c >= 0
    if op == ">>":
        return c > 0
    raise IndexFormatError(f"unknown version relation {op!r}")


@functools.lru_cache(maxsize=16384)
def parse_relations(text: str, *, arch: str = "amd64") -> tuple[tuple[Relation, ...], ...]:
    """Parse a relation field into clauses of alternatives (AND of ORs).

    Alternatives restricted to other architectures (``[!amd64]``) are dropped; a
    clause left empty by that is dropped too.
    """
    clauses: list[tuple[Relation, ...]] = []
    for clause in text.split(","):
        if not clause.strip():
            continue
        alternatives: list[Relation] = []
        for alt in clause.split("|"):
            m = _ATOM.match(alt)
            if m is None:
                raise IndexFormatError(f"cannot parse package relation {alt.strip()!r} in {text!r}")
            archs = m.group("archs")
            if archs is not None and not _arch_list_matches(archs.split(), arch):
                continue
            alternatives.append(Relation(m.group("name"), m.group("archqual"), m.group("op"), m.group("version")))
        if alternatives:
            clauses.append(tuple(alternatives))
    return tuple(clauses)


def _arch_list_matches(archs: list[str], arch: str) -> bool:
    negated = [a[1:] for a in archs if a.startswith("!")]
    if negated:
        return arch not in negated
    return arch in archs or "any" in archs


@functools.lru_cache(maxsize=16384)
def parse_provides(text: str) -> tuple[tuple[str, str | None], ...]:
    """``Provides`` as (virtual name, version or None); only ``=`` is allowed there."""
    provided: list[tuple[str, str | None]] = []
    for clause in parse_relations(text):
        for rel in clause:
            if rel.op not in (None, "="):
                raise IndexFormatError(f"Provides allows only '=' relations, not {rel.op!r} in {text!r}")
            provided.append((rel.name, rel.version))
    return tuple(provided)


@dataclass(frozen=True, slots=True)
class Installed:
    """A package as it would be after the upgrade: its version and declared relations."""

    name: str
    version: str
    arch: str
    depends: str = ""
    pre_depends: str = ""
    breaks: str = ""
    conflicts: str = ""
    provides: str = ""


class World:
    """The set of packages an upgrade would leave installed, indexed for relation checks."""

    def __init__(self, packages: Iterable[Installed], *, native_arch: str) -> None:
        self.native_arch = native_arch
        self.real: dict[str, list[Installed]] = {}
        self.virtual: dict[str, list[tuple[Installed, str | None]]] = {}
        for pkg in packages:
            self.real.setdefault(pkg.name, []).append(pkg)
            for vname, vversion in parse_provides(pkg.provides):
                self.virtual.setdefault(vname, []).append((pkg, vversion))

    def providers(self, rel: Relation) -> list[Installed]:
        """The packages that satisfy one alternative (real ones and providers)."""
        found: list[Installed] = []
        for pkg in self.real.get(rel.name, ()):
            if not self._arch_ok(pkg.arch, rel.archqual):
                continue
            if rel.op is None or rel.version is None or relation_holds(pkg.version, rel.op, rel.version):
                found.append(pkg)
        for pkg, pversion in self.virtual.get(rel.name, ()):
            if not self._arch_ok(pkg.arch, rel.archqual):
                continue
            if rel.op is None or rel.version is None:
                found.append(pkg)
            elif pversion is not None and relation_holds(pversion, rel.op, rel.version):
                found.append(pkg)  # only a versioned Provides satisfies a versioned relation
        return found

    def _arch_ok(self, pkg_arch: str, archqual: str | None) -> bool:
        # Without a qualifier, or with ":any", Multi-Arch decides; the index does not
        # carry Multi-Arch here, so any architecture is accepted (single-arch images).
        if archqual is None or archqual == "any":
            return True
        wanted = self.native_arch if archqual == "native" else archqual
        return pkg_arch in (wanted, "all")

    def unsatisfied(self, field_text: str) -> list[tuple[Relation, ...]]:
        """The clauses of a Depends-like field that nothing in the world satisfies."""
        return [
            clause
            for clause in parse_relations(field_text, arch=self.native_arch)
            if not any(self.providers(alt) for alt in clause)
        ]

    def conflicting(self, pkg: Installed, field_text: str) -> list[Installed]:
        """The other packages a Breaks/Conflicts field of ``pkg`` hits."""
        hits: list[Installed] = []
        for clause in parse_relations(field_text, arch=self.native_arch):
            for alt in clause:
                hits.extend(other for other in self.providers(alt) if other.name != pkg.name)
        return hits

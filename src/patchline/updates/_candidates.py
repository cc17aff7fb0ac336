"""Which installed packages ``apt-get upgrade`` would upgrade, and which it would keep back.

apt's default policy: every configured source has priority 500, the installed
version 100, and apt never downgrades below priority 1000. So a package's
candidate is the highest version the sources offer that is newer than the
installed one (or the installed one itself). ``upgrade`` (not ``dist-upgrade``)
installs no new package and removes none: a package whose candidate needs
anything else is kept back. That is computed here as a fixpoint: start from
"every package at its candidate", keep back each upgrade whose Depends or
Pre-Depends are unsatisfiable in that set, or that breaks or conflicts with a
package in it, and repeat until nothing changes.

The installed packages' own relations (their Depends, and Provides for virtual
packages) come from the image's dpkg ``status`` text when given, else from an
index that carries the installed version; without either an installed
package provides nothing, which can keep back an upgrade apt would do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from patchline._findings import PackageRef, PendingUpdate
from patchline._model import Ecosystem, Layer, Package
from patchline.updates._packages import parse_packages
from patchline.updates._relations import Installed, Relation, World, compare_versions, parse_provides
from patchline.updates.interface import BinaryPackage, PackagesIndex

__all__ = ["CandidateDeb", "KeptBack", "UpgradePlan", "pending_updates", "plan_upgrade"]


@dataclass(frozen=True, slots=True)
class KeptBack:
    """An update the sources offer that ``apt-get upgrade`` would not install, and why."""

    package: PackageRef
    candidate: str
    suite: str
    reason: str


@dataclass(frozen=True, slots=True)
class CandidateDeb:
    """Where the ``.deb`` of a pending update is, to read its changelog."""

    name: str
    arch: str
    version: str
    source_name: str
    source_version: str
    url: str  # the archive root; ``filename`` is relative to it
    filename: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class UpgradePlan:
    """The result of :func:`plan_upgrade`."""

    pending: tuple[PendingUpdate, ...]
    kept_back: tuple[KeptBack, ...]
    debs: tuple[CandidateDeb, ...]  # one per pending update, same order


@dataclass(slots=True)
class _Entry:
    pkg: Package
    arch: str
    relations: Installed
    candidate: BinaryPackage | None = None
    index: PackagesIndex | None = None


def pending_updates(
    installed: Sequence[Package],
    indexes: Sequence[PackagesIndex],
    *,
    dpkg_status: str | None = None,
    native_arch: str = "amd64",
    layers: Sequence[Layer] = (),
) -> list[PendingUpdate]:
    """The updates ``apt-get -s upgrade`` inside the image would install (see :func:`plan_upgrade`)."""
    plan = plan_upgrade(installed, indexes, dpkg_status=dpkg_status, native_arch=native_arch, layers=layers)
    return list(plan.pending)


def plan_upgrade(
    installed: Sequence[Package],
    indexes: Sequence[PackagesIndex],
    *,
    dpkg_status: str | None = None,
    native_arch: str = "amd64",
    layers: Sequence[Layer] = (),
) -> UpgradePlan:
    """Compute the pending and the kept-back updates of the installed Debian packages.

    ``indexes`` are searched in order; between equal versions the first wins.
    ``dpkg_status`` is the image's ``/var/lib/dpkg/status`` text: it gives the
    installed packages' Depends/Breaks/Provides. Only packages of the native
    architecture (or ``all``) are matched, against indexes of that architecture.
    """
    status = _status_relations(dpkg_status) if dpkg_status else {}
    entries: dict[str, _Entry] = {}
    for pkg in installed:
        if pkg.ecosystem is not Ecosystem.DEB:
            continue
        arch = pkg.arch or native_arch
        if arch not in (native_arch, "all"):
            continue  # a foreign-architecture package: the indexes are for the native one
        relations = (
            status.get((pkg.name, pkg.version))
            or _index_relations(pkg, indexes)
            or Installed(pkg.name, pkg.version, arch)
        )
        entry = _Entry(pkg, arch, relations)
        entry.candidate, entry.index = _candidate(pkg, indexes, native_arch=native_arch)
        entries[pkg.name] = entry

    upgrading = {name for name, e in entries.items() if e.candidate is not None}
    reasons: dict[str, str] = {}
    while True:
        world = World((_after(e, name in upgrading) for name, e in entries.items()), native_arch=native_arch)
        keep = _to_keep_back(entries, upgrading, world)
        if not keep:
            break
        for name, reason in keep.items():
            upgrading.discard(name)
            reasons.setdefault(name, reason)

    pending: list[PendingUpdate] = []
    debs: list[CandidateDeb] = []
    kept: list[KeptBack] = []
    for name in sorted(entries, key=lambda n: (_source_of(entries[n]), n)):
        e = entries[name]
        if e.candidate is None or e.index is None:
            continue
        ref = _ref(e.pkg, layers)
        if name not in upgrading:
            kept.append(KeptBack(ref, e.candidate.version, e.index.suite, reasons.get(name, "kept back")))
            continue
        c = e.candidate
        pending.append(
            PendingUpdate(
                package=ref,
                candidate=c.version,
                suite=e.index.suite,
                source_name=c.source_name,
                source_version=c.source_version,
            )
        )
        debs.append(
            CandidateDeb(
                c.name, c.arch, c.version, c.source_name, c.source_version, e.index.url, c.filename, c.sha256, c.size
            )
        )
    return UpgradePlan(tuple(pending), tuple(kept), tuple(debs))


def _source_of(e: _Entry) -> str:
    return e.candidate.source_name if e.candidate is not None else (e.pkg.source_name or e.pkg.name)


def _candidate(
    pkg: Package, indexes: Sequence[PackagesIndex], *, native_arch: str
) -> tuple[BinaryPackage | None, PackagesIndex | None]:
    best: BinaryPackage | None = None
    best_index: PackagesIndex | None = None
    for index in indexes:
        if index.arch != native_arch:
            continue
        for entry in index.by_name.get(pkg.name, ()):
            if entry.arch not in (native_arch, "all"):
                continue
            # Priority 500 beats the installed 100, but apt never downgrades: only newer versions count.
            if compare_versions(entry.version, pkg.version) <= 0:
                continue
            if best is None or compare_versions(entry.version, best.version) > 0:
                best, best_index = entry, index
    return best, best_index


def _after(e: _Entry, upgraded: bool) -> Installed:
    if upgraded and e.candidate is not None:
        c = e.candidate
        return Installed(c.name, c.version, c.arch, c.depends, c.pre_depends, c.breaks, c.conflicts, c.provides)
    return e.relations


def _to_keep_back(entries: dict[str, _Entry], upgrading: set[str], world: World) -> dict[str, str]:
    keep: dict[str, str] = {}
    for name, e in entries.items():
        now = _after(e, name in upgrading)
        for field in (now.pre_depends, now.depends):
            for clause in world.unsatisfied(field):
                wanted = " | ".join(_show(r) for r in clause)
                if name in upgrading:
                    keep[name] = f"{now.name} {now.version} depends on {wanted}, which upgrade would not install"
                    continue
                # An installed package loses a dependency: keep back the upgrades that took it away.
                for other in _named(clause, entries, upgrading):
                    keep.setdefault(other, f"upgrading it would break {name}'s dependency on {wanted}")
        for hit in world.conflicting(now, f"{now.breaks}, {now.conflicts}".strip(", ")):
            if name in upgrading:
                keep[name] = f"{now.name} {now.version} breaks or conflicts with {hit.name} {hit.version}"
            elif hit.name in upgrading:
                keep.setdefault(hit.name, f"{name} {now.version} breaks or conflicts with {hit.name} {hit.version}")
    return keep


def _named(clause: tuple[Relation, ...], entries: dict[str, _Entry], upgrading: set[str]) -> list[str]:
    names = {r.name for r in clause}
    hits = []
    for other in upgrading:
        provided = {v for v, _ in parse_provides(entries[other].relations.provides)}
        if other in names or names & provided:
            hits.append(other)
    return hits


def _show(r: Relation) -> str:
    name = f"{r.name}:{r.archqual}" if r.archqual else r.name
    return f"{name} ({r.op} {r.version})" if r.op else name


def _ref(pkg: Package, layers: Sequence[Layer]) -> PackageRef:
    diff_id = next((str(layer.diff_id) for layer in layers if layer.index == pkg.introduced_in), None)
    return PackageRef(
        ecosystem=pkg.ecosystem.value,
        name=pkg.name,
        version=pkg.version,
        purl=str(pkg.purl),
        arch=pkg.arch,
        source_name=pkg.source_name,
        source_version=pkg.source_version,
        introduced_in=pkg.introduced_in,
        layer_diff_id=diff_id,
    )


def _status_relations(text: str) -> dict[tuple[str, str], Installed]:
    # Only the relations are read here; which packages are installed is the inventory's answer.
    return {
        (p.name, p.version): Installed(
            p.name, p.version, p.arch, p.depends, p.pre_depends, p.breaks, p.conflicts, p.provides
        )
        for p in parse_packages(text, origin="dpkg status", skip_incomplete=True)
    }


def _index_relations(pkg: Package, indexes: Sequence[PackagesIndex]) -> Installed | None:
    for index in indexes:
        for p in index.by_name.get(pkg.name, ()):
            if p.version == pkg.version:
                return Installed(p.name, p.version, p.arch, p.depends, p.pre_depends, p.breaks, p.conflicts, p.provides)
    return None

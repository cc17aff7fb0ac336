"""Which of an image's ecosystems the loaded advisory feeds cover.

Zero advisories for Maven packages means nothing when no feed names a Maven
package: the assessment says so (``Assessment.no_advisory_feed``) instead. A
distribution's packages are covered by a feed of that distribution and release
(a Debian feed does not cover an Ubuntu image's ``deb`` packages).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from patchline._findings import PackageRef
from patchline._model import Distro
from patchline.advisories.index import EcosystemKey, normalize_ecosystem

__all__ = ["feed_coverage", "uncovered_ecosystems"]


def feed_coverage(documents: Iterable[object]) -> frozenset[EcosystemKey]:
    """Every ecosystem (with distribution and release) that some record of these raw OSV documents names."""
    names: set[str] = set()
    for doc in documents:
        affected = doc.get("affected") if isinstance(doc, Mapping) else None
        for entry in affected if isinstance(affected, list) else ():
            package = entry.get("package") if isinstance(entry, Mapping) else None
            ecosystem = package.get("ecosystem") if isinstance(package, Mapping) else None
            if isinstance(ecosystem, str):
                names.add(ecosystem)
    return frozenset(key for key in map(normalize_ecosystem, names) if key is not None)


def uncovered_ecosystems(
    packages: Sequence[PackageRef], coverage: Iterable[EcosystemKey], *, distro: Distro | None
) -> tuple[str, ...]:
    """The ecosystems (``maven``, ``deb``...) of these packages that no covered ecosystem applies to, sorted."""
    keys = list(coverage)
    found = {p.ecosystem for p in packages}
    return tuple(sorted(e for e in found if not any(k.ecosystem == e and k.applies_to(distro) for k in keys)))

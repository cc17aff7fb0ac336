"""Small synthetic inventories and OSV records for the store's tests (real formats, invented content)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from patchline._model import Digest, Distro, Ecosystem, ImageInfo, Inventory, Layer, Package, Purl

BOOKWORM = Distro(id="debian", version_id="12", version_codename="bookworm")


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def deb(name: str, version: str, *, source: str | None = None, source_version: str | None = None,
        layer: int = 0) -> Package:
    return Package(
        ecosystem=Ecosystem.DEB, name=name, version=version, purl=Purl(f"pkg:deb/debian/{name}@{version}?arch=amd64"),
        introduced_in=layer, changed_in=layer, locations=("/var/lib/dpkg/status",), source_name=source,
        source_version=source_version, arch="amd64",
    )


def pypi(name: str, version: str, *, layer: int = 0) -> Package:
    return Package(ecosystem=Ecosystem.PYPI, name=name, version=version, purl=Purl(f"pkg:pypi/{name}@{version}"),
                   introduced_in=layer, changed_in=layer, locations=(f"/usr/lib/python3/{name}.dist-info/METADATA",))


def image(name: str, layers: Sequence[str], packages: Sequence[Package], *, distro: Distro | None = BOOKWORM,
          created: str = "2026-11-01T00:00:00Z") -> Inventory:
    """An inventory whose config digest derives from ``name`` and whose layer diff_ids derive from ``layers``."""
    return Inventory(
        image=ImageInfo(reference=name, manifest_digest=None, config_digest=Digest(digest("config:" + name)),
                        created=created),
        layers=tuple(Layer(index=i, diff_id=Digest(digest("layer:" + seed)), size=1000 + i)
                     for i, seed in enumerate(layers)),
        distro=distro,
        packages=tuple(packages),
    )


def osv_record(ident: str, *, ecosystem: str, name: str, fixed: str | None, introduced: str = "0",
               modified: str = "2026-11-01T00:00:00Z", aliases: Sequence[str] = (), severity: str | None = None,
               summary: str | None = None) -> dict[str, Any]:
    events: list[dict[str, str]] = [{"introduced": introduced}]
    if fixed:
        events.append({"fixed": fixed})
    affected: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name},
                                "ranges": [{"type": "ECOSYSTEM", "events": events}]}
    if severity:
        affected["ecosystem_specific"] = {"severity": severity}
    record: dict[str, Any] = {"id": ident, "modified": modified, "aliases": list(aliases), "affected": [affected]}
    if summary:
        record["summary"] = summary
    return record


def write_record(feed: Path, record: dict[str, Any]) -> Path:
    feed.mkdir(parents=True, exist_ok=True)
    path = feed / f"{record['id']}.json"
    path.write_text(json.dumps(record))
    return path

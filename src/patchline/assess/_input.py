"""What an assessment starts from: an inventory, or an SBOM file another run or tool wrote.

``patchline scan --sbom FILE`` accepts patchline's inventory JSON (lossless,
including the image's apt sources) and CycloneDX JSON from patchline or any
other tool (packages come from the components' purls; layers only where
patchline's own properties name them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from patchline._model import Distro, Inventory
from patchline.assess.model import PackageRef
from patchline.errors import ConfigError, SbomError

_ECOSYSTEMS = {"deb", "apk", "rpm", "pypi", "npm", "maven", "golang", "gem", "cargo"}


@dataclass(frozen=True, slots=True)
class ScanInput:
    """The packages to assess and what is known of the image they came from."""

    image: str
    config_digest: str | None
    packages: tuple[PackageRef, ...]
    distro: Distro | None
    system_files: tuple[tuple[str, str], ...] = ()
    inventory: Inventory | None = None
    cyclonedx: Mapping[str, Any] | None = None
    unreadable: tuple[tuple[str, str], ...] = ()  # (component, reason) an SBOM entry could not be used


def from_inventory(inventory: Inventory) -> ScanInput:
    layers = inventory.layers
    refs = tuple(
        PackageRef(
            ecosystem=p.ecosystem.value,
            name=p.name,
            version=p.version,
            purl=p.purl,
            arch=p.arch,
            source_name=p.source_name,
            source_version=p.source_version,
            introduced_in=p.introduced_in,
            layer_diff_id=layers[p.introduced_in].diff_id if p.introduced_in < len(layers) else None,
        )
        for p in inventory.packages
    )
    return ScanInput(
        image=inventory.image.reference,
        config_digest=inventory.image.config_digest,
        packages=refs,
        distro=inventory.distro,
        system_files=inventory.system_files,
        inventory=inventory,
    )


def _package_from_purl(purl_text: str, properties: Mapping[str, str]) -> tuple[PackageRef | None, Distro | None]:
    purl = PackageURL.from_string(purl_text)
    if purl.type not in _ECOSYSTEMS or not purl.version:
        return None, None
    qualifiers = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
    name = f"{purl.namespace}/{purl.name}" if purl.type in ("npm", "golang") and purl.namespace else purl.name
    if purl.type == "maven" and purl.namespace:
        name = f"{purl.namespace}:{purl.name}"  # GROUP:ARTIFACT, as OSV names Maven packages
    version = purl.version
    if purl.type == "rpm" and qualifiers.get("epoch"):
        version = f"{qualifiers['epoch']}:{version}"
    source_name = properties.get("patchline:package:source-name")
    source_version = properties.get("patchline:package:source-version")
    upstream = qualifiers.get("upstream")
    if upstream and not source_name:
        source_name, _, up_version = upstream.partition("@")
        source_version = up_version or version
    distro = None
    if qualifiers.get("distro") and purl.namespace:
        distro_text = qualifiers["distro"]
        distro_id, _, version_id = distro_text.partition("-")
        distro = Distro(id=distro_id or purl.namespace, version_id=version_id or None)
    introduced = properties.get("patchline:layer:introduced")
    return PackageRef(
        ecosystem=purl.type,
        name=name,
        version=version,
        purl=purl_text,
        arch=qualifiers.get("arch"),
        source_name=source_name,
        source_version=source_version,
        layer_diff_id=introduced,
    ), distro


def from_cyclonedx(doc: Mapping[str, Any], *, where: str) -> ScanInput:
    components = doc.get("components")
    if not isinstance(components, list):
        raise SbomError(f"{where}: CycloneDX document has no components list")
    packages: list[PackageRef] = []
    unreadable: list[tuple[str, str]] = []
    distro: Distro | None = None
    for index, component in enumerate(components):
        if not isinstance(component, dict):
            unreadable.append((f"components[{index}]", "not an object"))
            continue
        if component.get("type") == "operating-system" and component.get("name"):
            distro = Distro(id=str(component["name"]), version_id=component.get("version"))
            continue
        purl = component.get("purl")
        if not purl:
            continue  # files, the image itself, tools: nothing to assess
        properties = {str(p.get("name")): str(p.get("value")) for p in component.get("properties") or []
                      if isinstance(p, dict)}
        try:
            ref, purl_distro = _package_from_purl(str(purl), properties)
        except ValueError as exc:
            unreadable.append((str(purl), f"invalid purl: {exc}"))
            continue
        if ref is not None:
            packages.append(ref)
            distro = distro or purl_distro
    metadata = doc.get("metadata") or {}
    image = metadata.get("component") or {}
    return ScanInput(
        image=str(image.get("name") or where),
        config_digest=image.get("bom-ref") if str(image.get("bom-ref", "")).startswith("sha256:") else None,
        packages=tuple(packages),
        distro=distro,
        cyclonedx=doc,
        unreadable=tuple(unreadable),
    )


def read_sbom_file(path: Path) -> ScanInput:
    """Read patchline inventory JSON or CycloneDX JSON; refuse anything else clearly."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read SBOM {path}: {exc.strerror}") from exc
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SbomError(f"{path} is not JSON: {exc}") from exc
    except RecursionError as exc:  # hostile nesting: a clear error, not a traceback
        raise SbomError(f"{path} is nested too deeply to be an SBOM") from exc
    if isinstance(doc, dict) and doc.get("schema") == "patchline/inventory/v1":
        from patchline.sbom import load_inventory_json

        return from_inventory(load_inventory_json(text))
    if isinstance(doc, dict) and doc.get("bomFormat") == "CycloneDX":
        return from_cyclonedx(doc, where=str(path))
    if isinstance(doc, dict) and str(doc.get("spdxVersion", "")).startswith("SPDX-"):
        raise SbomError(f"{path} is SPDX; scan reads CycloneDX or patchline's inventory JSON")
    raise SbomError(f"{path} is neither CycloneDX JSON nor a patchline inventory")

"""SPDX 2.3 JSON, written with spdx-tools.

The document DESCRIBES one package for the image, which CONTAINS one package
per inventory package (and one for the distro). Each package has its purl as a
PACKAGE-MANAGER external reference, its declared licence when the strings form
a valid SPDX expression (NOASSERTION otherwise, never an error) and the layer
that introduced it in ``sourceInfo``.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime
from typing import Any

from spdx_tools.common.spdx_licensing import spdx_licensing
from spdx_tools.spdx.jsonschema.document_converter import DocumentConverter
from spdx_tools.spdx.model.actor import Actor, ActorType
from spdx_tools.spdx.model.document import CreationInfo, Document
from spdx_tools.spdx.model.package import (
    ExternalPackageRef,
    ExternalPackageRefCategory,
    Package,
    PackagePurpose,
)
from spdx_tools.spdx.model.relationship import Relationship, RelationshipType
from spdx_tools.spdx.model.spdx_no_assertion import SpdxNoAssertion

from patchline._model import Distro, Inventory, Layer
from patchline._model import Package as InventoryPackage
from patchline.errors import SbomError
from patchline.sbom.interface import (
    TOOL_NAME,
    SbomFormat,
    canonical_purl,
    document_uuid,
    layer_by_index,
    package_layers,
    package_order,
    short_hash,
    tool_version,
)

__all__ = ["NAMESPACE_BASE", "SpdxWriter", "declared_license", "document_namespace"]

SPDX_VERSION = "SPDX-2.3"
DOCUMENT_ID = "SPDXRef-DOCUMENT"
IMAGE_ID = "SPDXRef-Image"
OS_ID = "SPDXRef-OperatingSystem"
# patchline is not a host that serves documents; ".invalid" (RFC 2606) says so.
NAMESPACE_BASE = "https://patchline.invalid/spdx/"

_NOT_ID_CHARS = re.compile(r"[^A-Za-z0-9.-]+")


class SpdxWriter:
    """Writes SPDX 2.3 JSON documents.

    The document is not validated while writing: spdx-tools' validator takes
    about 2.7 s for 3,000 packages, eight times the writing itself. The tests
    validate every shape of document this module writes.
    """

    @property
    def format(self) -> SbomFormat:
        return SbomFormat.SPDX

    def render(self, inventory: Inventory, *, created: datetime) -> str:
        document = _document(inventory, created)
        try:
            # What spdx-tools' json_writer does, minus validation and with the
            # same layout as the other formats.
            converter = DocumentConverter()  # type: ignore[no-untyped-call]
            doc: dict[str, Any] = converter.convert(document)
        except (ValueError, TypeError) as exc:
            raise SbomError(
                f"image {inventory.image.reference}: cannot write SPDX: {exc}"
            ) from exc
        for pkg in doc.get("packages", ()):
            for ref in pkg.get("externalRefs", ()):
                # spdx-tools writes the 2.2 spelling; 2.3 names it PACKAGE-MANAGER.
                ref["referenceCategory"] = ref["referenceCategory"].replace("_", "-")
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def document_namespace(inventory: Inventory) -> str:
    """``https://patchline.invalid/spdx/<image-name>-<uuid5 of the config digest>``."""
    name = _id_part(inventory.image.reference) or "image"
    return f"{NAMESPACE_BASE}{name}-{document_uuid(inventory, SbomFormat.SPDX)}"


def _document(inventory: Inventory, created: datetime) -> Document:
    layers = layer_by_index(inventory)
    packages = package_order(inventory.packages)
    # Purls and layers are checked before spdx-tools sees them, so a bad one is
    # reported by package rather than as a type error from its constructors.
    purls = [canonical_purl(p) for p in packages]
    placed = [package_layers(p, layers) for p in packages]
    try:
        creation = CreationInfo(
            spdx_version=SPDX_VERSION,
            spdx_id=DOCUMENT_ID,
            name=inventory.image.reference,
            document_namespace=document_namespace(inventory),
            creators=[Actor(ActorType.TOOL, f"{TOOL_NAME}-{tool_version()}")],
            created=created,
        )
        spdx_packages = [_image_package(inventory)]
        relationships = [Relationship(DOCUMENT_ID, RelationshipType.DESCRIBES, IMAGE_ID)]
        if inventory.distro is not None:
            spdx_packages.append(_os_package(inventory.distro))
            relationships.append(Relationship(IMAGE_ID, RelationshipType.CONTAINS, OS_ID))
        seen: set[str] = set()
        for pkg, purl, (introduced, changed) in zip(packages, purls, placed, strict=True):
            spdx_id = _package_id(pkg, purl, introduced, seen)
            spdx_packages.append(_package(pkg, purl, spdx_id, introduced, changed))
            relationships.append(Relationship(IMAGE_ID, RelationshipType.CONTAINS, spdx_id))
        return Document(creation, packages=spdx_packages, relationships=relationships)
    except (ValueError, TypeError) as exc:  # spdx-tools' ConstructorTypeErrors is a TypeError
        raise SbomError(f"image {inventory.image.reference}: cannot write SPDX: {exc}") from exc


def _image_package(inventory: Inventory) -> Package:
    info = inventory.image
    platform = "/".join(p for p in (info.os, info.architecture, info.variant) if p)
    facts = [f"config digest {info.config_digest}", f"platform {platform}"]
    if info.manifest_digest:
        facts.append(f"manifest digest {info.manifest_digest}")
    if info.repo_tags:
        facts.append(f"tags {', '.join(info.repo_tags)}")
    facts.extend(f"layer {layer.index} {layer.diff_id}" for layer in inventory.layers)
    return Package(
        spdx_id=IMAGE_ID,
        name=info.reference,
        download_location=SpdxNoAssertion(),
        version=info.manifest_digest or info.config_digest,
        files_analyzed=False,
        license_concluded=SpdxNoAssertion(),
        license_declared=SpdxNoAssertion(),
        copyright_text=SpdxNoAssertion(),
        comment="; ".join(facts),
        primary_package_purpose=PackagePurpose.CONTAINER,
    )


def _os_package(distro: Distro) -> Package:
    # No primaryPackagePurpose: spdx-tools writes OPERATING-SYSTEM (the 2.3 text)
    # while the published 2.3 JSON schema only allows OPERATING_SYSTEM.
    return Package(
        spdx_id=OS_ID,
        name=distro.id,
        download_location=SpdxNoAssertion(),
        version=distro.version_id,
        files_analyzed=False,
        license_concluded=SpdxNoAssertion(),
        license_declared=SpdxNoAssertion(),
        copyright_text=SpdxNoAssertion(),
        description=distro.pretty_name,
        comment="the image's operating system, from /etc/os-release",
    )


def _package(
    pkg: InventoryPackage, purl: str, spdx_id: str, introduced: Layer, changed: Layer
) -> Package:
    declared = declared_license(pkg.licenses)
    unparsed = [s for s in pkg.licenses if s.strip()] if declared is None else []
    return Package(
        spdx_id=spdx_id,
        name=pkg.name,
        download_location=SpdxNoAssertion(),
        version=pkg.version,
        files_analyzed=False,
        source_info=_source_info(pkg, introduced, changed),
        license_concluded=SpdxNoAssertion(),
        license_declared=SpdxNoAssertion() if declared is None else declared,
        license_comment=(
            "declared licences that are not an SPDX expression: " + "; ".join(unparsed)
            if unparsed
            else None
        ),
        copyright_text=SpdxNoAssertion(),
        external_references=[
            ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", purl)
        ],
        primary_package_purpose=PackagePurpose.LIBRARY,
    )


def _source_info(pkg: InventoryPackage, introduced: Layer, changed: Layer) -> str:
    parts = [f"introduced in image layer {introduced.index} ({introduced.diff_id})"]
    if changed.index != introduced.index:
        parts.append(f"last changed in image layer {changed.index} ({changed.diff_id})")
    if pkg.locations:
        parts.append(f"recorded in {', '.join(pkg.locations)}")
    if pkg.source_name:
        source = f"{pkg.source_name} {pkg.source_version}" if pkg.source_version else pkg.source_name
        parts.append(f"source package {source}")
    if pkg.cataloger:
        parts.append(f"found by {pkg.cataloger}")
    return "; ".join(parts)


def _package_id(pkg: InventoryPackage, purl: str, introduced: Layer, seen: set[str]) -> str:
    """``SPDXRef-Package-<ecosystem>-<name>-<hash>``: readable and unique."""
    base = (
        f"SPDXRef-Package-{pkg.ecosystem.value}-{_id_part(pkg.name)[:64]}-"
        f"{short_hash(purl, pkg.locations, introduced.diff_id)}"
    )
    spdx_id, n = base, 1
    while spdx_id in seen:  # identical records: only their position differs
        n += 1
        spdx_id = f"{base}-{n}"
    seen.add(spdx_id)
    return spdx_id


def _id_part(text: str) -> str:
    return _NOT_ID_CHARS.sub("-", text).strip("-.")


@functools.lru_cache(maxsize=4096)
def declared_license(licenses: tuple[str, ...]) -> object | None:
    """The licence strings as one parsed SPDX expression, or None if any is invalid.

    Several strings are combined with AND. None (and so NOASSERTION) also for a
    package without licence strings.
    """
    unique = list(dict.fromkeys(s.strip() for s in licenses if s.strip()))
    if not unique:
        return None
    text = unique[0] if len(unique) == 1 else " AND ".join(f"({s})" for s in unique)
    try:
        parsed: object = spdx_licensing.parse(text, validate=True)
    except Exception:  # license-expression raises several unrelated types on odd input
        return None
    return parsed

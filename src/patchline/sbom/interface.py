"""The SBOM format plug-in interface and the one entry point that writes an SBOM.

An SBOM writer turns an :class:`~patchline._model.Inventory` into one document.
Every writer obeys the same rules, so that the same inventory always gives the
same bytes:

- packages in :func:`package_order` (ecosystem, name, version, arch);
- identifiers (serial numbers, namespaces) derived from the image's config
  digest with :func:`document_uuid`, never random;
- the document's timestamp is the caller's ``created`` (default: now), in UTC,
  to the second;
- every purl is parsed (:func:`canonical_purl`) and a bad one is an
  :class:`SbomError` naming the package, never a library's stack trace.

Writers are sibling modules (``json``, ``cyclonedx``, ``spdx``), listed by
:class:`SbomFormat` in ``sbom/list.py``; :func:`~patchline.sbom.render_sbom` writes one.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import importlib.metadata
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Protocol, assert_never

from packageurl import PackageURL

from patchline._model import Inventory, Layer, Package, Purl
from patchline.errors import SbomError

__all__ = [
    "SbomError",
    "SbomFormat",
    "SbomWriter",
    "canonical_purl",
    "document_uuid",
    "layer_by_index",
    "package_layers",
    "package_order",
    "short_hash",
    "tool_version",
    "utc_timestamp",
]

TOOL_NAME = "patchline"


class SbomFormat(enum.StrEnum):
    """The documents patchline writes; the values are what ``--format`` accepts."""

    JSON = "json"  # patchline's own inventory JSON (docs/formats/inventory-json.md)
    CYCLONEDX = "cyclonedx"  # CycloneDX 1.6 JSON
    SPDX = "spdx"  # SPDX 2.3 JSON

    @property
    def media_type(self) -> str:
        match self:
            case SbomFormat.JSON:
                return "application/vnd.patchline.inventory.v1+json"
            case SbomFormat.CYCLONEDX:
                return "application/vnd.cyclonedx+json"
            case SbomFormat.SPDX:
                return "application/spdx+json"
            case _:
                assert_never(self)


class SbomWriter(Protocol):
    """One SBOM format. Implementations are sibling modules of this one, listed in ``sbom/list.py``."""

    @property
    def format(self) -> SbomFormat:
        """The format this writer produces."""

    def render(self, inventory: Inventory, *, created: datetime) -> str:
        """Render the whole document. ``created`` is timezone-aware UTC.

        Raise :class:`SbomError` if the inventory cannot be written.
        """


def utc_timestamp(when: datetime) -> str:
    """``2024-05-01T12:00:00Z``: the timestamp form all three formats accept."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@functools.cache
def tool_version() -> str:
    """patchline's installed version, as recorded in the documents' tool fields."""
    try:
        return importlib.metadata.version(TOOL_NAME)
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def document_uuid(inventory: Inventory, fmt: SbomFormat) -> uuid.UUID:
    """A UUID that is the same for every document of this image in this format."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"patchline:{fmt.value}:{inventory.image.config_digest}")


def _order_key(pkg: Package) -> tuple[object, ...]:
    # The first four are the documented order; the rest only break ties between
    # duplicates so that the input order never shows in the output.
    return (
        pkg.ecosystem.value,
        pkg.name,
        pkg.version,
        pkg.arch or "",
        pkg.purl,
        pkg.locations,
        pkg.introduced_in,
        pkg.changed_in,
        pkg.cataloger,
        pkg.source_name or "",
        pkg.source_version or "",
        pkg.licenses,
    )


def package_order(packages: Iterable[Package]) -> list[Package]:
    """Packages sorted by ecosystem, name, version and arch (then by the rest)."""
    return sorted(packages, key=_order_key)


def layer_by_index(inventory: Inventory) -> dict[int, Layer]:
    """The inventory's layers by index; :class:`SbomError` if an index repeats."""
    layers: dict[int, Layer] = {}
    for layer in inventory.layers:
        if layer.index in layers:
            raise SbomError(f"image {inventory.image.reference}: layer index {layer.index} repeats")
        layers[layer.index] = layer
    return layers


def package_layers(pkg: Package, layers: dict[int, Layer]) -> tuple[Layer, Layer]:
    """The layers that introduced and last changed ``pkg``; :class:`SbomError` if missing."""
    return (
        _package_layer(pkg, pkg.introduced_in, layers, "introduced_in"),
        _package_layer(pkg, pkg.changed_in, layers, "changed_in"),
    )


def _package_layer(pkg: Package, index: int, layers: dict[int, Layer], what: str) -> Layer:
    try:
        return layers[index]
    except KeyError:
        raise SbomError(
            f"package {pkg.name} {pkg.version}: {what} {index} is not a layer of the image"
            f" (it has {len(layers)})"
        ) from None


@functools.lru_cache(maxsize=8192)
def _parse_purl(purl: str) -> PackageURL:
    return PackageURL.from_string(purl)


def canonical_purl(pkg: Package) -> Purl:
    """The package's purl, parsed and re-serialised in canonical form.

    Raises :class:`SbomError` if it does not parse or its type is not the
    package's ecosystem.
    """
    try:
        parsed = _parse_purl(pkg.purl)
    except ValueError as exc:
        raise SbomError(
            f"package {pkg.name} {pkg.version}: invalid purl {pkg.purl!r}: {exc}",
            detail=f"cataloger {pkg.cataloger or '?'}, locations {', '.join(pkg.locations)}",
        ) from exc
    if parsed.type != pkg.ecosystem.value:
        raise SbomError(
            f"package {pkg.name} {pkg.version}: purl {pkg.purl!r} has type {parsed.type!r},"
            f" not the package's ecosystem {pkg.ecosystem.value!r}"
        )
    return Purl(parsed.to_string())


def short_hash(*parts: object) -> str:
    """16 hex digits that tell apart things whose readable names collide."""
    digest = hashlib.sha256("\x00".join(map(str, parts)).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]

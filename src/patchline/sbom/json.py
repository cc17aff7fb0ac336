"""patchline's own inventory JSON, ``patchline/inventory/v1``.

Lossless: :func:`load_inventory_json` reads back every field of the
:class:`~patchline._model.Inventory` that :class:`InventoryJsonWriter` wrote
(in the writer's order). The format is described in
``docs/formats/inventory-json.md``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from patchline._model import (
    Digest,
    Distro,
    Ecosystem,
    ImageInfo,
    Inventory,
    Layer,
    Package,
    Purl,
    Skipped,
)
from patchline.errors import SbomError
from patchline.sbom.interface import (
    TOOL_NAME,
    SbomFormat,
    canonical_purl,
    layer_by_index,
    package_layers,
    package_order,
    tool_version,
    utc_timestamp,
)

__all__ = ["SCHEMA", "InventoryJsonWriter", "inventory_to_dict", "load_inventory_json"]

SCHEMA = "patchline/inventory/v1"


class InventoryJsonWriter:
    """Writes ``patchline/inventory/v1`` documents."""

    @property
    def format(self) -> SbomFormat:
        return SbomFormat.JSON

    def render(self, inventory: Inventory, *, created: datetime) -> str:
        doc = inventory_to_dict(inventory, created=created)
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def inventory_to_dict(inventory: Inventory, *, created: datetime) -> dict[str, Any]:
    """The document as plain JSON data, before serialisation."""
    layers = layer_by_index(inventory)
    image = inventory.image
    return {
        "schema": SCHEMA,
        "created": utc_timestamp(created),
        "tool": {"name": TOOL_NAME, "version": tool_version()},
        "image": {
            "reference": image.reference,
            "manifest_digest": image.manifest_digest,
            "config_digest": image.config_digest,
            "platform": {
                "os": image.os,
                "architecture": image.architecture,
                "variant": image.variant,
            },
            "created": image.created,
            "tags": list(image.repo_tags),
        },
        "distro": _distro_to_dict(inventory.distro),
        "layers": [_layer_to_dict(layers[i]) for i in sorted(layers)],
        "packages": [_package_to_dict(p, layers) for p in package_order(inventory.packages)],
        "skipped": [
            _skipped_to_dict(s, layers)
            for s in sorted(
                inventory.skipped,
                key=lambda s: (s.path, s.cataloger, s.reason, -1 if s.layer is None else s.layer),
            )
        ],
        "catalogers": [
            {"name": name, "version": version} for name, version in sorted(inventory.catalogers)
        ],
        "system_files": [{"path": path, "text": text} for path, text in inventory.system_files],
    }


def _distro_to_dict(distro: Distro | None) -> dict[str, Any] | None:
    if distro is None:
        return None
    return {
        "id": distro.id,
        "version_id": distro.version_id,
        "version_codename": distro.version_codename,
        "pretty_name": distro.pretty_name,
        "id_like": list(distro.id_like),
    }


def _layer_to_dict(layer: Layer) -> dict[str, Any]:
    return {
        "index": layer.index,
        "diff_id": layer.diff_id,
        "digest": layer.digest,
        "media_type": layer.media_type,
        "size": layer.size,
        "created_by": layer.created_by,
    }


def _package_to_dict(pkg: Package, layers: dict[int, Layer]) -> dict[str, Any]:
    canonical_purl(pkg)  # refuse what later stages could not parse
    introduced, changed = package_layers(pkg, layers)
    return {
        "ecosystem": pkg.ecosystem.value,
        "name": pkg.name,
        "version": pkg.version,
        "arch": pkg.arch,
        "purl": pkg.purl,
        "source_name": pkg.source_name,
        "source_version": pkg.source_version,
        "licenses": list(pkg.licenses),
        "cataloger": pkg.cataloger,
        "locations": list(pkg.locations),
        "introduced_in": {"index": introduced.index, "diff_id": introduced.diff_id},
        "changed_in": {"index": changed.index, "diff_id": changed.diff_id},
    }


def _skipped_to_dict(skipped: Skipped, layers: dict[int, Layer]) -> dict[str, Any]:
    layer: dict[str, Any] | None = None
    if skipped.layer is not None:
        known = layers.get(skipped.layer)
        layer = {"index": skipped.layer, "diff_id": known.diff_id if known else None}
    return {
        "path": skipped.path,
        "reason": skipped.reason,
        "cataloger": skipped.cataloger,
        "layer": layer,
    }


# --- reading ---------------------------------------------------------------------------


def load_inventory_json(text: str | bytes) -> Inventory:
    """Read a ``patchline/inventory/v1`` document back into an :class:`Inventory`.

    Raises :class:`SbomError` naming the offending field if the text is not
    such a document.
    """
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SbomError(f"inventory JSON does not parse: {exc}") from exc
    except RecursionError as exc:
        raise SbomError("inventory JSON is nested too deeply") from exc
    root = _obj(doc, "$")
    schema = root.get("schema")
    if schema != SCHEMA:
        raise SbomError(f"inventory JSON has schema {schema!r}, expected {SCHEMA!r}")

    image = _obj(root.get("image"), "$.image")
    platform = _obj(image.get("platform"), "$.image.platform")
    info = ImageInfo(
        reference=_str(image, "reference", "$.image"),
        manifest_digest=_opt_digest(image, "manifest_digest", "$.image"),
        config_digest=Digest(_str(image, "config_digest", "$.image")),
        os=_str(platform, "os", "$.image.platform"),
        architecture=_str(platform, "architecture", "$.image.platform"),
        variant=_opt_str(platform, "variant", "$.image.platform"),
        created=_opt_str(image, "created", "$.image"),
        repo_tags=_str_tuple(image, "tags", "$.image"),
    )
    layers = tuple(
        _load_layer(_obj(item, f"$.layers[{i}]"), f"$.layers[{i}]")
        for i, item in enumerate(_list(root, "layers", "$"))
    )
    by_index = {layer.index: layer for layer in layers}
    distro = root.get("distro")
    return Inventory(
        image=info,
        layers=layers,
        distro=None if distro is None else _load_distro(_obj(distro, "$.distro")),
        packages=tuple(
            _load_package(_obj(item, f"$.packages[{i}]"), f"$.packages[{i}]", by_index)
            for i, item in enumerate(_list(root, "packages", "$"))
        ),
        skipped=tuple(
            _load_skipped(_obj(item, f"$.skipped[{i}]"), f"$.skipped[{i}]")
            for i, item in enumerate(_list(root, "skipped", "$"))
        ),
        catalogers=tuple(
            (
                _str(_obj(item, f"$.catalogers[{i}]"), "name", f"$.catalogers[{i}]"),
                _str(_obj(item, f"$.catalogers[{i}]"), "version", f"$.catalogers[{i}]"),
            )
            for i, item in enumerate(_list(root, "catalogers", "$"))
        ),
        system_files=tuple(
            (
                _str(_obj(item, f"$.system_files[{i}]"), "path", f"$.system_files[{i}]"),
                _str(_obj(item, f"$.system_files[{i}]"), "text", f"$.system_files[{i}]"),
            )
            # Optional: documents written before this field existed have none.
            for i, item in enumerate(_list(root, "system_files", "$") if "system_files" in root else [])
        ),
    )


def _load_layer(item: dict[str, Any], where: str) -> Layer:
    return Layer(
        index=_int(item, "index", where),
        diff_id=Digest(_str(item, "diff_id", where)),
        digest=_opt_digest(item, "digest", where),
        media_type=_opt_str(item, "media_type", where),
        size=_opt_int(item, "size", where),
        created_by=_opt_str(item, "created_by", where),
    )


def _load_distro(item: dict[str, Any]) -> Distro:
    where = "$.distro"
    return Distro(
        id=_str(item, "id", where),
        version_id=_opt_str(item, "version_id", where),
        version_codename=_opt_str(item, "version_codename", where),
        pretty_name=_opt_str(item, "pretty_name", where),
        id_like=_str_tuple(item, "id_like", where),
    )


def _load_package(item: dict[str, Any], where: str, layers: dict[int, Layer]) -> Package:
    ecosystem = _str(item, "ecosystem", where)
    try:
        eco = Ecosystem(ecosystem)
    except ValueError:
        raise SbomError(f"{where}.ecosystem: unknown ecosystem {ecosystem!r}") from None
    return Package(
        ecosystem=eco,
        name=_str(item, "name", where),
        version=_str(item, "version", where),
        purl=Purl(_str(item, "purl", where)),
        introduced_in=_layer_ref(item, "introduced_in", where, layers),
        changed_in=_layer_ref(item, "changed_in", where, layers),
        locations=_str_tuple(item, "locations", where),
        source_name=_opt_str(item, "source_name", where),
        source_version=_opt_str(item, "source_version", where),
        arch=_opt_str(item, "arch", where),
        licenses=_str_tuple(item, "licenses", where),
        cataloger=_str(item, "cataloger", where),
    )


def _layer_ref(item: dict[str, Any], key: str, where: str, layers: dict[int, Layer]) -> int:
    ref = _obj(item.get(key), f"{where}.{key}")
    index = _int(ref, "index", f"{where}.{key}")
    layer = layers.get(index)
    if layer is None:
        raise SbomError(f"{where}.{key}: layer {index} is not in $.layers")
    diff_id = ref.get("diff_id")
    if diff_id is not None and diff_id != layer.diff_id:
        raise SbomError(
            f"{where}.{key}: diff_id {diff_id} is not that of layer {index} ({layer.diff_id})"
        )
    return index


def _load_skipped(item: dict[str, Any], where: str) -> Skipped:
    layer = item.get("layer")
    return Skipped(
        path=_str(item, "path", where),
        reason=_str(item, "reason", where),
        cataloger=_str(item, "cataloger", where),
        layer=None if layer is None else _int(_obj(layer, f"{where}.layer"), "index", where),
    )


def _obj(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SbomError(f"{where}: expected an object, found {_kind(value)}")
    return value


def _list(item: dict[str, Any], key: str, where: str) -> list[Any]:
    value = item.get(key)
    if not isinstance(value, list):
        raise SbomError(f"{where}.{key}: expected an array, found {_kind(value)}")
    return value


def _str(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise SbomError(f"{where}.{key}: expected a string, found {_kind(value)}")
    return value


def _opt_str(item: dict[str, Any], key: str, where: str) -> str | None:
    return None if item.get(key) is None else _str(item, key, where)


def _opt_digest(item: dict[str, Any], key: str, where: str) -> Digest | None:
    value = _opt_str(item, key, where)
    return None if value is None else Digest(value)


def _int(item: dict[str, Any], key: str, where: str) -> int:
    value = item.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise SbomError(f"{where}.{key}: expected an integer, found {_kind(value)}")
    return value


def _opt_int(item: dict[str, Any], key: str, where: str) -> int | None:
    return None if item.get(key) is None else _int(item, key, where)


def _str_tuple(item: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    values = _list(item, key, where)
    for i, value in enumerate(values):
        if not isinstance(value, str):
            raise SbomError(f"{where}.{key}[{i}]: expected a string, found {_kind(value)}")
    return tuple(values)


def _kind(value: object) -> str:
    if value is None:
        return "null or nothing"
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)

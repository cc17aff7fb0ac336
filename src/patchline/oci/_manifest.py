"""Parsing manifests, indexes and image configs; choosing a platform."""

from __future__ import annotations

import json
import platform as _platform
from collections.abc import Mapping
from typing import Any

from patchline._model import Digest
from patchline.errors import ManifestError, PlatformError
from patchline.oci.interface import (
    DOCKER_CONFIG,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_CONFIG,
    Descriptor,
    HistoryEntry,
    ImageConfig,
    Platform,
)

_MACHINE_TO_ARCH = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i686": ("386", None),
    "i386": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}


def host_platform() -> Platform:
    arch, variant = _MACHINE_TO_ARCH.get(_platform.machine().lower(), (_platform.machine(), None))
    return Platform("linux", arch, variant)


def parse_platform(text: str) -> Platform:
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ManifestError(f"platform {text!r} is not os/arch[/variant]")
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def load_json(data: bytes, what: str) -> Mapping[str, Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{what} is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # a few hundred KB of nested brackets: hostile, not a manifest
        raise ManifestError(f"{what} is nested too deeply to be a manifest, index or config") from exc
    if not isinstance(doc, dict):
        raise ManifestError(f"{what} is not a JSON object")
    return doc


def _descriptor(obj: Any, what: str) -> Descriptor:
    if not isinstance(obj, dict):
        raise ManifestError(f"{what}: descriptor is not an object")
    try:
        media_type = str(obj["mediaType"])
        digest = str(obj["digest"])
        size = int(obj["size"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"{what}: descriptor lacks mediaType, digest or size") from exc
    if ":" not in digest or size < 0:
        raise ManifestError(f"{what}: invalid descriptor digest {digest!r} or size {size}")
    plat = obj.get("platform")
    platform = None
    if isinstance(plat, dict) and "os" in plat and "architecture" in plat:
        platform = Platform(str(plat["os"]), str(plat["architecture"]), plat.get("variant"))
    annotations = obj.get("annotations") or {}
    return Descriptor(media_type, Digest(digest), size, platform, dict(annotations))


def media_type_of(doc: Mapping[str, Any], fallback: str | None = None) -> str:
    media_type = doc.get("mediaType") or fallback
    if not media_type:
        # OCI allows mediaType to be absent; infer from the shape.
        if "manifests" in doc:
            return INDEX_TYPES[0]
        if "layers" in doc and "config" in doc:
            return MANIFEST_TYPES[0]
        raise ManifestError("document has no mediaType and is neither an index nor a manifest")
    return str(media_type)


def parse_index(doc: Mapping[str, Any]) -> tuple[Descriptor, ...]:
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise ManifestError("index has no manifests list")
    return tuple(_descriptor(m, "index") for m in manifests)


def parse_manifest(doc: Mapping[str, Any]) -> tuple[Descriptor, tuple[Descriptor, ...]]:
    """Return (config descriptor, layer descriptors)."""
    if doc.get("schemaVersion") != 2:
        raise ManifestError(f"unsupported manifest schemaVersion {doc.get('schemaVersion')!r}")
    config = _descriptor(doc.get("config"), "manifest config")
    if config.media_type not in (OCI_CONFIG, DOCKER_CONFIG):
        raise ManifestError(f"manifest config has media type {config.media_type}: not a container image")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ManifestError("manifest has no layers list")
    return config, tuple(_descriptor(layer, "manifest layer") for layer in layers)


def select_platform(manifests: tuple[Descriptor, ...], wanted: Platform) -> Descriptor:
    """The index entry for a platform; the variant is matched when both name one."""
    candidates = [
        m
        for m in manifests
        if m.platform is not None
        and m.platform.os == wanted.os
        and m.platform.architecture == wanted.architecture
        and m.media_type in (*MANIFEST_TYPES, *INDEX_TYPES)
    ]
    exact = [m for m in candidates if wanted.variant is None or m.platform is None
             or m.platform.variant in (None, wanted.variant)]
    if exact:
        return exact[0]
    available = ", ".join(str(m.platform) for m in manifests if m.platform) or "none"
    raise PlatformError(f"no image for platform {wanted} (available: {available})")


def parse_config(data: bytes) -> ImageConfig:
    doc = load_json(data, "image config")
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise ManifestError("image config has no rootfs.diff_ids")
    diff_ids = tuple(Digest(str(d)) for d in rootfs["diff_ids"])
    history = tuple(
        HistoryEntry(
            created_by=h.get("created_by"),
            empty_layer=bool(h.get("empty_layer", False)),
            created=h.get("created"),
        )
        for h in doc.get("history") or []
        if isinstance(h, dict)
    )
    return ImageConfig(
        os=str(doc.get("os", "linux")),
        architecture=str(doc.get("architecture", "amd64")),
        variant=doc.get("variant"),
        created=doc.get("created"),
        diff_ids=diff_ids,
        history=history,
        raw=doc,
    )


def layer_created_by(config: ImageConfig) -> list[str | None]:
    """The history line that made each layer (history entries with a layer, in order)."""
    lines = [h.created_by for h in config.history if not h.empty_layer]
    if len(lines) != len(config.diff_ids):
        return [None] * len(config.diff_ids)
    return lines

"""``docker save`` / ``podman save`` tarballs (``docker-archive:FILE[:REF]``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from patchline._model import Digest
from patchline.errors import ImageNotFound, ManifestError
from patchline.oci._blob import digest_bytes
from patchline.oci._layout import StoreSource, _TarStore, read_small
from patchline.oci._manifest import parse_config
from patchline.oci.interface import Descriptor, ResolvedImage

DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
_BLOB_PATH = re.compile(r"^blobs/(sha256)/([0-9a-f]{64})$")


class DockerArchiveSource(StoreSource):
    """Reads the legacy ``manifest.json`` format both docker and podman write."""

    def __init__(self, path: str | Path, *, name: str | None = None, reference: str | None = None) -> None:
        self.path = Path(path)
        self._name = name
        self._reference = reference or f"docker-archive:{path}" + (f":{name}" if name else "")
        self._archive = _TarStore(self.path)
        self._store = self._archive

    def _entry(self) -> dict[str, Any]:
        try:
            manifest = json.loads(read_small(self._store, "manifest.json", "manifest.json"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{self._reference}: manifest.json is not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise ManifestError(f"{self._reference}: manifest.json is nested too deeply") from exc
        if not isinstance(manifest, list) or not manifest or not all(isinstance(e, dict) for e in manifest):
            raise ManifestError(f"{self._reference}: manifest.json is not a list of images")
        if self._name is None:
            if len(manifest) > 1:
                tags = ", ".join(t for e in manifest for t in e.get("RepoTags") or [])
                raise ImageNotFound(f"{self._reference}: the archive holds {len(manifest)} images; name one ({tags})")
            first: dict[str, Any] = manifest[0]
            return first
        for entry in manifest:
            repo_tags: list[str] = entry.get("RepoTags") or []
            if self._name in repo_tags or any(t.endswith("/" + self._name) for t in repo_tags):
                found: dict[str, Any] = entry
                return found
        raise ImageNotFound(f"{self._reference}: no image tagged {self._name!r} in the archive")

    def resolve(self) -> ResolvedImage:
        entry = self._entry()
        config_path = entry.get("Config")
        layers = entry.get("Layers")
        if not isinstance(config_path, str) or not isinstance(layers, list):
            raise ManifestError(f"{self._reference}: manifest.json entry lacks Config or Layers")
        config_bytes = read_small(self._store, config_path, "image config")
        config = parse_config(config_bytes)
        if len(layers) != len(config.diff_ids):
            raise ManifestError(
                f"{self._reference}: {len(layers)} layers but the config lists {len(config.diff_ids)} diff_ids"
            )
        descriptors = []
        for layer_path, diff_id in zip(layers, config.diff_ids, strict=True):
            m = _BLOB_PATH.match(str(layer_path))
            # Legacy "<id>/layer.tar" entries are uncompressed: their digest is the diff_id.
            digest = Digest(f"{m.group(1)}:{m.group(2)}") if m else diff_id
            size = self._archive.size_of(str(layer_path))
            if size is None:
                raise ImageNotFound(f"{self._reference}: layer {layer_path} is missing from the archive")
            descriptors.append(Descriptor(DOCKER_LAYER, digest, size, annotations={"path": str(layer_path)}))
        return ResolvedImage(
            reference=self._reference,
            manifest_digest=None,
            config_digest=digest_bytes(config_bytes),
            config=config,
            layers=tuple(descriptors),
            repo_tags=tuple(entry.get("RepoTags") or ()),
        )

    def _blob_path(self, descriptor: Descriptor) -> str:
        return descriptor.annotations["path"]

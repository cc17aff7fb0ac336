"""Write real OCI image layouts from layer contents, for tests and benchmarks.

A layer is a list of ``Entry`` (or a ready tar); the layout has an index, a
manifest, a config with correct diff_ids and history, and blobs compressed as
asked. Nothing here is a fake: skopeo and podman read these layouts.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import zstandard


@dataclass(frozen=True)
class Entry:
    path: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    link: str = ""
    mode: int = 0o644


def file(path: str, data: bytes | str) -> Entry:
    return Entry(path, data.encode() if isinstance(data, str) else data)


def whiteout(path: str) -> Entry:
    parent, _, base = path.rpartition("/")
    return Entry(f"{parent}/.wh.{base}" if parent else f".wh.{base}")


def opaque(directory: str) -> Entry:
    return Entry(f"{directory.rstrip('/')}/.wh..wh..opq")


def symlink(path: str, target: str) -> Entry:
    return Entry(path, type=tarfile.SYMTYPE, link=target, mode=0o777)


def hardlink(path: str, target: str) -> Entry:
    return Entry(path, type=tarfile.LNKTYPE, link=target)


def directory(path: str) -> Entry:
    return Entry(path, type=tarfile.DIRTYPE, mode=0o755)


def make_tar(entries: list[Entry], *, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for e in entries:
            info = tarfile.TarInfo(e.path)
            info.type = e.type
            info.mode = e.mode
            info.mtime = 0
            info.linkname = e.link
            if e.type == tarfile.REGTYPE:
                info.size = len(e.data)
                tar.addfile(info, io.BytesIO(e.data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


LAYER_MEDIA = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


def compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def write_blob(root: Path, data: bytes) -> str:
    digest = sha256(data)
    path = root / "blobs" / "sha256" / digest[7:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return digest


def write_layout(
    root: Path,
    layers: list[list[Entry] | bytes],
    *,
    compression: str | list[str] = "gzip",
    tag: str = "latest",
    created_by: list[str] | None = None,
) -> dict[str, str]:
    """Write an OCI layout; returns the digests (manifest, config, and layer blobs)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    descriptors = []
    diff_ids = []
    comps = compression if isinstance(compression, list) else [compression] * len(layers)
    for layer, how in zip(layers, comps, strict=True):
        tar = layer if isinstance(layer, bytes) else make_tar(layer)
        diff_ids.append(sha256(tar))
        blob = compress(tar, how)
        digest = write_blob(root, blob)
        descriptors.append({"mediaType": LAYER_MEDIA[how], "digest": digest, "size": len(blob)})
    history = [{"created_by": (created_by or [f"layer {i}" for i in range(len(layers))])[i]}
               for i in range(len(layers))]
    config = json.dumps({
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(0)),
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }, sort_keys=True).encode()
    config_digest = write_blob(root, config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": descriptors,
    }, sort_keys=True).encode()
    manifest_digest = write_blob(root, manifest)
    index = {
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    }
    (root / "index.json").write_text(json.dumps(index))
    return {"manifest": manifest_digest, "config": config_digest,
            **{f"layer{i}": d["digest"] for i, d in enumerate(descriptors)}}

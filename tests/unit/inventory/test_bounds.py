"""Resource bounds: big layers are streamed, never held in memory.

Each scan runs in a fresh Python process that reports its own peak RSS, so the
measurement is not polluted by the test runner.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

from tests.support.ocibuild import LAYER_MEDIA, write_blob

_SCAN = """
import json, resource, sys
from patchline.inventory import scan_image
from patchline.oci._layout import LayoutSource
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with LayoutSource(sys.argv[1]) as source:
    inv = scan_image(source)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"packages": [p.name for p in inv.packages], "skipped": [s.reason for s in inv.skipped],
                  "before_kib": before, "peak_kib": peak}))
"""


class _Zeros:
    """A file object of n zero bytes, produced lazily."""

    def __init__(self, n: int) -> None:
        self.left = n

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        self.left -= size
        return bytes(size)


class _HashingWriter:
    def __init__(self, raw: object) -> None:
        self.raw = raw
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return self.raw.write(data)  # type: ignore[attr-defined, no-any-return]


def _streamed_layout(root: Path, fill: object) -> None:
    """Write a one-layer layout whose tar is produced by ``fill(tar)`` straight into gzip."""
    root.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    blob_tmp = root / "layer.tmp"
    with blob_tmp.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz:
        hashing = _HashingWriter(gz)
        with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            fill(tar)  # type: ignore[operator]
    diff_id = "sha256:" + hashing.hash.hexdigest()
    data = blob_tmp.read_bytes()
    blob_tmp.unlink()
    layer = write_blob(root, data)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    cfg = write_blob(root, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": len(config)},
        "layers": [{"mediaType": LAYER_MEDIA["gzip"], "digest": layer, "size": len(data)}],
    }).encode()
    man = write_blob(root, manifest)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": man, "size": len(manifest)}]}))


def _scan(root: Path) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", _SCAN, str(root)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_one_hundred_thousand_small_files(tmp_path: Path) -> None:
    def fill(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("var/lib/dpkg/status")
        body = b"Package: base-files\nStatus: install ok installed\nVersion: 12.4\nArchitecture: amd64\n"
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
        for i in range(100_000):
            info = tarfile.TarInfo(f"usr/share/many/{i // 1000:03d}/file-{i:06d}.txt")
            info.size = 16
            tar.addfile(info, io.BytesIO(b"x" * 16))

    _streamed_layout(tmp_path / "layout", fill)
    result = _scan(tmp_path / "layout")
    assert result["packages"] == ["base-files"]
    assert result["skipped"] == []
    # The walker keeps the layer's regular paths (for hard-link checks), nothing else per file.
    assert int(result["peak_kib"]) - int(result["before_kib"]) < 96 * 1024  # type: ignore[call-overload]


def test_a_huge_file_is_streamed_not_held(tmp_path: Path) -> None:
    size = 256 * 1024 * 1024

    def fill(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("srv/data/huge.bin")
        info.size = size
        tar.addfile(info, _Zeros(size))  # type: ignore[arg-type]
        info = tarfile.TarInfo("srv/node_modules/huge/package.json")  # declared, but over the size limit
        info.size = 80 * 1024 * 1024
        tar.addfile(info, _Zeros(info.size))  # type: ignore[arg-type]

    _streamed_layout(tmp_path / "layout", fill)
    result = _scan(tmp_path / "layout")
    assert result["packages"] == []
    skipped = result["skipped"]
    assert isinstance(skipped, list) and len(skipped) == 1
    assert skipped[0].startswith(f"file is {80 * 1024 * 1024} bytes, over the ")
    assert int(result["peak_kib"]) - int(result["before_kib"]) < 64 * 1024  # type: ignore[call-overload]

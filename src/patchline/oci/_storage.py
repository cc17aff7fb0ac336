"""Local podman / buildah storage (``containers-storage:REF``), through skopeo and podman.

Storage keeps layers unpacked, so there are no blobs to stream. The image is
resolved from its config alone (cheap). A layer the scan needs (one not in the
catalog cache) is read straight from the overlay driver's directories, put back
together byte for byte from its tar-split (``_tarsplit``), and checked against
its diff_id. Where that is not possible (another driver, files it cannot read),
the image is exported, once, to an OCI layout with uncompressed layers, whose
layer digests are then the diff_ids; a layer whose direct read fails halfway
goes on from the export at the same offset.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, cast

from patchline._host import DEFAULT_TIMEOUT, run_tool
from patchline._model import Digest
from patchline.errors import HostError, ImageNotFound, ManifestError
from patchline.oci._blob import VerifyingReader, digest_bytes
from patchline.oci._layout import _DirStore, blob_path, resolve_in_store
from patchline.oci._manifest import parse_config
from patchline.oci._tarsplit import LayerStream, OverlayLayer, StorageUnavailable, overlay_layers
from patchline.oci.interface import Descriptor, ImageSource, ResolvedImage

OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(argv: list[str], what: str, *, timeout: float | None = DEFAULT_TIMEOUT) -> bytes:
    missing = f"{argv[0]} is not installed; it is needed to {what} (run scripts/setup-host.sh)"
    if shutil.which(argv[0]) is None:
        raise HostError(missing)
    proc = run_tool(argv, what=f"{argv[0]} ({what})", missing=missing, timeout=timeout, binary=True)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        if "image not known" in err or "does not resolve to an image" in err or "no such image" in err.lower():
            raise ImageNotFound(f"no image {argv[-1]} in local containers storage")
        raise HostError(f"{argv[0]} failed to {what}: {err.splitlines()[-1] if err else proc.returncode}",
                        detail=err)
    return proc.stdout


class ContainersStorageSource:
    blobs_content_addressed = True  # root's own storage, layers checked against their diff_id when stored
    def __init__(self, name: str, *, reference: str | None = None, shared_export: Path | None = None) -> None:
        self._name = name
        self._shared = shared_export
        self._reference = reference or f"containers-storage:{name}"
        self._export: tempfile.TemporaryDirectory[str] | None = None
        self._exported: dict[Digest, Descriptor] = {}
        self._image_id: str | None = None
        self._lock = threading.Lock()
        self._done = False
        self._overlay: dict[Digest, OverlayLayer] = {}
        self._resolved: ResolvedImage | None = None
        self.direct = True  # read layers from the storage directories when possible
        self.read_via: dict[Digest, str] = {}  # diff_id -> "storage" or "export": how each layer was read

    def resolve(self) -> ResolvedImage:
        if self._resolved is None:
            self._resolved = self._resolve()
        return self._resolved

    def _resolve(self) -> ResolvedImage:
        info = json.loads(_run(["podman", "image", "inspect", self._name], "inspect the image"))
        if not info:
            raise ImageNotFound(f"no image {self._name} in local containers storage")
        image = info[0]
        self._image_id = str(image["Id"])
        config_bytes = _run(
            ["skopeo", "inspect", "--config", "--raw", f"containers-storage:{self._image_id}"],
            "read the image config",
        )
        config_digest = digest_bytes(config_bytes)
        if config_digest.split(":", 1)[1] != self._image_id:
            raise ManifestError(f"{self._reference}: the config does not hash to the image ID")
        config = parse_config(config_bytes)
        layers = tuple(Descriptor(OCI_LAYER_TAR, d, -1) for d in config.diff_ids)
        driver = image.get("GraphDriver") or {}
        overlay = overlay_layers(str(driver.get("Name") or ""), dict(driver.get("Data") or {}))
        if overlay is not None and len(overlay) == len(config.diff_ids):
            self._overlay = dict(zip(config.diff_ids, overlay, strict=True))
        manifest_digest = image.get("Digest")
        return ResolvedImage(
            reference=self._reference,
            manifest_digest=Digest(manifest_digest) if manifest_digest else None,
            config_digest=config_digest,
            config=config,
            layers=layers,
            repo_tags=tuple(image.get("RepoTags") or ()),
        )

    def _export_layout(self) -> None:
        with self._lock:  # layers are opened from several threads; export once
            if not self._done:
                self._do_export()

    def _do_export(self) -> None:
        if self._image_id is None:
            self.resolve()
        if self._shared is not None:
            # A layout shared by the images of one run: skopeo skips the blobs already there, so a fleet built
            # FROM one base exports the base's layers once instead of once per image.
            self._shared.mkdir(parents=True, exist_ok=True)
            layout, name, export = self._shared, f"i{self._image_id}", None
            with _file_lock(self._shared / ".lock"):  # index.json is rewritten by every copy
                self._copy(layout, name)
                store = _DirStore(layout)
                exported = resolve_in_store(store, name=name, platform=None, reference=self._reference)
        else:
            export = tempfile.TemporaryDirectory(prefix="patchline-storage-")
            layout, name = Path(export.name) / "layout", "image"
            self._copy(layout, name)
            store = _DirStore(layout)
            exported = resolve_in_store(store, name=name, platform=None, reference=self._reference)
        for descriptor, diff_id in zip(exported.layers, exported.config.diff_ids, strict=True):
            self._exported[diff_id] = descriptor
        self._store = store
        self._export = export
        self._done = True

    def _copy(self, layout: Path, name: str) -> None:
        _run(
            # --remove-signatures: an image pulled with signatures cannot be copied into an OCI layout otherwise.
            ["skopeo", "copy", "--quiet", "--remove-signatures", "--dest-oci-accept-uncompressed-layers",
             f"containers-storage:{self._image_id}", f"oci:{layout}:{name}"],
            "export the image from containers storage",
            timeout=None,  # as long as the image's size makes it take
        )

    @contextlib.contextmanager
    def _open_exported(self, diff_id: Digest) -> Iterator[IO[bytes]]:
        self._export_layout()
        exported = self._exported.get(diff_id)
        if exported is None:
            raise ImageNotFound(f"{self._reference}: layer {diff_id} is not in the exported image")
        with self._store.open(blob_path(exported.digest)) as fh:
            yield fh

    @contextlib.contextmanager
    def _open(self, descriptor: Descriptor) -> Iterator[IO[bytes]]:
        digest = descriptor.digest
        layer = self._overlay.get(digest) if self.direct else None
        with contextlib.ExitStack() as stack:
            if layer is None:
                self.read_via[digest] = "export"
                raw: IO[bytes] = stack.enter_context(self._open_exported(digest))
            else:
                # Any surprise in the storage directories shows at the first read, or halfway: the export
                # takes over from there.
                self.read_via[digest] = "storage"
                raw = cast(IO[bytes], _Resuming(
                    layer.open(), lambda: stack.enter_context(self._open_exported(digest)),
                    on_fallback=lambda: self.read_via.__setitem__(digest, "export")))
            yield VerifyingReader(raw, digest=digest, size=None, what="layer")  # type: ignore[misc]

    def open_blob(self, descriptor: Descriptor) -> contextlib.AbstractContextManager[IO[bytes]]:
        return self._open(descriptor)

    def close(self) -> None:
        if self._export is not None:
            self._export.cleanup()
            self._export = None
        self._done = False

    def __enter__(self) -> ImageSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Resuming(io.RawIOBase):
    """The direct read of a layer, going on from the export at the same offset if the direct read fails."""

    def __init__(self, direct: LayerStream, exported: Callable[[], IO[bytes]], *,
                 on_fallback: Callable[[], None]) -> None:
        self._direct: LayerStream | None = direct
        self._exported = exported
        self._on_fallback = on_fallback
        self._fallback: IO[bytes] | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._direct is not None:
            try:
                return self._direct.readinto(buffer)
            except StorageUnavailable:
                offset = self._direct.offset
                self._direct = None
                self._on_fallback()
                self._fallback = self._exported()
                self._fallback.seek(offset)
        assert self._fallback is not None
        data = self._fallback.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

"""Scan an image: resolve it, walk (or recall from cache) each layer, compose."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from patchline._model import Digest, ImageInfo, Inventory, Layer
from patchline.catalog.interface import Cataloger
from patchline.catalog.list import DEFAULT_CATALOGERS
from patchline.errors import BlobError, LayerError, ManifestError
from patchline.inventory._cache import LayerCache
from patchline.inventory._compose import compose
from patchline.inventory._decompress import TarStream
from patchline.inventory._walk import LayerCatalog, Matcher, walk_layer
from patchline.oci import layer_created_by
from patchline.oci.interface import Descriptor, ImageSource, ResolvedImage, iter_chunks


class ScanProgress(Protocol):
    """Receives progress of a scan; the CLI draws it, libraries may ignore it."""

    def resolved(self, image: ResolvedImage) -> None: ...

    def layer_started(self, index: int, descriptor: Descriptor, *, cached: bool) -> None: ...

    def layer_advanced(self, index: int, done: int) -> None: ...

    def layer_finished(self, index: int) -> None: ...


class _NoProgress:
    def resolved(self, image: ResolvedImage) -> None:
        pass

    def layer_started(self, index: int, descriptor: Descriptor, *, cached: bool) -> None:
        pass

    def layer_advanced(self, index: int, done: int) -> None:
        pass

    def layer_finished(self, index: int) -> None:
        pass


def _recall(cache: LayerCache, source: ImageSource, descriptor: Descriptor, diff_id: Digest) -> LayerCatalog | None:
    """The cached catalog of a layer, only when its blob is known to unpack to ``diff_id``: a pair patchline
    verified when it read that blob. In an archive the blob's bytes are hashed first (its name is a claim)."""
    if cache.verified_diff_id(descriptor.digest) != diff_id:
        return None
    cached = cache.get(diff_id)
    if cached is not None and not source.blobs_content_addressed:
        with source.open_blob(descriptor) as stream:
            for _chunk in iter_chunks(stream):  # raises DigestMismatch at the end if the name lies
                pass
    return cached


def _walk_blob(
    source: ImageSource,
    descriptor: Descriptor,
    diff_id: Digest,
    matcher: Matcher,
    index: int,
    progress: ScanProgress,
) -> LayerCatalog:
    with source.open_blob(descriptor) as raw:
        tar = TarStream(raw, diff_id=diff_id)

        def advanced(_offset: int) -> None:
            done = getattr(raw, "bytes_read", None)
            progress.layer_advanced(index, done if isinstance(done, int) else 0)

        try:
            layer = walk_layer(tar.stream, diff_id=diff_id, matcher=matcher, on_progress=advanced)
            tar.finish()
        except (LayerError, BlobError) as exc:
            raise type(exc)(f"layer {index} ({descriptor.digest}): {exc.message}", detail=exc.detail) from exc
    return LayerCatalog(
        diff_id=layer.diff_id,
        files=layer.files,
        whiteouts=layer.whiteouts,
        opaque_dirs=layer.opaque_dirs,
        problems=layer.problems,
        entries=layer.entries,
        size=tar.size,
        compression=tar.compression,
    )


def scan_image(
    source: ImageSource,
    *,
    catalogers: Sequence[Cataloger] = DEFAULT_CATALOGERS,
    cache: LayerCache | None = None,
    progress: ScanProgress | None = None,
    jobs: int | None = None,
) -> Inventory:
    """Inventory every package of an image, with the layers that brought them in.

    Layers whose catalog is in ``cache`` are not read at all; the others are
    walked ``jobs`` at a time (default: one per core).
    """
    if not catalogers:
        raise ValueError("scan_image needs at least one cataloger")
    progress = progress or _NoProgress()
    image = source.resolve()
    progress.resolved(image)
    diff_ids = image.config.diff_ids
    if len(diff_ids) != len(image.layers):
        raise ManifestError(
            f"image has {len(image.layers)} layers but its config lists {len(diff_ids)} diff_ids"
        )
    matcher = Matcher(catalogers)
    catalogs: list[LayerCatalog | None] = []
    missing: list[int] = []
    for index, (descriptor, diff_id) in enumerate(zip(image.layers, diff_ids, strict=True)):
        cached = _recall(cache, source, descriptor, diff_id) if cache is not None else None
        progress.layer_started(index, descriptor, cached=cached is not None)
        catalogs.append(cached)
        if cached is None:
            missing.append(index)
        else:
            progress.layer_finished(index)

    def walk(index: int) -> LayerCatalog:
        layer = _walk_blob(source, image.layers[index], diff_ids[index], matcher, index, progress)
        if cache is not None:
            cache.put(layer)
            cache.put_pair(image.layers[index].digest, layer.diff_id)  # both verified as the blob streamed
        progress.layer_finished(index)
        return layer

    # Layers are independent: walk them side by side. Decompression and hashing
    # release the GIL, so this uses every core on the part that costs the most.
    workers = max(1, min(jobs or os.cpu_count() or 1, len(missing)))
    if workers == 1:
        for index in missing:
            catalogs[index] = walk(index)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="patchline-layer") as pool:
            futures = {index: pool.submit(walk, index) for index in missing}
            try:
                for index, future in futures.items():
                    catalogs[index] = future.result()
            except BaseException:
                for future in futures.values():
                    future.cancel()
                raise

    composed = compose([c for c in catalogs if c is not None])
    created_by = layer_created_by(image.config)
    layers = tuple(
        Layer(
            index=i,
            diff_id=diff_ids[i],
            digest=d.digest,
            media_type=d.media_type,
            size=d.size,
            created_by=created_by[i],
        )
        for i, d in enumerate(image.layers)
    )
    info = ImageInfo(
        reference=image.reference,
        manifest_digest=image.manifest_digest,
        config_digest=image.config_digest,
        os=image.config.os,
        architecture=image.config.architecture,
        variant=image.config.variant,
        created=image.config.created,
        repo_tags=image.repo_tags,
    )
    return Inventory(
        image=info,
        layers=layers,
        distro=composed.distro,
        packages=composed.packages,
        skipped=composed.skipped,
        catalogers=tuple((c.name, c.version) for c in catalogers),
        system_files=composed.system_files,
    )

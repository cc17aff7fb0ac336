"""Discovery into the store: observe what runs (podman, Kubernetes) or what a registry holds, inventory
only the images the store does not have yet, and record the workloads and refs.

One image that cannot be read never stops a discovery: it is reported with its
reason and the rest goes on (``strict`` makes it fatal).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from patchline import _clock
from patchline.errors import Error
from patchline.fleet.interface import Workload
from patchline.oci import split_reference

if TYPE_CHECKING:
    from patchline._model import Inventory
    from patchline.catalog.interface import Cataloger
    from patchline.inventory import LayerCache
    from patchline.store import Store, WorkloadSync

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class DiscoverOptions:
    """How images that are new to the store are inventoried."""

    catalogers: tuple[Cataloger, ...] | None = None  # default: all
    cache: LayerCache | None = None
    insecure: bool = False
    platform: str | None = None
    strict: bool = False
    storage_export: Path | None = None  # an OCI layout shared by the containers-storage exports of one run


@dataclass(frozen=True, slots=True)
class DiscoveryReport:
    """What one discovery saw and did."""

    source: str  # "podman on HOST", "registry HOST/REPO", "kubernetes CONTEXT"
    workloads: int = 0
    sync: WorkloadSync | None = None
    images: int = 0  # distinct images seen
    inventoried: tuple[str, ...] = ()  # config digests scanned now
    already_known: int = 0
    tags: int = 0
    failed: tuple[tuple[str, str], ...] = ()  # (image, reason)
    skipped: tuple[tuple[str, str], ...] = field(default=())  # (what, reason) from the listing


def inventory(reference: str, options: DiscoverOptions) -> Inventory:
    """Scan one image (any reference ``patchline sbom`` takes) with the discovery's options."""
    from patchline.catalog.list import DEFAULT_CATALOGERS
    from patchline.inventory import scan_image
    from patchline.oci import open_source, parse_platform

    platform = parse_platform(options.platform) if options.platform else None
    with open_source(reference, platform=platform, insecure=options.insecure,
                     storage_export=options.storage_export) as source:
        return scan_image(source, catalogers=options.catalogers or DEFAULT_CATALOGERS, cache=options.cache)


def _ingest(store: Store, reference: str, refs: Sequence[tuple[str, str, str | None]], options: DiscoverOptions,
            failed: list[tuple[str, str]], say: Say, now: dt.datetime) -> str | None:
    say(f"inventorying {reference}")
    try:
        result = store.record_image(inventory(reference, options), refs=refs, seen_at=now)
    except Error as exc:
        if options.strict:
            raise
        failed.append((reference, str(exc)))
        say(f"could not inventory {reference}: {exc}")
        return None
    return result.config_digest


def _record_running(store: Store, runtime: str, host: str, workloads: Sequence[Workload], *,
                    source_of: Callable[[Workload], str], options: DiscoverOptions, say: Say,
                    namespace: str | None = None) -> DiscoveryReport:
    now = _clock.now()
    failed: list[tuple[str, str]] = []
    inventoried: list[str] = []
    known = 0
    by_image: dict[str, Workload] = {}
    for w in workloads:
        key = w.image_id or w.manifest_digest or w.image_ref
        by_image.setdefault(key, w)
    for w in by_image.values():
        refs = [split_reference(w.image_ref)]
        if w.manifest_digest:
            repo, tag, _ = refs[0]
            refs = [(repo, tag, w.manifest_digest)]
        config = w.image_id or (store.image_for_manifest(w.manifest_digest) if w.manifest_digest else None)
        if config is not None and store.record_refs(config, refs, seen_at=now):
            known += 1
            continue
        digest = _ingest(store, source_of(w), refs, options, failed, say, now)
        if digest is not None:
            inventoried.append(digest)
    sync = store.record_workloads(runtime, host, workloads, seen_at=now, namespace=namespace)
    return DiscoveryReport(source=f"{runtime} on {host}", workloads=len(workloads), sync=sync, images=len(by_image),
                           inventoried=tuple(inventoried), already_known=known, failed=tuple(failed))


def discover_podman(store: Store, *, options: DiscoverOptions | None = None, host: str | None = None,
                    podman: str = "podman", progress: Say | None = None) -> DiscoveryReport:
    """Record this host's running podman containers; inventory their images from local storage if new."""
    import socket

    from patchline.fleet.podman import list_podman_containers

    options = options or DiscoverOptions()
    say = progress or (lambda _line: None)
    host = host or socket.gethostname()
    running = [w for w in list_podman_containers(podman=podman, host=host) if w.state == "running"]
    say(f"{len(running)} running container(s) on {host}")

    def source_of(w: Workload) -> str:
        # The image ID names exactly what runs, even after its tag has moved on.
        return f"containers-storage:{(w.image_id or w.image_ref).removeprefix('sha256:')}"

    return _record_running(store, "podman", host, running, source_of=source_of, options=options, say=say)


def discover_kubernetes(store: Store, *, options: DiscoverOptions | None = None, context: str | None = None,
                        namespace: str | None = None, kubeconfig: str | None = None,
                        progress: Say | None = None) -> DiscoveryReport:
    """Record a cluster's running containers; inventory their images from the registry by digest if new."""
    from patchline.fleet.kubernetes import list_kubernetes_pods

    options = options or DiscoverOptions()
    say = progress or (lambda _line: None)
    pods = list_kubernetes_pods(context=context, namespace=namespace, kubeconfig=kubeconfig)
    host = pods[0].host if pods else (context or "kubernetes")

    def source_of(w: Workload) -> str:
        repo, _tag, _ = split_reference(w.image_ref)
        return f"{repo}@{w.manifest_digest}" if w.manifest_digest else w.image_ref

    return _record_running(store, "kubernetes", host, pods, source_of=source_of, options=options, say=say,
                           namespace=namespace)


def discover_registry(store: Store, target: str, *, options: DiscoverOptions | None = None, page_size: int = 100,
                      progress: Say | None = None) -> DiscoveryReport:
    """Every tag of a registry (or one repository): inventory what is new by digest, note refs for the rest."""
    from patchline.fleet.registry import list_registry_tags

    options = options or DiscoverOptions()
    say = progress or (lambda _line: None)
    now = _clock.now()
    failed: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    inventoried: list[str] = []
    seen: dict[str, str | None] = {}  # manifest digest -> config digest (None: could not be read)
    tags = known = 0
    for tag in list_registry_tags(target, insecure=options.insecure, page_size=page_size,
                                  on_skip=lambda what, why: skipped.append((what, why))):
        tags += 1
        ref = (tag.repository, tag.tag, str(tag.manifest_digest))
        digest = tag.manifest_digest
        if digest not in seen:
            config = store.image_for_manifest(digest)
            if config is not None:
                known += 1
            else:
                config = _ingest(store, f"{tag.repository}@{digest}", [ref], options, failed, say, now)
                if config is not None:
                    inventoried.append(config)
            seen[digest] = config
        config = seen[digest]
        if config is not None:
            store.record_refs(config, [ref], seen_at=now)
    say(f"{tags} tag(s), {len(seen)} distinct image(s), {len(inventoried)} new")
    return DiscoveryReport(source=f"registry {target}", images=len(seen), inventoried=tuple(inventoried),
                           already_known=known, tags=tags, failed=tuple(failed), skipped=tuple(skipped))

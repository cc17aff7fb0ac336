"""Discovery on a podman host: the containers ``podman ps`` lists, and their images' digests.

Two podman calls per host: ``podman ps --format json --no-trunc`` and one
``podman image inspect`` for all the distinct images, for their repo digests.
The parsers are pure functions of podman's JSON output.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from patchline._host import run_tool
from patchline._model import Digest
from patchline.errors import DiscoveryError, ReferenceError_
from patchline.fleet.interface import Workload
from patchline.oci import parse_image_ref

__all__ = [
    "ImageDigests",
    "list_podman_containers",
    "parse_image_inspect",
    "parse_podman_ps",
    "repo_digest_for",
]

_TIMEOUT = 120.0  # seconds; podman ps on a busy host takes a few at most
_STDERR_TAIL = 300  # characters of podman's stderr in an error message
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# How `podman image inspect` reports an image that went away since `podman ps`.
_IMAGE_GONE = re.compile(r"image not known|no such image", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ImageDigests:
    """What ``podman image inspect`` says about one image's manifests."""

    image_id: Digest
    digest: Digest | None  # the manifest podman stored the image with
    repo_digests: tuple[str, ...]  # "registry/repo@sha256:..."


def list_podman_containers(
    *, podman: str = "podman", all: bool = False, host: str | None = None
) -> list[Workload]:
    """The containers of the local podman, running ones only unless ``all``.

    ``host`` names the machine in the records (default: this host's name).
    Raises ``DiscoveryError`` when podman is missing, fails, or prints
    something that is not the JSON it documents.
    """
    argv = [podman, "ps", "--format", "json", "--no-trunc"]
    if all:
        argv.append("--all")
    workloads = parse_podman_ps(_run(argv).stdout, host=host or socket.gethostname())
    image_ids = sorted({w.image_id for w in workloads if w.image_id is not None})
    if not image_ids:
        return workloads
    inspect = _run(
        [podman, "image", "inspect", "--format", "json", *image_ids],
        # An image removed since `podman ps` only loses its digest.
        tolerate=_IMAGE_GONE,
    )
    images = parse_image_inspect(inspect.stdout)
    return [_with_repo_digest(w, images) for w in workloads]


def parse_podman_ps(data: bytes, *, host: str) -> list[Workload]:
    """Workloads from ``podman ps --format json --no-trunc`` output.

    Their ``manifest_digest`` is None: only ``podman image inspect`` knows it.
    Pod infra (pause) containers are left out: podman makes their image itself.
    """
    entries = _load_list(data, "podman ps")
    workloads: list[Workload] = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise DiscoveryError(f"podman ps: entry {position} is not a JSON object")
        container_id = entry.get("Id")
        if not isinstance(container_id, str) or not container_id:
            raise DiscoveryError(f"podman ps: entry {position} has no container Id")
        if entry.get("IsInfra") is True:
            continue
        workloads.append(
            Workload(
                runtime="podman",
                host=host,
                namespace="",
                name=_name(entry, container_id),
                container_id=container_id,
                image_ref=_str_field(entry, "Image", container_id),
                image_id=_image_id(entry.get("ImageID"), f"container {container_id[:12]}"),
                manifest_digest=None,
                started_at=_started_at(entry.get("StartedAt"), container_id),
                state=_str_field(entry, "State", container_id) or "unknown",
                labels=_labels(entry.get("Labels"), container_id),
            )
        )
    return workloads


def parse_image_inspect(data: bytes) -> dict[Digest, ImageDigests]:
    """Image id -> its digests, from ``podman image inspect --format json`` output."""
    images: dict[Digest, ImageDigests] = {}
    for position, entry in enumerate(_load_list(data, "podman image inspect")):
        if not isinstance(entry, dict):
            raise DiscoveryError(f"podman image inspect: entry {position} is not a JSON object")
        image_id = _image_id(entry.get("Id"), f"image entry {position}")
        if image_id is None:
            raise DiscoveryError(f"podman image inspect: entry {position} has no image Id")
        digest = entry.get("Digest")
        repo_digests = entry.get("RepoDigests") or []
        if not isinstance(repo_digests, list) or not all(isinstance(r, str) for r in repo_digests):
            raise DiscoveryError(f"podman image inspect: RepoDigests of {image_id} is not a list of strings")
        images[image_id] = ImageDigests(
            image_id=image_id,
            digest=Digest(digest) if isinstance(digest, str) and _DIGEST.match(digest) else None,
            repo_digests=tuple(repo_digests),
        )
    return images


def repo_digest_for(image_ref: str, image: ImageDigests) -> Digest | None:
    """The repo digest of ``image`` that belongs to the repository ``image_ref`` names.

    A reference pinned by digest gets that digest if podman has it. When the
    repository has several (a multi-platform image pulled by tag records the
    index and the platform's manifest), the one that is not the image's own
    manifest is the index the tag points at. None when nothing matches or it
    stays ambiguous.
    """
    wanted = _repository_of(image_ref)
    if wanted is None:
        return None
    pinned = image_ref.partition("@")[2] or None
    candidates: list[Digest] = []
    for repo_digest in image.repo_digests:
        name, _, digest = repo_digest.partition("@")
        if _DIGEST.match(digest) and _repository_of(name) == wanted and digest not in candidates:
            candidates.append(Digest(digest))
    if pinned is not None and pinned in candidates:
        return Digest(pinned)
    if len(candidates) > 1:
        candidates = [c for c in candidates if c != image.digest]
    return candidates[0] if len(candidates) == 1 else None


# -- parsing helpers ------------------------------------------------------------------


def _load_list(data: bytes, command: str) -> list[Any]:
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        excerpt = data[:80].decode("utf-8", "replace").strip()
        raise DiscoveryError(f"{command} printed output that is not JSON ({exc}): {excerpt!r}") from exc
    if doc is None:  # old podman prints "null" for no containers
        return []
    if not isinstance(doc, list):
        raise DiscoveryError(f"{command} printed a JSON {type(doc).__name__}, not a list")
    return doc


def _str_field(entry: Mapping[str, Any], key: str, container_id: str) -> str:
    value = entry.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DiscoveryError(f"podman ps: {key} of container {container_id[:12]} is not a string")
    return value


def _name(entry: Mapping[str, Any], container_id: str) -> str:
    names = entry.get("Names")
    if isinstance(names, str):  # podman 1.x printed one name as a string
        names = [names]
    if isinstance(names, list) and names and isinstance(names[0], str) and names[0]:
        return names[0]
    return container_id[:12]


def _image_id(value: object, what: str) -> Digest | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        hex_part = value.removeprefix("sha256:")
        if _HEX64.match(hex_part):
            return Digest(f"sha256:{hex_part}")
    raise DiscoveryError(f"podman: the image id of {what} is not a sha256 id: {value!r}")


def _started_at(value: object, container_id: str) -> datetime | None:
    # A container that never started reports Go's zero time, -62135596800.
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC) if value > 0 else None
    if isinstance(value, str):
        try:
            seconds = float(value)
        except ValueError:
            seconds = None
        if seconds is not None:
            return datetime.fromtimestamp(seconds, tz=UTC) if seconds > 0 else None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is not None and parsed.year > 1:
                return parsed.astimezone(UTC)
    raise DiscoveryError(f"podman ps: StartedAt of container {container_id[:12]} is not a time: {value!r}")


def _labels(value: object, container_id: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise DiscoveryError(f"podman ps: Labels of container {container_id[:12]} is not an object")
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))


def _repository_of(reference: str) -> tuple[str, str] | None:
    """(registry, repository) of a reference, normalised as podman does; None if not one."""
    try:
        ref = parse_image_ref(reference)
    except ReferenceError_:
        return None
    return ref.registry, ref.repository


def _with_repo_digest(workload: Workload, images: Mapping[Digest, ImageDigests]) -> Workload:
    image = images.get(workload.image_id) if workload.image_id is not None else None
    if image is None:
        return workload
    return replace(workload, manifest_digest=repo_digest_for(workload.image_ref, image))


# -- running podman --------------------------------------------------------------------


def _run(argv: Sequence[str], *, tolerate: re.Pattern[str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run podman; a failure is a ``DiscoveryError`` unless every error line matches ``tolerate``."""
    words = argv[1:3] if argv[1] == "image" else argv[1:2]
    command = " ".join([os.path.basename(argv[0]), *words])
    result = run_tool(argv, error=DiscoveryError, what=f"`{command}`", timeout=_TIMEOUT, binary=True,
                      missing=f"podman is not installed (no {argv[0]!r} on PATH)")
    if result.returncode == 0:
        return result
    stderr = result.stderr.decode("utf-8", "replace").strip()
    errors = [line for line in stderr.splitlines() if line.strip()]
    if tolerate is not None and errors and all(tolerate.search(line) for line in errors):
        return result
    tail = " | ".join(errors)[-_STDERR_TAIL:] or "no error output"
    raise DiscoveryError(
        f"`{command}` failed (exit {result.returncode}): {tail}",
        detail=f"command: {' '.join(argv)}\nstderr:\n{stderr}",
    )

"""The SBOM attached to an image as an OCI 1.1 artifact, found through the referrers tag schema.

The artifact is an image manifest (OCI image-spec 1.1) with ``artifactType`` the
SBOM's media type, the empty config (``application/vnd.oci.empty.v1+json``, the
two bytes ``{}``), the SBOM as its one layer and the image as its ``subject``;
it is pushed by digest, untagged. Registries with the referrers API
(distribution-spec 1.1) list it by its subject; distribution 2.8 has none, so the
artifact is also listed in the referrers tag schema's index: tag ``sha256-HEX``
(the subject's digest) holds an image index of referrer descriptors, which
clients read, merge and push back. That index is always written, whatever the
registry, so that every client finds the SBOM the same way.

Two writers merging the index at the same moment can lose one entry (the tag
schema has no compare-and-swap); patchline attaches once per image, after its push.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from patchline import _clock
from patchline.errors import BlobError, ImageNotFound, ManifestError, SignError
from patchline.oci import RegistryWriter
from patchline.oci.interface import OCI_INDEX, OCI_MANIFEST
from patchline.sign.interface import CYCLONEDX_MEDIA_TYPE

__all__ = [
    "CREATED_ANNOTATION",
    "EMPTY_CONFIG",
    "EMPTY_MEDIA_TYPE",
    "attach_sbom",
    "fetch_sbom",
    "merge_referrers",
    "referrer_descriptor",
    "referrers",
    "referrers_tag",
    "sbom_manifest",
]

EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
CREATED_ANNOTATION = "org.opencontainers.image.created"
_MAX_SBOM = 256 << 20  # an SBOM of a large image is tens of MB


def referrers_tag(manifest_digest: str) -> str:
    """The referrers tag schema's tag for a subject: ``ALG-HEX`` (truncated to 32 and 64 characters)."""
    algorithm, _, hexpart = manifest_digest.partition(":")
    if not algorithm or not hexpart:
        raise SignError(f"not a manifest digest: {manifest_digest!r}")
    return f"{algorithm[:32]}-{hexpart[:64]}"


def sbom_manifest(
    *, subject: Mapping[str, Any], sbom_digest: str, sbom_size: int, media_type: str, created: str
) -> bytes:
    """The artifact manifest for an SBOM blob, referring to ``subject`` (mediaType, digest, size)."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": media_type,
        "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": _sha256(EMPTY_CONFIG), "size": len(EMPTY_CONFIG)},
        "layers": [{"mediaType": media_type, "digest": sbom_digest, "size": sbom_size}],
        "subject": {
            "mediaType": str(subject["mediaType"]),
            "digest": str(subject["digest"]),
            "size": int(subject["size"]),
        },
        "annotations": {CREATED_ANNOTATION: created},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def referrer_descriptor(manifest: bytes) -> dict[str, Any]:
    """The descriptor a referrers index lists for ``manifest``.

    As distribution-spec 1.1 says: its ``artifactType`` (else its config's media
    type) and a copy of its annotations.
    """
    doc = _json_object(manifest, "a referrer manifest")
    artifact_type = doc.get("artifactType")
    if not isinstance(artifact_type, str):
        config = doc.get("config")
        artifact_type = config.get("mediaType") if isinstance(config, dict) else None
    descriptor: dict[str, Any] = {
        "mediaType": str(doc.get("mediaType") or OCI_MANIFEST),
        "digest": _sha256(manifest),
        "size": len(manifest),
    }
    if isinstance(artifact_type, str):
        descriptor["artifactType"] = artifact_type
    annotations = doc.get("annotations")
    if isinstance(annotations, dict) and annotations:
        descriptor["annotations"] = dict(annotations)
    return descriptor


def merge_referrers(
    existing: bytes | None,
    additions: Sequence[Mapping[str, Any]],
    *,
    keep: Callable[[Mapping[str, Any]], bool] | None = None,
) -> bytes | None:
    """The referrers index with ``additions`` merged in, or ``None`` when nothing changes.

    Entries already there stay, in their order, unless ``keep`` says no (a
    manifest deleted since); an addition whose digest is listed already is not
    added again. Raises ``SignError`` when ``existing`` is not an OCI image index.
    """
    entries: list[dict[str, Any]] = []
    if existing is not None:
        doc = _json_object(existing, "the referrers tag")
        manifests = doc.get("manifests")
        if doc.get("mediaType", OCI_INDEX) != OCI_INDEX or not isinstance(manifests, list):
            raise SignError("the referrers tag holds something other than an OCI image index; not replacing it")
        entries = [dict(entry) for entry in manifests if isinstance(entry, dict)]
    kept = [entry for entry in entries if keep is None or keep(entry)]
    changed = existing is None or len(kept) != len(entries)
    listed = {entry.get("digest") for entry in kept}
    for addition in additions:
        if addition.get("digest") not in listed:
            kept.append(dict(addition))
            listed.add(addition.get("digest"))
            changed = True
    if not changed:
        return None
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": kept}, separators=(",", ":")).encode()


def attach_sbom(
    *,
    registry: RegistryWriter,
    repository: str,
    manifest_digest: str,
    sbom: bytes,
    media_type: str = CYCLONEDX_MEDIA_TYPE,
    created: dt.datetime | None = None,
) -> str:
    """Attach ``sbom`` to ``repository@manifest_digest``; return the artifact manifest's digest.

    Attaching the same SBOM again reuses the artifact already attached. The image's
    own manifest and tags are untouched: the artifact is pushed by digest and
    the referrers index under its own tag.
    """
    name = f"{registry.registry}/{repository}"
    subject = registry.get_manifest(repository, manifest_digest)
    if subject is None:
        raise SignError(f"cannot attach an SBOM to {name}@{manifest_digest}: no such manifest in the registry")
    tag = referrers_tag(manifest_digest)
    index = registry.get_manifest(repository, tag)
    sbom_digest = _sha256(sbom)
    manifest = _attached_already(
        registry, repository, manifest_digest, index.data if index else None, media_type, sbom_digest
    )
    if manifest is None:
        when = (created or _clock.now()).astimezone(dt.UTC)
        manifest = sbom_manifest(
            subject={"mediaType": subject.media_type, "digest": subject.digest, "size": len(subject.data)},
            sbom_digest=sbom_digest,
            sbom_size=len(sbom),
            media_type=media_type,
            created=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        registry.push_blob(repository, EMPTY_CONFIG)
        registry.push_blob(repository, sbom)
        registry.push_manifest(repository, _sha256(manifest), manifest, OCI_MANIFEST)
    descriptor = referrer_descriptor(manifest)

    def still_there(entry: Mapping[str, Any]) -> bool:
        # Distribution refuses an index that lists a manifest it no longer has.
        digest = entry.get("digest")
        if digest == descriptor["digest"] or not isinstance(digest, str):
            return True
        try:
            return registry.manifest_exists(repository, digest)
        except BlobError:
            return True  # a digest this client cannot check (sha512) is someone else's to prune

    merged = merge_referrers(index.data if index else None, [descriptor], keep=still_there)
    if merged is not None:
        registry.push_manifest(repository, tag, merged, OCI_INDEX)
    return str(descriptor["digest"])


def referrers(
    *, registry: RegistryWriter, repository: str, manifest_digest: str, artifact_type: str | None = None
) -> list[dict[str, Any]]:
    """The descriptors of the artifacts that refer to ``repository@manifest_digest``.

    From the referrers tag schema's index and, where the registry has one, the
    referrers API; each digest once, those of ``artifact_type`` only if given.
    """
    found: list[dict[str, Any]] = []
    index = registry.get_manifest(repository, referrers_tag(manifest_digest))
    if index is not None:
        found += _index_entries(index.data, "the referrers tag")
    api = registry.get_referrers(repository, manifest_digest, artifact_type=artifact_type)
    if api is not None:
        found += _index_entries(api, "the referrers API's answer")
    seen: set[str] = set()
    result: list[dict[str, Any]] = []
    for entry in found:
        digest = entry.get("digest")
        if not isinstance(digest, str) or digest in seen:
            continue
        if artifact_type is not None and entry.get("artifactType") != artifact_type:
            continue
        seen.add(digest)
        result.append(entry)
    return result


def fetch_sbom(
    *, registry: RegistryWriter, repository: str, manifest_digest: str, media_type: str = CYCLONEDX_MEDIA_TYPE
) -> bytes:
    """The SBOM attached to ``repository@manifest_digest`` (the newest, if several), verified by digest.

    A listed artifact whose manifest does not name this image as its subject is
    passed over. Raises ``SignError`` when no SBOM of ``media_type`` is attached.
    """
    name = f"{registry.registry}/{repository}"
    candidates = referrers(
        registry=registry, repository=repository, manifest_digest=manifest_digest, artifact_type=media_type
    )
    # Newest first; the index lists later attachments later, which breaks ties.
    ordered = sorted(enumerate(candidates), key=lambda item: (_created(item[1]), item[0]), reverse=True)
    problems: list[str] = []
    for _, entry in ordered:
        digest = str(entry["digest"])
        fetched = registry.get_manifest(repository, digest)
        if fetched is None:
            problems.append(f"{digest} is listed but gone")
            continue
        doc = _json_object(fetched.data, f"artifact {name}@{digest}")
        subject = doc.get("subject")
        if not isinstance(subject, dict) or subject.get("digest") != manifest_digest:
            problems.append(f"{digest} does not name {manifest_digest} as its subject")
            continue
        layers = doc.get("layers")
        layer = next(
            (item for item in layers if isinstance(item, dict) and item.get("mediaType") == media_type),
            None,
        ) if isinstance(layers, list) else None
        if layer is None:
            problems.append(f"{digest} has no {media_type} layer")
            continue
        try:
            return registry.get_blob(repository, str(layer.get("digest", "")), max_size=_MAX_SBOM)
        except (BlobError, ImageNotFound) as exc:
            problems.append(f"{digest}: {exc}")
    detail = f" ({'; '.join(problems)})" if problems else ""
    raise SignError(f"no {media_type} SBOM is attached to {name}@{manifest_digest}{detail}")


# -- helpers --------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise SignError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise SignError(f"{what} is not a JSON object")
    return doc


def _index_entries(data: bytes, what: str) -> list[dict[str, Any]]:
    manifests = _json_object(data, what).get("manifests")
    if not isinstance(manifests, list):
        raise SignError(f"{what} is not an image index")
    return [entry for entry in manifests if isinstance(entry, dict)]


def _created(entry: Mapping[str, Any]) -> str:
    annotations = entry.get("annotations")
    value = annotations.get(CREATED_ANNOTATION) if isinstance(annotations, dict) else None
    # RFC 3339 UTC timestamps of one format sort as strings; none sorts first.
    return value if isinstance(value, str) else ""


def _attached_already(
    registry: RegistryWriter,
    repository: str,
    manifest_digest: str,
    index: bytes | None,
    media_type: str,
    sbom_digest: str,
) -> bytes | None:
    """The manifest of an artifact listed in ``index`` that already attaches this very SBOM."""
    if index is None:
        return None
    try:
        entries = _index_entries(index, "the referrers tag")
    except SignError:
        return None  # merge_referrers says what is wrong with it
    for entry in entries:
        digest = entry.get("digest")
        if entry.get("artifactType") != media_type or not isinstance(digest, str):
            continue
        try:
            fetched = registry.get_manifest(repository, digest)
        except ManifestError:
            continue
        if fetched is None:
            continue
        try:
            doc = _json_object(fetched.data, "a referrer")
        except SignError:
            continue
        subject = doc.get("subject")
        layers = doc.get("layers")
        if (
            isinstance(subject, dict)
            and subject.get("digest") == manifest_digest
            and isinstance(layers, list)
            and [layer.get("digest") for layer in layers if isinstance(layer, dict)] == [sbom_digest]
        ):
            return fetched.data
    return None

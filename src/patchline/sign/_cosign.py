"""cosign-format signatures: ECDSA over the simple-signing payload, stored as tag ``sha256-HEX.sig``.

What cosign (``cosign sign --key``, without a transparency log) writes and
``cosign verify --key`` and admission controllers read:

- the payload, JSON of ``{"critical": {"identity": {"docker-reference": REPO},
  "image": {"docker-manifest-digest": DIGEST}, "type": "cosign container image
  signature"}, "optional": null}`` (REPO is the repository with its registry, no
  tag);
- an image in the same repository, tagged ``sha256-HEX.sig`` after the signed
  manifest's digest: one uncompressed layer per signature, of media type
  ``application/vnd.dev.cosign.simplesigning.v1+json``, holding the payload, with
  the base64 DER ECDSA-SHA256 signature in the layer annotation
  ``dev.cosignproject.cosign/signature``. Another signer's signature is another
  layer of the same image.

Debian's podman and skopeo cannot verify these (sigstore is disabled there):
:func:`verify_cosign` is the verifier on patchline's hosts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from patchline.errors import BlobError, ImageNotFound, ManifestError, SignatureRefused, SignError
from patchline.oci import RegistryWriter
from patchline.oci.interface import DOCKER_MANIFEST, OCI_CONFIG, OCI_MANIFEST
from patchline.sign.interface import (
    COSIGN_LAYER_MEDIA_TYPE,
    COSIGN_SIGNATURE_ANNOTATION,
    COSIGN_SIGNING_TYPE,
    CosignVerification,
)

__all__ = [
    "check_payload",
    "cosign_payload",
    "docker_reference",
    "load_private_key",
    "load_public_key",
    "sign_cosign",
    "sign_payload",
    "signature_manifest",
    "signature_tag",
    "signature_verifies",
    "verify_cosign",
]

_MAX_PAYLOAD = 1 << 20  # a payload is a few hundred bytes; this bounds a hostile one
# go-containerregistry's zero time: what cosign's signature images carry as "created".
_ZERO_TIME = "0001-01-01T00:00:00Z"
_DOCKER_HUB_NAMES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def signature_tag(manifest_digest: str) -> str:
    """``sha256-HEX.sig``: the tag cosign stores the signatures of ``manifest_digest`` under."""
    algorithm, _, hexpart = manifest_digest.partition(":")
    if not algorithm or not hexpart:
        raise SignError(f"not a manifest digest: {manifest_digest!r}")
    return f"{algorithm}-{hexpart}.sig"


def docker_reference(registry: str, repository: str) -> str:
    """The identity cosign signs for: ``REGISTRY/REPOSITORY`` (``index.docker.io/...`` for Docker Hub)."""
    host = "index.docker.io" if registry in _DOCKER_HUB_NAMES else registry
    return f"{host}/{repository}"


def cosign_payload(*, docker_reference: str, manifest_digest: str) -> bytes:
    """The simple-signing payload, byte for byte as cosign writes it (compact JSON, its key order)."""
    doc = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": COSIGN_SIGNING_TYPE,
        },
        "optional": None,
    }
    # Go's encoder escapes <, > and & in strings; no reference or digest contains them.
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """An unencrypted PKCS#8 PEM ECDSA key (``SigningKeys.cosign_private_key``)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise SignError(f"cannot read the cosign private key {path}: {exc.strerror}") from exc
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # cosign's own "ENCRYPTED SIGSTORE PRIVATE KEY" files land here too.
        raise SignError(f"{path} is not an unencrypted PKCS#8 PEM private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise SignError(f"{path} is not an ECDSA key")
    return key


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """A PEM SubjectPublicKeyInfo ECDSA key (``SigningKeys.cosign_public_key``, ``cosign.pub``)."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise SignError(f"cannot read the cosign public key {path}: {exc.strerror}") from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SignError(f"{path} is not a PEM public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise SignError(f"{path} is not an ECDSA public key")
    return key


def sign_payload(payload: bytes, key: ec.EllipticCurvePrivateKey) -> str:
    """The base64 of the DER ECDSA-SHA256 signature over ``payload``."""
    return base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode("ascii")


def signature_verifies(payload: bytes, signature: str, key: ec.EllipticCurvePublicKey) -> bool:
    """Whether ``signature`` (base64 DER) is ``key``'s ECDSA-SHA256 signature over ``payload``."""
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, payload, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def signature_manifest(layers: Sequence[Mapping[str, Any]]) -> tuple[bytes, bytes]:
    """(config, manifest) of a signature image with these layer descriptors, as cosign builds it.

    The layers are stored uncompressed, so each diff_id is the layer's digest.
    """
    config = json.dumps(
        {
            "architecture": "",
            "config": {},
            "created": _ZERO_TIME,
            "history": [{"created": _ZERO_TIME} for _ in layers],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": _sha256(config)},
            "layers": [dict(layer) for layer in layers],
        },
        separators=(",", ":"),
    ).encode()
    return config, manifest


def check_payload(payload: bytes, *, identity: str, manifest_digest: str) -> str:
    """The payload's ``docker-reference`` if it signs ``manifest_digest`` for the repository ``identity``.

    ``identity`` is ``REGISTRY/REPOSITORY``; a tag or digest on the payload's
    reference is ignored. Raises ``SignatureRefused`` saying what does not match.
    """
    try:
        doc = json.loads(payload)
        critical = doc["critical"]
        reference = critical["identity"]["docker-reference"]
        signed_digest = critical["image"]["docker-manifest-digest"]
        kind = critical["type"]
    except (ValueError, TypeError, KeyError) as exc:
        raise SignatureRefused(f"a cosign payload is not simple-signing JSON ({exc})") from exc
    if not isinstance(reference, str) or not isinstance(signed_digest, str):
        raise SignatureRefused("a cosign payload's reference or digest is not a string")
    if kind != COSIGN_SIGNING_TYPE:
        raise SignatureRefused(f"a cosign payload has the type {kind!r}, not {COSIGN_SIGNING_TYPE!r}")
    if signed_digest != manifest_digest:
        raise SignatureRefused(
            f"the cosign signature signs another image ({signed_digest}), not {manifest_digest}"
        )
    if _repository_of(reference) != _repository_of(identity):
        raise SignatureRefused(
            f"the cosign signature of {manifest_digest} names {reference!r}, not {identity!r}"
        )
    return reference


def sign_cosign(*, registry: RegistryWriter, repository: str, manifest_digest: str, private_key: Path) -> str:
    """Sign the image ``repository@manifest_digest`` cosign's way; return the tag (``sha256-HEX.sig``).

    ``repository`` is the path inside ``registry`` (``team/app``); the signed
    identity is ``REGISTRY/REPOSITORY``. A signature by the same key over the
    same payload already there is kept; another signer's is kept beside ours.
    """
    key = load_private_key(private_key)
    name = f"{registry.registry}/{repository}"
    if registry.get_manifest(repository, manifest_digest) is None:
        raise SignError(f"cannot sign {name}@{manifest_digest}: no such manifest in the registry")
    tag = signature_tag(manifest_digest)
    payload = cosign_payload(docker_reference=docker_reference(registry.registry, repository),
                             manifest_digest=manifest_digest)
    payload_digest = _sha256(payload)
    layers = _existing_layers(registry, repository, tag, name)
    public = key.public_key()
    for layer in layers:
        if (
            layer.get("mediaType") == COSIGN_LAYER_MEDIA_TYPE
            and layer.get("digest") == payload_digest
            and signature_verifies(payload, _annotation(layer), public)
        ):
            return tag  # signed already: ECDSA is randomised, a new layer would only repeat it
    registry.push_blob(repository, payload)
    layers.append(
        {
            "mediaType": COSIGN_LAYER_MEDIA_TYPE,
            "size": len(payload),
            "digest": payload_digest,
            "annotations": {COSIGN_SIGNATURE_ANNOTATION: sign_payload(payload, key)},
        }
    )
    config, manifest = signature_manifest(layers)
    registry.push_blob(repository, config)
    registry.push_manifest(repository, tag, manifest, OCI_MANIFEST)
    return tag


def verify_cosign(
    *, registry: RegistryWriter, repository: str, manifest_digest: str, public_key: Path
) -> CosignVerification:
    """Check that ``repository@manifest_digest`` carries a cosign signature by ``public_key`` for itself.

    Some simple-signing layer of ``sha256-HEX.sig`` must hold a payload (its blob
    digest checked) that names this manifest digest and this repository, signed
    by the key. Raises ``SignatureRefused`` with the reason otherwise: no
    signature tag, no signature by this key, a signature of another image, or of
    another repository.
    """
    key = load_public_key(public_key)
    name = f"{registry.registry}/{repository}"
    identity = docker_reference(registry.registry, repository)
    tag = signature_tag(manifest_digest)
    try:
        fetched = registry.get_manifest(repository, tag)
    except ManifestError as exc:
        raise SignatureRefused(f"{name}:{tag} is not a signature image: {exc}") from exc
    if fetched is None:
        raise SignatureRefused(f"{name}@{manifest_digest} has no cosign signature (no tag {tag})")
    layers = _layers(fetched.data, f"{name}:{tag}")
    candidates = [layer for layer in layers if layer.get("mediaType") == COSIGN_LAYER_MEDIA_TYPE]
    if not candidates:
        raise SignatureRefused(f"{name}:{tag} holds no simple-signing layer")
    # Each layer fails for its own reason; the one from a layer our key signed says most.
    refusals: list[tuple[int, SignatureRefused]] = []
    for layer in candidates:
        digest = str(layer.get("digest", ""))
        try:
            payload = registry.get_blob(repository, digest, max_size=_MAX_PAYLOAD)
        except (BlobError, ImageNotFound) as exc:
            refusals.append((0, SignatureRefused(f"{name}:{tag}: a signature payload cannot be read: {exc}")))
            continue
        if not signature_verifies(payload, _annotation(layer), key):
            refusals.append(
                (1, SignatureRefused(f"no cosign signature on {name}@{manifest_digest} verifies with {public_key}"))
            )
            continue
        try:
            reference = check_payload(payload, identity=identity, manifest_digest=manifest_digest)
        except SignatureRefused as exc:
            refusals.append((2, SignatureRefused(f"{name}:{tag}: {exc}")))
            continue
        return CosignVerification(
            repository=name,
            manifest_digest=manifest_digest,
            docker_reference=reference,
            signature_digest=fetched.digest,
        )
    raise max(refusals, key=lambda item: item[0])[1]


# -- helpers --------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _annotation(layer: Mapping[str, Any]) -> str:
    annotations = layer.get("annotations")
    value = annotations.get(COSIGN_SIGNATURE_ANNOTATION) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else ""


def _layers(data: bytes, what: str) -> list[dict[str, Any]]:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise SignatureRefused(f"{what} is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("mediaType", OCI_MANIFEST) not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise SignatureRefused(f"{what} is not an image manifest")
    layers = doc.get("layers")
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        raise SignatureRefused(f"{what} has no list of layers")
    return layers


def _existing_layers(registry: RegistryWriter, repository: str, tag: str, name: str) -> list[dict[str, Any]]:
    """The layers of the signature image already at ``tag`` (other signers' signatures), if any."""
    fetched = registry.get_manifest(repository, tag)
    if fetched is None:
        return []
    try:
        return _layers(fetched.data, f"{name}:{tag}")
    except SignatureRefused as exc:
        # Replacing it would drop whatever is there; a person has to look.
        raise SignError(f"cannot add a cosign signature: {exc}") from exc


def _repository_of(reference: str) -> tuple[str, str]:
    """(registry, repository) of ``REGISTRY/REPO[:TAG][@DIGEST]``, Docker Hub's names as one."""
    name = reference.split("@", 1)[0]
    slash = name.find("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]  # a tag; a colon before the first slash is the registry's port
    registry, _, repository = name.partition("/")
    if registry in _DOCKER_HUB_NAMES:
        registry = "docker.io"
        if "/" not in repository:
            repository = f"library/{repository}"
    return registry, repository


"""Signing and attachments: patchline's keys, what a signed image carries, and the verifier's verdict.

patchline signs every image it pushes twice: a containers simple signature (GPG,
written by skopeo into a lookaside store that ``registries.d`` points podman at,
enforced by podman through ``policy.json``), and a cosign-format signature
(ECDSA P-256 over the simple-signing payload, pushed as tag ``sha256-HEX.sig``)
for admission controllers. The CycloneDX SBOM is attached as an OCI artifact
whose ``subject`` is the image, listed in the referrers tag fallback ``sha256-HEX``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from patchline._config import SignConfig

SIMPLE_SIGNING_TYPE = "atomic container signature"
COSIGN_SIGNING_TYPE = "cosign container image signature"
COSIGN_LAYER_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CYCLONEDX_MEDIA_TYPE = "application/vnd.cyclonedx+json"


@dataclass(frozen=True, slots=True)
class SigningKeys:
    """patchline's own keys, in a directory no other tool writes to."""

    directory: Path
    fingerprint: str  # the GPG key's full fingerprint (simple signing)
    gnupg_home: Path  # directory/gnupg: a GnuPG home holding only patchline's key
    gpg_public_key: Path  # directory/patchline.gpg: the armored public key policy.json names
    cosign_private_key: Path  # directory/cosign.key: PKCS#8 PEM, ECDSA P-256
    cosign_public_key: Path  # directory/cosign.pub: PEM, what `cosign verify --key` takes


@dataclass(frozen=True, slots=True)
class SignedImage:
    """What was attached to one pushed image."""

    repository: str  # registry/namespace/name, no tag
    manifest_digest: str
    simple_signature: Path | None  # the signature file in the lookaside store
    cosign_tag: str | None  # sha256-HEX.sig
    sbom_digest: str | None  # manifest digest of the SBOM artifact


@dataclass(frozen=True, slots=True)
class CosignVerification:
    repository: str
    manifest_digest: str
    docker_reference: str  # the identity the payload names
    signature_digest: str  # manifest digest of the .sig image


@dataclass(frozen=True, slots=True)
class SignOptions:
    """What to do with each pushed image (from ``[sign]``)."""

    keys: SigningKeys
    config: SignConfig  # where the lookaside store, registries.d and policy.json are
    insecure: frozenset[str] = frozenset()  # registry hosts reached over plain HTTP

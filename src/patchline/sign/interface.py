"""Signing and attachments: patchline's keys, what a signed image carries, and the verifier's verdict.

patchline signs every image it pushes twice: a containers simple signature (GPG,
written by skopeo into a lookaside store that ``registries.d`` points podman at,
enforced by podman through ``policy.json``), and a cosign-format signature
(ECDSA P-256 over the simple-signing payload, pushed as tag ``sha256-HEX.sig``)
for admission controllers. The CycloneDX SBOM is attached as an OCI artifact
whose ``subject`` is the image, listed in the referrers tag fallback ``sha256-HEX``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchline._config import SignConfig

SIMPLE_SIGNING_TYPE = "atomic container signature"
COSIGN_SIGNING_TYPE = "cosign container image signature"
COSIGN_LAYER_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CYCLONEDX_MEDIA_TYPE = "application/vnd.cyclonedx+json"
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
INTOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
PREDICATE_TYPE_ANNOTATION = "predicateType"  # on an attestation layer, as cosign writes it
# patchline has no web home: URNs name its build type and builder (documented in docs/formats/provenance.md).
PATCHLINE_BUILD_TYPE = "urn:patchline:build-type:rebuild:v1"
PATCHLINE_BUILDER_ID = "urn:patchline:builder"


@dataclass(frozen=True, slots=True)
class SigningKeys:
    """patchline's own keys, in a directory no other tool writes to."""

    directory: Path
    fingerprint: str  # the GPG key's full fingerprint (simple signing)
    gnupg_home: Path  # directory/gnupg: a GnuPG home holding only patchline's key
    gpg_public_key: Path  # directory/patchline.gpg: the armored public key policy.json names
    cosign_private_key: Path  # directory/cosign.key: PKCS#8 PEM, ECDSA P-256
    cosign_public_key: Path  # directory/cosign.pub: PEM, what `cosign verify --key` takes

    def as_dict(self, *, uid: str | None) -> dict[str, str | None]:
        """The keys as ``patchline keys show --json`` prints them; ``uid`` is the GPG key's user ID."""
        return {"directory": str(self.directory), "fingerprint": self.fingerprint, "uid": uid,
                "gnupg_home": str(self.gnupg_home), "gpg_public_key": str(self.gpg_public_key),
                "cosign_private_key": str(self.cosign_private_key), "cosign_public_key": str(self.cosign_public_key)}


@dataclass(frozen=True, slots=True)
class SignedImage:
    """What was attached to one pushed image."""

    repository: str  # registry/namespace/name, no tag
    manifest_digest: str
    simple_signature: Path | None  # the signature file in the lookaside store
    cosign_tag: str | None  # sha256-HEX.sig
    sbom_digest: str | None  # manifest digest of the SBOM artifact
    provenance_tag: str | None = None  # sha256-HEX.att


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


@dataclass(frozen=True, slots=True)
class ProvenanceFacts:
    """What a build knows about itself, for its provenance statement."""

    recipe: str
    target: str  # registry/name:tag the image is pushed to
    kind: str  # containerfile | patch
    input_hash: str  # sha256:HEX of the recipe's inputs (empty: not known)
    bases: Mapping[str, str]  # the reference as the recipe names it -> the manifest digest built FROM
    run_id: str
    started: dt.datetime
    builder_version: str
    finished: dt.datetime | None = None
    apt_sources: tuple[tuple[str, str], ...] = ()  # ("URL SUITE", SHA-256 of the InRelease read)
    containerfile: str | None = None
    build_target: str | None = None
    build_arg_names: tuple[str, ...] = ()  # names only: values may be secrets
    source_date_epoch: int | None = None
    update_sources: bool = False
    sbom_sha256: str | None = None  # the SBOM attached beside the provenance (a byproduct)
    sbom_media_type: str = CYCLONEDX_MEDIA_TYPE


@dataclass(frozen=True, slots=True)
class ProvenanceVerification:
    """A verified provenance statement and what it says."""

    repository: str
    manifest_digest: str
    attestation_digest: str  # the DSSE envelope's blob digest
    builder_id: str
    build_type: str
    invocation_id: str  # the run that built it
    bases: Mapping[str, str]  # reference -> digest
    sbom_sha256: str | None
    statement: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

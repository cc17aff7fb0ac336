"""Everything patchline attaches to a pushed image, checked together: what ``patchline verify`` shows.

Four checks, each a verdict with its evidence: the simple signature (the
lookaside store), the cosign signature (tag ``sha256-HEX.sig``), the SBOM (an OCI
artifact whose digest the provenance names) and the SLSA provenance (tag
``sha256-HEX.att``, whose bases must be those the store recorded for the build).
A check ``[sign]`` turns off is ``skipped``, never ``passed``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from patchline.errors import Error, SignatureRefused, SignError
from patchline.oci import RegistryWriter
from patchline.sign._attach import fetch_sbom
from patchline.sign._cosign import verify_cosign
from patchline.sign._provenance import verify_provenance
from patchline.sign._simple import lookaside_dir, parse_repository, verify_image
from patchline.sign.interface import ProvenanceVerification, SigningKeys, SignOptions

__all__ = ["CHECKS", "AttachmentCheck", "ImageVerification", "verify_attachments"]

CHECKS = ("signature", "cosign", "sbom", "provenance")


@dataclass(frozen=True, slots=True)
class AttachmentCheck:
    name: str  # one of CHECKS
    state: str  # passed | failed | skipped
    evidence: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.name, "state": self.state, "evidence": self.evidence}


@dataclass(frozen=True, slots=True)
class ImageVerification:
    reference: str  # repository@digest
    checks: tuple[AttachmentCheck, ...]
    provenance: ProvenanceVerification | None = None

    @property
    def ok(self) -> bool:
        return all(c.state != "failed" for c in self.checks)

    def check(self, name: str) -> AttachmentCheck:
        return next(c for c in self.checks if c.name == name)

    def as_dict(self) -> dict[str, object]:
        prov = self.provenance
        return {
            "reference": self.reference, "ok": self.ok, "checks": [c.as_dict() for c in self.checks],
            "provenance": None if prov is None else {
                "builder_id": prov.builder_id, "build_type": prov.build_type, "invocation_id": prov.invocation_id,
                "bases": dict(prov.bases), "sbom_sha256": prov.sbom_sha256,
                "attestation_digest": prov.attestation_digest},
        }


def _split(reference: str) -> tuple[str, str]:
    repository, at, digest = reference.partition("@")
    if not at or not digest.startswith("sha256:"):
        raise SignError(f"{reference!r} is not REPOSITORY@sha256:DIGEST: verify an image by its digest")
    parse_repository(repository)
    return repository, digest


def verify_attachments(options: SignOptions, reference: str, *, bases: Mapping[str, str] | None = None,
                       cosign_key: Path | None = None) -> ImageVerification:
    """Check the signatures, SBOM and provenance of ``REPOSITORY@DIGEST``.

    ``bases`` (reference -> digest) is what the build was recorded with; the
    provenance must name exactly those. ``cosign_key`` verifies the cosign
    signature and the provenance with another public key than patchline's own.
    Registry errors (the image not there) raise; a missing or wrong attachment
    is a failed check.
    """
    repository, digest = _split(reference)
    host, path = parse_repository(repository)
    keys: SigningKeys = options.keys
    public = cosign_key or keys.cosign_public_key
    config = options.config
    checks: list[AttachmentCheck] = []
    provenance: ProvenanceVerification | None = None
    with RegistryWriter(host, insecure=host in options.insecure) as registry:
        fetched = registry.get_manifest(path, digest)
        if fetched is None:
            raise SignError(f"{reference}: the registry does not have this image")
        try:
            verify_image(keys, repository=repository, manifest=fetched.data, lookaside=lookaside_dir(config))
            checks.append(AttachmentCheck("signature", "passed", f"simple signing by {keys.fingerprint[-16:]}"))
        except SignatureRefused as exc:
            checks.append(AttachmentCheck("signature", "failed", str(exc)))
        if config.cosign:
            try:
                found = verify_cosign(registry=registry, repository=path, manifest_digest=digest, public_key=public)
                checks.append(AttachmentCheck("cosign", "passed", f"{found.docker_reference}, key {public}"))
            except SignatureRefused as exc:
                checks.append(AttachmentCheck("cosign", "failed", str(exc)))
        else:
            checks.append(AttachmentCheck("cosign", "skipped", "[sign] cosign = false"))
        if config.provenance:
            try:
                provenance = verify_provenance(registry=registry, repository=path, manifest_digest=digest,
                                               public_key=public, bases=bases)
                against = "the bases the store recorded" if bases is not None else "no build record (bases unchecked)"
                checks.append(AttachmentCheck("provenance", "passed", f"SLSA v1 by {provenance.builder_id}, run "
                                              f"{provenance.invocation_id}, {len(provenance.bases)} base(s) match "
                                              f"{against}"))
            except SignatureRefused as exc:
                checks.append(AttachmentCheck("provenance", "failed", str(exc)))
        else:
            checks.append(AttachmentCheck("provenance", "skipped", "[sign] provenance = false"))
        if config.sbom:
            checks.append(_sbom_check(registry, path, digest, provenance, signed=config.provenance))
        else:
            checks.append(AttachmentCheck("sbom", "skipped", "[sign] sbom = false"))
    order = {name: i for i, name in enumerate(CHECKS)}
    return ImageVerification(reference=reference, checks=tuple(sorted(checks, key=lambda c: order[c.name])),
                             provenance=provenance)


def _sbom_check(registry: RegistryWriter, path: str, digest: str,
                provenance: ProvenanceVerification | None, *, signed: bool) -> AttachmentCheck:
    try:
        sbom = fetch_sbom(registry=registry, repository=path, manifest_digest=digest)
    except Error as exc:
        return AttachmentCheck("sbom", "failed", str(exc))
    got = hashlib.sha256(sbom).hexdigest()
    if not signed:
        return AttachmentCheck("sbom", "passed", f"attached (sha256:{got[:12]}); unsigned: [sign] provenance = false")
    if provenance is None:
        return AttachmentCheck("sbom", "failed", f"attached (sha256:{got[:12]}), but no verified provenance "
                                                 "names it: it is unsigned")
    if provenance.sbom_sha256 is None:
        return AttachmentCheck("sbom", "failed", f"attached (sha256:{got[:12]}), but the provenance names no SBOM")
    if provenance.sbom_sha256 != got:
        return AttachmentCheck("sbom", "failed", f"the attached SBOM is sha256:{got[:12]}, the provenance names "
                                                 f"sha256:{provenance.sbom_sha256[:12]} (replaced or tampered)")
    return AttachmentCheck("sbom", "passed", f"sha256:{got[:12]}, named by the signed provenance")

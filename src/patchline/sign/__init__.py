"""Sign what patchline pushes, attach its SBOM and provenance, verify them, and pull only what patchline signed.

Typical use::

    options = sign_options(config)                      # patchline's keys (made on first use)
    signed = sign_pushed(options, repository="127.0.0.1:5000/example/web", manifest_digest="sha256:...",
                         sbom=cyclonedx_bytes, provenance=facts)
    verdict = verify_attachments(options, f"{repo}@{digest}", bases=recorded_bases)   # what `patchline verify` shows
    image_id = pull_verified(f"{repo}@{digest}", policy=write_policy(config.sign, keys, scopes=[repo]),
                             insecure=True)             # skopeo, with patchline's own registries.d, refuses
                                                        # an unsigned image
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace

from patchline._config import Config
from patchline.errors import SignError
from patchline.oci import RegistryWriter
from patchline.sign._attach import attach_sbom, fetch_sbom, referrers
from patchline.sign._cosign import sign_cosign, verify_cosign
from patchline.sign._keys import default_keys_dir, generate_keys, key_uid, load_keys, stop_agent
from patchline.sign._provenance import (
    attach_provenance,
    attestation_tag,
    check_statement,
    dsse_envelope,
    provenance_statement,
    verify_provenance,
)
from patchline.sign._simple import (
    list_signatures,
    lookaside_dir,
    parse_repository,
    policy_path,
    pull_verified,
    registries_d_dir,
    remove_policy_scope,
    remove_registries_d_scope,
    sign_image,
    verify_image,
    write_policy,
    write_registries_d,
)
from patchline.sign._verify import CHECKS, AttachmentCheck, ImageVerification, verify_attachments
from patchline.sign.interface import (
    CosignVerification,
    ProvenanceFacts,
    ProvenanceVerification,
    SignedImage,
    SigningKeys,
    SignOptions,
)

__all__ = [
    "CHECKS",
    "AttachmentCheck",
    "CosignVerification",
    "ImageVerification",
    "ProvenanceFacts",
    "ProvenanceVerification",
    "SignOptions",
    "SignedImage",
    "SigningKeys",
    "attach_provenance",
    "attach_sbom",
    "attestation_tag",
    "check_statement",
    "default_keys_dir",
    "dsse_envelope",
    "fetch_sbom",
    "generate_keys",
    "key_uid",
    "list_signatures",
    "load_keys",
    "lookaside_dir",
    "parse_repository",
    "policy_path",
    "provenance_statement",
    "pull_verified",
    "referrers",
    "registries_d_dir",
    "remove_policy_scope",
    "remove_registries_d_scope",
    "sign_cosign",
    "sign_image",
    "sign_options",
    "sign_pushed",
    "stop_agent",
    "verifier_options",
    "verify_attachments",
    "verify_cosign",
    "verify_image",
    "verify_provenance",
    "write_policy",
    "write_registries_d",
]


def sign_options(config: Config, *, say: Callable[[str], None] | None = None) -> SignOptions | None:
    """``[sign]`` as options for the rebuild; patchline's key pair is made on first use (in its own directory)."""
    if not config.sign.enabled:
        return None
    try:
        keys = load_keys(config.sign)
    except SignError:
        keys = generate_keys(config.sign)
        if say is not None:
            say(f"generated patchline's signing keys in {keys.directory} (GPG {keys.fingerprint})")
    return SignOptions(keys=keys, config=config.sign, insecure=frozenset(config.registries.insecure))


def verifier_options(config: Config) -> SignOptions:
    """``[sign]`` as options for checking what was pushed: patchline's keys must exist (never made here)."""
    return SignOptions(keys=load_keys(config.sign), config=config.sign, insecure=frozenset(config.registries.insecure))


def sign_pushed(options: SignOptions, *, repository: str, manifest_digest: str, sbom: bytes | None,
                provenance: ProvenanceFacts | None = None) -> SignedImage:
    """Sign a pushed image (simple signing, and cosign-format if configured), attach its SBOM and provenance.

    ``repository`` is ``REGISTRY/PATH``. The lookaside store's scope is written to
    patchline's own ``registries.d`` so that its verified pulls find the signatures. The
    provenance (when configured and ``provenance`` is given) names the SBOM by
    its digest, so the SBOM is signed through it.
    """
    host, path = parse_repository(repository)
    lookaside = lookaside_dir(options.config)
    with RegistryWriter(host, insecure=host in options.insecure) as registry:
        fetched = registry.get_manifest(path, manifest_digest)
        if fetched is None:
            raise SignError(f"cannot sign {repository}@{manifest_digest}: the registry does not have it")
        signature = sign_image(options.keys, repository=repository, manifest=fetched.data, lookaside=lookaside)
        write_registries_d(options.config, scope=repository, lookaside=lookaside)
        cosign_tag = (sign_cosign(registry=registry, repository=path, manifest_digest=manifest_digest,
                                  private_key=options.keys.cosign_private_key) if options.config.cosign else None)
        sbom_digest = (attach_sbom(registry=registry, repository=path, manifest_digest=manifest_digest, sbom=sbom)
                       if options.config.sbom and sbom is not None else None)
        provenance_tag = None
        if options.config.provenance and provenance is not None:
            facts = replace(provenance, sbom_sha256=hashlib.sha256(sbom).hexdigest() if sbom_digest and sbom else None)
            statement = provenance_statement(subject=repository, manifest_digest=manifest_digest, facts=facts)
            provenance_tag = attach_provenance(registry=registry, repository=path, manifest_digest=manifest_digest,
                                               envelope=dsse_envelope(statement, options.keys.cosign_private_key))
    return SignedImage(repository=repository, manifest_digest=manifest_digest, simple_signature=signature,
                       cosign_tag=cosign_tag, sbom_digest=sbom_digest, provenance_tag=provenance_tag)

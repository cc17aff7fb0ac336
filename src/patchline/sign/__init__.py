"""Sign what patchline pushes, attach its SBOM, and pull only what patchline signed.

Typical use::

    options = sign_options(config)                      # patchline's keys (made on first use)
    signed = sign_pushed(options, repository="127.0.0.1:5000/example/web",
                         manifest_digest="sha256:...", sbom=cyclonedx_bytes)
    image_id = pull_verified(f"{repo}@{digest}", policy=write_policy(config.sign, keys, scopes=[repo]),
                             insecure=True)             # podman refuses an unsigned image
"""

from __future__ import annotations

from collections.abc import Callable

from patchline._config import Config
from patchline.errors import SignError
from patchline.oci import RegistryWriter
from patchline.sign._attach import attach_sbom, fetch_sbom, referrers
from patchline.sign._cosign import sign_cosign, verify_cosign
from patchline.sign._keys import default_keys_dir, generate_keys, load_keys, stop_agent
from patchline.sign._simple import (
    list_signatures,
    lookaside_dir,
    parse_repository,
    policy_path,
    pull_verified,
    remove_policy_scope,
    remove_registries_d_scope,
    sign_image,
    verify_image,
    write_policy,
    write_registries_d,
)
from patchline.sign.interface import CosignVerification, SignedImage, SigningKeys, SignOptions

__all__ = [
    "CosignVerification",
    "SignOptions",
    "SignedImage",
    "SigningKeys",
    "attach_sbom",
    "default_keys_dir",
    "fetch_sbom",
    "generate_keys",
    "list_signatures",
    "load_keys",
    "lookaside_dir",
    "parse_repository",
    "policy_path",
    "pull_verified",
    "referrers",
    "remove_policy_scope",
    "remove_registries_d_scope",
    "sign_cosign",
    "sign_image",
    "sign_options",
    "sign_pushed",
    "stop_agent",
    "verify_cosign",
    "verify_image",
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


def sign_pushed(options: SignOptions, *, repository: str, manifest_digest: str, sbom: bytes | None) -> SignedImage:
    """Sign a pushed image (simple signing, and cosign-format if configured) and attach its SBOM.

    ``repository`` is ``REGISTRY/PATH``. The lookaside store's scope is written to
    ``registries.d`` so that podman on this host finds the signatures.
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
    return SignedImage(repository=repository, manifest_digest=manifest_digest, simple_signature=signature,
                       cosign_tag=cosign_tag, sbom_digest=sbom_digest)

"""SLSA v1 provenance for the images patchline builds: an in-toto Statement in a DSSE envelope.

What ``cosign attest --key --type slsaprovenance1`` writes (without a transparency
log) and ``cosign verify-attestation --key`` reads:

- the Statement (``_type`` ``https://in-toto.io/Statement/v1``) names the image
  by its manifest digest as its subject, and its predicate is SLSA provenance v1:
  the recipe (external parameters), every base image by digest, the apt suites
  by the SHA-256 of the ``InRelease`` read for them and the recipe's input hash
  (resolved dependencies), the builder and the run (run details), and the SBOM
  attached beside it by its digest (a byproduct, so the SBOM is signed through it);
- the envelope is DSSE v1: ``payloadType`` ``application/vnd.in-toto+json``, the
  Statement base64-encoded, one ECDSA-SHA256 signature over the DSSE
  pre-authentication encoding with patchline's cosign key;
- the envelope is one layer (``application/vnd.dsse.envelope.v1+json``, with the
  ``predicateType`` annotation) of an image tagged ``sha256-HEX.att`` in the image's
  repository, the layout cosign uses; another attestation is another layer.

:func:`verify_provenance` is the verifier: the signature, the subject, the
statement's shape and, when asked, the bases the build was recorded with.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from patchline.errors import BlobError, ImageNotFound, ManifestError, SignatureRefused, SignError
from patchline.oci import RegistryWriter
from patchline.oci.interface import OCI_MANIFEST
from patchline.sign._cosign import load_private_key, load_public_key, signature_manifest
from patchline.sign.interface import (
    COSIGN_SIGNATURE_ANNOTATION,
    DSSE_MEDIA_TYPE,
    INTOTO_PAYLOAD_TYPE,
    INTOTO_STATEMENT_V1,
    PATCHLINE_BUILD_TYPE,
    PATCHLINE_BUILDER_ID,
    PREDICATE_TYPE_ANNOTATION,
    SLSA_PROVENANCE_V1,
    ProvenanceFacts,
    ProvenanceVerification,
)

__all__ = [
    "attach_provenance",
    "attestation_tag",
    "check_statement",
    "dsse_envelope",
    "open_envelope",
    "pae",
    "provenance_statement",
    "verify_provenance",
]

_MAX_ENVELOPE = 4 << 20  # a statement lists a few dozen dependencies; this bounds a hostile one
_DIGEST_SIZES = {"sha256": 64, "sha384": 96, "sha512": 128, "sha1": 40}


def attestation_tag(manifest_digest: str) -> str:
    """``sha256-HEX.att``: the tag cosign stores the attestations of ``manifest_digest`` under."""
    algorithm, _, hexpart = manifest_digest.partition(":")
    if not algorithm or not hexpart:
        raise SignError(f"not a manifest digest: {manifest_digest!r}")
    return f"{algorithm}-{hexpart}.att"


def _digest_set(digest: str) -> dict[str, str]:
    """``{"sha256": HEX}`` of ``sha256:HEX`` (a bare HEX is taken as SHA-256)."""
    algorithm, sep, hexpart = digest.partition(":")
    if not sep:
        algorithm, hexpart = "sha256", digest
    return {algorithm: hexpart.lower()}


def _timestamp(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _repository(reference: str) -> str:
    """``registry/name`` of a reference, its tag and digest dropped."""
    name = reference.split("@", 1)[0]
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


def provenance_statement(*, subject: str, manifest_digest: str, facts: ProvenanceFacts) -> dict[str, Any]:
    """The in-toto Statement with SLSA v1 provenance for the image ``subject@manifest_digest``.

    Build argument values are not recorded (they may be secrets); their names are.
    """
    resolved: list[dict[str, Any]] = [
        {"name": "recipe-inputs", "digest": _digest_set(facts.input_hash),
         "annotations": {"what": "the Containerfile, build args, target and context files, hashed"}}
    ] if facts.input_hash else []
    for reference, digest in sorted(facts.bases.items()):
        resolved.append({"name": reference, "uri": f"oci://{_repository(reference)}", "digest": _digest_set(digest),
                         "annotations": {"role": "base-image"}})
    for label, document_sha256 in facts.apt_sources:
        url, _, suite = label.rpartition(" ")
        resolved.append({"name": label, "uri": f"{url.rstrip('/')}/dists/{suite}/InRelease",
                         "digest": {"sha256": document_sha256}, "annotations": {"role": "apt-suite"}})
    external: dict[str, Any] = {"recipe": facts.recipe, "target": facts.target, "kind": facts.kind}
    if facts.containerfile is not None:
        external["containerfile"] = facts.containerfile
    if facts.build_target is not None:
        external["buildTarget"] = facts.build_target
    if facts.build_arg_names:
        external["buildArgNames"] = sorted(facts.build_arg_names)
    internal: dict[str, Any] = {"updateSources": facts.update_sources}
    if facts.source_date_epoch is not None:
        internal["sourceDateEpoch"] = facts.source_date_epoch
    metadata: dict[str, Any] = {"invocationId": facts.run_id, "startedOn": _timestamp(facts.started)}
    if facts.finished is not None:
        metadata["finishedOn"] = _timestamp(facts.finished)
    run_details: dict[str, Any] = {
        "builder": {"id": PATCHLINE_BUILDER_ID, "version": {"patchline": facts.builder_version}},
        "metadata": metadata,
    }
    if facts.sbom_sha256 is not None:
        run_details["byproducts"] = [{"name": "sbom", "mediaType": facts.sbom_media_type,
                                      "digest": {"sha256": facts.sbom_sha256}}]
    return {
        "_type": INTOTO_STATEMENT_V1,
        "subject": [{"name": subject, "digest": _digest_set(manifest_digest)}],
        "predicateType": SLSA_PROVENANCE_V1,
        "predicate": {
            "buildDefinition": {
                "buildType": PATCHLINE_BUILD_TYPE,
                "externalParameters": external,
                "internalParameters": internal,
                "resolvedDependencies": resolved,
            },
            "runDetails": run_details,
        },
    }


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE v1's pre-authentication encoding: what the signature is over."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def dsse_envelope(statement: Mapping[str, Any], private_key: Path) -> bytes:
    """The statement signed as a DSSE envelope with the ECDSA key (PKCS#8 PEM, ``cosign.key``)."""
    key = load_private_key(private_key)
    body = json.dumps(statement, separators=(",", ":"), sort_keys=True).encode()
    signature = key.sign(pae(INTOTO_PAYLOAD_TYPE, body), ec.ECDSA(hashes.SHA256()))
    envelope = {
        "payloadType": INTOTO_PAYLOAD_TYPE,
        "payload": base64.b64encode(body).decode("ascii"),
        "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode("ascii")}],
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def open_envelope(data: bytes, key: ec.EllipticCurvePublicKey, *, what: str) -> dict[str, Any]:
    """The Statement inside a DSSE envelope one of whose signatures ``key`` made; ``SignatureRefused`` if none."""
    try:
        envelope = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SignatureRefused(f"{what} is not a DSSE envelope (not JSON: {exc.__class__.__name__})") from exc
    if not isinstance(envelope, dict):
        raise SignatureRefused(f"{what} is not a DSSE envelope")
    payload_type, payload, signatures = envelope.get("payloadType"), envelope.get("payload"), envelope.get("signatures")
    if payload_type != INTOTO_PAYLOAD_TYPE:
        raise SignatureRefused(f"{what} carries {payload_type!r}, not an in-toto statement")
    if not isinstance(payload, str) or not isinstance(signatures, list) or not signatures:
        raise SignatureRefused(f"{what} has no payload or no signature")
    try:
        body = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureRefused(f"{what}: the payload is not base64") from exc
    message = pae(payload_type, body)
    for entry in signatures:
        sig = entry.get("sig") if isinstance(entry, dict) else None
        if not isinstance(sig, str):
            continue
        try:
            key.verify(base64.b64decode(sig, validate=True), message, ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, ValueError, InvalidSignature):
            continue
        break
    else:
        raise SignatureRefused(f"no signature on {what} verifies with the key")
    try:
        statement = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise SignatureRefused(f"{what}: the signed statement is not JSON") from exc
    if not isinstance(statement, dict):
        raise SignatureRefused(f"{what}: the signed statement is not an object")
    return statement


def _problems_of_descriptor(rd: Any, where: str) -> list[str]:
    if not isinstance(rd, dict):
        return [f"{where} is not an object"]
    if not rd.get("name") and not rd.get("uri") and not rd.get("digest"):
        return [f"{where} has none of name, uri, digest"]
    problems = []
    digest = rd.get("digest", {})
    if not isinstance(digest, dict):
        return [f"{where}.digest is not an object"]
    for algorithm, value in digest.items():
        size = _DIGEST_SIZES.get(algorithm)
        if size is not None and (not isinstance(value, str) or len(value) != size
                                 or any(c not in "0123456789abcdefABCDEF" for c in value)):
            problems.append(f"{where}.digest.{algorithm} is not {size} hex digits")
    return problems


def check_statement(statement: Mapping[str, Any]) -> list[str]:
    """What keeps ``statement`` from being an in-toto v1 Statement of SLSA v1 provenance (empty: nothing).

    The rules of the in-toto attestation framework's and SLSA's own validators:
    a typed statement with at least one subject with a digest, a predicate type
    and a predicate; a build definition with a build type and external
    parameters; run details with a builder id; valid resource descriptors.
    """
    problems: list[str] = []
    if statement.get("_type") != INTOTO_STATEMENT_V1:
        problems.append(f"_type is {statement.get('_type')!r}, not {INTOTO_STATEMENT_V1}")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        problems.append("no subject")
    else:
        for i, rd in enumerate(subjects):
            problems += _problems_of_descriptor(rd, f"subject[{i}]")
            if isinstance(rd, dict) and not rd.get("digest"):
                problems.append(f"subject[{i}] has no digest")
    if statement.get("predicateType") != SLSA_PROVENANCE_V1:
        problems.append(f"predicateType is {statement.get('predicateType')!r}, not {SLSA_PROVENANCE_V1}")
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        return [*problems, "no predicate"]
    definition = predicate.get("buildDefinition")
    if not isinstance(definition, dict):
        problems.append("no buildDefinition")
    else:
        if not isinstance(definition.get("buildType"), str) or not definition["buildType"]:
            problems.append("no buildDefinition.buildType")
        if not isinstance(definition.get("externalParameters"), dict):
            problems.append("no buildDefinition.externalParameters")
        deps = definition.get("resolvedDependencies", [])
        if not isinstance(deps, list):
            problems.append("buildDefinition.resolvedDependencies is not a list")
        else:
            for i, rd in enumerate(deps):
                problems += _problems_of_descriptor(rd, f"resolvedDependencies[{i}]")
    details = predicate.get("runDetails")
    builder = details.get("builder") if isinstance(details, dict) else None
    if not isinstance(details, dict):
        problems.append("no runDetails")
    elif not isinstance(builder, dict) or not isinstance(builder.get("id"), str) or not builder["id"]:
        problems.append("no runDetails.builder.id")
    return problems


def attach_provenance(*, registry: RegistryWriter, repository: str, manifest_digest: str, envelope: bytes) -> str:
    """Push ``envelope`` as an attestation of ``repository@manifest_digest``; return the tag (``sha256-HEX.att``).

    Attestations already there (another signer's, an earlier build's) are kept beside it.
    """
    name = f"{registry.registry}/{repository}"
    if registry.get_manifest(repository, manifest_digest) is None:
        raise SignError(f"cannot attest {name}@{manifest_digest}: no such manifest in the registry")
    tag = attestation_tag(manifest_digest)
    layers = _attestation_layers(registry, repository, tag, name, strict=False)
    digest = _sha256(envelope)
    if not any(layer.get("digest") == digest for layer in layers):
        registry.push_blob(repository, envelope)
        layers.append({
            "mediaType": DSSE_MEDIA_TYPE,
            "size": len(envelope),
            "digest": digest,
            "annotations": {COSIGN_SIGNATURE_ANNOTATION: "", PREDICATE_TYPE_ANNOTATION: SLSA_PROVENANCE_V1},
        })
    config, manifest = signature_manifest(layers)
    registry.push_blob(repository, config)
    registry.push_manifest(repository, tag, manifest, OCI_MANIFEST)
    return tag


def verify_provenance(
    *,
    registry: RegistryWriter,
    repository: str,
    manifest_digest: str,
    public_key: Path,
    bases: Mapping[str, str] | None = None,
) -> ProvenanceVerification:
    """Check that ``repository@manifest_digest`` carries SLSA v1 provenance signed by ``public_key`` for itself.

    Some DSSE layer of ``sha256-HEX.att`` must hold an envelope (its blob digest
    checked) that the key signed, over a valid statement whose subject is this
    manifest digest. With ``bases`` (reference -> digest, as the build was
    recorded), the provenance must name exactly those bases. Raises
    ``SignatureRefused`` with the reason otherwise.
    """
    key = load_public_key(public_key)
    name = f"{registry.registry}/{repository}"
    tag = attestation_tag(manifest_digest)
    layers = _attestation_layers(registry, repository, tag, name, strict=True)
    candidates = [layer for layer in layers if layer.get("mediaType") == DSSE_MEDIA_TYPE]
    if not candidates:
        raise SignatureRefused(f"{name}@{manifest_digest} has no provenance (no tag {tag})")
    refusals: list[tuple[int, str]] = []
    want = _digest_set(manifest_digest)
    for layer in candidates:
        digest = str(layer.get("digest", ""))
        what = f"{name}:{tag} layer {digest[:19]}"
        try:
            data = registry.get_blob(repository, digest, max_size=_MAX_ENVELOPE)
        except (BlobError, ImageNotFound) as exc:
            refusals.append((0, f"{what} cannot be read: {exc}"))
            continue
        try:
            statement = open_envelope(data, key, what=what)
        except SignatureRefused as exc:
            refusals.append((1, str(exc)))
            continue
        if statement.get("predicateType") != SLSA_PROVENANCE_V1:
            refusals.append((1, f"{what} is a {statement.get('predicateType')!r} attestation, not provenance"))
            continue
        problems = check_statement(statement)
        if problems:
            refusals.append((2, f"{what} is not valid SLSA v1 provenance: {'; '.join(problems[:3])}"))
            continue
        subjects = [s.get("digest", {}) for s in statement["subject"] if isinstance(s, dict)]
        if not any(isinstance(s, dict) and all(s.get(k) == v for k, v in want.items()) for s in subjects):
            named = ", ".join(f"{k}:{v}" for s in subjects if isinstance(s, dict) for k, v in s.items())
            refusals.append((3, f"{what} is the provenance of another image ({named}), not {manifest_digest}"))
            continue
        recorded = _bases_of(statement)
        if bases is not None:
            expected = {ref: _digest_set(d) for ref, d in bases.items()}
            if recorded != expected:
                refusals.append((4, f"{what} names other bases than the build used: {_bases_diff(recorded, expected)}"))
                continue
        predicate = statement["predicate"]
        details = predicate["runDetails"]
        sbom = next((b.get("digest", {}).get("sha256") for b in details.get("byproducts", [])
                     if isinstance(b, dict) and b.get("name") == "sbom" and isinstance(b.get("digest"), dict)), None)
        return ProvenanceVerification(
            repository=name,
            manifest_digest=manifest_digest,
            attestation_digest=digest,
            builder_id=str(details["builder"]["id"]),
            build_type=str(predicate["buildDefinition"]["buildType"]),
            invocation_id=str(details.get("metadata", {}).get("invocationId", "")),
            bases={ref: f"{alg}:{value}" for ref, ds in recorded.items() for alg, value in ds.items()},
            sbom_sha256=sbom if isinstance(sbom, str) else None,
            statement=statement,
        )
    raise SignatureRefused(max(refusals, key=lambda item: item[0])[1])


# -- helpers --------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _bases_of(statement: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    deps = statement["predicate"]["buildDefinition"].get("resolvedDependencies", [])
    return {str(d.get("name")): dict(d.get("digest", {})) for d in deps
            if isinstance(d, dict) and isinstance(d.get("annotations"), dict)
            and d["annotations"].get("role") == "base-image"}


def _shown(digests: Mapping[str, str] | None) -> str:
    return ", ".join(f"{k}:{v[:12]}" for k, v in digests.items()) if digests else "none"


def _bases_diff(recorded: Mapping[str, Mapping[str, str]], expected: Mapping[str, Mapping[str, str]]) -> str:
    parts = []
    for ref in sorted(set(recorded) | set(expected)):
        got, want = recorded.get(ref), expected.get(ref)
        if got != want:
            parts.append(f"{ref}: provenance {_shown(got)}, recorded {_shown(want)}")
    return "; ".join(parts)


def _attestation_layers(registry: RegistryWriter, repository: str, tag: str, name: str, *,
                        strict: bool) -> list[dict[str, Any]]:
    """The layers of the attestation image at ``tag``; [] when there is none."""
    try:
        fetched = registry.get_manifest(repository, tag)
    except ManifestError as exc:
        raise SignatureRefused(f"{name}:{tag} is not an attestation image: {exc}") from exc
    if fetched is None:
        return []
    try:
        doc = json.loads(fetched.data)
    except (ValueError, RecursionError) as exc:
        raise (SignatureRefused if strict else SignError)(f"{name}:{tag} is not JSON") from exc
    layers = doc.get("layers") if isinstance(doc, dict) else None
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        # Replacing it would drop whatever is there; a person has to look.
        raise (SignatureRefused if strict else SignError)(f"{name}:{tag} has no list of layers")
    return layers


"""The pure parts of cosign-format signing: payload bytes, signatures, the signature image, payload checks.

Signing and verifying against a real registry is in tests/integration/test_attachments.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from patchline.errors import SignatureRefused, SignError
from patchline.sign._cosign import (
    check_payload,
    cosign_payload,
    docker_reference,
    load_private_key,
    load_public_key,
    sign_payload,
    signature_manifest,
    signature_tag,
    signature_verifies,
)
from patchline.sign.interface import COSIGN_LAYER_MEDIA_TYPE, COSIGN_SIGNATURE_ANNOTATION

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def test_payload_is_byte_for_byte_cosigns() -> None:
    payload = cosign_payload(docker_reference="127.0.0.1:5000/team/app", manifest_digest=DIGEST)
    assert payload == (
        b'{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/team/app"},'
        b'"image":{"docker-manifest-digest":"' + DIGEST.encode() + b'"},'
        b'"type":"cosign container image signature"},"optional":null}'
    )


@pytest.mark.parametrize(
    ("registry", "repository", "expected"),
    [
        ("127.0.0.1:5000", "app", "127.0.0.1:5000/app"),
        ("localhost", "team/app", "localhost/team/app"),
        ("docker.io", "library/debian", "index.docker.io/library/debian"),
    ],
)
def test_docker_reference(registry: str, repository: str, expected: str) -> None:
    assert docker_reference(registry, repository) == expected


def test_signature_tag() -> None:
    assert signature_tag(DIGEST) == "sha256-" + "ab" * 32 + ".sig"
    with pytest.raises(SignError):
        signature_tag("latest")


def test_signature_round_trip(key: ec.EllipticCurvePrivateKey) -> None:
    payload = cosign_payload(docker_reference="127.0.0.1:5000/app", manifest_digest=DIGEST)
    signature = sign_payload(payload, key)
    assert signature_verifies(payload, signature, key.public_key())
    # DER ECDSA, as cosign stores it: a SEQUENCE of two INTEGERs.
    assert base64.b64decode(signature)[0] == 0x30


def test_tampered_payload_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    payload = cosign_payload(docker_reference="127.0.0.1:5000/app", manifest_digest=DIGEST)
    signature = sign_payload(payload, key)
    tampered = cosign_payload(docker_reference="127.0.0.1:5000/app", manifest_digest=OTHER)
    assert not signature_verifies(tampered, signature, key.public_key())


def test_wrong_key_is_refused(key: ec.EllipticCurvePrivateKey) -> None:
    payload = b"payload"
    signature = sign_payload(payload, key)
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert not signature_verifies(payload, signature, stranger)


@pytest.mark.parametrize("signature", ["", "not base64!", base64.b64encode(b"\x30\x03garbage").decode()])
def test_malformed_signature_is_refused(key: ec.EllipticCurvePrivateKey, signature: str) -> None:
    assert not signature_verifies(b"payload", signature, key.public_key())


def test_signature_manifest_is_cosigns_shape() -> None:
    payloads = [b"first", b"second"]
    layers = [
        {
            "mediaType": COSIGN_LAYER_MEDIA_TYPE,
            "size": len(p),
            "digest": "sha256:" + hashlib.sha256(p).hexdigest(),
            "annotations": {COSIGN_SIGNATURE_ANNOTATION: "c2ln"},
        }
        for p in payloads
    ]
    config, manifest = signature_manifest(layers)
    doc = json.loads(manifest)
    assert doc["schemaVersion"] == 2
    assert doc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert doc["config"] == {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "size": len(config),
        "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
    }
    assert doc["layers"] == layers
    config_doc = json.loads(config)
    assert config_doc["rootfs"] == {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]}
    assert len(config_doc["history"]) == 2
    assert signature_manifest(layers) == (config, manifest)  # deterministic: re-signing changes nothing


def _payload(reference: str = "127.0.0.1:5000/app", digest: str = DIGEST) -> bytes:
    return cosign_payload(docker_reference=reference, manifest_digest=digest)


@pytest.mark.parametrize(
    ("reference", "identity"),
    [
        ("127.0.0.1:5000/app", "127.0.0.1:5000/app"),
        ("127.0.0.1:5000/app:1.2", "127.0.0.1:5000/app"),
        (f"127.0.0.1:5000/app@{DIGEST}", "127.0.0.1:5000/app"),
        ("index.docker.io/library/debian", "docker.io/library/debian"),
        ("docker.io/debian:12", "index.docker.io/library/debian"),
    ],
)
def test_payload_for_this_image_and_repository(reference: str, identity: str) -> None:
    assert check_payload(_payload(reference), identity=identity, manifest_digest=DIGEST) == reference


def test_payload_of_another_image_is_refused() -> None:
    with pytest.raises(SignatureRefused, match=f"signs another image \\({DIGEST}\\), not {OTHER}"):
        check_payload(_payload(), identity="127.0.0.1:5000/app", manifest_digest=OTHER)


@pytest.mark.parametrize("identity", ["127.0.0.1:5000/other", "127.0.0.1:5001/app", "127.0.0.1:5000/team/app"])
def test_payload_for_another_repository_is_refused(identity: str) -> None:
    with pytest.raises(SignatureRefused, match=re.escape("names '127.0.0.1:5000/app'")):
        check_payload(_payload(), identity=identity, manifest_digest=DIGEST)


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        b'{"critical":{}}',
        json.dumps(
            {
                "critical": {
                    "identity": {"docker-reference": "127.0.0.1:5000/app"},
                    "image": {"docker-manifest-digest": DIGEST},
                    "type": "atomic container signature",
                },
                "optional": None,
            }
        ).encode(),
    ],
)
def test_payload_that_is_not_a_cosign_payload_is_refused(payload: bytes) -> None:
    with pytest.raises(SignatureRefused):
        check_payload(payload, identity="127.0.0.1:5000/app", manifest_digest=DIGEST)


def test_keys_as_patchline_writes_them(tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    private, public = tmp_path / "cosign.key", tmp_path / "cosign.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signature = sign_payload(b"payload", load_private_key(private))
    assert signature_verifies(b"payload", signature, load_public_key(public))


def test_unusable_private_keys(tmp_path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    rsa_key = tmp_path / "rsa.key"
    rsa_key.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(SignError, match="not an unencrypted PKCS#8 PEM private key"):
        load_private_key(encrypted)
    with pytest.raises(SignError, match="not an ECDSA key"):
        load_private_key(rsa_key)
    with pytest.raises(SignError, match="cannot read"):
        load_private_key(tmp_path / "missing.key")
    with pytest.raises(SignError, match="not a PEM public key"):
        load_public_key(rsa_key)

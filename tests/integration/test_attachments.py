"""cosign-format signatures and the attached SBOM against a real registry (distribution 2.8).

Images are pushed with skopeo from the test OCI layout; signatures and SBOMs are
written and read back through patchline's registry writer, and what lands in the
registry is read independently with ``skopeo inspect --raw``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from patchline.errors import RegistryError, SignatureRefused, SignError
from patchline.inventory import scan_image
from patchline.oci import RegistryWriter, open_source
from patchline.oci._auth import CredentialStore
from patchline.sbom import SbomFormat, load_inventory_json, render_sbom
from patchline.sign._attach import attach_sbom, fetch_sbom, referrers, referrers_tag
from patchline.sign._cosign import sign_cosign, signature_tag, verify_cosign
from patchline.sign.interface import COSIGN_LAYER_MEDIA_TYPE, COSIGN_SIGNATURE_ANNOTATION, CYCLONEDX_MEDIA_TYPE
from tests.support.registry import RunningRegistry, TestLayout, require_tools

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return _key_pair(tmp_path / "cosign")


@pytest.fixture
def writer(registry: RunningRegistry) -> Iterator[RegistryWriter]:
    with RegistryWriter(registry.host, insecure=True, auth=CredentialStore([]), timeout=10) as opened:
        yield opened


def _key_pair(stem: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = stem.with_suffix(".key"), stem.with_suffix(".pub")
    stem.parent.mkdir(parents=True, exist_ok=True)
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


def _openssl_verifies(payload: bytes, signature: str, public: Path, workdir: Path) -> None:
    """The signature checked by another implementation: ``openssl dgst -verify``."""
    require_tools("openssl")
    (workdir / "payload").write_bytes(payload)
    (workdir / "signature.der").write_bytes(base64.b64decode(signature))
    result = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(public), "-signature", str(workdir / "signature.der"),
         str(workdir / "payload")],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0 and "Verified OK" in result.stdout, result.stdout + result.stderr


def _inspect_raw(registry: RunningRegistry, name: str) -> bytes:
    require_tools("skopeo")
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(registry.workdir / "no-auth.json")}
    result = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry.ref(name)}"],
        capture_output=True, env=env, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def _tags(registry: RunningRegistry, repository: str) -> set[str]:
    response = httpx.get(f"{registry.url}/v2/{repository}/tags/list", timeout=10)
    response.raise_for_status()
    return set(response.json()["tags"])


def _push_single(registry: RunningRegistry, layout: TestLayout, dest: str = "app:1") -> str:
    registry.push(layout.path, "single", dest)
    return layout.single.manifest_digest


def _copy_manifest(writer: RegistryWriter, source: tuple[str, str], dest: tuple[str, str]) -> None:
    """Copy a manifest with its blobs, bytes unchanged, as `cosign copy` copies a signature."""
    fetched = writer.get_manifest(*source)
    assert fetched is not None
    doc = json.loads(fetched.data)
    for descriptor in [doc["config"], *doc["layers"]]:
        blob = writer.get_blob(source[0], descriptor["digest"], max_size=1 << 20)
        writer.push_blob(dest[0], blob)
    writer.push_manifest(dest[0], dest[1], fetched.data, fetched.media_type)


def _cyclonedx_of_image(registry: RunningRegistry, reference: str) -> bytes:
    """The real thing: scan the pushed image and render its CycloneDX SBOM."""
    with open_source(registry.ref(reference), insecure=True) as source:
        inventory = scan_image(source)
    return render_sbom(inventory, SbomFormat.CYCLONEDX).encode()


# -- cosign ----------------------------------------------------------------------


def test_sign_then_verify(
    registry: RunningRegistry, oci_test_layout: TestLayout, writer: RegistryWriter, keys: tuple[Path, Path]
) -> None:
    digest = _push_single(registry, oci_test_layout)
    private, public = keys

    tag = sign_cosign(registry=writer, repository="app", manifest_digest=digest, private_key=private)

    assert tag == f"sha256-{digest.removeprefix('sha256:')}.sig"
    verdict = verify_cosign(registry=writer, repository="app", manifest_digest=digest, public_key=public)
    assert verdict.docker_reference == f"{registry.host}/app"
    assert verdict.repository == f"{registry.host}/app"
    assert verdict.manifest_digest == digest
    raw = _inspect_raw(registry, f"app:{tag}")
    assert verdict.signature_digest == "sha256:" + hashlib.sha256(raw).hexdigest()
    manifest = json.loads(raw)
    assert manifest["mediaType"] == OCI_MANIFEST
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == COSIGN_LAYER_MEDIA_TYPE
    assert layer["annotations"][COSIGN_SIGNATURE_ANNOTATION]
    payload = registry.blob_path(layer["digest"]).read_bytes()
    assert json.loads(payload)["critical"]["image"]["docker-manifest-digest"] == digest
    _openssl_verifies(payload, layer["annotations"][COSIGN_SIGNATURE_ANNOTATION], public, private.parent)
    config = json.loads(registry.blob_path(manifest["config"]["digest"]).read_bytes())
    assert config["rootfs"]["diff_ids"] == [layer["digest"]]
    # The image itself is untouched; the signature is a tag beside it.
    assert json.loads(_inspect_raw(registry, "app:1")) == json.loads(oci_test_layout.blob(digest))
    assert _tags(registry, "app") == {"1", tag}


def test_signing_again_keeps_the_signature_and_a_second_key_adds_one(
    registry: RunningRegistry, oci_test_layout: TestLayout, writer: RegistryWriter, tmp_path: Path,
    keys: tuple[Path, Path],
) -> None:
    digest = _push_single(registry, oci_test_layout)
    private, public = keys
    other_private, other_public = _key_pair(tmp_path / "other")
    tag = sign_cosign(registry=writer, repository="app", manifest_digest=digest, private_key=private)
    first = _inspect_raw(registry, f"app:{tag}")

    sign_cosign(registry=writer, repository="app", manifest_digest=digest, private_key=private)
    assert _inspect_raw(registry, f"app:{tag}") == first

    sign_cosign(registry=writer, repository="app", manifest_digest=digest, private_key=other_private)
    layers = json.loads(_inspect_raw(registry, f"app:{tag}"))["layers"]
    assert len(layers) == 2
    assert layers[0] == json.loads(first)["layers"][0]
    for key in (public, other_public):
        verify_cosign(registry=writer, repository="app", manifest_digest=digest, public_key=key)


def test_signature_of_another_image_is_refused(
    registry: RunningRegistry, oci_test_layout: TestLayout, writer: RegistryWriter, keys: tuple[Path, Path]
) -> None:
    first = _push_single(registry, oci_test_layout)
    registry.push(oci_test_layout.path, "multi", "app:2", all_platforms=True)
    second = oci_test_layout.multi_index_digest
    private, public = keys
    tag = sign_cosign(registry=writer, repository="app", manifest_digest=first, private_key=private)
    # The first image's signature, put where the second's would be.
    _copy_manifest(writer, ("app", tag), ("app", signature_tag(second)))

    with pytest.raises(SignatureRefused, match=f"signs another image \\({first}\\)"):
        verify_cosign(registry=writer, repository="app", manifest_digest=second, public_key=public)


def test_unsigned_image_is_refused(
    registry: RunningRegistry, oci_test_layout: TestLayout, writer: RegistryWriter, keys: tuple[Path, Path]
) -> None:
    digest = _push_single(registry, oci_test_layout)
    with pytest.raises(SignatureRefused, match="has no cosign signature"):
        verify_cosign(registry=writer, repository="app", manifest_digest=digest, public_key=keys[1])


def test_wrong_key_is_refused(
    registry: RunningRegistry, oci_test_layout: TestLayout, writer: RegistryWriter, tmp_path: Path,
    keys: tuple[Path, Path],
) -> None:
    digest = _push_single(registry, oci_test_layout)
    sign_cosign(registry=writer, repository="app", manifest_digest=digest, private_key=keys[0])
    _, stranger = _key_pair(tmp_path / "stranger")

    with pytest.raises(SignatureRefused, match="verifies with"):
        verify_cosign(registry=writer, repository="app", manifest_digest=digest, public_key=stranger)


def test_signature_copied_to_another_repository_names_the_first(
    registry: RunningRegistry, oci_test_layout: TestLayout, writer: RegistryWriter, keys: tuple[Path, Path]
) -> None:
    digest = _push_single(registry, oci_test_layout)
    _push_single(registry, oci_test_layout, "mirror/app:1")
    tag = sign_cosign(registry=writer, repository="app", manifest_digest=digest, private_key=keys[0])
    _copy_manifest(writer, ("app", tag), ("mirror/app", tag))

    with pytest.raises(SignatureRefused, match=f"names '{registry.host}/app', not '{registry.host}/mirror/app'"):
        verify_cosign(registry=writer, repository="mirror/app", manifest_digest=digest, public_key=keys[1])


def test_signing_with_a_token_server_asks_for_push(
    token_auth_registry: RunningRegistry, oci_test_layout: TestLayout, tmp_path: Path, keys: tuple[Path, Path]
) -> None:
    registry = token_auth_registry
    digest = _push_single(registry, oci_test_layout)
    store = CredentialStore([registry.write_auth_file(tmp_path / "auth.json")])
    assert registry.token_server is not None
    registry.token_server.requests.clear()

    with RegistryWriter(registry.host, insecure=True, auth=store, timeout=10) as writer:
        sign_cosign(registry=writer, repository="app", manifest_digest=digest, private_key=keys[0])
        verify_cosign(registry=writer, repository="app", manifest_digest=digest, public_key=keys[1])

    scopes = [scope for seen in registry.token_server.requests for scope in seen["query"].get("scope", [])]
    assert scopes == ["repository:app:pull,push"]  # one token, cached, for every request


# -- SBOM attachments ------------------------------------------------------------


def test_attach_then_fetch_the_sbom(
    registry: RunningRegistry, oci_test_layout: TestLayout, writer: RegistryWriter
) -> None:
    digest = _push_single(registry, oci_test_layout)
    sbom = _cyclonedx_of_image(registry, f"app@{digest}")
    assert json.loads(sbom)["bomFormat"] == "CycloneDX"

    artifact = attach_sbom(registry=writer, repository="app", manifest_digest=digest, sbom=sbom)

    assert fetch_sbom(registry=writer, repository="app", manifest_digest=digest) == sbom
    manifest = json.loads(_inspect_raw(registry, f"app@{artifact}"))
    assert manifest["artifactType"] == CYCLONEDX_MEDIA_TYPE
    assert manifest["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "size": 2,
    }
    assert manifest["subject"] == {
        "mediaType": OCI_MANIFEST, "digest": digest, "size": oci_test_layout.single.manifest_size,
    }
    assert manifest["layers"][0]["mediaType"] == CYCLONEDX_MEDIA_TYPE
    index = json.loads(_inspect_raw(registry, f"app:{referrers_tag(digest)}"))
    assert index["mediaType"] == OCI_INDEX
    assert [entry["digest"] for entry in index["manifests"]] == [artifact]
    assert index["manifests"][0]["artifactType"] == CYCLONEDX_MEDIA_TYPE
    assert "org.opencontainers.image.created" in index["manifests"][0]["annotations"]
    assert json.loads(_inspect_raw(registry, "app:1")) == json.loads(oci_test_layout.blob(digest))
    assert _tags(registry, "app") == {"1", referrers_tag(digest)}


def test_two_sboms_are_both_listed_and_reattaching_adds_nothing(
    registry: RunningRegistry, oci_test_layout: TestLayout, writer: RegistryWriter, keys: tuple[Path, Path]
) -> None:
    digest = _push_single(registry, oci_test_layout)
    old = _cyclonedx_of_image(registry, f"app@{digest}")
    inventory = load_inventory_json((DATA / "sbom" / "debian-app" / "inventory.json").read_text(encoding="utf-8"))
    new = render_sbom(inventory, SbomFormat.CYCLONEDX).encode()
    earlier = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    later = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    sign_cosign(registry=writer, repository="app", manifest_digest=digest, private_key=keys[0])

    first = attach_sbom(registry=writer, repository="app", manifest_digest=digest, sbom=old, created=earlier)
    second = attach_sbom(registry=writer, repository="app", manifest_digest=digest, sbom=new, created=later)
    again = attach_sbom(registry=writer, repository="app", manifest_digest=digest, sbom=old)

    assert again == first != second
    index = json.loads(_inspect_raw(registry, f"app:{referrers_tag(digest)}"))
    assert [entry["digest"] for entry in index["manifests"]] == [first, second]
    listed = referrers(registry=writer, repository="app", manifest_digest=digest, artifact_type=CYCLONEDX_MEDIA_TYPE)
    assert [entry["digest"] for entry in listed] == [first, second]
    assert fetch_sbom(registry=writer, repository="app", manifest_digest=digest) == new
    # Signature and attachments sit beside the image; its manifest is the one pushed.
    assert writer.get_manifest("app", "1") == writer.get_manifest("app", digest)
    fetched = writer.get_manifest("app", "1")
    assert fetched is not None and fetched.digest == digest
    verify_cosign(registry=writer, repository="app", manifest_digest=digest, public_key=keys[1])


def test_a_deleted_referrer_is_dropped_from_the_index(
    registry: RunningRegistry, oci_test_layout: TestLayout, writer: RegistryWriter
) -> None:
    digest = _push_single(registry, oci_test_layout)
    gone = attach_sbom(registry=writer, repository="app", manifest_digest=digest, sbom=b'{"bomFormat":"CycloneDX"}')
    response = httpx.delete(f"{registry.url}/v2/app/manifests/{gone}", timeout=10)
    assert response.status_code == 202, response.text

    # Distribution refuses an index listing a manifest it does not have: the stale entry must go.
    kept = attach_sbom(
        registry=writer, repository="app", manifest_digest=digest, sbom=b'{"bomFormat":"CycloneDX","version":2}'
    )

    index = json.loads(_inspect_raw(registry, f"app:{referrers_tag(digest)}"))
    assert [entry["digest"] for entry in index["manifests"]] == [kept]


def test_sbom_of_an_image_without_one(
    registry: RunningRegistry, oci_test_layout: TestLayout, writer: RegistryWriter
) -> None:
    digest = _push_single(registry, oci_test_layout)
    assert referrers(registry=writer, repository="app", manifest_digest=digest) == []
    with pytest.raises(SignError, match=re.escape("no application/vnd.cyclonedx+json SBOM is attached")):
        fetch_sbom(registry=writer, repository="app", manifest_digest=digest)


def test_registry_gone_before_attaching_fails_fast(
    registry: RunningRegistry, oci_test_layout: TestLayout, writer: RegistryWriter, keys: tuple[Path, Path]
) -> None:
    digest = _push_single(registry, oci_test_layout)
    assert writer.get_manifest("app", digest) is not None  # a pooled connection to lose
    registry.kill()

    started = time.monotonic()
    with pytest.raises(RegistryError, match="cannot connect"):
        attach_sbom(registry=writer, repository="app", manifest_digest=digest, sbom=b"{}")
    with pytest.raises(RegistryError, match="cannot connect"):
        sign_cosign(registry=writer, repository="app", manifest_digest=digest, private_key=keys[0])
    assert time.monotonic() - started < 20


"""SLSA v1 provenance against a real registry (distribution 2.8): built, signed, attached, fetched, verified.

Images are pushed with skopeo from the test OCI layout and signed with
``sign_pushed`` (simple signing with GnuPG and skopeo, cosign format, SBOM,
provenance); what lands at ``sha256-HEX.att`` is read back independently with
``skopeo inspect --raw`` and the DSSE signature checked with ``openssl``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from patchline import _clock
from patchline._config import SignConfig
from patchline.oci import RegistryWriter
from patchline.oci._auth import CredentialStore
from patchline.sign import (
    ProvenanceFacts,
    SignOptions,
    attach_provenance,
    attach_sbom,
    dsse_envelope,
    generate_keys,
    provenance_statement,
    sign_pushed,
    stop_agent,
    verify_attachments,
)
from patchline.sign._provenance import attestation_tag, pae
from tests.support.registry import RunningRegistry, TestLayout, build_test_layout, require_tools

pytestmark = pytest.mark.integration

BASE_REF = "registry.example/library/debian:bookworm"
BASE_DIGEST = "sha256:" + "cd" * 32


@pytest.fixture(autouse=True)
def _tools() -> None:
    require_tools("gpg", "gpgconf", "skopeo", "docker-registry", "openssl")


@dataclass(frozen=True)
class Signer:
    registry: RunningRegistry
    options: SignOptions
    workdir: Path

    def push(self, name: str) -> tuple[str, str]:
        """Push a fresh image to ``example/NAME``; (repository, manifest digest)."""
        layout: TestLayout = build_test_layout(self.workdir / f"layout-{name}", big_layer_bytes=256)
        self.registry.push(layout.path, "big", f"example/{name}:1")
        return self.registry.ref(f"example/{name}"), layout.big.manifest_digest

    def facts(self, **changes: object) -> ProvenanceFacts:
        values: dict[str, object] = dict(
            recipe="web", target="x", kind="containerfile", input_hash="sha256:" + "ef" * 32,
            bases={BASE_REF: BASE_DIGEST}, run_id="r-test-1", started=_clock.now(), builder_version="test",
            apt_sources=(("http://mirror.example/debian-security bookworm-security", "12" * 32),))
        values.update(changes)
        return ProvenanceFacts(**values)  # type: ignore[arg-type]

    def writer(self) -> RegistryWriter:
        return RegistryWriter(self.registry.host, insecure=True, auth=CredentialStore([]), timeout=10)


@pytest.fixture
def signer(registry: RunningRegistry, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Signer]:
    config = SignConfig(keyring=tmp_path / "keys", lookaside=tmp_path / "sigstore",
                        registries_d=tmp_path / "registries.d", policy=tmp_path / "policy.json")
    keys = generate_keys(config)
    request.addfinalizer(lambda: stop_agent(keys))
    yield Signer(registry, SignOptions(keys=keys, config=config, insecure=frozenset({registry.host})), tmp_path)


def _other_key(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


def _inspect_raw(registry: RunningRegistry, name: str) -> bytes:
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(registry.workdir / "no-auth.json")}
    result = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry.ref(name)}"],
                            capture_output=True, env=env, timeout=60, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def test_built_signed_attached_fetched_and_verified(signer: Signer) -> None:
    repository, digest = signer.push("web")
    sbom = b'{"bomFormat":"CycloneDX","specVersion":"1.6","components":[]}'
    signed = sign_pushed(signer.options, repository=repository, manifest_digest=digest, sbom=sbom,
                         provenance=signer.facts())
    assert signed.provenance_tag == attestation_tag(digest)

    result = verify_attachments(signer.options, f"{repository}@{digest}", bases={BASE_REF: BASE_DIGEST})
    assert result.ok, result.as_dict()
    assert [(c.name, c.state) for c in result.checks] == [
        ("signature", "passed"), ("cosign", "passed"), ("sbom", "passed"), ("provenance", "passed")]
    assert result.provenance is not None and result.provenance.bases == {BASE_REF: BASE_DIGEST}

    # Read independently: the layout cosign verify-attestation reads, and a signature openssl accepts.
    manifest = json.loads(_inspect_raw(signer.registry, f"example/web:{signed.provenance_tag}"))
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    assert layer["annotations"]["predicateType"] == "https://slsa.dev/provenance/v1"
    envelope = json.loads(signer.registry.blob_path(layer["digest"]).read_bytes())
    body = base64.b64decode(envelope["payload"])
    statement = json.loads(body)
    assert statement["subject"][0]["digest"] == {"sha256": digest.removeprefix("sha256:")}
    assert statement["predicate"]["runDetails"]["byproducts"][0]["digest"]["sha256"] == (
        hashlib.sha256(sbom).hexdigest())
    work = signer.workdir / "openssl"
    work.mkdir()
    (work / "pae").write_bytes(pae(envelope["payloadType"], body))
    (work / "sig.der").write_bytes(base64.b64decode(envelope["signatures"][0]["sig"]))
    checked = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(signer.options.keys.cosign_public_key),
                              "-signature", str(work / "sig.der"), str(work / "pae")],
                             capture_output=True, text=True, timeout=30, check=False)
    assert checked.returncode == 0 and "Verified OK" in checked.stdout, checked.stderr


def test_another_images_provenance_is_refused(signer: Signer) -> None:
    repository, first = signer.push("one")
    _, second = signer.push("one-again")
    other_repository = signer.registry.ref("example/one-again")
    sign_pushed(signer.options, repository=repository, manifest_digest=first, sbom=None, provenance=signer.facts())
    sign_pushed(signer.options, repository=other_repository, manifest_digest=second, sbom=None, provenance=None)
    # The first image's provenance, put where the second's would be (same registry, cosign copy style).
    with signer.writer() as writer:
        fetched = writer.get_manifest("example/one", attestation_tag(first))
        assert fetched is not None
        for descriptor in [json.loads(fetched.data)["config"], *json.loads(fetched.data)["layers"]]:
            writer.push_blob("example/one-again", writer.get_blob("example/one", descriptor["digest"],
                                                                  max_size=1 << 20))
        writer.push_manifest("example/one-again", attestation_tag(second), fetched.data, fetched.media_type)

    result = verify_attachments(signer.options, f"{other_repository}@{second}")
    check = result.check("provenance")
    assert check.state == "failed" and "provenance of another image" in check.evidence, check
    assert not result.ok


def test_a_changed_base_is_refused(signer: Signer) -> None:
    repository, digest = signer.push("based")
    sign_pushed(signer.options, repository=repository, manifest_digest=digest, sbom=None, provenance=signer.facts())
    recorded = {BASE_REF: "sha256:" + "99" * 32}  # what the store says the build used

    check = verify_attachments(signer.options, f"{repository}@{digest}", bases=recorded).check("provenance")

    assert check.state == "failed" and "other bases than the build used" in check.evidence, check
    assert BASE_REF in check.evidence


def test_a_tampered_payload_is_refused(signer: Signer) -> None:
    repository, digest = signer.push("tampered")
    sign_pushed(signer.options, repository=repository, manifest_digest=digest, sbom=None, provenance=None)
    statement = provenance_statement(subject=repository, manifest_digest=digest, facts=signer.facts())
    envelope = json.loads(dsse_envelope(statement, signer.options.keys.cosign_private_key))
    statement["predicate"]["buildDefinition"]["resolvedDependencies"][1]["digest"]["sha256"] = "00" * 32
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with signer.writer() as writer:
        attach_provenance(registry=writer, repository="example/tampered", manifest_digest=digest,
                          envelope=json.dumps(envelope).encode())

    check = verify_attachments(signer.options, f"{repository}@{digest}").check("provenance")

    assert check.state == "failed" and "verifies with the key" in check.evidence, check


def test_a_wrong_key_is_refused(signer: Signer) -> None:
    repository, digest = signer.push("keyed")
    sign_pushed(signer.options, repository=repository, manifest_digest=digest, sbom=None, provenance=signer.facts())

    result = verify_attachments(signer.options, f"{repository}@{digest}",
                                cosign_key=_other_key(signer.workdir / "other.pub"))

    assert result.check("provenance").state == "failed"
    assert result.check("cosign").state == "failed"
    assert result.check("signature").state == "passed"  # GPG: patchline's own key


def test_a_replaced_sbom_is_refused(signer: Signer) -> None:
    repository, digest = signer.push("sbom")
    sign_pushed(signer.options, repository=repository, manifest_digest=digest, sbom=b'{"bomFormat":"CycloneDX"}',
                provenance=signer.facts())
    with signer.writer() as writer:  # a newer SBOM, attached by someone without the key
        attach_sbom(registry=writer, repository="example/sbom", manifest_digest=digest,
                    sbom=b'{"bomFormat":"CycloneDX","components":[{"name":"nothing-to-see"}]}',
                    created=_clock.now().replace(year=2099))

    check = verify_attachments(signer.options, f"{repository}@{digest}").check("sbom")

    assert check.state == "failed" and "replaced or tampered" in check.evidence, check


def test_without_provenance_the_image_fails_verification(signer: Signer) -> None:
    repository, digest = signer.push("bare")
    sign_pushed(signer.options, repository=repository, manifest_digest=digest, sbom=None, provenance=None)

    result = verify_attachments(signer.options, f"{repository}@{digest}")

    assert not result.ok
    assert "has no provenance" in result.check("provenance").evidence
    # Turned off in [sign], the check is skipped, not passed.
    off = replace(signer.options, config=signer.options.config.model_copy(update={"provenance": False}))
    assert verify_attachments(off, f"{repository}@{digest}").check("provenance").state == "skipped"


def test_verify_command(signer: Signer, tmp_path: Path) -> None:
    from patchline.cli import app

    repository, digest = signer.push("cli")
    sign_pushed(signer.options, repository=repository, manifest_digest=digest, sbom=b'{"bomFormat":"CycloneDX"}',
                provenance=signer.facts())
    cfg = signer.options.config
    config = tmp_path / "patchline.toml"
    config.write_text(f'[sign]\nkeyring = "{cfg.keyring}"\nlookaside = "{cfg.lookaside}"\n'
                      f'registries_d = "{cfg.registries_d}"\npolicy = "{cfg.policy}"\n'
                      f'[registries]\ninsecure = ["{signer.registry.host}"]\n')
    db = str(tmp_path / "store.db")
    runner = CliRunner()

    ok = runner.invoke(app, ["-c", str(config), "verify", f"{repository}@{digest}", "--db", db, "--json"])
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.stdout)
    assert doc["schema"] == "patchline/verify/v1" and doc["ok"] is True
    assert doc["provenance"]["invocation_id"] == "r-test-1"

    _, unsigned = signer.push("cli-unsigned")
    bad = runner.invoke(app, ["-c", str(config), "verify", f"{signer.registry.ref('example/cli-unsigned')}@{unsigned}",
                              "--db", db])
    assert bad.exit_code == 1, bad.output
    assert "failed" in bad.stdout

    wrong = runner.invoke(app, ["-c", str(config), "verify", f"{repository}:1", "--db", db])
    assert wrong.exit_code == 2 and "verify an image by its digest" in wrong.output


def test_a_rollout_requiring_provenance_refuses_an_image_without_it(signer: Signer, tmp_path: Path) -> None:
    from patchline._config import Config
    from patchline.errors import PolicyDenied
    from patchline.rollout._service import check_rollout_policy
    from patchline.store import open_store

    config = Config.model_validate({
        "sign": signer.options.config.model_dump(), "registries": {"insecure": [signer.registry.host]},
        "policy": {"require_attestations": ["signature", "sbom", "provenance"]}})
    with_provenance, without = signer.push("gated"), signer.push("gated-bare")
    sign_pushed(signer.options, repository=with_provenance[0], manifest_digest=with_provenance[1],
                sbom=b'{"bomFormat":"CycloneDX"}', provenance=signer.facts())
    sign_pushed(signer.options, repository=without[0], manifest_digest=without[1], sbom=b'{"bomFormat":"CycloneDX"}',
                provenance=None)
    with open_store(f"sqlite:///{tmp_path / 'store.db'}") as store:
        decision = check_rollout_policy(config, store, f"{with_provenance[0]}@{with_provenance[1]}")
        assert decision.ok, decision.summary()
        with pytest.raises(PolicyDenied, match=r"policy required-attestations: .*provenance failed: .*has no "
                                               r"provenance"):
            check_rollout_policy(config, store, f"{without[0]}@{without[1]}", service="web")
        (event,) = [e for e in store.events() if e.type == "policy.denied"]
        assert event.data["step"] == "rollout"

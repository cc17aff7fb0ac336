"""SLSA v1 provenance: the statement, its schemas, and the DSSE envelope (no registry needed)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from referencing import Registry, Resource

from patchline.errors import SignatureRefused
from patchline.sign import ProvenanceFacts, check_statement, dsse_envelope, provenance_statement
from patchline.sign._provenance import attestation_tag, open_envelope, pae

SCHEMAS = Path(__file__).resolve().parents[2] / "data" / "schemas"
DIGEST = "sha256:" + "ab" * 32
BASE = "sha256:" + "cd" * 32
NOW = dt.datetime(2026, 12, 6, 1, 2, 3, tzinfo=dt.UTC)


def _facts(**changes: Any) -> ProvenanceFacts:
    values: dict[str, Any] = dict(
        recipe="web", target="registry.example/team/web:1", kind="containerfile", input_hash="sha256:" + "ef" * 32,
        bases={"registry.example/library/debian:bookworm": BASE}, run_id="r-20261206-0001", started=NOW,
        finished=NOW + dt.timedelta(seconds=42), builder_version="0.1.0",
        apt_sources=(("http://mirror.example/debian-security bookworm-security", "12" * 32),),
        containerfile="/srv/recipes/web/Containerfile", build_arg_names=("TOKEN",), source_date_epoch=1764979200,
        update_sources=True, sbom_sha256="34" * 32)
    values.update(changes)
    return ProvenanceFacts(**values)


def _statement(**changes: Any) -> dict[str, Any]:
    return provenance_statement(subject="registry.example/team/web", manifest_digest=DIGEST, facts=_facts(**changes))


def _keys(tmp_path: Path, name: str = "cosign") -> tuple[Path, ec.EllipticCurvePublicKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / f"{name}.key"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return path, key.public_key()


def _validator(name: str) -> jsonschema.Draft202012Validator:
    registry: Registry[Any] = Registry()
    for path in SCHEMAS.glob("*.schema.json"):
        registry = registry.with_resource(path.name, Resource.from_contents(json.loads(path.read_text())))
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / name).read_text()), registry=registry)


def test_statement_validates_against_the_in_toto_and_slsa_schemas() -> None:
    statement = _statement()
    _validator("in-toto-statement-v1.schema.json").validate(statement)
    _validator("slsa-provenance-v1.schema.json").validate(statement["predicate"])
    assert check_statement(statement) == []


def test_the_schemas_refuse_what_they_should() -> None:
    """The schemas are not vacuous: a statement without a subject digest or a builder id fails them."""
    statement = _statement()
    statement["subject"][0].pop("digest")
    assert not _validator("in-toto-statement-v1.schema.json").is_valid(statement)
    predicate = _statement()["predicate"]
    predicate["runDetails"]["builder"].pop("id")
    assert not _validator("slsa-provenance-v1.schema.json").is_valid(predicate)
    predicate = _statement()["predicate"]
    predicate["buildDefinition"]["resolvedDependencies"][1]["digest"]["sha256"] = "abc"
    assert not _validator("slsa-provenance-v1.schema.json").is_valid(predicate)


def test_statement_names_the_image_its_bases_suites_inputs_run_and_sbom() -> None:
    statement = _statement()
    assert statement["subject"] == [{"name": "registry.example/team/web", "digest": {"sha256": "ab" * 32}}]
    definition = statement["predicate"]["buildDefinition"]
    deps = {d["name"]: d for d in definition["resolvedDependencies"]}
    assert deps["registry.example/library/debian:bookworm"] == {
        "name": "registry.example/library/debian:bookworm", "uri": "oci://registry.example/library/debian",
        "digest": {"sha256": "cd" * 32}, "annotations": {"role": "base-image"}}
    suite = deps["http://mirror.example/debian-security bookworm-security"]
    assert suite["uri"] == "http://mirror.example/debian-security/dists/bookworm-security/InRelease"
    assert suite["digest"] == {"sha256": "12" * 32}
    assert deps["recipe-inputs"]["digest"] == {"sha256": "ef" * 32}
    run = statement["predicate"]["runDetails"]
    assert run["metadata"] == {"invocationId": "r-20261206-0001", "startedOn": "2026-12-06T01:02:03Z",
                               "finishedOn": "2026-12-06T01:02:45Z"}
    assert run["byproducts"][0]["digest"] == {"sha256": "34" * 32}
    assert definition["internalParameters"] == {"updateSources": True, "sourceDateEpoch": 1764979200}


def test_statement_records_build_arg_names_never_values() -> None:
    statement = _statement(build_arg_names=("TOKEN", "MIRROR"))
    assert statement["predicate"]["buildDefinition"]["externalParameters"]["buildArgNames"] == ["MIRROR", "TOKEN"]


def test_pae_is_dsse_v1s_encoding() -> None:
    # The example of the DSSE v1 protocol document.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")


def test_envelope_round_trip(tmp_path: Path) -> None:
    private, public = _keys(tmp_path)
    envelope = dsse_envelope(_statement(), private)
    doc = json.loads(envelope)
    assert doc["payloadType"] == "application/vnd.in-toto+json"
    assert json.loads(base64.b64decode(doc["payload"])) == _statement()
    assert open_envelope(envelope, public, what="test") == _statement()


def test_wrong_key_is_refused(tmp_path: Path) -> None:
    private, _ = _keys(tmp_path)
    _, other = _keys(tmp_path, "other")
    with pytest.raises(SignatureRefused, match="no signature on test verifies"):
        open_envelope(dsse_envelope(_statement(), private), other, what="test")


def test_tampered_payload_is_refused(tmp_path: Path) -> None:
    private, public = _keys(tmp_path)
    doc = json.loads(dsse_envelope(_statement(), private))
    statement = json.loads(base64.b64decode(doc["payload"]))
    statement["predicate"]["buildDefinition"]["resolvedDependencies"][1]["digest"]["sha256"] = "00" * 32
    doc["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(SignatureRefused, match="verifies"):
        open_envelope(json.dumps(doc).encode(), public, what="test")


def test_payload_type_is_part_of_what_is_signed(tmp_path: Path) -> None:
    private, public = _keys(tmp_path)
    doc = json.loads(dsse_envelope(_statement(), private))
    doc["payloadType"] = "application/json"
    with pytest.raises(SignatureRefused, match="not an in-toto statement"):
        open_envelope(json.dumps(doc).encode(), public, what="test")


@pytest.mark.parametrize("data", [b"not json", b"[]", b"{}", b"[" * 200_000 + b"]" * 200_000,
                                  b'{"payloadType":"application/vnd.in-toto+json","payload":"!!","signatures":[{}]}'])
def test_malformed_envelopes_are_refused_with_a_reason(tmp_path: Path, data: bytes) -> None:
    _, public = _keys(tmp_path)
    with pytest.raises(SignatureRefused):
        open_envelope(data, public, what="test")


def test_check_statement_names_each_problem() -> None:
    statement = _statement()
    statement["_type"] = "https://in-toto.io/Statement/v0.1"
    statement["predicate"]["runDetails"]["builder"]["id"] = ""
    statement["subject"][0]["digest"]["sha256"] = "xyz"
    problems = check_statement(statement)
    assert any("_type" in p for p in problems)
    assert any("builder.id" in p for p in problems)
    assert any("subject[0].digest.sha256" in p for p in problems)


def test_attestation_tag() -> None:
    assert attestation_tag(DIGEST) == f"sha256-{'ab' * 32}.att"

"""The pure parts of SBOM attachment: the artifact manifest and the referrers tag schema's index.

Attaching to and reading from a real registry is in tests/integration/test_attachments.py.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from patchline.errors import SignError
from patchline.sign._attach import (
    EMPTY_CONFIG,
    merge_referrers,
    referrer_descriptor,
    referrers_tag,
    sbom_manifest,
)
from patchline.sign.interface import CYCLONEDX_MEDIA_TYPE

SUBJECT = {
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": "sha256:" + "ab" * 32,
    "size": 578,
}
SBOM = b'{"bomFormat":"CycloneDX","specVersion":"1.6"}'
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _manifest(sbom: bytes = SBOM, created: str = "2026-01-01T00:00:00Z") -> bytes:
    return sbom_manifest(
        subject=SUBJECT, sbom_digest=_sha256(sbom), sbom_size=len(sbom), media_type=CYCLONEDX_MEDIA_TYPE,
        created=created,
    )


def test_referrers_tag() -> None:
    assert referrers_tag("sha256:" + "ab" * 32) == "sha256-" + "ab" * 32
    # The schema truncates: 32 characters of algorithm, 64 of the encoded hash.
    assert referrers_tag("sha512:" + "cd" * 64) == "sha512-" + "cd" * 32
    with pytest.raises(SignError):
        referrers_tag("latest")


def test_the_empty_config_is_the_specs() -> None:
    assert _sha256(EMPTY_CONFIG) == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def test_sbom_manifest() -> None:
    assert json.loads(_manifest()) == {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": CYCLONEDX_MEDIA_TYPE,
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            "size": 2,
        },
        "layers": [{"mediaType": CYCLONEDX_MEDIA_TYPE, "digest": _sha256(SBOM), "size": len(SBOM)}],
        "subject": SUBJECT,
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    }


def test_referrer_descriptor_copies_artifact_type_and_annotations() -> None:
    manifest = _manifest()
    assert referrer_descriptor(manifest) == {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": _sha256(manifest),
        "size": len(manifest),
        "artifactType": CYCLONEDX_MEDIA_TYPE,
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    }


def test_referrer_descriptor_without_artifact_type_takes_the_config_media_type() -> None:
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.example.sig.config+json", "digest": _sha256(b"c"), "size": 1},
            "layers": [],
            "subject": SUBJECT,
        }
    ).encode()
    descriptor = referrer_descriptor(manifest)
    assert descriptor["artifactType"] == "application/vnd.example.sig.config+json"
    assert "annotations" not in descriptor


def _index(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(entries)}).encode()


def _digests(index: bytes | None) -> list[str]:
    assert index is not None
    doc = json.loads(index)
    assert doc["mediaType"] == OCI_INDEX
    assert doc["schemaVersion"] == 2
    return [entry["digest"] for entry in doc["manifests"]]


def test_first_referrer_makes_the_index() -> None:
    first = referrer_descriptor(_manifest())
    merged = merge_referrers(None, [first])
    assert merged is not None
    assert json.loads(merged)["manifests"] == [first]


def test_merge_keeps_what_is_there_and_appends() -> None:
    first = referrer_descriptor(_manifest())
    second = referrer_descriptor(_manifest(b'{"other":1}'))
    foreign = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _sha256(b"x"), "size": 1,
               "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json"}
    merged = merge_referrers(_index(foreign, first), [second])
    assert _digests(merged) == [foreign["digest"], first["digest"], second["digest"]]
    assert json.loads(merged or b"")["manifests"][0] == foreign


def test_merge_of_a_listed_referrer_changes_nothing() -> None:
    first = referrer_descriptor(_manifest())
    assert merge_referrers(_index(first), [first]) is None
    assert _digests(merge_referrers(None, [first, first])) == [first["digest"]]


def test_merge_drops_what_keep_refuses() -> None:
    gone = referrer_descriptor(_manifest(b'{"gone":1}'))
    first = referrer_descriptor(_manifest())
    merged = merge_referrers(_index(gone, first), [first], keep=lambda entry: entry["digest"] != gone["digest"])
    assert _digests(merged) == [first["digest"]]


@pytest.mark.parametrize(
    "existing",
    [
        b"not json",
        b"[]",
        json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {}, "layers": []}).encode(),
        json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX}).encode(),
    ],
)
def test_merge_refuses_to_replace_what_is_not_an_index(existing: bytes) -> None:
    with pytest.raises(SignError):
        merge_referrers(existing, [referrer_descriptor(_manifest())])

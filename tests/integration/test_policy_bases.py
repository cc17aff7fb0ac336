"""[policy]'s plan-time base rules against a real registry (distribution): a base with a cosign signature by an
allowed key is planned, an unsigned one and one signed by another key are refused with rule ``base-signed``; the
age of a base is its image config's ``created`` as the registry serves it (``base-age``).

The bases are the test layout's single-platform image (created 2024-01-01), pushed with skopeo to three
repositories; signatures are written by patchline's cosign signer, as ``test_attachments.py`` does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from patchline._config import Config
from patchline.build import plan_fleet
from patchline.oci import RegistryWriter
from patchline.oci._auth import CredentialStore
from patchline.sign._cosign import sign_cosign
from patchline.store import open_store
from tests.support.registry import RunningRegistry, TestLayout

pytestmark = pytest.mark.integration


def _key_pair(stem: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = stem.with_suffix(".key"), stem.with_suffix(".pub")
    stem.parent.mkdir(parents=True, exist_ok=True)
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def test_plan_takes_only_bases_signed_by_an_allowed_key_and_young_enough(
        tmp_path: Path, registry: RunningRegistry, oci_test_layout: TestLayout,
        freeze_clock: Callable[[dt.datetime], None]) -> None:
    for repository in ("signed/base", "unsigned/base", "other/base"):
        registry.push(oci_test_layout.path, "single", f"{repository}:1")
    digest = oci_test_layout.single.manifest_digest
    vendor_key, vendor_pub = _key_pair(tmp_path / "keys" / "vendor")
    stranger_key, _ = _key_pair(tmp_path / "stranger" / "cosign")
    with RegistryWriter(registry.host, insecure=True, auth=CredentialStore([]), timeout=10) as writer:
        sign_cosign(registry=writer, repository="signed/base", manifest_digest=digest, private_key=vendor_key)
        sign_cosign(registry=writer, repository="other/base", manifest_digest=digest, private_key=stranger_key)

    for name, base in (("good", "signed/base"), ("bad", "unsigned/base"), ("forged", "other/base")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Containerfile").write_text(f"FROM {registry.ref(base)}:1\nRUN true\n")

    def config(**policy: object) -> Config:
        return Config.model_validate({
            "registries": {"insecure": [registry.host]}, "build": {"registry": registry.host, "namespace": "t"},
            "images": [{"glob": "*"}], "policy": policy, "source": tmp_path / "patchline.toml"})

    with open_store(f"sqlite:///{tmp_path}/p.db") as store:
        signed = config(allowed_bases_signed_by=["keys/vendor.pub"])  # relative to patchline.toml
        planned = plan_fleet(signed, store)
        assert [i.name for i in planned.plan.items] == ["good"]
        skipped = dict(planned.plan.skipped)
        assert skipped["bad"] == (
            f"policy base-signed: {registry.ref('unsigned/base')}:1 has no cosign signature that verifies with "
            f"keys/vendor.pub: {registry.ref('unsigned/base')}@{digest} has no cosign signature (no tag "
            f"sha256-{digest.removeprefix('sha256:')}.sig)")
        assert skipped["forged"].startswith(f"policy base-signed: {registry.ref('other/base')}:1 has no cosign "
                                            f"signature that verifies with keys/vendor.pub: no cosign signature on")
        good = next(d for d in planned.policy if d.subject == "good")
        assert good.verdicts[0].evidence == f"signed: {registry.ref('signed/base')}:1 by keys/vendor.pub"
        assert vendor_pub.is_file()
        denied = store.events(types=["policy.denied"])
        assert sorted((e.subject, e.data["step"], e.data["verdicts"][0]["rule"]) for e in denied) == [
            ("bad", "plan", "base-signed"), ("forged", "plan", "base-signed")]

        aged = config(max_base_age_days=30)
        freeze_clock(dt.datetime(2024, 1, 11, tzinfo=dt.UTC))
        assert {d.subject: d.ok for d in plan_fleet(aged, store).policy} == {"good": True, "bad": True,
                                                                          "forged": True}
        freeze_clock(dt.datetime(2024, 3, 1, tzinfo=dt.UTC))
        late = plan_fleet(aged, store)
        assert not late.plan.items
        assert dict(late.plan.skipped)["good"] == (f"policy base-age: {registry.ref('signed/base')}:1 was created "
                                                   "on 2024-01-01, 60 days ago (max_base_age_days = 30)")

"""GPG simple signing end to end: real gpg keys, skopeo signatures in a lookaside store, a loopback registry,
patchline's own registries.d (beside its policy.json, never the system's) and the pull into podman's storage
enforcing patchline's policy.json.

Every image is made for the test (one small layer of random bytes), so it cannot already be in podman's
storage: a pull really goes through the policy. The registry listens on a random port, and the test's
registries.d scope is that ``127.0.0.1:PORT``.
"""

from __future__ import annotations

import json
import stat
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from patchline._config import SignConfig
from patchline.errors import HostError, SignatureRefused, SignError
from patchline.sign._keys import generate_keys, gpg_environment, load_keys, stop_agent
from patchline.sign._simple import (
    REGISTRIES_D_FILE,
    SYSTEM_REGISTRIES_D,
    list_signatures,
    manifest_digest,
    pull_verified,
    registries_d_dir,
    remove_registries_d_scope,
    sign_image,
    signature_dir,
    signed_identity,
    verify_image,
    write_policy,
    write_registries_d,
)
from patchline.sign.interface import SigningKeys
from tests.support.registry import RunningRegistry, build_test_layout, require_tools

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _signing_tools() -> None:
    require_tools("gpg", "gpgconf", "skopeo", "podman", "docker-registry")


def agents_of(home: Path) -> list[int]:
    """PIDs of gpg-agents started for the GnuPG home ``home``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"gpg-agent") and str(home).encode() in argv:
            pids.append(int(entry.name))
    return pids


def make_keys(directory: Path, request: pytest.FixtureRequest) -> SigningKeys:
    keys = generate_keys(SignConfig(keyring=directory))
    request.addfinalizer(lambda: stop_agent(keys))
    return keys


def image_exists(reference: str) -> bool:
    return subprocess.run(["podman", "image", "exists", reference], capture_output=True, check=False).returncode == 0


def remove_image(reference: str) -> None:
    subprocess.run(["podman", "rmi", "-f", reference], capture_output=True, check=False)


@dataclass(frozen=True)
class Published:
    repository: str  # 127.0.0.1:PORT/example/NAME
    manifest: bytes
    digest: str

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"

    @property
    def image_id(self) -> str:
        return str(json.loads(self.manifest)["config"]["digest"]).removeprefix("sha256:")


@dataclass(frozen=True)
class Trust:
    """A registry, patchline's keys, a lookaside store podman reads, and a policy requiring the keys."""

    registry: RunningRegistry
    keys: SigningKeys
    lookaside: Path
    policy: Path
    workdir: Path

    def publish(self, name: str) -> Published:
        """Push a new image (random content) to ``example/NAME``; its manifest bytes as the registry serves them."""
        layout = build_test_layout(self.workdir / f"layout-{name}", big_layer_bytes=256)
        self.registry.push(layout.path, "big", f"example/{name}:latest")
        repository = self.registry.ref(f"example/{name}")
        manifest = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{repository}:latest"],
                                  capture_output=True, check=True, timeout=60).stdout
        assert manifest_digest(manifest) == layout.big.manifest_digest
        published = Published(repository, manifest, manifest_digest(manifest))
        assert not image_exists(published.image_id), "a fresh random image cannot be in local storage yet"
        return published


@pytest.fixture
def trust(registry: RunningRegistry, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Trust]:
    keys = make_keys(tmp_path / "keys", request)
    lookaside = tmp_path / "sigstore"
    config = SignConfig(policy=tmp_path / "policy.json")
    system_before = _system_registries_d()
    written = write_registries_d(config, scope=registry.host, lookaside=lookaside)
    assert written == tmp_path / "registries.d" / REGISTRIES_D_FILE  # beside the policy: patchline's own
    policy = write_policy(config, keys, scopes=[f"{registry.host}/example"])
    pulled_before = set(_local_images(registry.host))
    try:
        yield Trust(registry, keys, lookaside, policy, tmp_path)
    finally:
        for image in set(_local_images(registry.host)) - pulled_before:
            remove_image(image)
    assert _system_registries_d() == system_before  # nothing system-wide was written


def _system_registries_d() -> dict[str, bytes]:
    directory = SYSTEM_REGISTRIES_D
    return {p.name: p.read_bytes() for p in directory.iterdir()} if directory.is_dir() else {}


def _local_images(host: str) -> list[str]:
    out = subprocess.run(["podman", "images", "--format", "{{.ID}} {{.Repository}}"], capture_output=True, text=True,
                         check=False).stdout
    return [line.split()[0] for line in out.splitlines() if len(line.split()) == 2 and line.split()[1].startswith(host)]


# -- keys -----------------------------------------------------------------------------------------------------------


def test_generated_keys_live_in_their_own_directory(tmp_path: Path, request: pytest.FixtureRequest,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    user_gnupg = tmp_path / "user-gnupg"
    user_gnupg.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(user_gnupg))  # the "user's keyring": must stay untouched
    keys = make_keys(tmp_path / "keys", request)
    assert agents_of(keys.gnupg_home) == []  # generation stops the agent it started

    assert load_keys(SignConfig(keyring=tmp_path / "keys")) == keys
    assert stat.S_IMODE(keys.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(keys.gnupg_home.stat().st_mode) == 0o700
    assert stat.S_IMODE(keys.cosign_private_key.stat().st_mode) == 0o600
    listing = subprocess.run(["gpg", "--homedir", str(keys.gnupg_home), "--with-colons", "--list-secret-keys"],
                             capture_output=True, text=True, check=True).stdout
    assert [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:")][:1] == [keys.fingerprint]
    assert sum(line.startswith("sec:") for line in listing.splitlines()) == 1
    shown = subprocess.run(["gpg", "--homedir", str(keys.gnupg_home), "--with-colons", "--show-keys",
                            str(keys.gpg_public_key)], capture_output=True, text=True, check=True).stdout
    assert keys.fingerprint in shown and "patchline <patchline@localhost>" in shown

    private = serialization.load_pem_private_key(keys.cosign_private_key.read_bytes(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp256r1"
    assert keys.cosign_private_key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    public = serialization.load_pem_public_key(keys.cosign_public_key.read_bytes())
    assert public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
        private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    assert list(user_gnupg.iterdir()) == []


def test_generate_refuses_existing_keys_and_force_replaces_them(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    keys = make_keys(tmp_path / "keys", request)
    with pytest.raises(SignError, match="already exist"):
        generate_keys(SignConfig(keyring=tmp_path / "keys"))
    assert load_keys(SignConfig(keyring=tmp_path / "keys")) == keys
    replaced = generate_keys(SignConfig(keyring=tmp_path / "keys"), force=True)
    assert replaced.fingerprint != keys.fingerprint
    listing = subprocess.run(["gpg", "--homedir", str(replaced.gnupg_home), "--with-colons", "--list-keys"],
                             capture_output=True, text=True, check=True).stdout
    assert keys.fingerprint not in listing and replaced.fingerprint in listing


def test_keys_cli_generate_and_show(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from patchline.cli import app

    config = tmp_path / "patchline.toml"
    config.write_text(f'[sign]\nkeyring = "{tmp_path / "keys"}"\n')
    runner = CliRunner()
    missing = runner.invoke(app, ["--config", str(config), "keys", "show"])
    assert missing.exit_code == 2 and "patchline keys generate" in missing.output
    made = runner.invoke(app, ["--config", str(config), "keys", "generate", "--json"])
    assert made.exit_code == 0, made.output
    request.addfinalizer(lambda: stop_agent(load_keys(SignConfig(keyring=tmp_path / "keys"))))
    document = json.loads(made.stdout)
    shown = runner.invoke(app, ["--config", str(config), "keys", "show", "--json"])
    assert json.loads(shown.stdout) == document
    assert document["fingerprint"] == load_keys(SignConfig(keyring=tmp_path / "keys")).fingerprint
    table = runner.invoke(app, ["--config", str(config), "keys", "show"])
    assert table.exit_code == 0 and document["fingerprint"] in table.stdout
    again = runner.invoke(app, ["--config", str(config), "keys", "generate"])
    assert again.exit_code == 2 and "--force" in again.output


# -- signing and enforcement --------------------------------------------------------------------------------------


def test_signed_image_is_verified_and_pulled(trust: Trust) -> None:
    image = trust.publish("web")
    signature = sign_image(trust.keys, repository=image.repository, manifest=image.manifest, lookaside=trust.lookaside)
    assert signature == trust.lookaside / "example" / f"web@sha256={image.digest[7:]}" / "signature-1"

    verify_image(trust.keys, repository=image.repository, manifest=image.manifest, lookaside=trust.lookaside)
    assert pull_verified(image.reference, policy=trust.policy, insecure=True) == image.image_id
    assert image_exists(image.image_id)


def test_unsigned_image_is_refused_and_not_stored(trust: Trust) -> None:
    signed, unsigned = trust.publish("web"), trust.publish("unsigned")
    sign_image(trust.keys, repository=signed.repository, manifest=signed.manifest, lookaside=trust.lookaside)

    with pytest.raises(SignatureRefused, match=r"^refused .*/example/unsigned@sha256:[0-9a-f]{64}: "
                                               r"A signature was required, but no signature exists$"):
        pull_verified(unsigned.reference, policy=trust.policy, insecure=True)
    assert not image_exists(unsigned.image_id)
    with pytest.raises(SignatureRefused, match="no signature in"):
        verify_image(trust.keys, repository=unsigned.repository, manifest=unsigned.manifest,
                     lookaside=trust.lookaside)

    # The refusal is the policy's: outside the signed scope, the same image pulls.
    accept_all = trust.workdir / "accept-all.json"
    accept_all.write_text('{"default": [{"type": "insecureAcceptAnything"}]}')
    assert pull_verified(unsigned.reference, policy=accept_all, insecure=True) == unsigned.image_id


def test_signature_for_another_identity_is_refused(trust: Trust) -> None:
    image = trust.publish("web")
    other = trust.registry.ref("other/name")
    forged = sign_image(trust.keys, repository=other, manifest=image.manifest, lookaside=trust.lookaside)
    target = signature_dir(trust.lookaside, repository=image.repository, digest=image.digest)
    target.mkdir(parents=True)
    forged.rename(target / "signature-1")

    with pytest.raises(SignatureRefused, match=r"^refused .*/example/web@sha256:[0-9a-f]{64}: "
                                               r"Signature for identity .*/other/name@sha256:[0-9a-f]{64} "
                                               r"is not accepted$"):
        pull_verified(image.reference, policy=trust.policy, insecure=True)
    assert not image_exists(image.image_id)
    with pytest.raises(SignatureRefused, match=r"signature-1: .*does not match"):
        verify_image(trust.keys, repository=image.repository, manifest=image.manifest, lookaside=trust.lookaside)


def test_signature_by_another_key_is_refused(trust: Trust, request: pytest.FixtureRequest) -> None:
    image = trust.publish("web")
    stranger = make_keys(trust.workdir / "other-keys", request)
    sign_image(stranger, repository=image.repository, manifest=image.manifest, lookaside=trust.lookaside)

    # The signature itself is sound: its own key accepts it.
    verify_image(stranger, repository=image.repository, manifest=image.manifest, lookaside=trust.lookaside)
    with pytest.raises(SignatureRefused, match=r"^refused .*/example/web@sha256:[0-9a-f]{64}: Invalid GPG signature: "
                                               f"signed by key {stranger.fingerprint}, which is not a trusted key$"):
        pull_verified(image.reference, policy=trust.policy, insecure=True)
    assert not image_exists(image.image_id)
    with pytest.raises(SignatureRefused, match=f"no valid signature by {trust.keys.fingerprint} .*"
                                               f"signed by key {stranger.fingerprint}, which is not a trusted key"):
        verify_image(trust.keys, repository=image.repository, manifest=image.manifest, lookaside=trust.lookaside)

    # A valid signature beside the stranger's is enough.
    sign_image(trust.keys, repository=image.repository, manifest=image.manifest, lookaside=trust.lookaside)
    assert [p.name for p in list_signatures(trust.lookaside, repository=image.repository, digest=image.digest)] == [
        "signature-1", "signature-2"]
    assert pull_verified(image.reference, policy=trust.policy, insecure=True) == image.image_id


def test_concurrent_signatures_share_one_agent_and_all_verify(trust: Trust) -> None:
    images = [trust.publish(f"app{n}") for n in range(3)]
    jobs = [images[0]] * 3 + images[1:]  # the same digest three times at once, and two others
    results: list[Path | BaseException] = [Path()] * len(jobs)

    def sign(n: int) -> None:
        try:
            results[n] = sign_image(trust.keys, repository=jobs[n].repository, manifest=jobs[n].manifest,
                                    lookaside=trust.lookaside)
        except BaseException as exc:
            results[n] = exc

    threads = [threading.Thread(target=sign, args=(n,)) for n in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(isinstance(r, Path) for r in results), results
    first = list_signatures(trust.lookaside, repository=images[0].repository, digest=images[0].digest)
    assert 1 <= len(first) <= 3 and {p for p in results[:3]} == set(first)
    for signature in first:  # each one is whole and valid on its own
        identity = signed_identity(images[0].repository, images[0].digest)
        check = subprocess.run(["skopeo", "standalone-verify", "/dev/stdin", identity,
                                trust.keys.fingerprint, str(signature)], input=images[0].manifest,
                               capture_output=True, env=gpg_environment(trust.keys.gnupg_home), check=False)
        assert check.returncode == 0, check.stderr
    for image in images:
        assert pull_verified(image.reference, policy=trust.policy, insecure=True) == image.image_id
    assert len(agents_of(trust.keys.gnupg_home)) <= 1
    stop_agent(trust.keys)
    assert agents_of(trust.keys.gnupg_home) == []


def test_patchlines_own_registries_d_is_what_the_pull_reads(trust: Trust) -> None:
    """Without its registries.d entry the pull finds no signature, even for a signed image; podman, which reads
    only the system's registries.d, finds none either: patchline's entry changes nothing for anyone else."""
    image = trust.publish("web")
    sign_image(trust.keys, repository=image.repository, manifest=image.manifest, lookaside=trust.lookaside)
    config = SignConfig(policy=trust.policy)
    podman = subprocess.run(["podman", "pull", "--quiet", "--tls-verify=false", "--signature-policy",
                             str(trust.policy), image.reference], capture_output=True, text=True, timeout=120,
                            check=False)
    assert podman.returncode != 0 and "no signature exists" in podman.stderr, podman.stderr
    assert not image_exists(image.image_id)

    remove_registries_d_scope(config, trust.registry.host)
    with pytest.raises(SignatureRefused, match="no signature exists"):
        pull_verified(image.reference, policy=trust.policy, insecure=True)
    assert not image_exists(image.image_id)
    write_registries_d(config, scope=trust.registry.host, lookaside=trust.lookaside)
    assert registries_d_dir(config) == trust.workdir / "registries.d"
    assert pull_verified(image.reference, policy=trust.policy, insecure=True) == image.image_id
    # podman runs what the pull stored, like an image it pulled itself.
    run = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", image.reference],
                         capture_output=True, text=True, timeout=60, check=True)
    assert run.stdout.strip() == image.image_id


def test_pull_failure_that_is_not_a_signature_is_a_host_error(trust: Trust) -> None:
    image = trust.publish("web")
    sign_image(trust.keys, repository=image.repository, manifest=image.manifest, lookaside=trust.lookaside)
    trust.registry.kill()
    with pytest.raises(HostError, match=r"^pull of .* failed: .*connection refused"):
        pull_verified(image.reference, policy=trust.policy, insecure=True)

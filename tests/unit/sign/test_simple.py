"""Simple signing without gpg: where signatures go, and the registries.d and policy.json patchline writes."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from patchline._config import SignConfig
from patchline.errors import HostError, SignatureRefused, SignError
from patchline.sign import _simple
from patchline.sign._simple import (
    REGISTRIES_D_FILE,
    list_signatures,
    manifest_digest,
    parse_repository,
    pull_verified,
    registries_d_dir,
    remove_policy_scope,
    remove_registries_d_scope,
    signature_dir,
    write_policy,
    write_registries_d,
)
from patchline.sign.interface import SigningKeys

MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
HEX = hashlib.sha256(MANIFEST).hexdigest()


def keys_in(directory: Path) -> SigningKeys:
    return SigningKeys(directory=directory, fingerprint="A" * 40, gnupg_home=directory / "gnupg",
                       gpg_public_key=directory / "patchline.gpg", cosign_private_key=directory / "cosign.key",
                       cosign_public_key=directory / "cosign.pub")


def test_manifest_digest_is_sha256_of_the_exact_bytes() -> None:
    assert manifest_digest(MANIFEST) == f"sha256:{HEX}"
    assert manifest_digest(MANIFEST + b"\n") != manifest_digest(MANIFEST)


@pytest.mark.parametrize(
    ("repository", "expected"),
    [
        pytest.param("127.0.0.1:5000/example/web", ("127.0.0.1:5000", "example/web"), id="ip-port-namespace"),
        pytest.param("localhost/web", ("localhost", "web"), id="localhost"),
        pytest.param("localhost:5000/a/b/c", ("localhost:5000", "a/b/c"), id="deep-path"),
        pytest.param("127.0.0.1:5000/my-app_x.y/web__2", ("127.0.0.1:5000", "my-app_x.y/web__2"), id="separators"),
        pytest.param("[::1]:5000/web", ("[::1]:5000", "web"), id="ipv6"),
    ],
)
def test_parse_repository(repository: str, expected: tuple[str, str]) -> None:
    assert parse_repository(repository) == expected


@pytest.mark.parametrize(
    "repository",
    [
        pytest.param("example/web", id="no-registry-host"),
        pytest.param("web", id="bare-name"),
        pytest.param("127.0.0.1:5000", id="no-path"),
        pytest.param("127.0.0.1:5000/example/web:1.0", id="tag"),
        pytest.param(f"127.0.0.1:5000/example/web@sha256:{HEX}", id="digest"),
        pytest.param("127.0.0.1:5000/Example/web", id="upper-case-path"),
        pytest.param("127.0.0.1:5000/example/../web", id="dot-dot"),
        pytest.param("127.0.0.1:5000/example//web", id="empty-component"),
    ],
)
def test_parse_repository_refuses(repository: str) -> None:
    with pytest.raises(SignError):
        parse_repository(repository)


def test_signature_dir_is_the_path_without_the_host_at_algorithm_equals_hex(tmp_path: Path) -> None:
    directory = signature_dir(tmp_path, repository="127.0.0.1:5000/example/web", digest=f"sha256:{HEX}")
    assert directory == tmp_path / "example" / f"web@sha256={HEX}"


@pytest.mark.parametrize("digest", ["sha256:abc", f"sha512:{HEX}", HEX, f"sha256:{HEX.upper()}"])
def test_signature_dir_refuses_bad_digests(tmp_path: Path, digest: str) -> None:
    with pytest.raises(SignError, match="invalid manifest digest"):
        signature_dir(tmp_path, repository="127.0.0.1:5000/example/web", digest=digest)


def test_place_takes_the_first_free_index_and_reuses_an_identical_signature(tmp_path: Path) -> None:
    directory = tmp_path / f"web@sha256={HEX}"
    first = _simple._place(directory, b"signature one")
    second = _simple._place(directory, b"signature two")
    again = _simple._place(directory, b"signature one")
    assert (first.name, second.name, again) == ("signature-1", "signature-2", first)
    assert second.read_bytes() == b"signature two"
    assert sorted(p.name for p in directory.iterdir()) == ["signature-1", "signature-2"]  # no temporary left


def test_place_fills_a_gap_that_would_hide_later_signatures(tmp_path: Path) -> None:
    directory = tmp_path / "example" / f"web@sha256={HEX}"
    directory.mkdir(parents=True)
    (directory / "signature-2").write_bytes(b"orphan")
    placed = _simple._place(directory, b"new")
    assert placed.name == "signature-1"
    listed = list_signatures(tmp_path, repository="127.0.0.1:5000/example/web", digest=f"sha256:{HEX}")
    assert [p.name for p in listed] == ["signature-1", "signature-2"]


def test_list_signatures_stops_at_the_first_missing_index_like_containers_image(tmp_path: Path) -> None:
    directory = signature_dir(tmp_path, repository="127.0.0.1:5000/example/web", digest=f"sha256:{HEX}")
    directory.mkdir(parents=True)
    for n in (1, 2, 4):
        (directory / f"signature-{n}").write_bytes(b"x")
    listed = list_signatures(tmp_path, repository="127.0.0.1:5000/example/web", digest=f"sha256:{HEX}")
    assert [p.name for p in listed] == ["signature-1", "signature-2"]
    assert list_signatures(tmp_path, repository="127.0.0.1:5000/example/other", digest=f"sha256:{HEX}") == []


# -- registries.d -------------------------------------------------------------------------------------------------


def test_registries_d_dir_is_patchlines_own_beside_its_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never the directory containers/image reads for everyone (/etc/containers/registries.d)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    (tmp_path / ".config" / "containers" / "registries.d").mkdir(parents=True)
    assert registries_d_dir(SignConfig()) == tmp_path / ".local" / "share" / "patchline" / "registries.d"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert registries_d_dir(SignConfig()) == tmp_path / "data" / "patchline" / "registries.d"
    assert registries_d_dir(SignConfig(policy=tmp_path / "etc" / "policy.json")) == tmp_path / "etc" / "registries.d"
    assert registries_d_dir(SignConfig(registries_d=tmp_path / "mine")) == tmp_path / "mine"


@pytest.fixture
def legacy_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for the system's /etc/containers/registries.d, where an older patchline wrote its file."""
    directory = tmp_path / "etc-containers-registries.d"
    directory.mkdir()
    monkeypatch.setattr(_simple, "legacy_registries_d_dirs", lambda: (tmp_path / "no-user-dir", directory))
    return directory


def test_an_older_patchlines_system_wide_entries_move_to_its_own_directory(tmp_path: Path, legacy_dir: Path) -> None:
    ours, theirs = (tmp_path / "sigstore").absolute().as_uri(), "file:///srv/other-sigstore"
    old = legacy_dir / REGISTRIES_D_FILE
    old.write_text(yaml.safe_dump({"default-docker": {"lookaside": theirs}, "docker": {
        "127.0.0.1:5000/example": {"lookaside": ours, "lookaside-staging": ours},
        "127.0.0.1:6000/kept": {"lookaside": ours, "lookaside-staging": ours},
        "127.0.0.1:7000": {"lookaside": theirs}}}))
    (legacy_dir / "default.yaml").write_text("docker:\n  127.0.0.1:8000:\n    lookaside: file:///x\n")
    config = SignConfig(registries_d=tmp_path / "own")

    path = write_registries_d(config, scope="127.0.0.1:5000/example", lookaside=tmp_path / "sigstore")
    assert path == tmp_path / "own" / REGISTRIES_D_FILE
    assert set(yaml.safe_load(path.read_text())["docker"]) == {"127.0.0.1:5000/example", "127.0.0.1:6000/kept"}
    # Only this patchline's entries leave the old file; the rest of it, and other files, stay.
    assert yaml.safe_load(old.read_text()) == {"default-docker": {"lookaside": theirs},
                                               "docker": {"127.0.0.1:7000": {"lookaside": theirs}}}
    assert (legacy_dir / "default.yaml").is_file()


def test_the_old_file_goes_with_its_last_entry(tmp_path: Path, legacy_dir: Path) -> None:
    ours = (tmp_path / "sigstore").absolute().as_uri()
    old = legacy_dir / REGISTRIES_D_FILE
    old.write_text(yaml.safe_dump({"docker": {"127.0.0.1:5000": {"lookaside": ours, "lookaside-staging": ours}}}))
    config = SignConfig(registries_d=tmp_path / "own", lookaside=tmp_path / "sigstore")
    assert remove_registries_d_scope(config, "127.0.0.1:5000") is True
    assert not old.exists() and list(legacy_dir.iterdir()) == []


def test_write_registries_d_merges_scopes_into_one_file(tmp_path: Path) -> None:
    config = SignConfig(registries_d=tmp_path / "registries.d")
    store_a, store_b = tmp_path / "sigstore a", tmp_path / "sigstore-b"
    path = write_registries_d(config, scope="127.0.0.1:5000", lookaside=store_a)
    assert write_registries_d(config, scope="127.0.0.1:6000/example", lookaside=store_b) == path
    assert path == tmp_path / "registries.d" / REGISTRIES_D_FILE
    document = yaml.safe_load(path.read_text())
    assert document == {"docker": {
        "127.0.0.1:5000": {"lookaside": store_a.as_uri(), "lookaside-staging": store_a.as_uri()},
        "127.0.0.1:6000/example": {"lookaside": store_b.as_uri(), "lookaside-staging": store_b.as_uri()},
    }}
    assert store_a.as_uri().startswith("file:///") and "%20" in store_a.as_uri()
    assert store_a.is_dir() and store_b.is_dir()
    assert [p.name for p in path.parent.iterdir()] == [REGISTRIES_D_FILE]  # no temporary, no lock file


def test_write_registries_d_replaces_a_scope_and_keeps_the_others(tmp_path: Path) -> None:
    config = SignConfig(registries_d=tmp_path / "registries.d")
    write_registries_d(config, scope="127.0.0.1:5000", lookaside=tmp_path / "old")
    write_registries_d(config, scope="localhost:7000", lookaside=tmp_path / "other")
    path = write_registries_d(config, scope="127.0.0.1:5000", lookaside=tmp_path / "new")
    docker = yaml.safe_load(path.read_text())["docker"]
    assert docker["127.0.0.1:5000"]["lookaside"] == (tmp_path / "new").as_uri()
    assert docker["localhost:7000"]["lookaside"] == (tmp_path / "other").as_uri()


def test_remove_registries_d_scope(tmp_path: Path) -> None:
    config = SignConfig(registries_d=tmp_path / "registries.d")
    write_registries_d(config, scope="127.0.0.1:5000", lookaside=tmp_path / "a")
    path = write_registries_d(config, scope="127.0.0.1:6000", lookaside=tmp_path / "b")
    assert remove_registries_d_scope(config, "127.0.0.1:5000") is True
    assert remove_registries_d_scope(config, "127.0.0.1:5000") is False
    assert list(yaml.safe_load(path.read_text())["docker"]) == ["127.0.0.1:6000"]
    assert remove_registries_d_scope(config, "127.0.0.1:6000") is True
    assert not path.exists()  # an empty file of ours would be clutter
    assert remove_registries_d_scope(config, "127.0.0.1:6000") is False


def test_write_registries_d_keeps_other_top_level_keys_of_its_file(tmp_path: Path) -> None:
    config = SignConfig(registries_d=tmp_path / "registries.d")
    (tmp_path / "registries.d").mkdir()
    path = tmp_path / "registries.d" / REGISTRIES_D_FILE
    path.write_text("default-docker:\n  lookaside: file:///var/lib/containers/sigstore\n")
    write_registries_d(config, scope="127.0.0.1:5000", lookaside=tmp_path / "a")
    remove_registries_d_scope(config, "127.0.0.1:5000")
    assert yaml.safe_load(path.read_text()) == {"default-docker": {"lookaside": "file:///var/lib/containers/sigstore"}}


def test_write_registries_d_refuses_a_scope_another_file_configures(tmp_path: Path) -> None:
    directory = tmp_path / "registries.d"
    directory.mkdir()
    (directory / "default.yaml").write_text("docker:\n  127.0.0.1:5000:\n    lookaside: file:///elsewhere\n")
    config = SignConfig(registries_d=directory)
    with pytest.raises(SignError, match=r"default\.yaml already configures .*127\.0\.0\.1:5000"):
        write_registries_d(config, scope="127.0.0.1:5000", lookaside=tmp_path / "a")
    assert not (directory / REGISTRIES_D_FILE).exists()
    write_registries_d(config, scope="127.0.0.1:5001", lookaside=tmp_path / "a")  # another scope is fine


@pytest.mark.parametrize("scope", ["127.0.0.1:5000/web:1.0", "example", "", f"127.0.0.1:5000/web@sha256:{HEX}"])
def test_write_registries_d_refuses_bad_scopes(tmp_path: Path, scope: str) -> None:
    with pytest.raises(SignError):
        write_registries_d(SignConfig(registries_d=tmp_path), scope=scope, lookaside=tmp_path / "a")


def test_write_registries_d_refuses_a_file_that_is_not_registries_d(tmp_path: Path) -> None:
    (tmp_path / REGISTRIES_D_FILE).write_text("- a list\n")
    with pytest.raises(SignError, match=r"not a registries\.d file"):
        write_registries_d(SignConfig(registries_d=tmp_path), scope="127.0.0.1:5000", lookaside=tmp_path / "a")


# -- pulls through the policy ---------------------------------------------------------------------------------------


class FakeTools:
    """``run_tool`` recording each command; skopeo answers with ``stderr`` and exit ``status``."""

    def __init__(self, *, status: int = 0, stderr: str = "") -> None:
        self.commands: list[list[str]] = []
        self.status, self.stderr = status, stderr

    def __call__(self, command: list[str], **_kw: object) -> subprocess.CompletedProcess[str]:
        self.commands.append(list(command))
        if command[0] == "skopeo":
            return subprocess.CompletedProcess(command, self.status, "", self.stderr)
        return subprocess.CompletedProcess(command, 0, "b" * 64 + "\n", "")


REFERENCE = f"127.0.0.1:5000/example/web@sha256:{HEX}"


def test_a_pull_reads_patchlines_own_registries_d(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text("{}")
    tools = FakeTools()
    monkeypatch.setattr(_simple, "run_tool", tools)
    assert pull_verified(REFERENCE, policy=policy, insecure=True) == "b" * 64
    assert pull_verified(REFERENCE, policy=policy, insecure=False, registries_d=tmp_path / "mine") == "b" * 64
    assert tools.commands[0] == ["skopeo", "--policy", str(policy), "--registries.d", str(tmp_path / "registries.d"),
                                 "copy", "--quiet", "--src-tls-verify=false", f"docker://{REFERENCE}",
                                 f"containers-storage:{REFERENCE}"]
    assert tools.commands[1] == ["podman", "image", "inspect", "--format", "{{.Id}}", REFERENCE]
    assert tools.commands[2][:5] == ["skopeo", "--policy", str(policy), "--registries.d", str(tmp_path / "mine")]
    assert "--src-tls-verify=false" not in tools.commands[2]


@pytest.mark.parametrize(("stderr", "error", "message"), [
    ('time="2026-12-05T10:00:00Z" level=fatal msg="Source image rejected: A signature was required, but no '
     'signature exists"\n', SignatureRefused, f"refused {REFERENCE}: A signature was required, but no signature "
     "exists"),
    ('time="2026-12-05T10:00:00Z" level=fatal msg="initializing source docker://x: pinging container registry '
     '127.0.0.1:5000: connect: connection refused"\n', HostError, f"pull of {REFERENCE} failed: initializing "
     "source docker://x: pinging container registry 127.0.0.1:5000: connect: connection refused"),
])
def test_a_refused_pull_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stderr: str,
                                 error: type[Exception], message: str) -> None:
    policy = tmp_path / "policy.json"
    policy.write_text("{}")
    monkeypatch.setattr(_simple, "run_tool", FakeTools(status=1, stderr=stderr))
    with pytest.raises(error) as caught:
        pull_verified(REFERENCE, policy=policy, insecure=False)
    assert str(caught.value) == message


# -- policy.json --------------------------------------------------------------------------------------------------


def test_write_policy_requires_the_key_for_the_scopes_and_accepts_the_rest(tmp_path: Path) -> None:
    keys = keys_in(tmp_path / "keys")
    config = SignConfig(policy=tmp_path / "etc" / "policy.json")
    path = write_policy(config, keys, scopes=["127.0.0.1:5000/example", "localhost:6000"])
    assert path == tmp_path / "etc" / "policy.json"
    signed_by = [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(keys.gpg_public_key)}]
    assert json.loads(path.read_text()) == {
        "default": [{"type": "reject"}],  # nothing outside the scopes starts through patchline's policy
        "transports": {"docker": {"127.0.0.1:5000/example": signed_by, "localhost:6000": signed_by}},
    }


def test_write_policy_merges_with_the_scopes_already_there(tmp_path: Path) -> None:
    config = SignConfig(policy=tmp_path / "policy.json")
    old, new = keys_in(tmp_path / "old"), keys_in(tmp_path / "new")
    write_policy(config, old, scopes=["127.0.0.1:5000/a", "127.0.0.1:5000/b"])
    write_policy(config, new, scopes=["127.0.0.1:5000/b", "127.0.0.1:5000/c"])
    docker = json.loads((tmp_path / "policy.json").read_text())["transports"]["docker"]
    assert {scope: r[0]["keyPath"] for scope, r in docker.items()} == {
        "127.0.0.1:5000/a": str(old.gpg_public_key),
        "127.0.0.1:5000/b": str(new.gpg_public_key),
        "127.0.0.1:5000/c": str(new.gpg_public_key),
    }
    assert remove_policy_scope(config, "127.0.0.1:5000/a") is True
    assert remove_policy_scope(config, "127.0.0.1:5000/a") is False
    assert set(json.loads((tmp_path / "policy.json").read_text())["transports"]["docker"]) == {
        "127.0.0.1:5000/b", "127.0.0.1:5000/c"}


def test_write_policy_keeps_a_default_and_other_transports_already_there(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"default": [{"type": "reject"}],
                                "transports": {"docker-daemon": {"": [{"type": "insecureAcceptAnything"}]}}}))
    write_policy(SignConfig(policy=path), keys_in(tmp_path), scopes=["127.0.0.1:5000"])
    document = json.loads(path.read_text())
    assert document["default"] == [{"type": "reject"}]
    assert document["transports"]["docker-daemon"] == {"": [{"type": "insecureAcceptAnything"}]}
    assert list(document["transports"]["docker"]) == ["127.0.0.1:5000"]


def test_write_policy_turns_an_accept_anything_default_into_reject(tmp_path: Path) -> None:
    # An older patchline wrote insecureAcceptAnything: `rollout --to` another repository's unsigned image started.
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {}}}))
    write_policy(SignConfig(policy=path), keys_in(tmp_path), scopes=["127.0.0.1:5000/example"])
    assert json.loads(path.read_text())["default"] == [{"type": "reject"}]


def test_write_policy_default_path_is_under_xdg_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = write_policy(SignConfig(), keys_in(tmp_path), scopes=["127.0.0.1:5000"])
    assert path == tmp_path / "data" / "patchline" / "policy.json"


@pytest.mark.parametrize("scopes", [[], "127.0.0.1:5000", ["127.0.0.1:5000/web:latest"], ["web"]])
def test_write_policy_refuses_empty_or_bad_scopes(tmp_path: Path, scopes: list[str]) -> None:
    with pytest.raises(SignError):
        write_policy(SignConfig(policy=tmp_path / "policy.json"), keys_in(tmp_path), scopes=scopes)
    assert not (tmp_path / "policy.json").exists()


def test_write_policy_refuses_a_file_that_is_not_a_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text("not json")
    with pytest.raises(SignError, match="cannot read"):
        write_policy(SignConfig(policy=path), keys_in(tmp_path), scopes=["127.0.0.1:5000"])
    assert path.read_text() == "not json"


# -- reasons --------------------------------------------------------------------------------------------------------

GPGME_DUMP = ('Invalid GPG signature: gpgme.Signature{Summary:128, '
              'Fingerprint:"4D01C11FA603D5E68958EEA7E2757AFB372EF6D1", Status:gpgme.Error{err:0x9}, '
              'Timestamp:time.Date(2026, time.December, 3, 9, 53, 22, 0, time.Local), '
              'ExpTimestamp:time.Date(1970, time.January, 1, 0, 0, 0, 0, time.Local), WrongKeyUsage:false, '
              'PKATrust:0x0, ChainModel:false, Validity:0, ValidityReason:error(nil), PubkeyAlgo:303, HashAlgo:8}')


@pytest.mark.parametrize(("reason", "expected"), [
    pytest.param(GPGME_DUMP, "Invalid GPG signature: signed by key 4D01C11FA603D5E68958EEA7E2757AFB372EF6D1, "
                 "which is not a trusted key", id="unknown-key"),
    pytest.param(GPGME_DUMP.replace("err:0x9", "err:0x8"), "Invalid GPG signature: signature by key "
                 "4D01C11FA603D5E68958EEA7E2757AFB372EF6D1 is invalid (gpg error 8)", id="bad-signature"),
    pytest.param("A signature was required, but no signature exists", "A signature was required, but no signature "
                 "exists", id="plain"),
])
def test_clear_reason_turns_a_gpgme_dump_into_one_clause(reason: str, expected: str) -> None:
    assert _simple._clear_reason(reason) == expected


def test_skopeo_reason_reads_the_fatal_message() -> None:
    stderr = ('time="2026-12-03T09:47:14Z" level=fatal msg="Error verifying signature: Docker reference '
              '127.0.0.1:5000/x/y does not match \\"127.0.0.1:5000/a/b\\""\n')
    assert _simple._skopeo_reason(stderr) == ('Error verifying signature: Docker reference 127.0.0.1:5000/x/y does '
                                              'not match "127.0.0.1:5000/a/b"')
    assert _simple._skopeo_reason("plain failure\n") == "plain failure"


def test_lookaside_dir_and_policy_path_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert _simple.lookaside_dir(SignConfig()) == tmp_path / "data" / "patchline" / "sigstore"
    assert _simple.policy_path(SignConfig()) == tmp_path / "data" / "patchline" / "policy.json"
    config = SignConfig(lookaside=tmp_path / "store", policy=tmp_path / "p.json")
    assert (_simple.lookaside_dir(config), _simple.policy_path(config)) == (tmp_path / "store", tmp_path / "p.json")

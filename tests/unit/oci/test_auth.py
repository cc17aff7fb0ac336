"""Credential-file lookup and WWW-Authenticate parsing."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from patchline.errors import AuthError
from patchline.oci._auth import (
    AuthChallenge,
    Credential,
    CredentialStore,
    default_auth_files,
    parse_www_authenticate,
)


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _write(path: Path, doc: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


# -- which files, in which order ------------------------------------------------


def test_default_files_in_documented_order(tmp_path: Path) -> None:
    env = {
        "REGISTRY_AUTH_FILE": "/custom/auth.json",
        "XDG_RUNTIME_DIR": "/run/user/1000",
        "DOCKER_CONFIG": "/etc/dockercfg",
    }
    assert default_auth_files(env, tmp_path) == (
        Path("/custom/auth.json"),
        Path("/run/user/1000/containers/auth.json"),
        tmp_path / ".config/containers/auth.json",
        Path("/etc/dockercfg/config.json"),
    )


def test_default_files_without_variables(tmp_path: Path) -> None:
    assert default_auth_files({}, tmp_path) == (
        tmp_path / ".config/containers/auth.json",
        tmp_path / ".docker/config.json",
    )


def test_home_comes_from_env_when_not_given(tmp_path: Path) -> None:
    files = default_auth_files({"HOME": str(tmp_path)})
    assert files[-1] == tmp_path / ".docker/config.json"


# -- entries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"auth": _auth("alice", "pw:with:colons")}, Credential("alice", "pw:with:colons")),
        ({"username": "bob", "password": "hunter2"}, Credential("bob", "hunter2")),
        ({"identitytoken": "refresh-me"}, Credential(None, None, "refresh-me")),
        (
            {"auth": _auth("<token>", ""), "identitytoken": "rt"},
            Credential(None, None, "rt"),
        ),
    ],
    ids=["auth", "username-password", "identitytoken", "identitytoken-wins"],
)
def test_entry_kinds(tmp_path: Path, entry: dict[str, str], expected: Credential) -> None:
    path = _write(tmp_path / "auth.json", {"auths": {"reg.example:5000": entry}})
    found = CredentialStore([path]).lookup("reg.example:5000")
    assert found is not None
    assert (found.username, found.password, found.identity_token) == (
        expected.username,
        expected.password,
        expected.identity_token,
    )
    assert found.source == str(path)


@pytest.mark.parametrize(
    "key",
    ["127.0.0.1:5000", "https://127.0.0.1:5000", "http://127.0.0.1:5000/", "https://127.0.0.1:5000/v2/"],
)
def test_host_keys_with_and_without_scheme(tmp_path: Path, key: str) -> None:
    path = _write(tmp_path / "auth.json", {"auths": {key: {"auth": _auth("u", "p")}}})
    assert CredentialStore([path]).lookup("127.0.0.1:5000") == Credential("u", "p", source=str(path))


@pytest.mark.parametrize(
    "key", ["https://index.docker.io/v1/", "docker.io", "index.docker.io", "registry-1.docker.io"]
)
def test_docker_hub_legacy_keys(tmp_path: Path, key: str) -> None:
    path = _write(tmp_path / "config.json", {"auths": {key: {"auth": _auth("hub", "pw")}}})
    found = CredentialStore([path]).lookup("docker.io", "library/debian")
    assert found is not None and found.username == "hub"


def test_repository_specific_entry_wins_over_host(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "auth.json",
        {
            "auths": {
                "reg.example": {"auth": _auth("host", "p")},
                "reg.example/team": {"auth": _auth("team", "p")},
                "reg.example/team/app": {"auth": _auth("app", "p")},
            }
        },
    )
    store = CredentialStore([path])
    assert store.lookup("reg.example", "team/app") == Credential("app", "p", source=str(path))
    assert store.lookup("reg.example", "team/other") == Credential("team", "p", source=str(path))
    assert store.lookup("reg.example", "else/x") == Credential("host", "p", source=str(path))


def test_first_file_with_an_entry_wins(tmp_path: Path) -> None:
    first = _write(tmp_path / "a.json", {"auths": {"other.example": {"auth": _auth("x", "y")}}})
    second = _write(tmp_path / "b.json", {"auths": {"reg.example": {"auth": _auth("b", "1")}}})
    third = _write(tmp_path / "c.json", {"auths": {"reg.example": {"auth": _auth("c", "2")}}})
    missing = tmp_path / "missing.json"
    found = CredentialStore([missing, first, second, third]).lookup("reg.example")
    assert found is not None and (found.username, found.source) == ("b", str(second))


def test_environment_lookup_reads_registry_auth_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "auth.json", {"auths": {"reg.example": {"auth": _auth("e", "f")}}})
    store = CredentialStore.from_environment({"REGISTRY_AUTH_FILE": str(path)}, tmp_path)
    assert store.lookup("reg.example") == Credential("e", "f", source=str(path))


def test_no_entry_is_none(tmp_path: Path) -> None:
    path = _write(tmp_path / "auth.json", {"auths": {}})
    assert CredentialStore([path]).lookup("reg.example") is None
    assert CredentialStore([]).lookup("reg.example") is None


def test_credential_helper_for_the_host_is_a_clear_error(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "config.json",
        {"auths": {"reg.example": {"auth": _auth("a", "b")}}, "credHelpers": {"reg.example": "ecr-login"}},
    )
    with pytest.raises(AuthError, match="credential helpers are not supported yet"):
        CredentialStore([path]).lookup("reg.example")
    # A helper for another host does not matter.
    assert CredentialStore([path]).lookup("reg.example:5000") is None


def test_creds_store_with_empty_entry_is_a_clear_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "config.json", {"auths": {"reg.example": {}}, "credsStore": "desktop"})
    with pytest.raises(AuthError, match=r"'desktop'.*not supported yet"):
        CredentialStore([path]).lookup("reg.example")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({"auths": {"reg.example": {"auth": "%%%"}}}), "not base64"),
        (json.dumps({"auths": {"reg.example": {"auth": base64.b64encode(b"nocolon").decode()}}}),
         "not base64 of user:password"),
        (json.dumps({"auths": {"reg.example": "str"}}), "not a JSON object"),
    ],
    ids=["syntax", "not-object", "bad-base64", "no-colon", "entry-not-object"],
)
def test_broken_files_raise_auth_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "auth.json"
    path.write_text(content)
    with pytest.raises(AuthError, match=message):
        CredentialStore([path]).lookup("reg.example")


def test_password_is_not_in_repr() -> None:
    assert "hunter2" not in repr(Credential("bob", "hunter2", "tok"))
    assert "tok" not in repr(Credential("bob", "hunter2", "tok"))


# -- WWW-Authenticate -------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.example/token",service="registry.example",'
            'scope="repository:team/app:pull,push"',
            [
                AuthChallenge(
                    "bearer",
                    {
                        "realm": "https://auth.example/token",
                        "service": "registry.example",
                        "scope": "repository:team/app:pull,push",
                    },
                )
            ],
        ),
        ('Basic realm="Registry Realm"', [AuthChallenge("basic", {"realm": "Registry Realm"})]),
        (
            'basic realm="r", BEARER Realm=https://a/t, Service=s',
            [
                AuthChallenge("basic", {"realm": "r"}),
                AuthChallenge("bearer", {"realm": "https://a/t", "service": "s"}),
            ],
        ),
        (
            r'Bearer realm="a \"quoted\" realm" , error="invalid_token"',
            [AuthChallenge("bearer", {"realm": 'a "quoted" realm', "error": "invalid_token"})],
        ),
        ("Negotiate", [AuthChallenge("negotiate", {})]),
        ("", []),
        ("  ,  ", []),
    ],
    ids=["bearer-scope-commas", "basic", "two-challenges", "escapes", "bare-scheme", "empty", "blank"],
)
def test_parse_www_authenticate(header: str, expected: list[AuthChallenge]) -> None:
    assert parse_www_authenticate(header) == expected

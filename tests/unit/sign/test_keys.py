"""The key directory without gpg: where it is, and what load_keys and generate_keys refuse."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from patchline._config import SignConfig
from patchline.errors import SignError
from patchline.sign._keys import default_keys_dir, generate_keys, load_keys

FINGERPRINT = "D17F38204C2F14D53420A0BC13EC1D88D7D9C006"


def make_key_dir(directory: Path, fingerprint: str = FINGERPRINT) -> None:
    (directory / "gnupg").mkdir(parents=True)
    for name in ("patchline.gpg", "cosign.key", "cosign.pub"):
        (directory / name).write_text("x")
    (directory / "keys.json").write_text(json.dumps({"fingerprint": fingerprint}))


def test_default_keys_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert default_keys_dir(SignConfig()) == tmp_path / "home" / ".local" / "share" / "patchline" / "keys"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_keys_dir(SignConfig()) == tmp_path / "data" / "patchline" / "keys"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")  # the XDG spec: relative values are invalid
    assert default_keys_dir(SignConfig()) == tmp_path / "home" / ".local" / "share" / "patchline" / "keys"
    assert default_keys_dir(SignConfig(keyring=tmp_path / "mine")) == tmp_path / "mine"


def test_load_keys_without_keys_says_how_to_make_them(tmp_path: Path) -> None:
    with pytest.raises(SignError, match=r"no signing key in .*: run `patchline keys generate`"):
        load_keys(SignConfig(keyring=tmp_path / "keys"))


def test_load_keys_reads_the_fingerprint_from_keys_json(tmp_path: Path) -> None:
    make_key_dir(tmp_path)
    keys = load_keys(SignConfig(keyring=tmp_path))
    assert keys.fingerprint == FINGERPRINT
    assert (keys.gnupg_home, keys.gpg_public_key) == (tmp_path / "gnupg", tmp_path / "patchline.gpg")
    assert (keys.cosign_private_key, keys.cosign_public_key) == (tmp_path / "cosign.key", tmp_path / "cosign.pub")


@pytest.mark.parametrize(("damage", "message"), [
    pytest.param(lambda d: (d / "cosign.key").unlink(), "cosign.key is missing", id="missing-file"),
    pytest.param(lambda d: (d / "keys.json").write_text("{"), "malformed", id="bad-json"),
    pytest.param(lambda d: (d / "keys.json").write_text('{"fingerprint": "nope"}'), "no valid GPG fingerprint",
                 id="bad-fingerprint"),
])
def test_load_keys_refuses_a_damaged_directory(tmp_path: Path, damage: Callable[[Path], object], message: str) -> None:
    make_key_dir(tmp_path)
    damage(tmp_path)
    with pytest.raises(SignError, match=message):
        load_keys(SignConfig(keyring=tmp_path))


def test_generate_keys_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    make_key_dir(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with pytest.raises(SignError, match=r"already exist in .*--force"):
        generate_keys(SignConfig(keyring=tmp_path))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_generate_keys_refuses_even_a_partial_directory(tmp_path: Path) -> None:
    (tmp_path / "cosign.key").write_text("someone's key")
    with pytest.raises(SignError, match="already exist"):
        generate_keys(SignConfig(keyring=tmp_path))
    assert (tmp_path / "cosign.key").read_text() == "someone's key"


@pytest.mark.parametrize(("name", "email"), [("a <b>", "x@y"), ("", "x@y"), ("ok", "no-at-sign"), ("ok", "a b@c")])
def test_generate_keys_refuses_bad_user_ids(tmp_path: Path, name: str, email: str) -> None:
    with pytest.raises(SignError, match="invalid key"):
        generate_keys(SignConfig(keyring=tmp_path / "keys"), name=name, email=email)
    assert not (tmp_path / "keys").exists()

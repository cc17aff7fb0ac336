"""patchline's own signing keys: a GnuPG home holding only its key, and a cosign key pair.

The key directory (``[sign] keyring``, default ``$XDG_DATA_HOME/patchline/keys``) is
patchline's alone::

    DIR/                 0700
      gnupg/             0700  GnuPG home: patchline's signing key and nothing else
      patchline.gpg            the armored public key (what policy.json's keyPath names)
      cosign.key         0600  ECDSA P-256, PKCS#8 PEM
      cosign.pub               SubjectPublicKeyInfo PEM
      keys.json                the fingerprint, so loading needs no gpg

Every gpg call passes ``--homedir`` and every subprocess gets ``GNUPGHOME``: the
user's default keyring is never read or written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from patchline._config import SignConfig
from patchline._host import run_tool
from patchline._paths import data_home
from patchline.errors import HostError, SignError
from patchline.sign.interface import SigningKeys

__all__ = [
    "data_home",
    "default_keys_dir",
    "generate_keys",
    "gpg_environment",
    "key_uid",
    "load_keys",
    "stop_agent",
]

KEYS_FILE = "keys.json"
GNUPG_DIR = "gnupg"
GPG_PUBLIC_KEY = "patchline.gpg"
COSIGN_PRIVATE_KEY = "cosign.key"
COSIGN_PUBLIC_KEY = "cosign.pub"
_KEYS_SCHEMA = "patchline/keys/v1"
_FINGERPRINT = re.compile(r"^[0-9A-F]{40}([0-9A-F]{24})?$")  # v4 (SHA-1) or v5 (SHA-256) fingerprints


def default_keys_dir(config: SignConfig) -> Path:
    """The key directory: ``config.keyring``, else ``$XDG_DATA_HOME/patchline/keys``."""
    return (config.keyring.expanduser() if config.keyring is not None else data_home() / "keys").absolute()


def gpg_environment(gnupg_home: Path) -> dict[str, str]:
    """The environment for a subprocess that must use patchline's GnuPG home and no other."""
    env = {k: v for k, v in os.environ.items() if k != "GPG_AGENT_INFO"}
    env["GNUPGHOME"] = str(gnupg_home)
    return env


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _keys_for(directory: Path, fingerprint: str) -> SigningKeys:
    return SigningKeys(
        directory=directory,
        fingerprint=fingerprint,
        gnupg_home=directory / GNUPG_DIR,
        gpg_public_key=directory / GPG_PUBLIC_KEY,
        cosign_private_key=directory / COSIGN_PRIVATE_KEY,
        cosign_public_key=directory / COSIGN_PUBLIC_KEY,
    )


def _gpg(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = run_tool(["gpg", "--homedir", str(home), "--batch", "--no-tty", *args], env=gpg_environment(home),
                      timeout=timeout, what="gpg")
    if result.returncode != 0:
        raise SignError(f"gpg {args[0] if args else ''} failed in {home}: {_last_line(result.stderr)}",
                        detail=result.stderr)
    return result


def _secret_fingerprint(home: Path) -> str:
    listing = _gpg(home, "--with-colons", "--list-secret-keys").stdout
    in_primary = False
    for line in listing.splitlines():
        fields = line.split(":")
        if fields[0] == "sec":
            in_primary = True
        elif fields[0] == "ssb":
            in_primary = False
        elif fields[0] == "fpr" and in_primary and len(fields) > 9:
            return fields[9]
    raise SignError(f"gpg created no secret key in {home}")


def _write_private(path: Path, data: bytes, mode: int) -> None:
    # O_EXCL: never follow or reuse a file someone placed there; the mode is set at creation.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _existing(directory: Path) -> list[Path]:
    names = (KEYS_FILE, GNUPG_DIR, GPG_PUBLIC_KEY, COSIGN_PRIVATE_KEY, COSIGN_PUBLIC_KEY)
    return [directory / n for n in names if (directory / n).exists()]


def _remove_keys(directory: Path) -> None:
    home = directory / GNUPG_DIR
    if home.exists():
        _kill_agent(home)
        shutil.rmtree(home)
    for name in (KEYS_FILE, GPG_PUBLIC_KEY, COSIGN_PRIVATE_KEY, COSIGN_PUBLIC_KEY):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()


def _check_uid(name: str, email: str) -> None:
    if not name.strip() or any(c in name for c in "<>\n\r"):
        raise SignError(f"invalid key name {name!r}: it must be non-empty and contain no '<', '>' or newline")
    if not re.fullmatch(r"[^\s<>@]+@[^\s<>@]+", email):
        raise SignError(f"invalid key e-mail {email!r}: expected LOCAL@DOMAIN")


def generate_keys(config: SignConfig, *, name: str = "patchline", email: str = "patchline@localhost",
                  force: bool = False) -> SigningKeys:
    """Create patchline's GPG signing key and cosign key pair in :func:`default_keys_dir`.

    The GPG key is ed25519, sign-only, with no passphrase and no expiry: it is a
    machine key that signs unattended, protected by the 0700 directory it lives in.
    ``cosign.key`` is unencrypted for the same reason (PKCS#8 PEM, mode 0600); the
    directory is patchline's own and no other tool writes to it.

    Existing keys are kept and a :class:`SignError` raised unless ``force``, which
    replaces them (images signed before are then no longer accepted by a policy
    that names the new key).
    """
    _check_uid(name, email)
    directory = default_keys_dir(config)
    present = _existing(directory)
    if present and not force:
        raise SignError(f"signing keys already exist in {directory}: keep them, or replace them with "
                        "`patchline keys generate --force`")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    if present:
        _remove_keys(directory)
    home = directory / GNUPG_DIR
    home.mkdir(mode=0o700)
    home.chmod(0o700)  # mkdir's mode is filtered by the umask; gpg warns about a group-readable home
    try:
        _gpg(home, "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
             f"{name} <{email}>", "ed25519", "sign", "never")
        fingerprint = _secret_fingerprint(home)
        armored = _gpg(home, "--armor", "--export", fingerprint).stdout
        if "BEGIN PGP PUBLIC KEY BLOCK" not in armored:
            raise SignError(f"gpg exported no public key for {fingerprint} from {home}")
        (directory / GPG_PUBLIC_KEY).write_text(armored, encoding="ascii")

        private = ec.generate_private_key(ec.SECP256R1())
        _write_private(directory / COSIGN_PRIVATE_KEY, private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600)
        (directory / COSIGN_PUBLIC_KEY).write_bytes(private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

        # Written last: a half-made directory has no keys.json, so load_keys refuses it.
        document = {"schema": _KEYS_SCHEMA, "fingerprint": fingerprint, "uid": f"{name} <{email}>",
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (directory / KEYS_FILE).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    finally:
        # Key generation started an agent for this home; do not leave it behind.
        _kill_agent(home)
    return _keys_for(directory, fingerprint)


def load_keys(config: SignConfig) -> SigningKeys:
    """patchline's keys from :func:`default_keys_dir`; a :class:`SignError` when there are none."""
    directory = default_keys_dir(config)
    keys_file = directory / KEYS_FILE
    if not keys_file.is_file():
        raise SignError(f"no signing key in {directory}: run `patchline keys generate`")
    try:
        document = json.loads(keys_file.read_text(encoding="utf-8"))
        fingerprint = str(document["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SignError(f"{keys_file} is unreadable or malformed: run `patchline keys generate --force`") from exc
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise SignError(f"{keys_file} names no valid GPG fingerprint ({fingerprint!r})")
    keys = _keys_for(directory, fingerprint)
    for path in (keys.gnupg_home, keys.gpg_public_key, keys.cosign_private_key, keys.cosign_public_key):
        if not path.exists():
            raise SignError(f"signing keys in {directory} are incomplete ({path.name} is missing): "
                            "run `patchline keys generate --force`")
    return keys


def key_uid(keys: SigningKeys) -> str | None:
    """The user ID recorded when the keys were generated."""
    try:
        uid = json.loads((keys.directory / KEYS_FILE).read_text(encoding="utf-8")).get("uid")
    except (OSError, ValueError, AttributeError):
        return None
    return str(uid) if uid else None


def _kill_agent(home: Path) -> None:
    # gpg starts an agent per home on first use and it outlives us; gpgconf stops the one for this home only.
    if not home.is_dir() or shutil.which("gpgconf") is None:
        return
    with contextlib.suppress(HostError):
        run_tool(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], env=gpg_environment(home), timeout=15)


def stop_agent(keys: SigningKeys) -> None:
    """Stop the gpg-agent of patchline's GnuPG home, if one runs (the next signature starts it again)."""
    _kill_agent(keys.gnupg_home)

"""A suite's ``InRelease``: its OpenPGP signature (checked with ``gpgv``) and its fields.

Only the text ``gpgv`` itself reports as signed is parsed (``gpgv --output``), so
nothing outside the signature can slip in, as apt does.
"""

from __future__ import annotations

import email.utils
import io
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from debian.deb822 import Deb822

from patchline._host import run_tool
from patchline.errors import IndexExpiredError, IndexFormatError, IndexSignatureError
from patchline.updates.interface import ReleaseInfo

__all__ = ["check_fresh", "parse_release", "strip_clearsign", "verify_detached", "verify_inrelease"]

_GPGV_TIMEOUT = 60


def verify_inrelease(data: bytes, *, keyring: Path, what: str) -> tuple[bytes, str]:
    """Verify a clear-signed InRelease; return the signed text and the signing key's fingerprint."""
    with tempfile.TemporaryDirectory(prefix="patchline-gpgv-") as tmp:
        signed = Path(tmp, "InRelease")
        signed.write_bytes(data)
        out = Path(tmp, "Release")
        status = _gpgv(["--output", str(out), str(signed)], keyring=keyring, home=Path(tmp), what=what)
        return out.read_bytes(), status


def verify_detached(release: bytes, signature: bytes, *, keyring: Path, what: str) -> str:
    """Verify ``Release`` against ``Release.gpg``; return the signing key's fingerprint."""
    with tempfile.TemporaryDirectory(prefix="patchline-gpgv-") as tmp:
        rel, sig = Path(tmp, "Release"), Path(tmp, "Release.gpg")
        rel.write_bytes(release)
        sig.write_bytes(signature)
        return _gpgv([str(sig), str(rel)], keyring=keyring, home=Path(tmp), what=what)


def _gpgv(args: list[str], *, keyring: Path, home: Path, what: str) -> str:
    keyring = keyring.resolve()  # gpgv reads a relative --keyring below its home directory
    if not keyring.is_file():
        raise IndexSignatureError(
            f"cannot verify {what}: keyring {keyring} does not exist",
            detail="install debian-archive-keyring, or pass the keyring that signs this repository",
        )
    r, w = os.pipe()
    cmd = ["gpgv", "--homedir", str(home), "--status-fd", str(w), "--keyring", str(keyring), *args]
    try:
        proc = run_tool(cmd, error=IndexSignatureError, what=f"cannot verify {what}: gpgv", timeout=_GPGV_TIMEOUT,
                        missing=f"cannot verify {what}: gpgv is not installed", pass_fds=(w,), binary=True)
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as status_pipe:
        status = status_pipe.read().decode("utf-8", errors="replace")
    fingerprint = None
    good = False
    for line in status.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "[GNUPG:]":
            if parts[1] == "GOODSIG":
                good = True
            elif parts[1] == "VALIDSIG":
                fingerprint = parts[2]
    if proc.returncode != 0 or not good or fingerprint is None:
        reason = _reason(status)
        raise IndexSignatureError(
            f"{what} is not signed by a key in {keyring}: {reason}",
            detail=(status + proc.stderr.decode("utf-8", errors="replace")).strip(),
        )
    return fingerprint


def _reason(status: str) -> str:
    words = {line.split()[1] for line in status.splitlines() if line.startswith("[GNUPG:] ") and len(line.split()) > 1}
    if "BADSIG" in words:
        return "bad signature (the file was changed after signing)"
    if "NO_PUBKEY" in words:
        return "signed by an unknown key"
    if "EXPKEYSIG" in words or "REVKEYSIG" in words:
        return "signed by an expired or revoked key"
    if "NODATA" in words:
        return "no signature found"
    return "signature does not verify"


def strip_clearsign(data: bytes) -> bytes:
    """The text of a clear-signed message without checking it (``unsafe_skip_signature`` only)."""
    text = data.decode("utf-8", errors="replace")
    if not text.startswith("-----BEGIN PGP SIGNED MESSAGE-----"):
        return data
    _, _, body = text.partition("\n\n")  # after the armor headers ("Hash: SHA512")
    body, _, _ = body.partition("\n-----BEGIN PGP SIGNATURE-----")
    lines = [line[2:] if line.startswith("- ") else line for line in body.split("\n")]
    return ("\n".join(lines) + "\n").encode()


def parse_release(data: bytes, *, what: str, signed_by: str | None) -> ReleaseInfo:
    """Parse the fields of a (verified) Release text."""
    try:
        para = Deb822(io.StringIO(data.decode("utf-8", errors="replace")))
    except Exception as exc:  # python-debian raises assorted errors on garbage
        raise IndexFormatError(f"{what} cannot be parsed: {exc}") from exc
    if not para:
        raise IndexFormatError(f"{what} is empty")
    sha256: dict[str, tuple[str, int]] = {}
    for line in para.get("SHA256", "").splitlines():
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            raise IndexFormatError(f"{what}: malformed SHA256 line {line.strip()!r}")
        digest, size, path = fields
        try:
            sha256[path] = (digest.lower(), int(size))
        except ValueError as exc:
            raise IndexFormatError(f"{what}: malformed size in SHA256 line {line.strip()!r}") from exc
    if not sha256:
        raise IndexFormatError(f"{what} has no SHA256 list (apt refuses MD5/SHA1-only Release files too)")
    return ReleaseInfo(
        suite=para.get("Suite"),
        codename=para.get("Codename"),
        date=_date(para.get("Date"), what=what, name="Date"),
        valid_until=_date(para.get("Valid-Until"), what=what, name="Valid-Until"),
        components=tuple(para.get("Components", "").split()),
        architectures=tuple(para.get("Architectures", "").split()),
        acquire_by_hash=para.get("Acquire-By-Hash", "no").strip().lower() == "yes",
        sha256=sha256,
        signed_by=signed_by,
    )


def _date(text: str | None, *, what: str, name: str) -> datetime | None:
    if not text:
        return None
    try:
        value = email.utils.parsedate_to_datetime(text.strip())
    except (TypeError, ValueError) as exc:
        raise IndexFormatError(f"{what}: cannot parse {name} {text.strip()!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def check_fresh(release: ReleaseInfo, *, now: datetime, what: str) -> None:
    """Refuse a Release whose Valid-Until has passed, as apt does."""
    if release.valid_until is not None and release.valid_until < now:
        raise IndexExpiredError(
            f"{what} expired on {release.valid_until:%Y-%m-%d %H:%M} UTC (Valid-Until); "
            "the mirror is stale or replays an old index",
            detail=f"Date: {release.date}, Valid-Until: {release.valid_until}, now: {now}",
        )

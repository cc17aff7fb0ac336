"""Containers "simple signing": GPG signatures in a lookaside store, ``registries.d`` and ``policy.json``.

A simple signature binds a docker reference (the identity: ``HOST[:PORT]/PATH``) to
one manifest digest. containers/image finds the signatures of an image in the
lookaside store that ``registries.d`` configures for its registry scope, at
``STORE/PATH@sha256=HEX/signature-N`` (N counts from 1; readers stop at the first
missing N), and enforces them through a ``policy.json`` ``signedBy`` requirement.

patchline's ``registries.d`` is its own directory beside its policy.json, read only by
its own pulls (``skopeo --registries.d``): nothing system-wide changes. An entry an
older patchline left in the system's directory is moved there on the next write.

patchline signs by digest: the identity it signs is ``REPOSITORY@DIGEST`` (or
``REPOSITORY:TAG`` when asked), which ``matchRepoDigestOrExact`` (the policy default)
accepts for a pull by digest. A name-only identity would be refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from patchline._config import SignConfig
from patchline._host import run_tool
from patchline._paths import data_home
from patchline.errors import HostError, SignatureRefused, SignError
from patchline.sign._keys import gpg_environment
from patchline.sign.interface import SigningKeys

__all__ = [
    "REGISTRIES_D_FILE",
    "list_signatures",
    "lookaside_dir",
    "manifest_digest",
    "parse_repository",
    "policy_path",
    "pull_verified",
    "registries_d_dir",
    "remove_policy_scope",
    "remove_registries_d_scope",
    "sign_image",
    "signature_dir",
    "signed_identity",
    "verify_image",
    "write_policy",
    "write_registries_d",
]

REGISTRIES_D_FILE = "patchline.yaml"
REGISTRIES_D_DIR = "registries.d"  # beside patchline's policy.json
SYSTEM_REGISTRIES_D = Path("/etc/containers/registries.d")

_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
                   r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_FATAL_MESSAGE = re.compile(r'level=fatal msg="((?:[^"\\]|\\.)*)"')
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_IMAGE_ID = re.compile(r"^[0-9a-f]{64}$")
_REJECTED = "Source image rejected: "
# containers/image prints gpgme's verdict as a Go struct; the fingerprint and the gpg error code are what matter.
_GPGME_DUMP = re.compile(r'gpgme\.Signature\{.*?Fingerprint:"(?P<fpr>[0-9A-Fa-f]+)".*?err:0x(?P<err>[0-9a-f]+)\}.*$')
_GPG_ERR_NO_PUBKEY = 9


# -- names ------------------------------------------------------------------------------------------------------


def _split(name: str, *, what: str, path_required: bool) -> tuple[str, str]:
    host, _, path = name.partition("/")
    # The docker rule: the first component is a registry host only if it looks like one. patchline refuses
    # the implicit default registry rather than guess it.
    if not (("." in host or ":" in host or host == "localhost") and _HOST.fullmatch(host)):
        raise SignError(f"{what} {name!r} names no registry host: expected HOST[:PORT]/PATH")
    if path_required and not path:
        raise SignError(f"{what} {name!r} has no repository path: expected HOST[:PORT]/PATH")
    if path and not all(_PATH_COMPONENT.fullmatch(c) for c in path.split("/")):
        raise SignError(f"{what} {name!r} is not a repository name (lower-case path components, no tag or digest)")
    return host, path


def parse_repository(repository: str) -> tuple[str, str]:
    """``"127.0.0.1:5000/example/web"`` -> ``("127.0.0.1:5000", "example/web")``; no tag, no digest."""
    return _split(repository, what="repository", path_required=True)


def _check_scope(scope: str) -> str:
    _split(scope, what="scope", path_required=False)
    return scope


def manifest_digest(manifest: bytes) -> str:
    """``sha256:HEX`` of the exact manifest bytes (what the registry names the image by)."""
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


def signature_dir(lookaside: Path, *, repository: str, digest: str) -> Path:
    """``LOOKASIDE/PATH@sha256=HEX``: where containers/image looks for the signatures of ``repository@digest``."""
    _, path = parse_repository(repository)
    algorithm, _, hexpart = digest.partition(":")
    if algorithm != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hexpart):
        raise SignError(f"invalid manifest digest {digest!r}")
    return lookaside / f"{path}@{algorithm}={hexpart}"


def list_signatures(lookaside: Path, *, repository: str, digest: str) -> list[Path]:
    """The signatures a reader sees: ``signature-1``, ``signature-2``, ... up to the first missing one."""
    directory = signature_dir(lookaside, repository=repository, digest=digest)
    found: list[Path] = []
    while (candidate := directory / f"signature-{len(found) + 1}").is_file():
        found.append(candidate)
    return found


def lookaside_dir(config: SignConfig) -> Path:
    """``config.lookaside``, else ``$XDG_DATA_HOME/patchline/sigstore``."""
    return (config.lookaside.expanduser() if config.lookaside is not None else data_home() / "sigstore").absolute()


def policy_path(config: SignConfig) -> Path:
    """``config.policy``, else ``$XDG_DATA_HOME/patchline/policy.json``."""
    return (config.policy.expanduser() if config.policy is not None else data_home() / "policy.json").absolute()


# -- signing ----------------------------------------------------------------------------------------------------


def _clear_reason(reason: str) -> str:
    """containers/image's reason, with a gpgme structure dump turned into one readable clause."""
    dump = _GPGME_DUMP.search(reason)
    if dump is None:
        return reason
    fingerprint, code = dump.group("fpr"), int(dump.group("err"), 16)
    if code == _GPG_ERR_NO_PUBKEY:
        clause = f"signed by key {fingerprint}, which is not a trusted key"
    else:
        clause = f"signature by key {fingerprint} is invalid (gpg error {code})"
    return reason[:dump.start()] + clause


def _skopeo_reason(stderr: str) -> str:
    match = _FATAL_MESSAGE.search(stderr)
    if match:
        return _clear_reason(match.group(1).replace('\\"', '"').replace("\\\\", "\\"))
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return _clear_reason(lines[-1]) if lines else "(no output)"


def _place(directory: Path, signature: bytes) -> Path:
    """Store ``signature`` as the first free ``signature-N``, or return an identical one already there.

    The file is written in full under a temporary name and hard-linked into place: a
    reader never sees half a signature, and two writers never claim the same N.
    """
    directory.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".signature.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(signature)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(temporary, 0o644)  # readers (podman as another user, a web server) must see it
        index = 1
        while True:
            target = directory / f"signature-{index}"
            try:
                os.link(temporary, target)
            except FileExistsError:
                if target.read_bytes() == signature:
                    return target
                index += 1
                continue
            return target
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def signed_identity(repository: str, digest: str, tag: str | None = None) -> str:
    """The docker reference a signature names: ``REPOSITORY:TAG``, else ``REPOSITORY@DIGEST``.

    A name-only identity is never accepted by containers/image's default
    ``matchRepoDigestOrExact``; ``@DIGEST`` is accepted for a pull by digest (any tag
    name differs), ``:TAG`` for a pull by digest and for a pull of exactly that tag.
    """
    parse_repository(repository)
    if tag is None:
        return f"{repository}@{digest}"
    if not _TAG.fullmatch(tag):
        raise SignError(f"invalid tag {tag!r}")
    return f"{repository}:{tag}"


def sign_image(keys: SigningKeys, *, repository: str, manifest: bytes, lookaside: Path,
               tag: str | None = None) -> Path:
    """Sign ``manifest`` (exact bytes) as ``repository`` and store it in the lookaside store.

    The identity signed is :func:`signed_identity` (``REPOSITORY@DIGEST`` unless ``tag``).
    Returns the signature file (``LOOKASIDE/PATH@sha256=HEX/signature-N``).
    """
    digest = manifest_digest(manifest)
    identity = signed_identity(repository, digest, tag)
    directory = signature_dir(lookaside, repository=repository, digest=digest)
    with tempfile.TemporaryDirectory(prefix="patchline-sign-") as scratch:
        manifest_file, output = Path(scratch) / "manifest.json", Path(scratch) / "signature"
        manifest_file.write_bytes(manifest)
        result = run_tool(["skopeo", "standalone-sign", str(manifest_file), identity, keys.fingerprint,
                           "--output", str(output)], env=gpg_environment(keys.gnupg_home),
                          what="skopeo standalone-sign")
        if result.returncode != 0 or not output.is_file():
            raise SignError(f"cannot sign {identity}: {_skopeo_reason(result.stderr)}", detail=result.stderr)
        return _place(directory, output.read_bytes())


def verify_image(keys: SigningKeys, *, repository: str, manifest: bytes, lookaside: Path,
                 tag: str | None = None) -> None:
    """Accept when a signature in the lookaside store, by ``keys``, names this identity and ``manifest``.

    The identity is :func:`signed_identity` (as :func:`sign_image` signs it). Raises
    :class:`SignatureRefused` when no signature is valid, with the reason each one failed.
    """
    digest = manifest_digest(manifest)
    identity = signed_identity(repository, digest, tag)
    signatures = list_signatures(lookaside, repository=repository, digest=digest)
    if not signatures:
        raise SignatureRefused(f"refused {repository}@{digest}: no signature in "
                               f"{signature_dir(lookaside, repository=repository, digest=digest)}")
    reasons: list[str] = []
    with tempfile.TemporaryDirectory(prefix="patchline-verify-") as scratch:
        manifest_file = Path(scratch) / "manifest.json"
        manifest_file.write_bytes(manifest)
        for signature in signatures:
            result = run_tool(["skopeo", "standalone-verify", str(manifest_file), identity, keys.fingerprint,
                               str(signature)], env=gpg_environment(keys.gnupg_home),
                              what="skopeo standalone-verify")
            if result.returncode == 0:
                return
            reasons.append(f"{signature.name}: {_skopeo_reason(result.stderr)}")
    raise SignatureRefused(f"refused {repository}@{digest}: no valid signature by {keys.fingerprint} "
                           f"({'; '.join(reasons)})", detail="\n".join(reasons))


# -- configuration files ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # A lock on the directory itself: it leaves no lock file behind among configuration files.
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _atomic_write(path: Path, text: str) -> None:
    # The temporary name does not end in .yaml/.json, so containers/image never reads half a file.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def registries_d_dir(config: SignConfig) -> Path:
    """``config.registries_d``, else ``registries.d`` beside patchline's policy.json (:func:`policy_path`).

    Only patchline's own pulls read it (:func:`pull_verified` passes ``--registries.d``).
    """
    if config.registries_d is not None:
        return config.registries_d.expanduser().absolute()
    return policy_path(config).parent / REGISTRIES_D_DIR


def legacy_registries_d_dirs() -> tuple[Path, ...]:
    """Where patchline used to write its ``patchline.yaml``: the directory containers/image reads by default
    (``~/.config/containers/registries.d`` when it exists, else the system's)."""
    return (Path.home() / ".config" / "containers" / "registries.d", SYSTEM_REGISTRIES_D)


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, yaml.YAMLError) as exc:
        raise SignError(f"cannot read {path}: {exc}") from exc
    if document is None:
        return {}
    if not isinstance(document, dict) or not isinstance(document.get("docker", {}), dict):
        raise SignError(f"{path} is not a registries.d file (expected a mapping with a `docker:` mapping)")
    return document


def _other_definition(directory: Path, scope: str) -> Path | None:
    """Another .yaml file in ``directory`` that configures ``scope`` (containers/image refuses such a pair)."""
    for path in sorted(directory.glob("*.yaml")):
        if path.name == REGISTRIES_D_FILE:
            continue
        try:
            docker = _load_yaml(path).get("docker") or {}
        except SignError:
            continue  # not ours to judge; containers/image reports it
        if scope in docker:
            return path
    return None


_REGISTRIES_D_HEADER = (
    "# Written by patchline: the lookaside stores of the scopes patchline signs for.\n"
    "# patchline rewrites this file when it adds or removes a scope; other files in this\n"
    "# directory must not configure the same scopes (containers/image refuses duplicates).\n"
)


def _write_registries_d_document(path: Path, document: dict[str, Any]) -> None:
    if not document.get("docker"):
        document.pop("docker", None)
    if not document:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    _atomic_write(path, _REGISTRIES_D_HEADER + yaml.safe_dump(document, sort_keys=True, default_flow_style=False))


def _legacy_entries(directory: Path, url: str) -> dict[Path, dict[str, Any]]:
    """The scopes an older patchline wrote for the lookaside store ``url`` in the default registries.d
    directories (other than ``directory``), by file: what belongs to this patchline there."""
    found: dict[Path, dict[str, Any]] = {}
    for legacy in legacy_registries_d_dirs():
        path = legacy / REGISTRIES_D_FILE
        try:
            if legacy.absolute() == directory or not path.is_file():
                continue
            docker = _load_yaml(path).get("docker") or {}
        except (OSError, SignError):
            continue  # not readable: nothing this patchline can have written
        ours = {scope: entry for scope, entry in docker.items()
                if isinstance(entry, dict) and entry.get("lookaside") == url}
        if ours:
            found[path] = ours
    return found


def _forget_legacy(path: Path, scopes: Sequence[str], url: str) -> None:
    """Remove ``scopes`` from an older patchline's ``patchline.yaml`` while they still name the lookaside store
    ``url`` (nothing else); the file goes with its last scope. Best effort: a file this process cannot write was
    not this patchline's."""
    try:
        with _locked(path.parent):
            document = _load_yaml(path)
            docker = document.get("docker") or {}
            for scope in scopes:
                if isinstance(docker.get(scope), dict) and docker[scope].get("lookaside") == url:
                    del docker[scope]
            _write_registries_d_document(path, document)
    except (OSError, SignError):
        pass


def write_registries_d(config: SignConfig, *, scope: str, lookaside: Path) -> Path:
    """Point containers/image at ``lookaside`` for ``scope`` (a registry host, or ``HOST/NAMESPACE``).

    The entry goes into ``patchline.yaml`` in patchline's own :func:`registries_d_dir`, which holds every scope
    patchline manages (merged under a lock, rewritten atomically). Entries an older patchline wrote for the
    same lookaside store in the system's registries.d move here and leave that file. Returns the file.
    """
    _check_scope(scope)
    directory = registries_d_dir(config)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lookaside = lookaside.expanduser().absolute()
        lookaside.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SignError(f"cannot create {exc.filename}: {exc.strerror} (set [sign] registries_d / lookaside)") from exc
    path = directory / REGISTRIES_D_FILE
    url = lookaside.as_uri()
    legacy = _legacy_entries(directory, url)
    try:
        with _locked(directory):
            other = _other_definition(directory, scope)
            if other is not None:
                raise SignError(f"{other} already configures the signature store of {scope}: remove that entry "
                                f"or let patchline manage the scope in {path}")
            document = _load_yaml(path)
            docker = document.setdefault("docker", {})
            for entries in legacy.values():
                for old_scope, entry in entries.items():
                    docker.setdefault(old_scope, entry)
            docker[scope] = {"lookaside": url, "lookaside-staging": url}
            _write_registries_d_document(path, document)
    except OSError as exc:
        raise SignError(f"cannot write {path}: {exc.strerror or exc}") from exc
    for legacy_path, entries in legacy.items():
        _forget_legacy(legacy_path, list(entries), url)
    return path


def remove_registries_d_scope(config: SignConfig, scope: str) -> bool:
    """Remove ``scope`` from patchline's registries.d file (the file too, when it was the last one), and from an
    older patchline's file in the system's registries.d when it names this lookaside store.

    Returns whether the scope was there.
    """
    directory = registries_d_dir(config)
    path = directory / REGISTRIES_D_FILE
    url = lookaside_dir(config).as_uri()
    legacy = [p for p, entries in _legacy_entries(directory, url).items() if scope in entries]
    for legacy_path in legacy:
        _forget_legacy(legacy_path, [scope], url)
    if not path.exists():
        return bool(legacy)
    try:
        with _locked(directory):
            document = _load_yaml(path)
            docker = document.get("docker") or {}
            if scope not in docker:
                return bool(legacy)
            del docker[scope]
            _write_registries_d_document(path, document)
    except OSError as exc:
        raise SignError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return True


def _load_policy(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SignError(f"cannot read {path}: {exc}") from exc
    transports = document.get("transports", {}) if isinstance(document, dict) else None
    if not isinstance(document, dict) or not isinstance(transports, dict) \
            or not isinstance(transports.get("docker", {}), dict):
        raise SignError(f"{path} is not a containers policy.json (expected {{\"default\": ..., \"transports\": ...}})")
    return document


def _write_policy_document(path: Path, document: dict[str, Any]) -> None:
    _atomic_write(path, json.dumps(document, indent=2, sort_keys=True) + "\n")


def write_policy(config: SignConfig, keys: SigningKeys, *, scopes: Sequence[str]) -> Path:
    """Require a signature by ``keys`` for every image under ``scopes`` in patchline's policy.json.

    Everything else is rejected (``default: reject``, also over an older file that accepted anything): what
    pulls through this policy is what patchline starts, and an image outside the services' repositories must
    never start through it unsigned. Scopes and other transports already in the file are kept. Returns the
    file (:func:`policy_path`).
    """
    if isinstance(scopes, str) or not scopes:
        raise SignError("write_policy needs at least one scope (a registry host or HOST/NAMESPACE)")
    for scope in scopes:
        _check_scope(scope)
    path = policy_path(config)
    requirement = {"type": "signedBy", "keyType": "GPGKeys", "keyPath": str(keys.gpg_public_key.absolute())}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path.parent):
            document = _load_policy(path)
            document["default"] = [{"type": "reject"}]
            docker = document.setdefault("transports", {}).setdefault("docker", {})
            for scope in scopes:
                docker[scope] = [dict(requirement)]
            _write_policy_document(path, document)
    except OSError as exc:
        raise SignError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


def remove_policy_scope(config: SignConfig, scope: str) -> bool:
    """Drop ``scope``'s requirement from patchline's policy.json; returns whether it was there."""
    path = policy_path(config)
    if not path.exists():
        return False
    try:
        with _locked(path.parent):
            document = _load_policy(path)
            docker = document.get("transports", {}).get("docker", {})
            if scope not in docker:
                return False
            del docker[scope]
            _write_policy_document(path, document)
    except OSError as exc:
        raise SignError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return True


# -- enforcement ------------------------------------------------------------------------------------------------


def pull_verified(reference: str, *, policy: Path, insecure: bool, registries_d: Path | None = None,
                  timeout: float = 600) -> str:
    """Pull ``reference`` into local containers storage through ``policy``; returns the image ID.

    The signatures are looked up through ``registries_d`` (default: ``registries.d`` beside ``policy``, where
    :func:`registries_d_dir` puts it unless configured elsewhere). podman 4 has no option naming a registries.d,
    so the pull is ``skopeo copy`` into ``containers-storage:``, which podman runs from like from its own pull.
    A refused signature (none, invalid, another key, another identity) raises :class:`SignatureRefused` with the
    reason; any other failure :class:`HostError`.
    """
    if not policy.is_file():
        raise SignError(f"no policy file {policy}: write it with write_policy first")
    directory = registries_d if registries_d is not None else policy.parent / REGISTRIES_D_DIR
    command = ["skopeo", "--policy", str(policy), "--registries.d", str(directory), "copy", "--quiet"]
    if insecure:
        command.append("--src-tls-verify=false")
    command += [f"docker://{reference}", f"containers-storage:{reference}"]
    result = run_tool(command, timeout=timeout, what=f"pull of {reference}")
    if result.returncode != 0:
        reason = _skopeo_reason(result.stderr)
        if _REJECTED in reason:
            raise SignatureRefused(f"refused {reference}: {reason[reason.rindex(_REJECTED) + len(_REJECTED):]}",
                                   detail=result.stderr)
        raise HostError(f"pull of {reference} failed: {reason.removeprefix('Error: ')}", detail=result.stderr)
    inspect = run_tool(["podman", "image", "inspect", "--format", "{{.Id}}", reference], timeout=60,
                       what="podman image inspect")
    image_id = inspect.stdout.strip()
    if inspect.returncode != 0 or not _IMAGE_ID.fullmatch(image_id):
        raise HostError(f"{reference} was pulled but podman cannot find it", detail=inspect.stdout + inspect.stderr)
    return image_id

"""buildah and podman, driven through their CLIs: build, patch in place, push, resolve a base's digest.

Every command's output goes to the build's log file; a failure raises
:class:`BuildError` with the log's last lines as its detail.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from patchline.errors import BuildError, Error, ImageNotFound
from patchline.oci import parse_image_ref

# What a build or an apt run leaves that differs from run to run with the same inputs; removed so that the
# same inputs give the same layer (the timestamps are fixed by --timestamp).
VOLATILE_FILES = ("/var/log/apt/history.log /var/log/apt/term.log /var/log/apt/eipp.log.xz /var/log/dpkg.log "
                  "/var/log/alternatives.log /var/cache/ldconfig/aux-cache /var/lib/dpkg/status-old "
                  "/var/lib/dpkg/diversions-old /var/cache/debconf/config.dat-old /var/cache/debconf/templates.dat-old")
SOURCES_IN_IMAGE = "/etc/apt/sources.list.d/patchline-updates.list"
KEYRING_IN_IMAGE = "/etc/apt/keyrings/patchline-updates.gpg"


@dataclass(frozen=True, slots=True)
class BuildEnv:
    """What every build and patch shares: tools, network, mounts, registries."""

    pull: str = "missing"
    network: str = "host"
    insecure: frozenset[str] = frozenset()  # registry hosts reached with --tls-verify=false
    ca_bundle: Path | None = None
    mounts: tuple[tuple[Path, str], ...] = field(default=())  # (host path, path in RUN containers), read-only

    def tls_flag(self, reference: str) -> list[str]:
        try:
            host = parse_image_ref(reference).registry
        except Error:
            return []
        return ["--tls-verify=false"] if host in self.insecure else []

    def volume_flags(self) -> list[str]:
        flags = [f"--volume={host}:{inside}:ro" for host, inside in self.mounts]
        if self.ca_bundle is not None:
            flags.append(f"--volume={self.ca_bundle}:/etc/ssl/certs/ca-certificates.crt:ro")
        return flags


def _run(argv: Sequence[str], log: Path, what: str, *, env: Mapping[str, str] | None = None) -> str:
    """Run a command appending its output to ``log``; return its stdout."""
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(argv)}\n")
        fh.flush()
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=fh, text=True, check=False,
                              env=None if env is None else dict(env))
        fh.write(proc.stdout)
        if proc.returncode != 0:
            fh.write(f"exit status {proc.returncode}\n")
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise BuildError(f"{what} failed (exit {proc.returncode}); log: {log}", detail=tail)
    return proc.stdout


def local_image_id(reference: str) -> str | None:
    """The image ID (``sha256:...``) of a reference in local containers storage, or None."""
    proc = subprocess.run(["podman", "image", "inspect", "--format", "{{.Id}}", reference],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return None
    return "sha256:" + proc.stdout.strip().removeprefix("sha256:")


def resolve_digest(reference: str, *, insecure: frozenset[str]) -> str:
    """The digest a base reference points at now: local storage for ``localhost/`` images, else the registry's."""
    ref = parse_image_ref(reference)
    if ref.digest is not None:
        return str(ref.digest)
    if ref.registry == "localhost":
        image_id = local_image_id(reference)
        if image_id is None:
            raise ImageNotFound(f"{reference} is not in local containers storage")
        return image_id
    from patchline.oci._registry import RegistrySource

    with RegistrySource(ref, insecure=ref.registry in insecure) as source:
        return str(source.manifest_digest())


def pinned(reference: str, digest: str) -> str:
    """The reference a build uses for ``reference`` at ``digest``: ``repo@digest``, or the bare ID of a local image."""
    ref = parse_image_ref(reference)
    if ref.registry == "localhost" and ref.digest is None:
        return digest.removeprefix("sha256:")
    return f"{ref.registry}/{ref.repository}@{digest}"


def bud(*, containerfile: Path, context: Path, tag: str, args: Mapping[str, str], timestamp: int,
        env: BuildEnv, log: Path, target: str | None = None, iidfile: Path, bases: Sequence[str] = ()) -> str:
    """``buildah bud``; returns the image ID (``sha256:...``)."""
    argv = ["buildah", "bud", "--layers=false", f"--timestamp={timestamp}", f"--pull={env.pull}",
            f"--network={env.network}", f"--iidfile={iidfile}", f"--file={containerfile}", f"--tag={tag}",
            *env.volume_flags()]
    argv += [f"--build-arg={k}={v}" for k, v in sorted(args.items())]
    argv += [f"--build-arg=SOURCE_DATE_EPOCH={timestamp}"]
    if target:
        argv.append(f"--target={target}")
    if any(env.tls_flag(b) for b in bases):  # buildah has one TLS switch for every pull of a build
        argv.append("--tls-verify=false")
    argv.append(str(context))
    _run(argv, log, "buildah bud", env={**os.environ, "SOURCE_DATE_EPOCH": str(timestamp)})
    return "sha256:" + iidfile.read_text().strip().removeprefix("sha256:")


def patch_in_place(*, image: str, tag: str, container: str, timestamp: int, env: BuildEnv, log: Path,
                   labels: Mapping[str, str]) -> str:
    """Apply the pending apt updates to ``image`` as one new layer; keep its config. Returns the image ID."""
    if _exists(container):  # left by a killed earlier patch
        _run(["buildah", "rm", container], log, "buildah rm")
    _run(["buildah", "from", f"--pull={env.pull}", "--name", container, *env.tls_flag(image), image], log,
         "buildah from")
    try:
        probe = subprocess.run(["buildah", "run", "--user", "0:0", container, "--", "sh", "-c",
                                "command -v apt-get"], capture_output=True, text=True, check=False)
        if probe.returncode != 0:
            raise BuildError(f"{image}: no apt-get in the image; patch in place supports Debian-based images")
        script = ("set -e; export DEBIAN_FRONTEND=noninteractive; apt-get update -q; "
                  "apt-get -y -q -o Dpkg::Options::=--force-confold upgrade; apt-get clean; "
                  f"rm -rf /var/lib/apt/lists/* {VOLATILE_FILES}")
        _run(["buildah", "run", "--user", "0:0", f"--network={env.network}", *env.volume_flags(), container,
              "--", "sh", "-c", script], log, "apt-get upgrade in the image")
        config = ["buildah", "config"]
        for key, value in sorted(labels.items()):
            config.append(f"--label={key}={value}")
        _run([*config, container], log, "buildah config")
        _run(["buildah", "commit", f"--timestamp={timestamp}", f"--iidfile={log.with_suffix('.iid')}", container,
              tag], log, "buildah commit")
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
    return "sha256:" + log.with_suffix(".iid").read_text().strip().removeprefix("sha256:")


def _exists(container: str) -> bool:
    proc = subprocess.run(["buildah", "containers", "--json"], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        return False
    return any(c.get("containername") == container for c in json.loads(proc.stdout) or [])


def push(*, image_id: str, destination: str, env: BuildEnv, log: Path, digestfile: Path) -> str:
    """Push to ``destination`` (repository:tag); returns the manifest digest the registry stored."""
    argv = ["buildah", "push", f"--digestfile={digestfile}", *env.tls_flag(destination),
            image_id.removeprefix("sha256:"), f"docker://{destination}"]
    _run(argv, log, f"push to {destination}")
    return digestfile.read_text().strip()

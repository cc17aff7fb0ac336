"""buildah and podman, driven through their CLIs: build, patch in place, push, resolve a base's digest.

Every command's output goes to the build's log file as it comes; a failure raises :class:`BuildError` whose
message names the cause (:func:`failure_cause`: the tool's last error, and for a failed RUN the step's own
error line) and whose detail is the log's last lines.

What a killed patchline leaves behind carries its pid, so the next rebuild removes it once that process is gone
(:func:`clean_leftovers`): its scratch directories (``patchline-build-PID-*``, buildah's ``TMPDIR`` during a
rebuild; ``patchline-export-PID-*``, the rescans' layout) and the buildah working containers its builds made.
``buildah bud`` cannot name or label its working containers, so each rebuild's buildah commands get the scratch
directory's ``mounts.conf`` as their default mounts file (a copy of the host's): buildah records that path in
every container it creates, and it names the owner.

Nothing secret reaches a command line or a log: build args go to buildah by name (``--build-arg KEY``, the value
in its environment). ``[registries] insecure`` applies to the hosts it names only: a build reads a
``registries.conf`` of its own (``CONTAINERS_REGISTRIES_CONF``) marking just those hosts insecure, in a private
directory removed after the build. RUN steps run on buildah's own network (``private``) unless the recipe asks
for another (``network = "host"``).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import tomllib
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from patchline._host import run_tool
from patchline._owner import owner_dead
from patchline.errors import BuildError, Error, HostError, ImageNotFound
from patchline.oci import parse_image_ref

# What a build or an apt run leaves that differs from run to run with the same inputs; removed so that the
# same inputs give the same layer (the timestamps are fixed by --timestamp).
VOLATILE_FILES = ("/var/log/apt/history.log /var/log/apt/term.log /var/log/apt/eipp.log.xz /var/log/dpkg.log "
                  "/var/log/alternatives.log /var/cache/ldconfig/aux-cache /var/lib/dpkg/status-old "
                  "/var/lib/dpkg/diversions-old /var/cache/debconf/config.dat-old /var/cache/debconf/templates.dat-old")
SOURCES_IN_IMAGE = "/etc/apt/sources.list.d/patchline-updates.list"
KEYRING_IN_IMAGE = "/etc/apt/keyrings/patchline-updates.gpg"
MOUNTS_FILE = "mounts.conf"  # in a scratch directory: the default mounts file that marks its containers
# patchline-KIND-PID-XXXX: a directory (or, for "build", a container name) owned by process PID.
_OWNED = re.compile(r"^patchline-(build|export)-(\d+)-")
_MARKER = re.compile(r"/patchline-build-(\d+)-[^/]+/" + re.escape(MOUNTS_FILE) + "$")
# The names buildah gives the working containers it creates itself (bud, from without --name).
_WORKING = re.compile(r"-working-container(-\d+)?$")
# Where buildah looks for the default mounts when none is given (the rootless user's own file first).
_HOST_MOUNTS = ("/etc/containers/mounts.conf", "/usr/share/containers/mounts.conf")
# Build args that would change how buildah itself runs if they were in its environment (its paths, locale, Go
# runtime, containers/image and storage settings, proxies): these stay ``--build-arg=KEY=VALUE``.
_TOOL_VARIABLES = re.compile(r"PATH|HOME|TMPDIR|USER|LOGNAME|SHELL|TERM|TZ|LANG|LANGUAGE|LC_\w+|LD_\w+|XDG_\w+|"
                             r"CONTAINERS_\w+|BUILDAH_\w+|STORAGE_\w+|REGISTRY_AUTH_FILE|DOCKER_\w+|DBUS_\w+|"
                             r"NOTIFY_SOCKET|SSL_CERT_(FILE|DIR)|GODEBUG|GOGC|GOMAXPROCS|GOMEMLIMIT|GOTRACEBACK|"
                             r"SOURCE_DATE_EPOCH|(?i:(https?|ftp|all|no)_proxy)")


@dataclass(frozen=True, slots=True)
class BuildEnv:
    """What every build and patch shares: tools, network, mounts, registries."""

    pull: str = "missing"
    network: str = "private"  # buildah --network of RUN steps: its own network namespace unless asked
    insecure: frozenset[str] = frozenset()  # registry hosts reached over plain HTTP or unverified TLS, only them
    ca_bundle: Path | None = None
    mounts: tuple[tuple[Path, str], ...] = field(default=())  # (host path, path in RUN containers), read-only
    scratch: Path | None = None  # this rebuild's scratch directory (new_scratch()): buildah's TMPDIR and marker

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

    def buildah(self, *args: str) -> list[str]:
        """``buildah ARGS``, marking the containers it creates as this rebuild's (see :func:`clean_leftovers`)."""
        if self.scratch is not None and _marks_containers():
            return ["buildah", f"--default-mounts-file={self.scratch / MOUNTS_FILE}", *args]
        return ["buildah", *args]

    def environ(self, **extra: str) -> dict[str, str]:
        """The tools' environment: buildah's temporary files go to the scratch directory, named after its owner."""
        out = {**os.environ, **extra}
        if self.scratch is not None:
            out["TMPDIR"] = str(self.scratch)
        return out


@functools.cache
def _marks_containers() -> bool:
    """Whether this buildah takes ``--default-mounts-file`` (hidden, but there since buildah 1.x)."""
    try:
        probe = run_tool(["buildah", "--default-mounts-file=/dev/null", "version"], timeout=60)
    except HostError:
        return False
    return probe.returncode == 0


# -- what a tool's failure says ----------------------------------------------------------------------------------

_LOGRUS = re.compile(r'^time="[^"]*" level=(\w+) msg="(.*)"$')
_STEP = re.compile(r"^STEP \d+/\d+: ")
# Progress and bookkeeping lines: never the reason a command failed.
_NOISE = re.compile(r"^(\$ |exit status \d+$|Getting image source signatures|Copying (blob|config) |Writing manifest|"
                    r"Storing signatures|Trying to pull |--> |COMMIT|Resolving \")")
# buildah's own account of a command that failed in a container: the command's output above it says why.
_WRAP_UP = re.compile(r"^(error building at STEP|error while running runtime|"
                      r": exit status \d+$|subprocess exited with status|did not get container create message)")


def _shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters; mostly the end is kept (Go error chains end with the root cause)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = limit // 3
    return f"{text[:head]} … {text[len(text) - (limit - head - 3):]}"


def failure_cause(output: str, *, limit: int = 400) -> str:
    """Why a buildah, podman or apt command failed, from its output: one line, or ``""`` when it says nothing.

    The tool's last ``Error:`` line (a pull, a push, a commit); when a command in a container failed (a RUN
    step, apt in a patch), that command's own last error line (``E: ...`` from apt, else its last line of
    output) comes first.
    """
    lines: list[str] = []
    for raw in output.splitlines():
        line = raw.strip()
        logrus = _LOGRUS.match(line)
        if logrus is not None:
            if logrus.group(1) not in ("error", "fatal", "panic"):
                continue  # warnings ("Failed, retrying ...") say what the final error says
            line = logrus.group(2).replace('\\"', '"')
        if line and not _NOISE.match(line):
            lines.append(line)
    said = [line for line in lines if not _STEP.match(line)]
    if not said:
        return ""
    final_at = max((i for i, line in enumerate(lines) if line.startswith(("Error: ", "error: "))), default=None)
    if final_at is None:
        return _shorten(said[-1], limit)
    final = lines[final_at].split(": ", 1)[1]
    if not re.search(r"exit status \d+$", final):
        return _shorten(final, limit)
    # A command in a container failed: what it printed since its step began says why.
    begun = max((i for i, line in enumerate(lines[:final_at]) if _STEP.match(line)), default=-1)
    step = [line for line in lines[begun + 1:final_at] if not _WRAP_UP.match(line)]
    why = [line for line in step if line.startswith(("E: ", "error: ", "Error: "))] or step[-1:]
    if not why:
        return _shorten(final, limit)
    return f"{_shorten(why[-1], limit // 2)}; {_shorten(final, limit // 2)}"


def _run(argv: Sequence[str], log: Path, what: str, *, env: Mapping[str, str] | None = None) -> None:
    """Run a command appending its output to ``log`` as it comes (a killed patchline stops it at its next line)."""
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(argv)}\n")
        fh.flush()
        start = log.stat().st_size
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                text=True, errors="replace", env=None if env is None else dict(env))
        assert proc.stdout is not None
        for line in proc.stdout:
            fh.write(line)
            fh.flush()
        returncode = proc.wait()
        if returncode != 0:
            fh.write(f"exit status {returncode}\n")
    if returncode != 0:
        with log.open("rb") as raw:
            raw.seek(start)
            cause = failure_cause(raw.read().decode(errors="replace"))
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise BuildError(f"{what} failed (exit {returncode}){': ' + cause if cause else ''}; log: {log}",
                         detail=tail)


def local_image_id(reference: str) -> str | None:
    """The image ID (``sha256:...``) of a reference in local containers storage, or None."""
    proc = run_tool(["podman", "image", "inspect", "--format", "{{.Id}}", reference])
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
    from patchline.oci import RegistrySource

    with RegistrySource(ref, insecure=ref.registry in insecure) as source:
        return str(source.manifest_digest())


def pinned(reference: str, digest: str) -> str:
    """The reference a build uses for ``reference`` at ``digest``: ``repo@digest``, or the bare ID of a local image."""
    ref = parse_image_ref(reference)
    if ref.registry == "localhost" and ref.digest is None:
        return digest.removeprefix("sha256:")
    return f"{ref.registry}/{ref.repository}@{digest}"


def build_arg_flags(args: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """``--build-arg`` flags naming ``args`` and the environment that carries their values.

    buildah takes a bare ``--build-arg KEY`` from its environment, so no value shows in ``ps`` or the log; only
    names buildah itself reads (:data:`_TOOL_VARIABLES`) keep their value on the command line.
    """
    flags: list[str] = []
    environ: dict[str, str] = {}
    for key, value in sorted(args.items()):
        if _TOOL_VARIABLES.fullmatch(key):
            flags.append(f"--build-arg={key}={value}")
        else:
            flags.append(f"--build-arg={key}")
            environ[key] = value
    return flags, environ


def host_registries_conf() -> Path:
    """The ``registries.conf`` containers/image reads without ours: ``$CONTAINERS_REGISTRIES_CONF``, else the
    user's ``~/.config/containers/registries.conf`` when it exists, else ``/etc/containers/registries.conf``."""
    named = os.environ.get("CONTAINERS_REGISTRIES_CONF")
    if named:
        return Path(named)
    user = Path.home() / ".config" / "containers" / "registries.conf"
    return user if user.is_file() else Path("/etc/containers/registries.conf")


def registries_conf(insecure: Iterable[str], *, host_conf: str = "", source: str = "registries.conf") -> str:
    """A containers-registries.conf (v2) marking exactly the ``insecure`` hosts ``insecure = true``.

    ``host_conf`` (the host's file, kept byte for byte: its mirrors, blocked registries and search list still
    apply) gets one ``[[registry]]`` table per host it does not configure yet. A host it configures without
    ``insecure = true`` is refused (containers/image refuses a registry defined twice with different settings).
    """
    try:
        document = tomllib.loads(host_conf)
    except tomllib.TOMLDecodeError as exc:
        raise BuildError(f"cannot read {source}: {exc}") from exc
    if "registries" in document:
        raise BuildError(f"{source} is in the version 1 format: a build cannot add its insecure registries to it; "
                         "convert it to version 2 ([[registry]] tables)")
    entries = document.get("registry", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise BuildError(f"{source}: `registry` is not a list of [[registry]] tables")
    out = host_conf if not host_conf or host_conf.endswith("\n") else host_conf + "\n"
    for host in sorted(set(insecure)):
        if not re.fullmatch(r"[A-Za-z0-9.:\[\]-]+", host):
            raise BuildError(f"insecure registry {host!r} is not a registry host (HOST[:PORT])")
        configured = [e for e in entries if host in (e.get("location"), e.get("prefix"))]
        if any(e.get("insecure") is not True for e in configured):
            raise BuildError(f"{source} configures {host} without insecure = true, which [registries] insecure "
                             "names: set it there too, or remove the host from one of them")
        if not configured:
            out += f'\n# patchline: [registries] insecure\n[[registry]]\nlocation = "{host}"\ninsecure = true\n'
    return out


@contextmanager
def registries_env(env: BuildEnv) -> Iterator[dict[str, str]]:
    """The environment that makes buildah read a registries.conf marking only ``env.insecure`` insecure, written
    for the duration of the block into a private directory of this process (``patchline-build-PID-*``, 0700)."""
    if not env.insecure:
        yield {}
        return
    source = host_registries_conf()
    try:
        host_conf = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        host_conf = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"cannot read {source}: {exc}") from exc
    text = registries_conf(env.insecure, host_conf=host_conf, source=str(source))
    directory = owned_dir("build", env.scratch or scratch_root())
    try:
        conf = directory / "registries.conf"
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        yield {"CONTAINERS_REGISTRIES_CONF": str(conf)}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def loopback_note(network: str, urls: Iterable[str]) -> str | None:
    """What to tell the user when RUN steps on ``network`` cannot reach one of ``urls`` (an apt source on this
    host's loopback, outside the build's own network namespace), or None."""
    if network == "host":
        return None
    for url in urls:
        host = urllib.parse.urlsplit(url).hostname or ""
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return (f"update source {url} is on this host's loopback, which RUN steps on network {network!r} "
                    'cannot reach: set network = "host" on the image\'s [[images]] entry')
    return None


def bud(*, containerfile: Path, context: Path, tag: str, args: Mapping[str, str], timestamp: int,
        env: BuildEnv, log: Path, target: str | None = None, iidfile: Path) -> str:
    """``buildah bud``; returns the image ID (``sha256:...``).

    Build args reach buildah through its environment (:func:`build_arg_flags`); the bases' registries are
    reached over plain HTTP only when ``env.insecure`` names their host (:func:`registries_env`).
    """
    flags, values = build_arg_flags(args)
    argv = env.buildah("bud", "--layers=false", f"--timestamp={timestamp}", f"--pull={env.pull}",
                       f"--network={env.network}", f"--iidfile={iidfile}", f"--file={containerfile}", f"--tag={tag}",
                       *env.volume_flags(), *flags, f"--build-arg=SOURCE_DATE_EPOCH={timestamp}")
    if target:
        argv.append(f"--target={target}")
    argv.append(str(context))
    with registries_env(env) as registries:
        _run(argv, log, "buildah bud", env=env.environ(**values, **registries, SOURCE_DATE_EPOCH=str(timestamp)))
    return "sha256:" + iidfile.read_text().strip().removeprefix("sha256:")


def container_name(what: str) -> str:
    """A name for a working container of this process: ``patchline-build-PID-WHAT`` (see clean_leftovers)."""
    return f"patchline-build-{os.getpid()}-{what}"


def patch_in_place(*, image: str, tag: str, container: str, timestamp: int, env: BuildEnv, log: Path,
                   labels: Mapping[str, str]) -> str:
    """Apply the pending apt updates to ``image`` as one new layer; keep its config. Returns the image ID.

    ``container`` is the working container's name, this process's own (:func:`container_name`).
    """
    environ = env.environ()
    if _exists(container):  # this process's, left by an earlier patch that could not remove it
        _run(env.buildah("rm", container), log, "buildah rm", env=environ)
    _run(env.buildah("from", f"--pull={env.pull}", "--name", container, *env.tls_flag(image), image), log,
         "buildah from", env=environ)
    try:
        probe = run_tool(env.buildah("run", "--user", "0:0", container, "--", "sh", "-c", "command -v apt-get"),
                         error=BuildError, what="buildah run", env=environ)
        if probe.returncode != 0:
            raise BuildError(f"{image}: no apt-get in the image; patch in place supports Debian-based images")
        script = ("set -e; export DEBIAN_FRONTEND=noninteractive; apt-get update -q; "
                  "apt-get -y -q -o Dpkg::Options::=--force-confold upgrade; apt-get clean; "
                  f"rm -rf /var/lib/apt/lists/* {VOLATILE_FILES}")
        _run(env.buildah("run", "--user", "0:0", f"--network={env.network}", *env.volume_flags(), container,
                         "--", "sh", "-c", script), log, "apt-get upgrade in the image", env=environ)
        config = ["config"]
        for key, value in sorted(labels.items()):
            config.append(f"--label={key}={value}")
        _run(env.buildah(*config, container), log, "buildah config", env=environ)
        _run(env.buildah("commit", f"--timestamp={timestamp}", f"--iidfile={log.with_suffix('.iid')}", container,
                         tag), log, "buildah commit", env=environ)
    finally:
        run_tool(env.buildah("rm", container), error=BuildError, what="buildah rm", env=environ)
    return "sha256:" + log.with_suffix(".iid").read_text().strip().removeprefix("sha256:")


def _containers() -> list[dict[str, object]]:
    """``buildah containers --json``: buildah's working containers (empty when buildah cannot tell)."""
    try:
        proc = run_tool(["buildah", "containers", "--json"])
    except HostError:
        return []
    if proc.returncode != 0 or not proc.stdout.strip():
        return []
    try:
        listed = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return []
    return [c for c in listed or [] if isinstance(c, dict)]


def _exists(container: str) -> bool:
    return any(c.get("containername") == container for c in _containers())


def push(*, image_id: str, destination: str, env: BuildEnv, log: Path, digestfile: Path) -> str:
    """Push to ``destination`` (repository:tag); returns the manifest digest the registry stored."""
    argv = env.buildah("push", f"--digestfile={digestfile}", *env.tls_flag(destination),
                       image_id.removeprefix("sha256:"), f"docker://{destination}")
    _run(argv, log, f"push to {destination}", env=env.environ())
    return digestfile.read_text().strip()


# -- what a killed patchline leaves ------------------------------------------------------------------------------


def scratch_root() -> Path:
    """Where buildah keeps its temporary files: ``$TMPDIR``, else ``/var/tmp`` (buildah's own default)."""
    root = Path(os.environ.get("TMPDIR") or "/var/tmp")
    return root if root.is_dir() else Path(tempfile.gettempdir())


def owned_dir(kind: str, root: Path | None = None) -> Path:
    """A new directory ``patchline-KIND-PID-XXXXXXXX`` of this process in ``root`` (default: the temp directory)."""
    return Path(tempfile.mkdtemp(prefix=f"patchline-{kind}-{os.getpid()}-", dir=root))


def new_scratch() -> Path:
    """A rebuild's scratch directory (``BuildEnv.scratch``): buildah's TMPDIR, and the marker its containers carry.

    The marker is a default mounts file with the host's default mounts, so that RUN steps see what they would
    have seen without it.
    """
    scratch = owned_dir("build", scratch_root())
    host = [Path.home() / ".config" / "containers" / "mounts.conf"] if os.geteuid() != 0 else []
    default = next((p for p in (*host, *map(Path, _HOST_MOUNTS)) if p.is_file()), None)
    (scratch / MOUNTS_FILE).write_text(default.read_text() if default is not None else "")
    return scratch


@dataclass(frozen=True, slots=True)
class Leftovers:
    """What :func:`clean_leftovers` removed, and what it had to keep (with why)."""

    directories: tuple[Path, ...] = ()
    containers: tuple[str, ...] = ()  # buildah working containers, by name
    kept: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.directories or self.containers or self.kept)

    def summary(self) -> str:
        parts = []
        if self.containers:
            parts.append(f"{len(self.containers)} working container(s) ({', '.join(self.containers)})")
        if self.directories:
            many = "directories" if len(self.directories) > 1 else "directory"
            parts.append(f"{len(self.directories)} scratch {many} ({', '.join(map(str, self.directories))})")
        out = "removed " + " and ".join(parts) + " left by patchline processes that are gone" if parts else ""
        if self.kept:
            out += ("; " if out else "") + "kept " + "; ".join(self.kept)
        return out


def _gone(pid: int) -> bool:
    """Whether process ``pid`` of this host no longer runs (False when unsure, and for this process)."""
    return owner_dead(f"{socket.gethostname()}:{pid}")


def _marker_owner(container_id: str) -> int | None:
    """The pid that made this working container, from the default mounts file its builder state records."""
    proc = run_tool(["buildah", "inspect", "--type", "container", "--format", "{{.DefaultMountsFilePath}}",
                     container_id])
    found = _MARKER.search(proc.stdout.strip()) if proc.returncode == 0 else None
    return int(found.group(1)) if found else None


def _mount_points() -> list[str]:
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            # Field 5 is the mount point, with spaces and the like escaped as \\ooo.
            return [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4]) for line in fh]
    except OSError:
        return []


def clean_leftovers(*, roots: Iterable[Path] | None = None, containers: bool = True) -> Leftovers:
    """Remove what patchline processes of this host that are gone left: their working containers and scratch
    directories (``roots``: default the temp directory and buildah's). A live process's, or anyone else's,
    are never touched: a working container counts as patchline's only by its name (``patchline-build-PID-``)
    or its marker, a directory only by its name and owner (this user)."""
    removed_containers: list[str] = []
    removed_dirs: list[Path] = []
    kept: list[str] = []
    for container in _containers() if containers else []:
        cid, name = str(container.get("id", "")), str(container.get("containername", ""))
        if not cid or not container.get("builder", True):
            continue
        named = _OWNED.match(name)
        if named is not None and named.group(1) == "build":
            owner: int | None = int(named.group(2))
        elif _WORKING.search(name):
            owner = _marker_owner(cid)
        else:
            continue
        if owner is None or not _gone(owner):
            continue
        proc = run_tool(["buildah", "rm", cid])
        if proc.returncode == 0:
            removed_containers.append(name or cid[:12])
        elif _exists_id(cid):
            kept.append(f"container {name}: {failure_cause(proc.stdout + proc.stderr) or 'buildah rm failed'}")
    mounts = _mount_points()
    seen: set[Path] = set()
    for root in roots if roots is not None else (Path(tempfile.gettempdir()), scratch_root()):
        if root.resolve() in seen or not root.is_dir():
            continue
        seen.add(root.resolve())
        for entry in sorted(root.iterdir()):
            owned = _OWNED.match(entry.name)
            if owned is None or entry.is_symlink() or not entry.is_dir():
                continue
            try:
                if entry.stat().st_uid != os.geteuid() or not _gone(int(owned.group(2))):
                    continue
                real = os.path.realpath(entry)
                if any(m == real or m.startswith(real + os.sep) for m in mounts):
                    kept.append(f"{entry}: something is mounted in it")  # rmtree would empty what is mounted
                    continue
                shutil.rmtree(entry)
            except OSError as exc:
                kept.append(f"{entry}: {exc.strerror or exc}")
                continue
            removed_dirs.append(entry)
    return Leftovers(tuple(removed_dirs), tuple(removed_containers), tuple(kept))


def _exists_id(container_id: str) -> bool:
    return any(c.get("id") == container_id for c in _containers())

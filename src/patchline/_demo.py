"""The main job on embedded defaults, end to end on one machine: ``patchline demo`` and ``patchline demo down``.

:func:`demo_up` builds the example fleet (``examples/fleet``) from a debootstrap
``bookworm`` base that misses the security suite's updates, starts a loopback
registry, pushes and signs the fleet, starts its services on podman (phase 1:
"the fleet as it runs today"), then runs one patch run (phase 2: detect, assess,
plan, build, rollout, report) and returns a :class:`DemoReport` of what was found,
rebuilt, rolled out, and the fleet before and after. It is idempotent: phase 1 does
only what is missing, so a second demo goes straight to a run that finds nothing.

Everything lives in one work directory (``$XDG_DATA_HOME/patchline/demo`` by
default): the fleet's copy and its ``patchline.toml``, the store, keys, signatures,
build logs, the registry's storage, pid file and log, and the last report.
:func:`demo_down` stops what the demo started.

Typical use::

    report = demo_up(DemoOptions(workdir=default_workdir()), progress=my_progress)
    print(report.run.state, [r.name for r in report.rebuilt])
    demo_down(default_workdir(), purge=False)
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import httpx

from patchline._config import Config, load_config
from patchline._http import tls_context
from patchline.errors import BuildError, ConfigError, Error, HostError, RolloutError
from patchline.store import BuildRow, FixableRow, PendingRow, RunRow, Store

DEMO_IMAGE = "localhost/patchline-demo/debian:bookworm"
DEMO_SCHEMA = "patchline/demo/v1"
MARKER = ".patchline-demo"  # a work directory without it is never written to or purged
REPORT_FILE = "report.json"
_NAME_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_TOOLS = ("podman", "buildah", "skopeo", "docker-registry", "gpg")


def default_workdir() -> Path:
    """``$XDG_DATA_HOME/patchline/demo`` (``~/.local/share/patchline/demo``)."""
    data = os.environ.get("XDG_DATA_HOME")
    root = Path(data) if data and Path(data).is_absolute() else Path.home() / ".local" / "share"
    return root / "patchline" / "demo"


def example_fleet() -> Path:
    """``examples/fleet`` of the repository patchline is installed from (an editable install)."""
    import patchline

    return Path(patchline.__file__).resolve().parents[2] / "examples" / "fleet"


class DemoProgress(Protocol):
    """What the demo reports while it works: a phase starts; a line of detail."""

    def phase(self, title: str) -> None: ...

    def say(self, line: str) -> None: ...


class _Quiet:
    def phase(self, title: str) -> None:
        pass

    def say(self, line: str) -> None:
        pass


@dataclass(frozen=True, slots=True)
class DemoOptions:
    workdir: Path
    registry_port: int = 5000
    port_base: int = 18080  # web on port_base..+2, web-admin on port_base+10 (the example's offsets)
    name_prefix: str = ""  # prefixed to the service names (containers are patchline-PREFIXNAME-N)
    rebuild_base: bool = False  # debootstrap the base image again even if podman storage has it
    base_image: str = DEMO_IMAGE
    fleet: Path | None = None  # the fleet to copy; default: the repository's examples/fleet
    bake_seconds: float = 5.0  # the canary's bake, shortened for the demo
    triggered_by: str = ""


@dataclass(frozen=True, slots=True)
class PhaseTiming:
    name: str
    seconds: float
    what: str  # what happened, or why it was skipped


@dataclass(frozen=True, slots=True)
class ImageState:
    """One image of the fleet at one moment: its current build and what it misses."""

    name: str
    repository: str
    config_digest: str | None
    manifest_digest: str | None
    packages: int
    pending: tuple[PendingRow, ...]
    fixable: tuple[FixableRow, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "repository": self.repository, "config_digest": self.config_digest,
                "manifest_digest": self.manifest_digest, "packages": self.packages,
                "pending": [{"package": p.name, "installed": p.installed, "candidate": p.candidate,
                             "suite": p.suite, "cves": list(p.cves)} for p in self.pending],
                "fixable": [{"advisory": f.advisory_id, "package": f.package, "version": f.version,
                             "fixed": list(f.fixed), "severity": f.severity} for f in self.fixable]}


@dataclass(frozen=True, slots=True)
class ServiceState:
    name: str
    repository: str
    image: str | None  # repository@digest most replicas run
    replicas_wanted: int
    running: int
    healthy: int

    @property
    def digest(self) -> str | None:
        return self.image.rpartition("@")[2] if self.image and "@" in self.image else None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "repository": self.repository, "image": self.image, "digest": self.digest,
                "replicas_wanted": self.replicas_wanted, "running": self.running, "healthy": self.healthy}


@dataclass(frozen=True, slots=True)
class FleetState:
    images: tuple[ImageState, ...]
    services: tuple[ServiceState, ...]

    def image(self, name: str) -> ImageState | None:
        return next((i for i in self.images if i.name == name), None)

    def service(self, name: str) -> ServiceState | None:
        return next((s for s in self.services if s.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {"images": [i.as_dict() for i in self.images], "services": [s.as_dict() for s in self.services]}


@dataclass(frozen=True, slots=True)
class RebuiltImage:
    """One build of the patch run, in the order the builds started."""

    name: str
    status: str
    wave: int | None
    reasons: tuple[Mapping[str, Any], ...]  # Reason.as_dict(): code, detail, items
    from_digest: str | None  # manifest digest of the image it replaces
    to_digest: str | None
    fixed: tuple[str, ...]  # pending updates (package names) and advisory IDs the new image no longer has
    pending_after: int | None
    tests_passed: int
    tests_failed: int
    error: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "wave": self.wave, "reasons": [dict(r) for r in self.reasons],
                "from_digest": self.from_digest, "to_digest": self.to_digest, "fixed": list(self.fixed),
                "pending_after": self.pending_after, "tests_passed": self.tests_passed,
                "tests_failed": self.tests_failed, "error": self.error, "seconds": round(self.seconds, 2)}


@dataclass(frozen=True, slots=True)
class RolledOut:
    """What the patch run did to one service."""

    service: str
    state: str  # succeeded, rolled-back, failed, current (nothing to do), refused, skipped, ...
    strategy: str | None
    from_image: str | None
    to_image: str | None
    reason: str
    seconds: float | None

    @property
    def ok(self) -> bool:
        return self.state in ("succeeded", "current")

    def as_dict(self) -> dict[str, Any]:
        return {"service": self.service, "state": self.state, "strategy": self.strategy,
                "from_image": self.from_image, "to_image": self.to_image, "reason": self.reason,
                "seconds": None if self.seconds is None else round(self.seconds, 2)}


@dataclass(frozen=True, slots=True)
class DemoReport:
    workdir: Path
    config_path: Path
    registry: str  # host:port
    registry_started: bool  # False: one already answered there and was used
    base_image: str
    before: FleetState  # as phase 1 left it (pending updates as the run's detect step saw them)
    after: FleetState
    run: RunRow
    rebuilt: tuple[RebuiltImage, ...]
    rolled_out: tuple[RolledOut, ...]
    phases: tuple[PhaseTiming, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        good_builds = ("built", "unchanged", "skipped")
        return (self.run.state == "succeeded" and all(r.status in good_builds for r in self.rebuilt)
                and all(r.ok for r in self.rolled_out))

    def as_dict(self) -> dict[str, Any]:
        run = self.run
        return {
            "ok": self.ok, "workdir": str(self.workdir), "config": str(self.config_path), "registry": self.registry,
            "registry_started": self.registry_started, "base_image": self.base_image,
            "rebuilt": [r.as_dict() for r in self.rebuilt],
            "rolled_out": [r.as_dict() for r in self.rolled_out], "before": self.before.as_dict(),
            "after": self.after.as_dict(),
            "run": {"id": run.id, "trigger": run.trigger, "triggered_by": run.triggered_by, "state": run.state,
                    "error": run.error, "started_at": run.started_at.isoformat(),
                    "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                    "steps": [{"step": s.step, "state": s.state, "attempts": s.attempts,
                               "output": dict(s.output)} for s in run.steps]},
            "phases": [{"name": p.name, "seconds": round(p.seconds, 2), "what": p.what} for p in self.phases],
            "seconds": round(self.seconds, 2),
        }

    def document(self) -> str:
        """The report as ``patchline/demo/v1`` JSON."""
        return json.dumps({"schema": DEMO_SCHEMA, **self.as_dict()}, indent=2, default=str)


@dataclass(frozen=True, slots=True)
class DemoDown:
    workdir: Path
    found: bool  # whether the work directory held a demo
    containers_removed: tuple[str, ...] = ()
    registry_stopped: int | None = None  # the pid stopped
    scopes_removed: tuple[str, ...] = ()
    images_removed: tuple[str, ...] = ()  # with purge: the demo registry's names in podman storage
    purged: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"workdir": str(self.workdir), "found": self.found, "containers_removed": list(self.containers_removed),
                "registry_stopped": self.registry_stopped, "scopes_removed": list(self.scopes_removed),
                "images_removed": list(self.images_removed), "purged": self.purged}


# -- the work directory ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Paths:
    workdir: Path

    @property
    def fleet(self) -> Path:
        return self.workdir / "fleet"

    @property
    def config(self) -> Path:
        return self.fleet / "patchline.toml"

    @property
    def registry(self) -> Path:
        return self.workdir / "registry"

    @property
    def pid_file(self) -> Path:
        return self.registry / "registry.pid"


def _claim_workdir(workdir: Path) -> _Paths:
    """Create the work directory, or check that an existing one is a demo's."""
    workdir = workdir.expanduser().absolute()
    if workdir.exists() and not (workdir / MARKER).exists() and any(workdir.iterdir()):
        raise ConfigError(f"{workdir} is not empty and holds no patchline demo ({MARKER}); choose another --workdir")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / MARKER).write_text("patchline demo: `patchline demo down --purge` deletes this directory\n")
    except OSError as exc:
        raise ConfigError(f"cannot create the demo's directory {workdir}: {exc.strerror}") from exc
    return _Paths(workdir)


def _copy_fleet(source: Path, dest: Path) -> None:
    """The recipes of ``source`` (each a directory), copied fresh so the demo follows the examples."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        if entry.is_dir():
            shutil.rmtree(dest / entry.name, ignore_errors=True)
            shutil.copytree(entry, dest / entry.name)


def demo_config_document(example: Mapping[str, Any], options: DemoOptions, *, workdir: Path) -> dict[str, Any]:
    """The example's ``patchline.toml`` rewritten for the demo: its registry, ports, names, and files (under the
    absolute ``workdir``)."""
    doc: dict[str, Any] = copy.deepcopy(dict(example))
    host = f"127.0.0.1:{options.registry_port}"
    work = workdir
    doc["registries"] = {**doc.get("registries", {}), "insecure": [host]}
    build = doc.setdefault("build", {})
    build["registry"] = host
    build["logs"] = str(work / "builds")
    if options.base_image != DEMO_IMAGE:
        build["args"] = {**build.get("args", {}), "DEBIAN_BASE": options.base_image}
    doc["store"] = {"url": f"sqlite:///{work / 'patchline.db'}"}
    doc["sign"] = {**doc.get("sign", {}), "keyring": str(work / "keys"), "lookaside": str(work / "sigstore"),
                   "policy": str(work / "policy.json")}
    # No broker or webhook for the demo: events stay in the store's outbox (`patchline events list`).
    doc.pop("events", None)
    services = doc.get("services", [])
    ports = [s["host_port"] for s in services if "host_port" in s]
    lowest = min(ports, default=0)
    for service in services:
        service["name"] = options.name_prefix + service["name"]
        if "host_port" in service:
            service["host_port"] = options.port_base + service["host_port"] - lowest
        if service.get("strategy") == "canary":
            service["bake_seconds"] = min(float(service.get("bake_seconds", 30.0)), options.bake_seconds)
    return doc


def _check_unchanged(options: DemoOptions, paths: _Paths) -> None:
    """A demo set up with another registry, prefix or ports is refused: its store, images and containers name
    the old ones."""
    if not paths.config.is_file():
        return
    try:
        old = load_config(paths.config)
    except ConfigError:
        return  # not ours to judge any more: rewritten below
    host = f"127.0.0.1:{options.registry_port}"
    if old.build.registry != host:
        raise ConfigError(f"the demo in {paths.workdir} uses the registry {old.build.registry}: give --registry-port "
                          f"{old.build.registry.rpartition(':')[2]}, or start over with `patchline demo down --purge`")
    wanted = demo_config_document(_example_document(options), options, workdir=paths.workdir).get("services", [])
    now = {(s["name"], s.get("host_port")) for s in wanted}
    moved = [s.name for s in old.services if (s.name, s.host_port) not in now and _service_containers(s.name)]
    if moved:
        raise ConfigError(f"the demo's services {', '.join(moved)} run with another --name-prefix or --port-base: "
                          "give the same ones, or stop them first with `patchline demo down`")


def _example_document(options: DemoOptions) -> dict[str, Any]:
    source = _fleet_source(options)
    try:
        return tomllib.loads((source / "patchline.toml").read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"the example fleet is not at {source}: run the demo from a clone of the repository "
                          "(pip install -e .), or name a fleet directory with --fleet") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{source / 'patchline.toml'}: {exc}") from exc


def _fleet_source(options: DemoOptions) -> Path:
    return (options.fleet or example_fleet()).expanduser().absolute()


def _write_config(options: DemoOptions, paths: _Paths) -> Config:
    source = _fleet_source(options)
    example = _example_document(options)
    _copy_fleet(source, paths.fleet)
    doc = demo_config_document(example, options, workdir=paths.workdir)
    header = (f"# Written by `patchline demo` from {source / 'patchline.toml'}: the same fleet, with the demo's\n"
              f"# registry, ports, service names, store, keys and logs under {paths.workdir}.\n"
              "# It is rewritten on every `patchline demo`; use it with `patchline --config THIS_FILE ...`.\n")
    paths.config.write_text(header + to_toml(doc), encoding="utf-8")
    return load_config(paths.config)


def _check_options(options: DemoOptions) -> None:
    if not 1 <= options.registry_port <= 65535:
        raise ConfigError(f"--registry-port {options.registry_port} is not a TCP port")
    if not 1024 <= options.port_base <= 65535 - 16:
        raise ConfigError(f"--port-base {options.port_base}: the services need 1024 <= PORT <= {65535 - 16}")
    if options.name_prefix and not _NAME_PREFIX.match(options.name_prefix):
        raise ConfigError(f"--name-prefix {options.name_prefix!r}: lower-case letters, digits, '.', '_' and '-', "
                          "starting with a letter or digit")
    missing = [t for t in _TOOLS if shutil.which(t) is None]
    if missing:
        raise HostError(f"{', '.join(missing)} not installed: run scripts/setup-host.sh")


# -- TOML out (tomllib only reads) ---------------------------------------------------------------------


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are valid in TOML basic strings
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {value!r} as TOML")


def to_toml(doc: Mapping[str, Any]) -> str:
    """A TOML document: top-level tables and arrays of tables as sections, anything deeper inline."""

    def is_table_array(value: Any) -> bool:
        return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)

    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in doc.items()
             if not isinstance(v, Mapping) and not is_table_array(v)]
    for key, value in doc.items():
        if isinstance(value, Mapping):
            lines += ["", f"[{_toml_key(key)}]", *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())]
        elif is_table_array(value):
            for item in value:
                lines += ["", f"[[{_toml_key(key)}]]",
                          *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in item.items())]
    return "\n".join(lines).lstrip("\n") + "\n"


# -- the registry ------------------------------------------------------------------------------------


def _registry_answers(host: str) -> bool | None:
    """True: a registry answers ``/v2/``; False: something else listens there; None: nothing listens."""
    try:
        with httpx.Client(trust_env=False, timeout=2, verify=tls_context()) as client:
            return client.get(f"http://{host}/v2/").status_code == 200
    except httpx.ConnectError:
        return None
    except httpx.HTTPError:
        return False


def _registry_pid(paths: _Paths) -> int | None:
    """The pid of the registry this demo started, if it still runs (a recycled pid is not ours)."""
    try:
        pid = int(paths.pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    config = str(paths.registry / "config.yml").encode()
    return pid if any(b"docker-registry" in part for part in cmdline) and config in cmdline else None


def _start_registry(paths: _Paths, port: int, say: Callable[[str], None]) -> bool:
    """Make a registry answer on ``127.0.0.1:port``: the one already there, else ``docker-registry`` started
    detached (its own session: it outlives this process until ``patchline demo down``). Returns whether it
    was started now."""
    host = f"127.0.0.1:{port}"
    answers = _registry_answers(host)
    if answers:
        ours = _registry_pid(paths)
        say(f"registry: {host} answers already" + (f" (pid {ours}, started by an earlier demo)" if ours else ""))
        return False
    if answers is False:
        raise HostError(f"{host} is in use by something that is not a registry; choose another --registry-port")
    stale = _registry_pid(paths)
    if stale is not None:  # ours, but not answering there (hung, or from a config rewritten since)
        say(f"registry: stopping pid {stale}, which does not answer on {host}")
        _stop_pid(stale)
    storage = paths.registry / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = paths.registry / "config.yml"
    config.write_text("\n".join([
        "version: 0.1", "log:", "  level: info", "  accesslog:", "    disabled: true",
        "storage:", "  filesystem:", f"    rootdirectory: {storage}", "  delete:", "    enabled: true",
        "http:", f"  addr: {host}", f"  secret: {uuid.uuid4().hex}", ""]), encoding="utf-8")
    log = paths.registry / "registry.log"
    try:
        with log.open("ab") as out:
            process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as exc:
        raise HostError(f"cannot start docker-registry: {exc.strerror}") from exc
    paths.pid_file.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise HostError(f"docker-registry exited with {process.returncode} (log: {log})", detail=tail)
        if _registry_answers(host):
            say(f"registry: started docker-registry on {host} (pid {process.pid}, storage {storage})")
            return True
        time.sleep(0.1)
    _stop_pid(process.pid)
    raise HostError(f"docker-registry did not answer on {host} within 20 s (log: {log})")


def _stop_pid(pid: int) -> None:
    """SIGTERM, then SIGKILL after 10 s; the registry runs in its own session, so its group is its own."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        # Our own child (started by this process): reap it, or it lingers as a zombie.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# -- phase 1: the fleet as it runs today --------------------------------------------------------------


@contextlib.contextmanager
def _timed(phases: list[PhaseTiming], name: str, progress: DemoProgress) -> Iterator[list[str]]:
    """Time a phase; the block appends what it did to the yielded list."""
    progress.phase(name)
    what: list[str] = []
    t0 = time.monotonic()
    yield what
    phases.append(PhaseTiming(name, time.monotonic() - t0, "; ".join(what)))


def _base_image(options: DemoOptions, say: Callable[[str], None]) -> str:
    from patchline._baseimage import build_debian_base, image_exists

    if not options.rebuild_base and image_exists(options.base_image):
        say(f"using {options.base_image} from podman storage (--rebuild-base builds it again)")
        return f"reused {options.base_image}"
    if shutil.which("debootstrap") is None:
        raise HostError("debootstrap not installed: run scripts/setup-host.sh")
    build_debian_base(options.base_image, suite="bookworm", progress=say)
    return f"built {options.base_image} with debootstrap"


def _build_missing(config: Config, store: Store, say: Callable[[str], None]) -> str:
    """Build, push and sign the recipes with no build yet, from bookworm main only (no update suites mounted):
    the images miss the security suite's updates, as images built some time ago do."""
    from patchline.build import BuildStatus, load_recipes, plan_fleet, rebuild, rebuild_options

    built = store.current_builds()
    missing = [r.name for r in load_recipes(config) if r.name not in built or not built[r.name].manifest_digest]
    if not missing:
        return "every image has a build already: skipped"
    # Only "never built" here: pending updates are phase 2's work, so phase 1 plans as if none were.
    today = config.model_copy(update={"build": config.build.model_copy(update={"pending": "none"})})
    fleet = plan_fleet(today, store, only=missing)
    if fleet.plan.skipped:
        name, why = fleet.plan.skipped[0]
        raise BuildError(f"{name} cannot be planned: {why}")
    options = replace(rebuild_options(today, say=say), update_sources=False)
    report = rebuild(fleet.plan, fleet.graph, store, options, hashes=fleet.hashes, progress=say)
    bad = [r for r in report.results if r.status not in (BuildStatus.BUILT, BuildStatus.UNCHANGED)]
    if bad:
        first = bad[0]
        raise BuildError(f"building {first.name} failed ({first.status}): {first.error}"
                         + (f" (log: {first.log})" if first.log else ""))
    return (f"built, tested, pushed and signed {len(report.results)} image(s) in {report.seconds:.0f} s: "
            + ", ".join(r.name for r in report.results))


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _start_services(config: Config, store: Store, say: Callable[[str], None]) -> str:
    """Every service that does not run all its replicas gets its current build, all at once."""
    from patchline.rollout import PodmanTarget, rollout_service

    started = []
    with PodmanTarget(policy=None) as probe:
        for service in config.services:
            running = {r.index for r in probe.replicas(service.name) if r.running and r.index < service.replicas}
            if len(running) == service.replicas:
                continue
            if service.host_port is not None:
                busy = [service.host_port + i for i in range(service.replicas)
                        if i not in running and not _free(service.host_port + i)]
                if busy:
                    raise ConfigError(f"{service.name}: 127.0.0.1:{busy[0]} is in use; choose another --port-base")
            result = rollout_service(config, store, service.name, strategy="all-at-once", progress=say)
            if not result.ok:
                raise RolloutError(f"{service.name} could not start: {result.state}: {result.reason}")
            started.append(f"{service.name} ({service.replicas} replica(s))")
    return "started " + ", ".join(started) if started else "every service runs already: skipped"


# -- phase 2 and the report ---------------------------------------------------------------------------


def _service_states(config: Config, store: Store) -> tuple[ServiceState, ...]:
    from patchline.rollout import PodmanTarget, service_status
    from patchline.rollout._engine import _majority_image

    with PodmanTarget(policy=None) as target:  # looks and probes, never pulls
        statuses = service_status(config, store, target)
    return tuple(ServiceState(s.name, s.repository, _majority_image([r.replica for r in s.replicas]),
                              s.replicas_wanted, sum(1 for r in s.replicas if r.replica.running), s.healthy)
                 for s in statuses)


def _fleet_state(config: Config, store: Store, builds: Mapping[str, BuildRow],
                 services: tuple[ServiceState, ...]) -> FleetState:
    """The images of ``builds`` with what the store knows about them now."""
    from patchline.build import load_recipes
    from patchline.fleet._discover import split_reference

    digests = [b.config_digest for b in builds.values() if b.config_digest]
    pending = store.pending_for(digests)
    fixable = store.fixable_for(digests)
    images = []
    for recipe in load_recipes(config):
        build = builds.get(recipe.name)
        digest = build.config_digest if build else None
        inventory = store.inventory(digest) if digest else None
        images.append(ImageState(recipe.name, split_reference(recipe.target)[0], digest,
                                 build.manifest_digest if build else None,
                                 len(inventory.packages) if inventory else 0,
                                 tuple(pending.get(digest, ())) if digest else (),
                                 tuple(fixable.get(digest, ())) if digest else ()))
    return FleetState(tuple(images), services)


def _outputs(run: RunRow) -> dict[str, Mapping[str, Any]]:
    return {s.step: s.output for s in run.steps}


def _rebuilt(run: RunRow, store: Store, before: Mapping[str, BuildRow]) -> tuple[RebuiltImage, ...]:
    out = _outputs(run)
    build_run = out.get("build", {}).get("run_id")
    if not build_run:
        return ()
    waves = {i["name"]: i.get("wave") for i in out.get("plan", {}).get("items", [])}
    rows = sorted(store.builds(run_id=str(build_run), limit=1000), key=lambda b: (b.started_at, b.id))
    result = []
    for b in rows:
        verification = b.verification
        tests = verification.get("tests", [])
        old = before.get(b.recipe)
        result.append(RebuiltImage(
            name=b.recipe, status=b.status, wave=waves.get(b.recipe), reasons=b.reasons,
            from_digest=old.manifest_digest if old else None, to_digest=b.manifest_digest,
            fixed=tuple(verification.get("fixed", ())), pending_after=verification.get("pending_after"),
            tests_passed=sum(1 for t in tests if t.get("passed")),
            tests_failed=sum(1 for t in tests if not t.get("passed")), error=b.error,
            seconds=(b.finished_at - b.started_at).total_seconds()))
    return tuple(result)


def _rolled_out(run: RunRow, store: Store, before: tuple[ServiceState, ...]) -> tuple[RolledOut, ...]:
    services = _outputs(run).get("rollout", {}).get("services", {})
    result = []
    for name, state in services.items():
        was = next((s.image for s in before if s.name == name), None)
        rollout_id = state.get("rollout_id")
        row = store.rollout(int(rollout_id)) if rollout_id else None
        result.append(RolledOut(
            service=name, state=str(state.get("state", "")), strategy=row.strategy if row else None,
            from_image=row.from_image if row else was, to_image=row.to_image if row else state.get("image"),
            reason=str(state.get("why") or (row.reason if row else "") or ""),
            seconds=row.timings.get("total") if row else None))
    return tuple(result)


def demo_up(options: DemoOptions, *, progress: DemoProgress | None = None) -> DemoReport:
    """Set up the demo fleet (phase 1, only what is missing) and run one patch run (phase 2); see the module."""
    from patchline.pipeline import RunOptions, run_once
    from patchline.store import open_store

    say_to = progress or _Quiet()
    say = say_to.say
    t0 = time.monotonic()
    phases: list[PhaseTiming] = []
    _check_options(options)
    with _timed(phases, "set up the work directory and the registry", say_to) as what:
        paths = _claim_workdir(options.workdir)
        _check_unchanged(options, paths)
        config = _write_config(options, paths)
        say(f"fleet: {paths.fleet} (config {paths.config})")
        started = _start_registry(paths, options.registry_port, say)
        what.append(("started" if started else "reused") + f" the registry on 127.0.0.1:{options.registry_port}")
    with _timed(phases, "phase 1: the base image (debootstrap bookworm, main only)", say_to) as what:
        what.append(_base_image(options, say))
    assert config.store.url is not None
    with open_store(config.store.url) as store:
        with _timed(phases, "phase 1: build the fleet as it runs today (no security updates)", say_to) as what:
            what.append(_build_missing(config, store, say))
        with _timed(phases, "phase 1: start the services", say_to) as what:
            what.append(_start_services(config, store, say))
        builds_before = store.current_builds()
        services_before = _service_states(config, store)
        with _timed(phases, "phase 2: patchline run --once", say_to) as what:
            run = run_once(config, store, options=RunOptions("demo", options.triggered_by or "patchline demo",
                                                             config.pipeline.lease_seconds), progress=say)
            what.append(f"run {run.id} {run.state}" + (f": {run.error}" if run.error else ""))
        with _timed(phases, "report", say_to):
            before = _fleet_state(config, store, builds_before, services_before)
            after = _fleet_state(config, store, store.current_builds(), _service_states(config, store))
            rebuilt = _rebuilt(run, store, builds_before)
            rolled = _rolled_out(run, store, services_before)
    report = DemoReport(workdir=paths.workdir, config_path=paths.config, registry=f"127.0.0.1:{options.registry_port}",
                        registry_started=started, base_image=options.base_image, before=before, after=after,
                        run=run, rebuilt=rebuilt, rolled_out=rolled, phases=tuple(phases),
                        seconds=time.monotonic() - t0)
    with contextlib.suppress(OSError):
        (paths.workdir / REPORT_FILE).write_text(report.document() + "\n", encoding="utf-8")
    return report


# -- down --------------------------------------------------------------------------------------------


def _service_containers(service: str) -> list[str]:
    from patchline.rollout import LABEL_SERVICE

    proc = subprocess.run(["podman", "ps", "-a", "--filter", f"label={LABEL_SERVICE}={service}", "--format",
                           "{{.Names}}"], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise HostError(f"podman ps failed: {proc.stderr.strip()[-300:]}")
    return proc.stdout.split()


def _forget_images(host: str) -> tuple[str, ...]:
    """Remove from podman storage every name of registry ``host`` (by name: an ID may be shared with another
    registry's copy of the same image, which stays)."""
    listing = subprocess.run(["podman", "images", "--format", "json"], capture_output=True, text=True, check=False,
                             stdin=subprocess.DEVNULL)
    try:
        images = json.loads(listing.stdout or "[]") if listing.returncode == 0 else []
    except json.JSONDecodeError:
        return ()
    names = sorted({n for i in images for n in i.get("Names") or () if n.startswith(host + "/")})
    if names:
        subprocess.run(["podman", "rmi", "--force", *names], capture_output=True, check=False,
                       stdin=subprocess.DEVNULL)
    return tuple(names)


def _scopes(config: Config) -> list[str]:
    from patchline.build import load_recipes
    from patchline.fleet._discover import split_reference
    from patchline.rollout import service_spec

    scopes = {split_reference(r.target)[0] for r in load_recipes(config)}
    scopes |= {service_spec(config, s).repository for s in config.services}
    return sorted(scopes)


def demo_down(workdir: Path, *, purge: bool = False, progress: Callable[[str], None] | None = None) -> DemoDown:
    """Stop what :func:`demo_up` started in ``workdir``: the services' containers, the registry (only the one
    the demo started), patchline's registries.d entries for the demo's repositories and the gpg agent of its
    keys. ``purge`` also deletes the work directory and the registry's image names from podman storage (the
    debootstrap base image stays: it takes a minute to build and the example fleet uses it)."""
    from patchline.sign import load_keys, remove_registries_d_scope, stop_agent

    say = progress or (lambda _line: None)
    paths = _Paths(workdir.expanduser().absolute())
    if not (paths.workdir / MARKER).exists():
        say(f"no demo in {paths.workdir}: nothing to stop")
        return DemoDown(paths.workdir, found=False)
    config = None
    try:
        config = load_config(paths.config) if paths.config.is_file() else None
    except ConfigError as exc:
        say(f"{exc}: its services' containers and registries.d entries are left alone")
    removed: list[str] = []
    scopes: list[str] = []
    if config is not None:
        for service in config.services:
            names = _service_containers(service.name)
            if names:
                proc = subprocess.run(["podman", "rm", "--force", "--time", "0", *names], capture_output=True,
                                      text=True, check=False, stdin=subprocess.DEVNULL)
                if proc.returncode != 0:
                    raise HostError(f"podman rm {' '.join(names)} failed: {proc.stderr.strip()[-300:]}")
                say(f"removed {service.name}: {', '.join(names)}")
                removed += names
        try:
            scopes = [s for s in _scopes(config) if remove_registries_d_scope(config.sign, s)]
        except Error as exc:
            say(f"registries.d: {exc}")
        if scopes:
            say(f"registries.d: forgot the signature stores of {', '.join(scopes)}")
        with contextlib.suppress(Error):
            stop_agent(load_keys(config.sign))
    pid = _registry_pid(paths)
    if pid is not None:
        _stop_pid(pid)
        say(f"stopped the registry (pid {pid})")
    with contextlib.suppress(FileNotFoundError):
        paths.pid_file.unlink()
    images: tuple[str, ...] = ()
    if purge:
        if config is not None:
            images = _forget_images(config.build.registry)
            if images:
                say(f"removed {len(images)} image name(s) of {config.build.registry} from podman storage")
        shutil.rmtree(paths.workdir, ignore_errors=True)
        say(f"deleted {paths.workdir}")
    return DemoDown(paths.workdir, found=True, containers_removed=tuple(removed), registry_stopped=pid,
                    scopes_removed=tuple(scopes), images_removed=images, purged=purge)


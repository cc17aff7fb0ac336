"""The demo's loopback registry: ``docker-registry`` started detached, found again, stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from patchline._http import tls_context
from patchline.demo._workdir import WorkPaths
from patchline.errors import HostError


def registry_answers(host: str) -> bool | None:
    """True: a registry answers ``/v2/``; False: something else listens there; None: nothing listens."""
    try:
        with httpx.Client(trust_env=False, timeout=2, verify=tls_context()) as client:
            return client.get(f"http://{host}/v2/").status_code == 200
    except httpx.ConnectError:
        return None
    except httpx.HTTPError:
        return False


def registry_pid(paths: WorkPaths) -> int | None:
    """The pid of the registry this demo started, if it still runs (a recycled pid is not ours)."""
    try:
        pid = int(paths.pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    config = str(paths.registry / "config.yml").encode()
    return pid if any(b"docker-registry" in part for part in cmdline) and config in cmdline else None


def start_registry(paths: WorkPaths, port: int, say: Callable[[str], None]) -> bool:
    """Make a registry answer on ``127.0.0.1:port``: the one already there, else ``docker-registry`` started
    detached (its own session: it outlives this process until ``patchline demo down``). Returns whether it
    was started now."""
    host = f"127.0.0.1:{port}"
    answers = registry_answers(host)
    if answers:
        ours = registry_pid(paths)
        say(f"registry: {host} answers already" + (f" (pid {ours}, started by an earlier demo)" if ours else ""))
        return False
    if answers is False:
        raise HostError(f"{host} is in use by something that is not a registry; choose another --registry-port")
    stale = registry_pid(paths)
    if stale is not None:  # ours, but not answering there (hung, or from a config rewritten since)
        say(f"registry: stopping pid {stale}, which does not answer on {host}")
        stop_pid(stale)
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
        if registry_answers(host):
            say(f"registry: started docker-registry on {host} (pid {process.pid}, storage {storage})")
            return True
        time.sleep(0.1)
    stop_pid(process.pid)
    raise HostError(f"docker-registry did not answer on {host} within 20 s (log: {log})")


def stop_pid(pid: int) -> None:
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

"""Run an image's integration tests in podman containers of it, one after the other.

A command test runs ``/bin/sh -c COMMAND`` in a new container (the image's
entrypoint is replaced so the command runs even when the image has one; its
user is kept) with no network. An HTTP test starts a container of the image with
its own entrypoint and command, publishes the test's port on a free loopback port
and polls ``GET PATH`` until the container answers: the first answer decides.

Every test container runs with least privilege, as service replicas do: every
capability dropped but the test's ``capabilities``, no new privileges, a process
limit (and ``memory`` when set). The test's environment goes through a 0600 env
file, never onto a command line, and its values are blanked out of the test's log
and outcome (a test printing its token must not leave it in the build's records).

Every container is named ``patchline-test-RUN-N`` and labelled
``io.patchline.test=RUN``, and is removed when its test ends, however it ends
(a timeout, a failure, Ctrl-C).
"""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

import httpx

from patchline._config import ImageTest
from patchline._host import run_tool, stderr_tail
from patchline._http import tls_context
from patchline._least_privilege import env_file, least_privilege_flags
from patchline._redact import redact
from patchline.errors import HostError, VerifyError
from patchline.verify.interface import TestOutcome, TestReport

__all__ = ["LABEL_TEST", "command_argv", "container_flags", "http_argv", "judge_answer", "run_image_tests"]

LABEL_TEST = "io.patchline.test"  # the run id of the verification that started the container

_PODMAN_TIMEOUT = 60.0  # seconds for podman's own bookkeeping calls (image exists, logs, rm)
_CLIENT_GRACE = 10.0  # seconds `podman run` may take to exit once its container was removed
_POLL_INTERVAL = 0.1  # seconds between two GETs while the container starts
_REQUEST_TIMEOUT = 2.0  # seconds one GET may take (capped by what is left of the test's timeout)
_PORT_ATTEMPTS = 3  # a free port can be taken between choosing it and podman binding it
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]+")


def run_image_tests(
    image: str,
    tests: Sequence[ImageTest],
    *,
    log_dir: Path,
    run_id: str,
    podman_args: Sequence[str] = (),
) -> TestReport:
    """Run ``tests`` against ``image`` (an ID or a reference in local podman storage).

    Each test's output goes to ``log_dir/RUN_ID/N-SLUG.log``. A failing test is
    an outcome and the others still run; :class:`VerifyError` means the tests
    cannot run at all (podman missing, the image not in local storage, the log
    directory not writable). ``podman_args`` are extra ``podman run`` flags for
    every test container; they come after patchline's least-privilege defaults
    (:func:`container_flags`), so they can change them, but not a command test's
    ``--network=none``.
    """
    if not tests:
        return TestReport(image=image, outcomes=())
    _require_image(image)
    run_dir = log_dir / _safe(run_id)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VerifyError(f"cannot create the test log directory {run_dir}: {exc.strerror}") from exc
    outcomes = []
    for number, test in enumerate(tests, start=1):
        container = f"patchline-test-{_safe(run_id)}-{number}"
        log = run_dir / f"{number:02d}-{_slug(test.label)}.log"
        identity = ["--name", container, "--label", f"{LABEL_TEST}={run_id}"]
        started = time.monotonic()
        try:
            with log.open("w") as out:
                detail, passed = _run_test(image, test, container, identity, podman_args, out)
                detail = redact(detail, test.env.values())
                out.write(f"# {'passed' if passed else 'failed'}: {detail}\n")
            _redact_file(log, test.env.values())
        except OSError as exc:
            raise VerifyError(f"cannot write the test log {log}: {exc.strerror}") from exc
        outcomes.append(TestOutcome(name=test.label, passed=passed, detail=detail,
                                    seconds=time.monotonic() - started, log=log))
    return TestReport(image=image, outcomes=tuple(outcomes))


def container_flags(test: ImageTest, *, env_path: Path | None) -> list[str]:
    """``podman run`` flags every container of ``test`` gets: least privilege, and its env file."""
    flags = least_privilege_flags(capabilities=test.capabilities, pids_limit=test.pids_limit, memory=test.memory)
    if env_path is not None:
        flags += ["--env-file", str(env_path)]
    return flags


def _run_test(image: str, test: ImageTest, container: str, identity: Sequence[str], podman_args: Sequence[str],
              out: IO[str]) -> tuple[str, bool]:
    with contextlib.ExitStack() as stack:
        try:
            env_path = stack.enter_context(env_file(test.env))
        except HostError as exc:  # a name or value an env file cannot hold
            return str(exc), False
        except OSError as exc:
            raise VerifyError(f"cannot write the test's env file: {exc.strerror}") from exc
        # The caller's flags come after patchline's defaults (podman takes the last value), the name and label
        # after them: they cannot change what identifies the container.
        common = [*container_flags(test, env_path=env_path), *podman_args, *identity]
        if test.command is not None:
            return _command_test(image, test, test.command, container, common, out)
        return _http_test(image, test, container, common, out)
    raise AssertionError("unreachable")  # ExitStack does not swallow exceptions


def command_argv(image: str, command: str, common: Sequence[str]) -> list[str]:
    """``podman run`` for a command test, with no network; ``common`` holds the test's and the caller's flags,
    the name and the label."""
    # --replace: a leftover of a killed earlier run with the same run id must not fail the test. The network and
    # the entrypoint come after the caller's flags so that theirs cannot override them.
    return ["podman", "run", "--rm", "--replace", *common, "--network=none", "--entrypoint", "/bin/sh", image,
            "-c", command]


def http_argv(image: str, *, host_port: int, container_port: int, common: Sequence[str]) -> list[str]:
    """``podman run -d`` for an HTTP test: the image's own entrypoint and command, one published port."""
    return ["podman", "run", "-d", "--replace", "-p", f"127.0.0.1:{host_port}:{container_port}", *common, image]


def _command_test(
    image: str, test: ImageTest, command: str, container: str, common: Sequence[str], out: IO[str]
) -> tuple[str, bool]:
    argv = command_argv(image, command, common)
    out.write(f"# {test.label}\n$ {_shown(argv)}\n")
    out.flush()
    client = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    finished = False
    try:
        returncode = client.wait(timeout=test.timeout)
        finished = True
    except subprocess.TimeoutExpired:
        return f"timed out after {test.timeout:g} s", False
    finally:
        if not finished:  # timed out, or interrupted: the container must not outlive the test
            _remove(container, client)
    if returncode == 125:  # podman's own failure, not the command's
        return f"podman run failed: {_last_line(out)}", False
    return f"exit {returncode}", returncode == 0


def _http_test(
    image: str, test: ImageTest, container: str, common: Sequence[str], out: IO[str]
) -> tuple[str, bool]:
    assert test.http is not None and test.port is not None  # ImageTest's validator
    deadline = time.monotonic() + test.timeout
    out.write(f"# {test.label}\n")
    try:
        host_port = _start_detached(image, test.port, common, out)
        if isinstance(host_port, str):
            return host_port, False
        url = f"http://127.0.0.1:{host_port}{test.http}"
        out.write(f"# GET {url}\n")
        out.flush()
        return _poll(url, test, container, deadline)
    finally:
        _keep_logs(container, out)
        _remove(container, None)


def _start_detached(image: str, container_port: int, common: Sequence[str], out: IO[str]) -> int | str:
    """The host port the container publishes on, or why it could not start."""
    for _ in range(_PORT_ATTEMPTS):
        host_port = _free_port()
        argv = http_argv(image, host_port=host_port, container_port=container_port, common=common)
        out.write(f"$ {_shown(argv)}\n")
        out.flush()
        proc = _podman(argv, timeout=_PODMAN_TIMEOUT)
        if proc.returncode == 0:
            return host_port
        out.write(proc.stderr)
        if "address already in use" not in proc.stderr:
            break
    return f"podman run failed: {stderr_tail(proc.stderr)}"


def _poll(url: str, test: ImageTest, container: str, deadline: float) -> tuple[str, bool]:
    # `podman wait` tells, without a podman call per poll, when the container exits before it answers.
    waiter = subprocess.Popen(["podman", "wait", container], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
    last_error = "no answer"
    try:
        with httpx.Client(trust_env=False, verify=tls_context()) as client:
            while (left := deadline - time.monotonic()) > 0:
                try:
                    response = client.get(url, timeout=min(_REQUEST_TIMEOUT, left))
                except httpx.TransportError as exc:
                    last_error = _transport_error(exc)
                else:
                    return judge_answer(response, test)
                if waiter.poll() is not None:
                    code = (waiter.stdout.read() if waiter.stdout else "").strip()
                    if waiter.returncode == 0 and code:
                        return f"container exited with {code} before answering", False
                    return "container went away before answering", False
                time.sleep(min(_POLL_INTERVAL, max(0.0, deadline - time.monotonic())))
        return f"timed out after {test.timeout:g} s: {last_error}", False
    finally:
        if waiter.poll() is None:
            waiter.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            waiter.wait(timeout=_CLIENT_GRACE)


def judge_answer(response: httpx.Response, test: ImageTest) -> tuple[str, bool]:
    """An HTTP test's verdict on the first answer: (detail, passed)."""
    if response.status_code != test.status:
        return f"HTTP {response.status_code} (wanted {test.status})", False
    if test.body is not None:
        try:
            matched = re.search(test.body, response.text) is not None
        except re.error as exc:
            return f"invalid body pattern {test.body!r}: {exc}", False
        if not matched:
            return f"body did not match {test.body!r}", False
    return f"HTTP {response.status_code}", True


def _transport_error(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer"
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)):
        return "connection closed without an answer"
    return type(exc).__name__


def _keep_logs(container: str, out: IO[str]) -> None:
    out.write(f"$ podman logs {container}\n")
    out.flush()
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        subprocess.run(["podman", "logs", container], stdin=subprocess.DEVNULL, stdout=out,
                       stderr=subprocess.STDOUT, timeout=_PODMAN_TIMEOUT, check=False)


def _remove(container: str, client: subprocess.Popen[bytes] | None) -> None:
    """Kill and remove the container; then make sure the ``podman run`` client that made it has exited.

    The container goes first: killing podman mid-operation can leave its locks held. A client
    still running after that (it had not created the container yet) is killed and the removal repeated.
    """
    _podman(["podman", "rm", "-f", "-t", "0", container], timeout=_PODMAN_TIMEOUT)
    if client is None:
        return
    try:
        client.wait(timeout=_CLIENT_GRACE)
    except subprocess.TimeoutExpired:
        client.kill()
        client.wait()
        _podman(["podman", "rm", "-f", "-t", "0", container], timeout=_PODMAN_TIMEOUT)


def _require_image(image: str) -> None:
    if shutil.which("podman") is None:
        raise VerifyError("podman is not installed: the image's tests cannot run")
    proc = _podman(["podman", "image", "exists", image], timeout=_PODMAN_TIMEOUT)
    if proc.returncode == 1:
        raise VerifyError(f"image {image} is not in local podman storage")
    if proc.returncode != 0:
        raise VerifyError(f"podman cannot read its image storage: {stderr_tail(proc.stderr)}")


def _podman(argv: Sequence[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    return run_tool(argv, error=VerifyError, what=shlex.join(argv[:3]), timeout=timeout,
                    missing="podman is not installed: the image's tests cannot run")


def _shown(argv: Sequence[str]) -> str:
    """The command line for the log, without the values of ``--env`` flags in the caller's podman_args."""
    shown = list(argv)
    for position, arg in enumerate(shown):
        if position and shown[position - 1] in ("--env", "-e"):
            shown[position] = arg.partition("=")[0] + "=..."
        elif arg.startswith("--env="):
            shown[position] = "--env=" + arg.removeprefix("--env=").partition("=")[0] + "=..."
    return shlex.join(shown)


def _redact_file(path: Path, values: Iterable[str]) -> None:
    secrets = list(values)
    if not secrets:
        return
    text = path.read_text(errors="replace")
    redacted = redact(text, secrets)
    if redacted != text:
        path.write_text(redacted)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _safe(text: str) -> str:
    """``text`` as a part of a container or file name."""
    return _NAME_UNSAFE.sub("-", text).strip("-.") or "run"


def _slug(label: str) -> str:
    return _safe(label.lower())[:40].strip("-.") or "test"


def _last_line(out: IO[str]) -> str:
    out.flush()
    with contextlib.suppress(OSError), open(out.name, errors="replace") as handle:
        return stderr_tail(handle.read()[-2000:])
    return "no message"

"""Run a host tool (podman, buildah, skopeo, gpg, gpgv...) and turn its failure into a patchline Error.

The one runner of patchline's short tool calls: no stdin, a timeout, stdout and stderr captured and decoded as
UTF-8 (a byte that is not UTF-8 becomes U+FFFD, never an exception). A tool that is missing, cannot be started
or does not finish in time raises the caller's ``error`` class; with ``check`` so does a non-zero exit, with
the tool's last stderr line as the message and its whole stderr as the detail.

Messages name the call by ``what`` (default: the program), never by its environment: secrets reach a tool
through ``env`` (a passphrase, a token, a build argument) and must not reach a message or a log.

Not run here: tools whose output is streamed as it comes (a build log, debootstrap's progress), pipelines of
two tools, and processes that live as long as something else does (a test's client, ``podman wait``).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from typing import Literal, overload

from patchline.errors import Error, HostError

__all__ = ["DEFAULT_TIMEOUT", "run_tool", "stderr_tail"]

DEFAULT_TIMEOUT = 120.0  # seconds


def stderr_tail(text: str) -> str:
    """The last line a tool wrote, without podman's ``Error:`` prefix; ``no message`` when it wrote none."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "no message"
    return lines[-1].removeprefix("Error: ")


@overload
def run_tool(argv: Sequence[str], *, error: type[Error] = ..., what: str | None = ..., missing: str | None = ...,
             timeout: float | None = ..., check: bool = ..., tolerate: re.Pattern[str] | None = ...,
             env: Mapping[str, str] | None = ..., pass_fds: Sequence[int] = ...,
             binary: Literal[False] = ...) -> subprocess.CompletedProcess[str]: ...


@overload
def run_tool(argv: Sequence[str], *, error: type[Error] = ..., what: str | None = ..., missing: str | None = ...,
             timeout: float | None = ..., check: bool = ..., tolerate: re.Pattern[str] | None = ...,
             env: Mapping[str, str] | None = ..., pass_fds: Sequence[int] = ...,
             binary: Literal[True]) -> subprocess.CompletedProcess[bytes]: ...


def run_tool(argv: Sequence[str], *, error: type[Error] = HostError, what: str | None = None,
             missing: str | None = None, timeout: float | None = DEFAULT_TIMEOUT, check: bool = False,
             tolerate: re.Pattern[str] | None = None, env: Mapping[str, str] | None = None,
             pass_fds: Sequence[int] = (), binary: bool = False
             ) -> subprocess.CompletedProcess[str] | subprocess.CompletedProcess[bytes]:
    """Run ``argv`` and return how it ended; the exit status is the caller's unless ``check``.

    Raises ``error`` when the tool is not installed (``missing``, default ``TOOL is not installed: run
    scripts/setup-host.sh``), cannot be started (``cannot run TOOL: why``) or runs past ``timeout`` seconds
    (``WHAT did not finish within N s``; None: no limit, for a tool whose time grows with the data); with
    ``check`` also when it exits non-zero (``WHAT failed: LAST STDERR LINE``, detail: its stderr) unless its
    stderr matches ``tolerate``. ``env`` replaces the environment; ``binary`` keeps stdout and stderr as bytes.
    """
    tool = argv[0]
    label = what or tool
    try:
        proc = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                              env=None if env is None else dict(env), pass_fds=tuple(pass_fds), check=False)
    except FileNotFoundError as exc:
        raise error(missing or f"{tool} is not installed: run scripts/setup-host.sh") from exc
    except subprocess.TimeoutExpired as exc:
        raise error(f"{label} did not finish within {timeout:g} s") from exc
    except OSError as exc:
        raise error(f"cannot run {tool}: {exc.strerror}") from exc
    stderr = proc.stderr.decode("utf-8", "replace")
    if check and proc.returncode != 0 and (tolerate is None or not tolerate.search(stderr)):
        raise error(f"{label} failed: {stderr_tail(stderr)}", detail=stderr)
    if binary:
        return proc
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout.decode("utf-8", "replace"), stderr)

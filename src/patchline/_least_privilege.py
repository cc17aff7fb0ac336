"""How patchline starts a container of an image it does not fully trust (a service replica, an image's test).

Every capability is dropped but the declared ones, no process gains privileges
(setuid binaries, file capabilities), and processes (and memory, when set) are
limited. The environment goes through a 0600 env file, never onto a command line
that ``ps`` shows.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from patchline.errors import HostError

__all__ = ["env_file", "least_privilege_flags"]


def least_privilege_flags(*, capabilities: Iterable[str] = (), pids_limit: int, memory: str | None = None,
                          userns_auto: bool = False) -> list[str]:
    """``podman run`` flags: ``--cap-drop=all`` plus ``capabilities``, no new privileges, the limits."""
    flags = ["--cap-drop=all", *(f"--cap-add={c}" for c in capabilities),
             "--security-opt=no-new-privileges", f"--pids-limit={pids_limit}"]
    if memory:
        flags.append(f"--memory={memory}")
    if userns_auto:
        flags.append("--userns=auto")
    return flags


@contextlib.contextmanager
def env_file(env: Mapping[str, str]) -> Iterator[Path | None]:
    """``env`` in a 0600 file in a 0700 directory (None when empty), removed when the block ends.

    Raises :class:`HostError` for a name with ``=`` or a newline in a name or value: an env file cannot hold them.
    """
    if not env:
        yield None
        return
    for key, value in env.items():
        if "\n" in key or "\n" in value or "=" in key:
            raise HostError(f"environment variable {key!r}: a name with '=' or a newline in a name or value "
                            "cannot go through an env file")
    with tempfile.TemporaryDirectory(prefix="patchline-env-") as tmp:
        path = Path(tmp) / "env"
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.writelines(f"{k}={v}\n" for k, v in env.items())
        yield path

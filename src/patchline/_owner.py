"""Who holds a lease in the store (``host:pid``), and whether that process is gone.

Runs' steps, rollouts and event sinks are leased to one process at a time; a holder on this host whose process
has exited (or is a zombie) is known dead at once, one elsewhere only when its lease or heartbeat runs out.
"""

from __future__ import annotations

import os
import socket


def owner_id() -> str:
    """This process, as leases name it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_dead(owner: str) -> bool:
    """Whether ``owner`` (``host:pid``) is a process on this host that no longer runs; False when unsure."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return int(pid) != os.getpid() and _is_zombie(int(pid))


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False

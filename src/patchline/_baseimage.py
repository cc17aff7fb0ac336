"""Build a real Debian base image with debootstrap and import it into podman storage.

The mirror comes from the host's apt sources (or the caller): patchline never
names one. The image's own ``/etc/apt/sources.list`` points at the same mirror
and the suite's ``main`` only, so it lacks the updates of the security suite,
as any image built from a release does after its first week.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from patchline._host import run_tool
from patchline._hostapt import host_debian_mirror
from patchline.errors import HostError

Progress = Callable[[str], None]


def need_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise HostError(f"{', '.join(missing)} not installed: run scripts/setup-host.sh")


def image_exists(tag: str) -> bool:
    need_tools("podman")
    return run_tool(["podman", "image", "exists", tag]).returncode == 0


def build_debian_base(
    tag: str,
    *,
    suite: str = "bookworm",
    mirror: str | None = None,
    variant: str = "minbase",
    progress: Progress | None = None,
    workdir: Path | None = None,
) -> str:
    """debootstrap ``suite`` and import it as ``tag``; returns the image ID."""
    need_tools("debootstrap", "podman", "tar")
    say = progress or (lambda _line: None)
    mirror = mirror or host_debian_mirror(suite).mirror
    with tempfile.TemporaryDirectory(prefix="patchline-debootstrap-", dir=workdir) as tmp:
        root = Path(tmp) / "rootfs"
        say(f"debootstrap --variant={variant} {suite} (this takes about a minute)")
        proc = subprocess.Popen(
            ["debootstrap", f"--variant={variant}", suite, str(root), mirror],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            line = line.rstrip()
            tail = [*tail[-20:], line]
            if line.startswith("I: "):
                say(f"debootstrap: {line[3:]}")
        if proc.wait() != 0:
            raise HostError(f"debootstrap of {suite} failed (exit {proc.returncode})", detail="\n".join(tail))
        (root / "etc/apt/sources.list").write_text(f"deb {mirror} {suite} main\n")
        for leftover in ("var/lib/apt/lists", "var/cache/apt/archives"):
            for path in (root / leftover).glob("*"):
                if path.is_file() and path.name != "lock":
                    path.unlink()
        for path in (root / "var/cache/apt").glob("*.bin"):
            path.unlink()
        say(f"importing the root filesystem into podman as {tag}")
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["podman", "import", "--change", 'CMD ["/bin/bash"]', "--message", f"debootstrap {suite}",
             "-", tag],
            stdin=tar.stdout, capture_output=True, text=True, check=False,
        )
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise HostError(f"podman import of {tag} failed", detail=imported.stderr)
    image_id = run_tool(["podman", "image", "inspect", "--format", "{{.Id}}", tag], check=True).stdout.strip()
    say(f"built {tag} ({image_id[:12]})")
    return image_id

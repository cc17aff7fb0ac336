"""``patchline demo down``: stop what the demo started, and with ``purge`` delete what it left."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchline._config import Config, load_config
from patchline._host import run_tool
from patchline.demo._fleet_today import service_containers
from patchline.demo._registry import registry_pid, stop_pid
from patchline.demo._workdir import MARKER, WorkPaths
from patchline.errors import ConfigError, Error


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


def _forget_images(host: str) -> tuple[str, ...]:
    """Remove from podman storage every name of registry ``host`` (by name: an ID may be shared with another
    registry's copy of the same image, which stays)."""
    listing = run_tool(["podman", "images", "--format", "json"])
    try:
        images = json.loads(listing.stdout or "[]") if listing.returncode == 0 else []
    except json.JSONDecodeError:
        return ()
    names = sorted({n for i in images for n in i.get("Names") or () if n.startswith(host + "/")})
    if names:
        run_tool(["podman", "rmi", "--force", *names])
    return tuple(names)


def _scopes(config: Config) -> list[str]:
    from patchline.build import load_recipes
    from patchline.oci import split_reference
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
    paths = WorkPaths(workdir.expanduser().absolute())
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
            names = service_containers(service.name)
            if names:
                run_tool(["podman", "rm", "--force", "--time", "0", *names], check=True,
                         what=f"podman rm {' '.join(names)}")
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
    pid = registry_pid(paths)
    if pid is not None:
        stop_pid(pid)
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

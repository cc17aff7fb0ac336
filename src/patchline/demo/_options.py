"""What ``patchline demo`` is asked for, and the checks that refuse bad options or a host without the tools."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from patchline.errors import ConfigError, HostError

DEMO_IMAGE = "localhost/patchline-demo/debian:bookworm"
_NAME_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
_TOOLS = ("podman", "buildah", "skopeo", "docker-registry", "gpg")


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


def check_options(options: DemoOptions) -> None:
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

"""The demo's base image: a debootstrap ``bookworm`` from main only, so the fleet misses the security updates."""

from __future__ import annotations

import shutil
from collections.abc import Callable

from patchline.demo._options import DemoOptions
from patchline.errors import HostError


def ensure_base_image(options: DemoOptions, say: Callable[[str], None]) -> str:
    from patchline._baseimage import build_debian_base, image_exists

    if not options.rebuild_base and image_exists(options.base_image):
        say(f"using {options.base_image} from podman storage (--rebuild-base builds it again)")
        return f"reused {options.base_image}"
    if shutil.which("debootstrap") is None:
        raise HostError("debootstrap not installed: run scripts/setup-host.sh")
    build_debian_base(options.base_image, suite="bookworm", progress=say)
    return f"built {options.base_image} with debootstrap"

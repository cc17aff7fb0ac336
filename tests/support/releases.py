"""Debian images of other releases than the base image's, built once per machine from the host's mirror.

``debian_release_image("trixie")`` debootstraps ``trixie`` (minbase, ``main`` only) with
patchline's own builder, imports it as ``localhost/patchline-test/debian-trixie:HASH``
(HASH over the release, the mirror and :data:`VERSION`) and returns the reference; a
second call, in this session or the next, finds the tag and returns at once.
"""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from patchline._baseimage import build_debian_base
from patchline._hostapt import host_debian_mirror
from patchline.errors import ConfigError, Error
from tests.support.images import IMAGE_REPOSITORY, SETUP_HINT, _file_lock, cache_dir

VERSION = "1"


def host_mirrors() -> tuple[str, str]:
    """(Debian mirror, security mirror) from the host's apt sources; skips the test when there are none."""
    try:
        host = host_debian_mirror()
    except ConfigError as exc:
        pytest.skip(f"{exc}: configure apt on this host")
    if host.security is None:
        pytest.skip("the host's apt sources name no Debian security mirror")
    return host.mirror, host.security


def debian_release_image(release: str) -> str:
    if os.geteuid() != 0:
        pytest.skip(f"debootstrap needs root; {SETUP_HINT} as root")
    mirror, _security = host_mirrors()
    digest = hashlib.sha256(f"{VERSION} {release} {mirror}".encode()).hexdigest()[:16]
    reference = f"{IMAGE_REPOSITORY}/debian-{release}:{digest}"
    with _file_lock(cache_dir() / f"debian-{release}-{digest}.lock"):
        if subprocess.run(["podman", "image", "exists", reference], check=False).returncode != 0:
            try:
                build_debian_base(reference, suite=release, mirror=mirror, workdir=cache_dir())
            except Error as exc:
                raise RuntimeError(f"debootstrap of {release} from the host's mirror failed: {exc}\n"
                                   f"{exc.detail or ''}") from exc
    return reference

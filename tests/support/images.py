"""Real Debian test images, built once per machine and cached by content.

``debian_base_image``  ``debootstrap --variant=minbase bookworm`` from the host's own
                       mirror, imported as one layer (recipes/base/recipe.toml).
``inventory_image``    built FROM it with ``buildah bud --layers``
                       (recipes/inventory/Containerfile): Debian, Python and npm
                       packages, a removal and an upgrade, one RUN per layer.

Both are tagged ``localhost/patchline-test/NAME:HASH``, HASH covering the recipe files,
the mirror URL and :data:`RECIPE_VERSION`; an image is rebuilt only when its tag is
missing. Its ground truth is what the real tools (dpkg-query, pip, npm) report
inside a container of every layer of the image, cached as JSON beside a lock file in
the cache directory (``PATCHLINE_TEST_CACHE``, else ``/var/cache/patchline-tests`` as
root, else ``~/.cache/patchline-tests``).

``oci_layout_of(image)`` and ``docker_archive_of(image)`` export an image so that a
test can read the same image from every source. Exports are shared by the session:
treat them as read-only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from patchline._baseimage import build_debian_base as build_base_image
from patchline._hostapt import host_debian_mirror
from patchline.errors import ConfigError, Error

__all__ = [
    "BuiltImage",
    "Ecosystem",
    "GroundTruth",
    "ImageExport",
    "debian_base_image",
    "docker_archive_of",
    "inventory_image",
    "oci_layout_of",
]

# Bump to rebuild every machine's test images (e.g. when the build steps below change).
RECIPE_VERSION = "1"
RECIPES = Path(__file__).parent / "recipes"
IMAGE_REPOSITORY = "localhost/patchline-test"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SETUP_HINT = "run scripts/setup-host.sh"

Ecosystem = Literal["deb", "python", "npm"]
ECOSYSTEMS: tuple[Ecosystem, ...] = ("deb", "python", "npm")

# A package in one layer's state: (name, version); debs are "name:arch" so that
# multi-arch packages stay distinct.
PackageKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """What the real tools report inside the image, for the final image and per layer.

    ``layers[i][eco]`` is the set of (name, version) the tools saw in a container of
    the image as it stood after layer ``i`` (0 is the base layer). Debian names carry
    their architecture (``libc6:amd64``) in ``layers``; ``debs`` has the triples.
    """

    debs: frozenset[tuple[str, str, str]]
    layers: tuple[Mapping[Ecosystem, frozenset[PackageKey]], ...]

    def packages(self, eco: Ecosystem) -> frozenset[PackageKey]:
        """(name, version) pairs in the final image; for debs, name is without arch."""
        if eco == "deb":
            return frozenset((name, version) for name, version, _ in self.debs)
        return self.layers[-1][eco]

    def introduced(self, eco: Ecosystem) -> dict[str, int]:
        """Name -> index of the first layer in which it is present (final packages only)."""
        present = {n for n, _ in self.layers[-1][eco]}
        first: dict[str, int] = {}
        for index, state in enumerate(self.layers):
            for name, _ in state[eco]:
                first.setdefault(name, index)
        return {n: i for n, i in first.items() if n in present}

    def last_changed(self, eco: Ecosystem) -> dict[str, int]:
        """Name -> index of the last layer that added or changed it (final packages only)."""
        present = {n for n, _ in self.layers[-1][eco]}
        last: dict[str, int] = {}
        previous: dict[str, set[str]] = {}
        for index, state in enumerate(self.layers):
            current: dict[str, set[str]] = {}
            for name, version in state[eco]:
                current.setdefault(name, set()).add(version)
            for name, versions in current.items():
                if previous.get(name) != versions:
                    last[name] = index
            previous = current
        return {n: i for n, i in last.items() if n in present}

    def removed(self, eco: Ecosystem) -> dict[str, int]:
        """Name -> index of the layer that removed it, for packages absent at the end."""
        gone: dict[str, int] = {}
        for index in range(1, len(self.layers)):
            before = {n for n, _ in self.layers[index - 1][eco]}
            after = {n for n, _ in self.layers[index][eco]}
            for name in before - after:
                gone[name] = index
            for name in after:
                gone.pop(name, None)
        return gone


@dataclass(frozen=True, slots=True)
class BuiltImage:
    """A test image in local podman storage and the ground truth of its contents."""

    name: str
    reference: str  # localhost/patchline-test/NAME:HASH
    image_id: str  # hex, as podman prints it
    config_digest: str  # sha256:<image_id>, the digest of the image config
    diff_ids: tuple[str, ...]  # uncompressed layer digests, base first
    size: int  # bytes, `podman image inspect` .Size
    cold_build_seconds: float | None  # the build that made this tag (None: not recorded)
    built_now: bool  # False when the tag came from the cache
    truth: GroundTruth

    @property
    def storage_ref(self) -> str:
        return f"containers-storage:{self.reference}"


@dataclass(frozen=True, slots=True)
class ImageExport:
    """An image exported to a file or directory, with its skopeo transport reference."""

    path: Path
    transport_ref: str  # oci:DIR:TAG or docker-archive:FILE


class _Skip(Exception):
    """A part the fixtures need is missing; becomes pytest.skip with the reason."""


# --------------------------------------------------------------------- helpers


def cache_dir() -> Path:
    configured = os.environ.get("PATCHLINE_TEST_CACHE")
    if configured:
        path = Path(configured)
    elif os.geteuid() == 0:
        path = Path("/var/cache/patchline-tests")
    else:
        path = Path.home() / ".cache" / "patchline-tests"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(argv: list[str], *, log: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if log is not None:
        with log.open("a") as out:
            out.write(f"+ {shlex.join(argv)}\n{proc.stdout}{proc.stderr}")
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise RuntimeError(f"{shlex.join(argv[:3])} ... failed ({proc.returncode}):\n{tail}")
    return proc


def _require_tools(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise _Skip(f"{', '.join(missing)} not installed; {SETUP_HINT}")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    # Two pytest processes (xdist workers, parallel CI jobs) must not build twice.
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _recipe_hash(name: str, *extra: str) -> str:
    digest = hashlib.sha256()
    for part in (RECIPE_VERSION, *extra):
        digest.update(part.encode() + b"\0")
    recipe = RECIPES / name
    for path in sorted(p for p in recipe.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(recipe)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _image_exists(reference: str) -> bool:
    return _run(["podman", "image", "exists", reference], check=False).returncode == 0


def _inspect(reference: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(_run(["podman", "image", "inspect", "--format", "json", reference]).stdout)
    return data[0]


def _layer_images(reference: str) -> list[str | None]:
    """The image ID of the image as it stood after each layer (None where pruned).

    `podman history` lists one entry per history item, newest first, with the ID of
    the intermediate image that `buildah bud --layers` kept ("<missing>" otherwise);
    items marked empty_layer in the config (ENV, LABEL, ...) have no layer.
    """
    history = _inspect(reference)["History"]
    ids = [
        entry["id"]
        for entry in json.loads(_run(["podman", "history", "--no-trunc", "--format", "json", reference]).stdout)
    ]
    ids.reverse()
    if len(ids) != len(history):
        raise RuntimeError(f"{reference}: podman history and image config disagree")
    return [
        None if ident in {"<missing>", ""} else ident.removeprefix("sha256:")
        for ident, item in zip(ids, history, strict=True)
        if not item.get("empty_layer", False)
    ]


# ------------------------------------------------------------------ ground truth

# One container per layer runs all three tools; "@@" lines separate their outputs.
# Python: every distribution `pip list` reports in the /opt/app virtualenv counts,
# including the pip and setuptools that `python3 -m venv` seeded: they are real
# .dist-info directories in the image, as an SBOM tool finds them. Debian's own
# Python modules are debs (dpkg-query), not pip packages; the venv does not see them.
# npm: the packages `npm ls --all` reports for the project in /srv/web (not Debian's
# npm itself, whose node-* modules in /usr/share/nodejs are debs).
_TRUTH_SCRIPT = r"""
echo @@deb
dpkg-query -W -f '${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\n'
echo @@python
if [ -x /opt/app/bin/pip ]; then
    /opt/app/bin/pip list --format json --disable-pip-version-check --no-index
fi
echo @@npm
if [ -d /srv/web/node_modules ]; then
    cd /srv/web && npm ls --all --json || true
fi
echo @@end
"""


def _flatten_npm(tree: Mapping[str, Any]) -> set[PackageKey]:
    found: set[PackageKey] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        for name, dep in (node.get("dependencies") or {}).items():
            if isinstance(dep, dict) and dep.get("version") and not dep.get("missing"):
                found.add((name, dep["version"]))
                stack.append(dep)
    return found


def _tool_report(image_id: str) -> dict[str, Any]:
    proc = _run(
        ["podman", "run", "--rm", "--network", "none", image_id, "sh", "-c", _TRUTH_SCRIPT],
        check=False,
    )
    if "@@end" not in proc.stdout:
        reason = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise _Skip(f"podman run fails here: {reason}; {SETUP_HINT}")
    sections: dict[str, list[str]] = {}
    current = ""
    for line in proc.stdout.splitlines():
        if line.startswith("@@"):
            current = line[2:]
            sections[current] = []
        elif current:
            sections[current].append(line)
    debs = []
    for line in sections["deb"]:
        status, package, version, arch = line.split("\t")
        if status == "installed":  # not "config-files" or "not-installed" leftovers
            debs.append([package, version, arch])
    python_text = "\n".join(sections["python"]).strip()
    npm_text = "\n".join(sections["npm"]).strip()
    return {
        "deb": sorted(debs),
        "python": sorted([p["name"], p["version"]] for p in json.loads(python_text or "[]")),
        "npm": sorted(_flatten_npm(json.loads(npm_text)) if npm_text else []),
    }


def _truth_from_json(layers: list[dict[str, Any]]) -> GroundTruth:
    states: list[Mapping[Ecosystem, frozenset[PackageKey]]] = []
    for report in layers:
        states.append(
            {
                "deb": frozenset((f"{n}:{a}", v) for n, v, a in report["deb"]),
                "python": frozenset((n, v) for n, v in report["python"]),
                "npm": frozenset((n, v) for n, v in report["npm"]),
            }
        )
    return GroundTruth(debs=frozenset((n, v, a) for n, v, a in layers[-1]["deb"]), layers=tuple(states))


def _record(reference: str, *, cold_build_seconds: float | None, json_path: Path) -> dict[str, Any]:
    info = _inspect(reference)
    per_layer = _layer_images(reference)
    if any(ident is None for ident in per_layer):
        raise LookupError("intermediate layer images were pruned")
    record = {
        "reference": reference,
        "image_id": info["Id"],
        "diff_ids": info["RootFS"]["Layers"],
        "size": info["Size"],
        "cold_build_seconds": cold_build_seconds,
        "layers": [_tool_report(ident) for ident in per_layer if ident],
    }
    json_path.write_text(json.dumps(record, indent=1) + "\n")
    return record


def _cached_image(name: str, digest: str, build: Callable[[str, Path], None]) -> BuiltImage:
    """Return image NAME:DIGEST, building it with ``build(reference, log)`` if missing."""
    reference = f"{IMAGE_REPOSITORY}/{name}:{digest}"
    cache = cache_dir()
    json_path = cache / f"{name}-{digest}.json"
    log = cache / f"{name}-{digest}.build.log"
    with _file_lock(cache / f"{name}-{digest}.lock"):
        record: dict[str, Any] | None = None
        built_now = False
        if _image_exists(reference):
            image_id = _inspect(reference)["Id"]
            if json_path.exists():
                record = json.loads(json_path.read_text())
                if record.get("image_id") != image_id:
                    record = None
            if record is None:
                try:
                    record = _record(reference, cold_build_seconds=None, json_path=json_path)
                except LookupError:
                    _run(["podman", "rmi", reference], check=False)
        if record is None:
            log.write_text("")
            started = time.monotonic()
            build(reference, log)
            seconds = round(time.monotonic() - started, 1)
            built_now = True
            record = _record(reference, cold_build_seconds=seconds, json_path=json_path)
    return BuiltImage(
        name=name,
        reference=reference,
        image_id=record["image_id"],
        config_digest=f"sha256:{record['image_id']}",
        diff_ids=tuple(record["diff_ids"]),
        size=record["size"],
        cold_build_seconds=record["cold_build_seconds"],
        built_now=built_now,
        truth=_truth_from_json(record["layers"]),
    )


# ------------------------------------------------------------------ the builds


def _host_mirror() -> str:
    try:
        return host_debian_mirror(_base_recipe()["suite"]).mirror
    except ConfigError as exc:
        raise _Skip(f"{exc} ({exc.detail}); configure apt on this host") from exc


def _base_recipe() -> dict[str, Any]:
    return tomllib.loads((RECIPES / "base" / "recipe.toml").read_text())


def _build_base(mirror: str) -> Callable[[str, Path], None]:
    """The base image is built by patchline's own builder: the tests use what the demo uses."""
    recipe = _base_recipe()

    def build(reference: str, log: Path) -> None:
        with log.open("a") as out:

            def progress(line: str) -> None:
                out.write(line + "\n")
                out.flush()

            try:
                build_base_image(
                    reference,
                    suite=recipe["suite"],
                    variant=recipe["variant"],
                    mirror=mirror,
                    progress=progress,
                    workdir=cache_dir(),
                )
            except Error as exc:
                out.write(f"{exc}\n{exc.detail or ''}\n")
                raise RuntimeError(f"building the base image {reference} failed: {exc}; see {log}") from exc

    return build


def _host_pip_indexes() -> dict[str, str]:
    """PIP_INDEX_URL / PIP_EXTRA_INDEX_URL from the host's pip configuration.

    Only http(s) URLs pass: file:// indexes and local paths do not exist in the
    container. Without any, pip in the container uses its own default index.
    """
    proc = _run([sys.executable, "-m", "pip", "config", "list"], check=False)
    values: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        key, _, raw = line.partition("=")
        values[key.strip()] = raw.strip().strip("'\"")
    chosen: dict[str, str] = {}
    for option, variable in (("index-url", "PIP_INDEX_URL"), ("extra-index-url", "PIP_EXTRA_INDEX_URL")):
        for scope in (":env:", "install", "global"):  # pip's precedence
            if f"{scope}.{option}" in values:
                urls = [u for u in values[f"{scope}.{option}"].split() if u.startswith(("http://", "https://"))]
                if urls:
                    chosen[variable] = " ".join(urls)
                break
    return chosen


def _host_npm_registry() -> dict[str, str]:
    if shutil.which("npm") is None:
        return {}
    proc = _run(["npm", "config", "get", "registry"], check=False)
    registry = proc.stdout.strip()
    if proc.returncode == 0 and registry.startswith(("http://", "https://")):
        return {"npm_config_registry": registry}
    return {}


def _build_env() -> str:
    """The shell file the Containerfile's RUN lines source (mounted, never stored)."""
    settings = {
        # The host's CA bundle: HTTPS from inside a container fails without it here.
        "PIP_CERT": "/mnt/host-ca.crt",
        "NODE_EXTRA_CA_CERTS": "/mnt/host-ca.crt",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        **_host_pip_indexes(),
        **_host_npm_registry(),
    }
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in settings.items())


def _build_inventory(base: BuiltImage) -> Callable[[str, Path], None]:
    def build(reference: str, log: Path) -> None:
        if not HOST_CA_BUNDLE.exists():
            raise _Skip(f"{HOST_CA_BUNDLE} is missing (apt-get install ca-certificates)")
        with tempfile.TemporaryDirectory(prefix="inventory-", dir=cache_dir()) as tmp:
            # Mounted on /mnt, which exists in the base image: a file mounted on a
            # path that does not exist would leave an empty stub file in the layer.
            mount = Path(tmp)
            shutil.copyfile(HOST_CA_BUNDLE, mount / "host-ca.crt")
            (mount / "build.env").write_text(_build_env())
            _run(
                [
                    "buildah",
                    "bud",
                    "--layers",
                    "--network",
                    "host",
                    "--pull=never",
                    "--volume",
                    f"{mount}:/mnt:ro",
                    "--build-arg",
                    f"BASE_IMAGE={base.reference}",
                    "--tag",
                    reference,
                    "--file",
                    str(RECIPES / "inventory" / "Containerfile"),
                    str(RECIPES / "inventory"),
                ],
                log=log,
            )

    return build


def _skip_on(fn: Callable[[], BuiltImage]) -> BuiltImage:
    try:
        return fn()
    except _Skip as skip:
        pytest.skip(str(skip))


def build_debian_base() -> BuiltImage:
    _require_tools("podman", "debootstrap", "tar")
    if os.geteuid() != 0:
        raise _Skip(f"debootstrap and the test images need root; {SETUP_HINT} as root")
    mirror = _host_mirror()
    image = _cached_image("base", _recipe_hash("base", mirror), _build_base(mirror))
    # The cache says nothing about whether containers start on this host today.
    probe = _run(["podman", "run", "--rm", "--network", "none", image.reference, "true"], check=False)
    if probe.returncode != 0:
        raise _Skip(f"podman run fails here: {probe.stderr.strip()}; {SETUP_HINT}")
    return image


def build_inventory(base: BuiltImage) -> BuiltImage:
    _require_tools("buildah")
    digest = _recipe_hash("inventory", _host_mirror(), base.reference)
    return _cached_image("inventory", digest, _build_inventory(base))


# ------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def debian_base_image() -> BuiltImage:
    """The debootstrapped Debian base image (one layer) and its dpkg ground truth."""
    return _skip_on(build_debian_base)


@pytest.fixture(scope="session")
def inventory_image(debian_base_image: BuiltImage) -> BuiltImage:
    """The layered inventory image and its per-layer deb / pip / npm ground truth."""
    return _skip_on(lambda: build_inventory(debian_base_image))


@pytest.fixture(scope="session")
def oci_layout_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[[BuiltImage], ImageExport]:
    """``oci_layout_of(image)``: the image as an OCI layout directory (skopeo copy)."""
    exported: dict[str, ImageExport] = {}

    def export(image: BuiltImage) -> ImageExport:
        if image.image_id not in exported:
            try:
                _require_tools("skopeo")
            except _Skip as skip:
                pytest.skip(str(skip))
            path = tmp_path_factory.mktemp(f"oci-{image.name}") / "layout"
            ref = f"oci:{path}:{image.name}"
            _run(["skopeo", "copy", "--quiet", image.storage_ref, ref])
            exported[image.image_id] = ImageExport(path=path, transport_ref=ref)
        return exported[image.image_id]

    return export


@pytest.fixture(scope="session")
def docker_archive_of(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[BuiltImage], ImageExport]:
    """``docker_archive_of(image)``: the image as a `podman save` docker-archive tarball."""
    exported: dict[str, ImageExport] = {}

    def export(image: BuiltImage) -> ImageExport:
        if image.image_id not in exported:
            path = tmp_path_factory.mktemp(f"docker-{image.name}") / f"{image.name}.tar"
            _run(["podman", "save", "--quiet", "--format", "docker-archive", "--output", str(path), image.reference])
            exported[image.image_id] = ImageExport(path=path, transport_ref=f"docker-archive:{path}")
        return exported[image.image_id]

    return export

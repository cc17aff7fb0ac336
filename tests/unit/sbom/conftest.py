"""Fixtures for the SBOM writer tests: real-looking inventories and no network.

Everything a test needs comes in as a fixture (factories for the parametrised
ones), so the test modules import nothing from this directory.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from packageurl import PackageURL

from patchline._model import Digest, Ecosystem, ImageInfo, Inventory, Layer, Package, Purl
from patchline.sbom import load_inventory_json

DATA = Path(__file__).resolve().parents[2] / "data" / "sbom"
CREATED = datetime(2024, 3, 20, 9, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any test that tries to reach the network (schema validators must not)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield


@pytest.fixture
def created() -> datetime:
    """The pinned document timestamp."""
    return CREATED


@pytest.fixture
def sbom_data() -> Path:
    """tests/data/sbom."""
    return DATA


@pytest.fixture
def debian_app_text() -> str:
    return (DATA / "debian-app" / "inventory.json").read_text(encoding="utf-8")


@pytest.fixture
def debian_app(debian_app_text: str) -> Inventory:
    """A Debian 12 image with deb, pypi and npm packages (tests/data/sbom/debian-app)."""
    return load_inventory_json(debian_app_text)


@pytest.fixture
def empty_inventory() -> Inventory:
    return _empty_inventory()


@pytest.fixture
def with_package() -> Callable[..., Inventory]:
    return _with_package


@pytest.fixture
def big_inventory() -> Callable[[int], Inventory]:
    return _big_inventory


def _empty_inventory() -> Inventory:
    """An image with no layers, no distro and no packages (a scratch image)."""
    return Inventory(
        image=ImageInfo(
            reference="localhost:5000/scratch:empty",
            manifest_digest=None,
            config_digest=Digest("sha256:" + "00" * 32),
        ),
        layers=(),
        distro=None,
        packages=(),
    )


def _with_package(inventory: Inventory, **changes: object) -> Inventory:
    """``inventory`` with one more package: ``requests`` changed by ``changes``."""
    pkg = Package(
        ecosystem=Ecosystem.PYPI,
        name="requests",
        version="2.31.0",
        purl=Purl("pkg:pypi/requests@2.31.0"),
        introduced_in=inventory.layers[-1].index,
        changed_in=inventory.layers[-1].index,
        locations=("/usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",),
        licenses=("Apache-2.0",),
        cataloger="python-installed-cataloger",
    )
    pkg = dataclasses.replace(pkg, **changes)  # type: ignore[arg-type]
    return dataclasses.replace(inventory, packages=(*inventory.packages, pkg))


_LICENSES = (
    ("MIT",),
    ("Apache-2.0",),
    ("GPL-2.0-or-later", "LGPL-2.1-or-later"),
    ("(MIT OR Apache-2.0) AND BSD-3-Clause",),
    ("GPLv2+",),
    (),
)


def _big_inventory(n: int) -> Inventory:
    """``n`` packages spread over deb, pypi and npm, for timing."""
    layers = tuple(
        Layer(index=i, diff_id=Digest(f"sha256:{i:064x}"), size=1000 * (i + 1)) for i in range(5)
    )
    ecosystems = (Ecosystem.DEB, Ecosystem.PYPI, Ecosystem.NPM)
    packages = []
    for i in range(n):
        eco = ecosystems[i % 3]
        name = f"pkg-{i:05d}"
        version = f"1.{i % 17}.{i % 5}-{i % 3}"
        if eco is Ecosystem.DEB:
            purl = PackageURL("deb", "debian", name, version, {"arch": "amd64"})
            location = "/var/lib/dpkg/status"
        elif eco is Ecosystem.PYPI:
            purl = PackageURL("pypi", None, name, version)
            location = f"/usr/lib/python3/dist-packages/{name}-{version}.dist-info/METADATA"
        else:
            purl = PackageURL("npm", "@scope" if i % 2 else None, name, version)
            location = f"/srv/node_modules/{name}/package.json"
        packages.append(
            Package(
                ecosystem=eco,
                name=name,
                version=version,
                purl=Purl(purl.to_string()),
                introduced_in=i % 5,
                changed_in=i % 5,
                locations=(location,),
                arch="amd64" if eco is Ecosystem.DEB else None,
                licenses=_LICENSES[i % len(_LICENSES)],
                cataloger=f"{eco.value}-cataloger",
            )
        )
    return Inventory(
        image=ImageInfo(
            reference="localhost:5000/big:1",
            manifest_digest=Digest("sha256:" + "ab" * 32),
            config_digest=Digest("sha256:" + "cd" * 32),
        ),
        layers=layers,
        distro=None,
        packages=tuple(packages),
    )

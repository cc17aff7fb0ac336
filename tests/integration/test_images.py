"""The real test images build, and their ground truth is what the recipes promise."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.support.images import BuiltImage, ImageExport

pytestmark = pytest.mark.integration


def _describe(image: BuiltImage) -> str:
    built = (
        f"built in {image.cold_build_seconds} s"
        if image.built_now
        else f"cached (cold build took {image.cold_build_seconds} s)"
    )
    return (
        f"{image.reference}: {built}, {image.size / 1e6:.0f} MB, "
        f"{len(image.diff_ids)} layer(s), id {image.image_id[:12]}"
    )


def test_debian_base_image(debian_base_image: BuiltImage) -> None:
    print(_describe(debian_base_image))
    truth = debian_base_image.truth
    names = {name for name, _ in truth.packages("deb")}
    assert len(debian_base_image.diff_ids) == 1
    assert len(truth.debs) > 80  # minbase: ~90 packages
    assert {"base-files", "dpkg", "apt", "libc6"} <= names
    assert truth.packages("python") == frozenset()
    assert truth.packages("npm") == frozenset()
    assert debian_base_image.config_digest == f"sha256:{debian_base_image.image_id}"


def test_inventory_image_ground_truth(debian_base_image: BuiltImage, inventory_image: BuiltImage) -> None:
    print(_describe(inventory_image))
    truth = inventory_image.truth
    assert inventory_image.diff_ids[0] == debian_base_image.diff_ids[0]
    assert len(inventory_image.diff_ids) == len(truth.layers) == 6

    debs = {name for name, _ in truth.packages("deb")}
    python = dict(truth.packages("python"))
    npm = truth.packages("npm")
    assert len(truth.debs) > 100
    assert {"python3", "nodejs", "npm"} <= debs
    assert python["urllib3"] == "1.26.6"
    assert python["requests"] == "2.25.0"
    assert python["Jinja2"] == "2.11.2"
    assert ("lodash", "4.17.20") in npm
    assert ("minimist", "1.2.6") in npm
    assert ("@types/node", "20.0.0") in npm

    # Removed in layer 4: must not be reported.
    assert "less" not in debs
    assert "six" not in python
    assert truth.removed("deb")["less:amd64"] == 4
    assert truth.removed("python")["six"] == 4

    # Introduced in one layer, last changed in another.
    assert truth.introduced("deb")["python3:amd64"] == 1
    assert truth.introduced("deb")["libc6:amd64"] == 0
    assert truth.introduced("python")["urllib3"] == 2
    assert truth.last_changed("python")["urllib3"] == 5
    assert truth.last_changed("python")["requests"] == 2
    assert truth.introduced("npm")["minimist"] == 3
    assert truth.last_changed("npm")["minimist"] == 5
    assert truth.last_changed("npm")["lodash"] == 3


def test_exports(
    inventory_image: BuiltImage,
    oci_layout_of: Callable[[BuiltImage], ImageExport],
    docker_archive_of: Callable[[BuiltImage], ImageExport],
) -> None:
    layout = oci_layout_of(inventory_image)
    index = json.loads((layout.path / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "inventory"
    manifest_digest = index["manifests"][0]["digest"].removeprefix("sha256:")
    manifest = json.loads((layout.path / "blobs/sha256" / manifest_digest).read_text())
    assert manifest["config"]["digest"] == inventory_image.config_digest
    assert len(manifest["layers"]) == len(inventory_image.diff_ids)
    assert oci_layout_of(inventory_image) is layout  # exported once per session

    archive = docker_archive_of(inventory_image)
    assert archive.path.stat().st_size > inventory_image.size // 2
    assert archive.transport_ref == f"docker-archive:{archive.path}"

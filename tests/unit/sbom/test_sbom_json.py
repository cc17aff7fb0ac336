"""patchline's inventory JSON: content, round trip and refusal of bad documents."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import pytest

from patchline._model import Inventory
from patchline.sbom import SbomError, SbomFormat, load_inventory_json, render_sbom
from patchline.sbom.interface import package_order


def _normalised(inv: Inventory) -> Inventory:
    """What the writer's order makes of ``inv``."""
    return dataclasses.replace(
        inv,
        layers=tuple(sorted(inv.layers, key=lambda layer: layer.index)),
        packages=tuple(package_order(inv.packages)),
        skipped=tuple(
            sorted(
                inv.skipped,
                key=lambda s: (s.path, s.cataloger, s.reason, -1 if s.layer is None else s.layer),
            )
        ),
        catalogers=tuple(sorted(inv.catalogers)),
    )


def test_round_trip_gives_back_the_inventory(debian_app: Inventory, created: datetime) -> None:
    text = render_sbom(debian_app, SbomFormat.JSON, created=created)

    loaded = load_inventory_json(text)

    assert loaded == _normalised(debian_app)
    assert render_sbom(loaded, SbomFormat.JSON, created=created) == text


def test_round_trip_of_an_empty_inventory(empty_inventory: Inventory, created: datetime) -> None:
    text = render_sbom(empty_inventory, SbomFormat.JSON, created=created)

    assert load_inventory_json(text) == empty_inventory


def test_document_fields(debian_app: Inventory, created: datetime) -> None:
    doc = json.loads(render_sbom(debian_app, SbomFormat.JSON, created=created))

    assert list(doc) == [
        "schema",
        "created",
        "tool",
        "image",
        "distro",
        "layers",
        "packages",
        "skipped",
        "catalogers",
        "system_files",
    ]
    assert doc["schema"] == "patchline/inventory/v1"
    assert doc["created"] == "2024-03-20T09:30:00Z"
    assert doc["image"]["platform"] == {"os": "linux", "architecture": "amd64", "variant": None}
    assert doc["image"]["config_digest"] == debian_app.image.config_digest
    assert [layer["index"] for layer in doc["layers"]] == [0, 1, 2, 3]
    libssl = next(p for p in doc["packages"] if p["name"] == "libssl3")
    assert libssl["introduced_in"] == {"index": 0, "diff_id": debian_app.layers[0].diff_id}
    assert libssl["changed_in"] == {"index": 1, "diff_id": debian_app.layers[1].diff_id}
    assert doc["skipped"][0]["layer"] == {"index": 3, "diff_id": debian_app.layers[3].diff_id}


def test_packages_are_sorted_by_ecosystem_name_version_arch(
    debian_app: Inventory, created: datetime
) -> None:
    doc = json.loads(render_sbom(debian_app, SbomFormat.JSON, created=created))

    keys = [(p["ecosystem"], p["name"], p["version"], p["arch"] or "") for p in doc["packages"]]
    assert keys == sorted(keys)
    assert [p["name"] for p in doc["packages"]][:2] == ["apt", "base-files"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(schema="syft/v1"), "schema 'syft/v1'"),
        (lambda d: d.pop("image"), "$.image: expected an object"),
        (lambda d: d["image"].pop("config_digest"), "$.image.config_digest: expected a string"),
        (lambda d: d["layers"][0].update(index="0"), "$.layers[0].index: expected an integer"),
        (lambda d: d["packages"][0].update(ecosystem="hex"), "unknown ecosystem 'hex'"),
        (
            lambda d: d["packages"][0]["introduced_in"].update(index=9),
            "$.packages[0].introduced_in: layer 9 is not in $.layers",
        ),
        (
            lambda d: d["packages"][0]["changed_in"].update(diff_id="sha256:" + "ff" * 32),
            "is not that of layer",
        ),
        (lambda d: d["packages"][0].update(licenses="MIT"), "licenses: expected an array"),
        (lambda d: d["packages"][0].update(locations=[1]), "locations[0]: expected a string"),
    ],
    ids=[
        "wrong-schema",
        "no-image",
        "no-config-digest",
        "string-index",
        "unknown-ecosystem",
        "dangling-layer",
        "wrong-diff-id",
        "licenses-not-list",
        "location-not-string",
    ],
)
def test_load_refuses_a_bad_document(debian_app_text: str, mutate: object, message: str) -> None:
    doc = json.loads(debian_app_text)
    mutate(doc)  # type: ignore[operator]

    with pytest.raises(SbomError) as info:
        load_inventory_json(json.dumps(doc))

    assert message in str(info.value)


def test_load_refuses_text_that_is_not_json() -> None:
    with pytest.raises(SbomError, match="does not parse"):
        load_inventory_json("{not json")

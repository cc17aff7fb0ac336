"""CycloneDX 1.6: validity against the bundled official schema, and content."""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from patchline._model import Inventory
from patchline.sbom import SbomFormat, render_sbom
from patchline.sbom.cyclonedx import cyclonedx_licenses


def assert_valid_cyclonedx(text: str) -> None:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, str(error)


def _render(inv: Inventory, created: datetime) -> dict[str, Any]:
    text = render_sbom(inv, SbomFormat.CYCLONEDX, created=created)
    assert_valid_cyclonedx(text)
    doc: dict[str, Any] = json.loads(text)
    return doc


def _component(doc: dict[str, Any], name: str, version: str | None = None) -> dict[str, Any]:
    found: dict[str, Any]
    (found,) = [
        c
        for c in doc["components"]
        if c["name"] == name and (version is None or c["version"] == version)
    ]
    return found


def _props(component: dict[str, Any]) -> dict[str, str]:
    return {p["name"]: p["value"] for p in component.get("properties", [])}


def test_fixture_is_valid_cyclonedx_1_6(debian_app: Inventory, created: datetime) -> None:
    doc = _render(debian_app, created)

    assert doc["bomFormat"] == "CycloneDX"
    assert doc["specVersion"] == "1.6"
    assert doc["metadata"]["timestamp"] == "2024-03-20T09:30:00Z"


def test_strict_validator_is_not_vacuous(debian_app: Inventory, created: datetime) -> None:
    doc = json.loads(render_sbom(debian_app, SbomFormat.CYCLONEDX, created=created))
    doc["components"][1]["type"] = "shared-object"

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(doc))

    assert error is not None


def test_image_is_the_metadata_component(debian_app: Inventory, created: datetime) -> None:
    doc = _render(debian_app, created)

    image = doc["metadata"]["component"]
    assert image["type"] == "container"
    assert image["name"] == "localhost:5000/shop/web-api:1.4.2"
    assert image["version"] == debian_app.image.manifest_digest
    assert image["bom-ref"] == debian_app.image.config_digest
    assert doc["serialNumber"] == "urn:uuid:aa35a2c2-b8e2-51c7-9fd6-d81e6aeaca05"


def test_tool_is_patchline(debian_app: Inventory, created: datetime) -> None:
    doc = _render(debian_app, created)

    (tool,) = doc["metadata"]["tools"]["components"]
    assert tool["name"] == "patchline"
    assert tool["version"] == importlib.metadata.version("patchline")


def test_one_library_per_package_and_the_os(debian_app: Inventory, created: datetime) -> None:
    doc = _render(debian_app, created)

    libraries = [c for c in doc["components"] if c["type"] == "library"]
    assert len(libraries) == len(debian_app.packages)
    (os_component,) = [c for c in doc["components"] if c["type"] == "operating-system"]
    assert (os_component["name"], os_component["version"]) == ("debian", "12")
    assert os_component["description"] == "Debian GNU/Linux 12 (bookworm)"


def test_scoped_npm_name_is_escaped_in_the_purl(debian_app: Inventory, created: datetime) -> None:
    doc = _render(debian_app, created)

    node = _component(doc, "@types/node")
    assert node["purl"] == "pkg:npm/%40types/node@20.11.30"
    assert node["bom-ref"] == node["purl"]


def test_duplicate_purls_get_distinct_bom_refs(debian_app: Inventory, created: datetime) -> None:
    doc = _render(debian_app, created)

    six = [c for c in doc["components"] if c["name"] == "six"]
    assert len(six) == 2
    assert {c["purl"] for c in six} == {"pkg:pypi/six@1.16.0"}
    assert all(c["bom-ref"].startswith("pkg:pypi/six@1.16.0?package-id=") for c in six)
    assert six[0]["bom-ref"] != six[1]["bom-ref"]
    refs = [c["bom-ref"] for c in doc["components"]]
    assert len(refs) == len(set(refs))


def test_layer_and_package_properties(debian_app: Inventory, created: datetime) -> None:
    doc = _render(debian_app, created)

    libssl = _props(_component(doc, "libssl3"))
    assert libssl == {
        "patchline:layer:introduced": debian_app.layers[0].diff_id,
        "patchline:layer:changed": debian_app.layers[1].diff_id,
        "patchline:location:0": "/var/lib/dpkg/status",
        "patchline:cataloger": "dpkg-db-cataloger",
        "patchline:package:source-name": "openssl",
        "patchline:package:arch": "amd64",
    }
    zlib = _props(_component(doc, "zlib1g"))
    assert zlib["patchline:package:source-version"] == "1.2.13.dfsg-1"


def test_licences(debian_app: Inventory, created: datetime) -> None:
    doc = _render(debian_app, created)

    assert _component(doc, "cryptography")["licenses"] == [
        {"expression": "(Apache-2.0 OR BSD-3-Clause) AND PSF-2.0"}
    ]
    assert _component(doc, "libc6")["licenses"] == [
        {"license": {"id": "GPL-2.0-or-later"}},
        {"license": {"id": "LGPL-2.1-or-later"}},
    ]
    assert _component(doc, "apt")["licenses"] == [{"license": {"name": "GPLv2+"}}]
    assert "licenses" not in _component(doc, "libtinfo6")


def test_image_depends_on_every_component(debian_app: Inventory, created: datetime) -> None:
    doc = _render(debian_app, created)

    root, *rest = doc["dependencies"]
    refs = [c["bom-ref"] for c in doc["components"]]
    assert root == {"ref": debian_app.image.config_digest, "dependsOn": refs}
    assert rest == [{"ref": ref} for ref in refs]


@pytest.mark.parametrize(
    ("licenses", "expected"),
    [
        ((), []),
        (("MIT",), [{"license": {"id": "MIT"}}]),
        (("mit",), [{"license": {"id": "MIT"}}]),
        (("Custom",), [{"license": {"name": "Custom"}}]),
        (("MIT OR Apache-2.0",), [{"expression": "MIT OR Apache-2.0"}]),
        (
            ("MIT OR Apache-2.0", "BSD-3-Clause"),
            [{"expression": "(MIT OR Apache-2.0) AND (BSD-3-Clause)"}],
        ),
        (
            ("MIT OR Apache-2.0", "Proprietary"),
            [{"license": {"name": "MIT OR Apache-2.0"}}, {"license": {"name": "Proprietary"}}],
        ),
        (("MIT", "MIT", " "), [{"license": {"id": "MIT"}}]),
        (("GPL-2+ and (BSD",), [{"license": {"name": "GPL-2+ and (BSD"}}]),
    ],
    ids=[
        "none",
        "id",
        "id-wrong-case",
        "name",
        "expression",
        "expressions-and-ids",
        "expression-and-name",
        "repeats-and-blank",
        "broken-expression",
    ],
)
def test_licence_mapping(licenses: tuple[str, ...], expected: list[dict[str, Any]]) -> None:
    result = [json.loads(lic.as_json()) for lic in cyclonedx_licenses(licenses)]  # type: ignore[union-attr]

    assert [_as_entry(r) for r in result] == expected


def _as_entry(serialised: dict[str, Any]) -> dict[str, Any]:
    # A DisjunctiveLicense serialises as its fields; in a BOM it is wrapped in "license".
    return serialised if "expression" in serialised else {"license": serialised}


def test_odd_versions_and_names_stay_valid(
    debian_app: Inventory,
    created: datetime,
    with_package: Callable[..., Inventory],
) -> None:
    inv = with_package(
        debian_app,
        name="naïve_pkg",
        version="1:2.0~rc1+git20240101.a/b c",
        purl=PackageURL("pypi", None, "naïve-pkg", "1:2.0~rc1+git20240101.a/b c").to_string(),
        licenses=("MIT\tOR Apache-2.0",),
    )

    doc = _render(inv, created)

    odd = _component(doc, "naïve_pkg")
    assert odd["version"] == "1:2.0~rc1+git20240101.a/b c"

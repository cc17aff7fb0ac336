"""SPDX 2.3: valid for the SPDX project's own tools (spdx-tools parser and validator), and content."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from packageurl import PackageURL
from spdx_tools.spdx.parser.json import json_parser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from patchline._model import Inventory
from patchline.sbom import SbomFormat, render_sbom
from patchline.sbom.spdx import declared_license

SPDX_ID = re.compile(r"^SPDXRef-[A-Za-z0-9.-]+$")


@pytest.fixture
def render_valid(tmp_path: Path, created: datetime) -> Callable[[Inventory], dict[str, Any]]:
    """Render as SPDX, check it with the SPDX project's own parser and validator, return the JSON."""

    def render(inv: Inventory) -> dict[str, Any]:
        text = render_sbom(inv, SbomFormat.SPDX, created=created)
        doc: dict[str, Any] = json.loads(text)

        path = tmp_path / "sbom.spdx.json"
        path.write_text(text, encoding="utf-8")
        parsed = json_parser.parse_from_file(str(path))
        messages = validate_full_spdx_document(parsed, spdx_version="SPDX-2.3")
        assert [m.validation_message for m in messages] == []
        for pkg in doc["packages"]:
            assert SPDX_ID.match(pkg["SPDXID"]), pkg["SPDXID"]
        return doc

    return render


def _package(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any]
    (found,) = [p for p in doc["packages"] if p["name"] == name]
    return found


def test_fixture_is_valid_spdx_2_3(
    debian_app: Inventory, render_valid: Callable[[Inventory], dict[str, Any]]
) -> None:
    doc = render_valid(debian_app)

    assert doc["spdxVersion"] == "SPDX-2.3"
    assert doc["dataLicense"] == "CC0-1.0"
    assert doc["creationInfo"]["created"] == "2024-03-20T09:30:00Z"
    assert doc["creationInfo"]["creators"][0].startswith("Tool: patchline-")


def test_validator_is_not_vacuous(debian_app: Inventory, tmp_path: Path, created: datetime) -> None:
    doc = json.loads(render_sbom(debian_app, SbomFormat.SPDX, created=created))
    doc["packages"][2]["SPDXID"] = "not-an-spdx-id"
    path = tmp_path / "broken.spdx.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    messages = validate_full_spdx_document(json_parser.parse_from_file(str(path)), spdx_version="SPDX-2.3")
    assert messages


def test_namespace_is_derived_from_the_config_digest(
    debian_app: Inventory, render_valid: Callable[[Inventory], dict[str, Any]]
) -> None:
    doc = render_valid(debian_app)

    expected = uuid.uuid5(uuid.NAMESPACE_URL, f"patchline:spdx:{debian_app.image.config_digest}")
    assert doc["documentNamespace"] == (
        f"https://patchline.invalid/spdx/localhost-5000-shop-web-api-1.4.2-{expected}"
    )


def test_document_describes_the_image_which_contains_the_packages(
    debian_app: Inventory, render_valid: Callable[[Inventory], dict[str, Any]]
) -> None:
    doc = render_valid(debian_app)

    image = _package(doc, "localhost:5000/shop/web-api:1.4.2")
    assert image["primaryPackagePurpose"] == "CONTAINER"
    assert image["versionInfo"] == debian_app.image.manifest_digest
    describes = [r for r in doc["relationships"] if r["relationshipType"] == "DESCRIBES"]
    assert describes == [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relatedSpdxElement": image["SPDXID"],
            "relationshipType": "DESCRIBES",
        }
    ]
    contained = {
        r["relatedSpdxElement"]
        for r in doc["relationships"]
        if r["relationshipType"] == "CONTAINS" and r["spdxElementId"] == image["SPDXID"]
    }
    others = {p["SPDXID"] for p in doc["packages"]} - {image["SPDXID"]}
    assert contained == others
    assert len(others) == len(debian_app.packages) + 1  # and the distro


def test_packages_carry_purl_and_introducing_layer(
    debian_app: Inventory, render_valid: Callable[[Inventory], dict[str, Any]]
) -> None:
    doc = render_valid(debian_app)

    node = _package(doc, "@types/node")
    assert node["externalRefs"] == [
        {
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": "pkg:npm/%40types/node@20.11.30",
        }
    ]
    libssl = _package(doc, "libssl3")
    assert f"introduced in image layer 0 ({debian_app.layers[0].diff_id})" in libssl["sourceInfo"]
    assert f"last changed in image layer 1 ({debian_app.layers[1].diff_id})" in (
        libssl["sourceInfo"]
    )
    ids = [p["SPDXID"] for p in doc["packages"]]
    assert len(ids) == len(set(ids))


def test_declared_licences(
    debian_app: Inventory, render_valid: Callable[[Inventory], dict[str, Any]]
) -> None:
    doc = render_valid(debian_app)

    assert _package(doc, "cryptography")["licenseDeclared"] == (
        "(Apache-2.0 OR BSD-3-Clause) AND PSF-2.0"
    )
    assert _package(doc, "libc6")["licenseDeclared"] == "LGPL-2.1-or-later AND GPL-2.0-or-later"
    apt = _package(doc, "apt")
    assert apt["licenseDeclared"] == "NOASSERTION"
    assert apt["licenseComments"] == "declared licences that are not an SPDX expression: GPLv2+"
    assert _package(doc, "libtinfo6")["licenseDeclared"] == "NOASSERTION"
    assert "licenseComments" not in _package(doc, "libtinfo6")


@pytest.mark.parametrize(
    ("licenses", "expected"),
    [
        ((), None),
        (("MIT",), "MIT"),
        (("mit",), "MIT"),
        (("GPL-3.0-or-later WITH GCC-exception-3.1",), "GPL-3.0-or-later WITH GCC-exception-3.1"),
        (("MIT", "Apache-2.0"), "MIT AND Apache-2.0"),
        (("MIT", "Custom"), None),
        (("LicenseRef-acme",), None),
        (("(MIT",), None),
        (("MIT OR OR",), None),
        (("\x00",), None),
    ],
)
def test_licence_strings_never_fail(licenses: tuple[str, ...], expected: str | None) -> None:
    result = declared_license(licenses)

    assert (None if result is None else str(result)) == expected


def test_odd_versions_and_names_stay_valid(
    debian_app: Inventory,
    with_package: Callable[..., Inventory],
    render_valid: Callable[[Inventory], dict[str, Any]],
) -> None:
    version = "1:2.0~rc1+git20240101.a/b c"
    inv = with_package(
        debian_app,
        name="naïve_pkg (fork)",
        version=version,
        purl=PackageURL("pypi", None, "naïve-pkg", version).to_string(),
    )

    doc = render_valid(inv)

    odd = _package(doc, "naïve_pkg (fork)")
    assert odd["versionInfo"] == version
    assert odd["SPDXID"].startswith("SPDXRef-Package-pypi-na-ve-pkg-fork-")

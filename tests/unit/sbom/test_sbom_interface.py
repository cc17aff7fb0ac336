"""The entry point: every format, determinism, bad input, and 3,000-package timing."""

from __future__ import annotations

import dataclasses
import io
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from patchline._model import Ecosystem, Inventory, Purl
from patchline.sbom import SbomError, SbomFormat, load_inventory_json, render_sbom, write_sbom

ALL_FORMATS = list(SbomFormat)


def assert_valid(fmt: SbomFormat, text: str) -> None:
    """Each format's own validity check (the schema checks are in the format's tests)."""
    match fmt:
        case SbomFormat.JSON:
            load_inventory_json(text)
        case SbomFormat.CYCLONEDX:
            error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
            assert error is None, str(error)
        case SbomFormat.SPDX:
            document = JsonLikeDictParser().parse(json.loads(text))  # type: ignore[no-untyped-call]
            messages = validate_full_spdx_document(document, spdx_version="SPDX-2.3")
            assert [m.validation_message for m in messages] == []


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_same_input_gives_the_same_bytes(
    fmt: SbomFormat, debian_app: Inventory, created: datetime
) -> None:
    packages = list(debian_app.packages)
    random.Random(7).shuffle(packages)
    shuffled = dataclasses.replace(
        debian_app,
        packages=tuple(packages),
        catalogers=tuple(reversed(debian_app.catalogers)),
    )

    first = render_sbom(debian_app, fmt, created=created)

    assert render_sbom(debian_app, fmt, created=created) == first
    assert render_sbom(shuffled, fmt, created=created) == first


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_created_is_normalised_to_utc_seconds(
    fmt: SbomFormat, debian_app: Inventory, created: datetime
) -> None:
    elsewhere = created.astimezone(timezone(timedelta(hours=5, minutes=30)))

    text = render_sbom(debian_app, fmt, created=elsewhere + timedelta(microseconds=999))

    assert text == render_sbom(debian_app, fmt, created=created)
    assert "2024-03-20T09:30:00Z" in text


def test_created_defaults_to_now(debian_app: Inventory) -> None:
    before = datetime.now(UTC).replace(microsecond=0)

    doc = json.loads(render_sbom(debian_app, SbomFormat.JSON))

    stamp = datetime.strptime(doc["created"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= stamp <= datetime.now(UTC)


def test_naive_created_is_refused(debian_app: Inventory) -> None:
    with pytest.raises(SbomError, match="has no time zone"):
        render_sbom(debian_app, SbomFormat.SPDX, created=datetime(2024, 1, 1))


def test_format_may_be_given_by_name(debian_app: Inventory, created: datetime) -> None:
    assert render_sbom(debian_app, "cyclonedx", created=created) == render_sbom(
        debian_app, SbomFormat.CYCLONEDX, created=created
    )


def test_unknown_format_is_refused(debian_app: Inventory) -> None:
    with pytest.raises(SbomError, match=r"unknown SBOM format 'swid' \(known: json, cyclonedx"):
        render_sbom(debian_app, "swid")


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_write_sbom_writes_what_render_renders(
    fmt: SbomFormat, debian_app: Inventory, created: datetime
) -> None:
    stream = io.StringIO()

    write_sbom(debian_app, fmt, stream, created=created)

    assert stream.getvalue() == render_sbom(debian_app, fmt, created=created)
    assert stream.getvalue().endswith("}\n")


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_empty_inventory_gives_a_valid_document(
    fmt: SbomFormat, empty_inventory: Inventory, created: datetime
) -> None:
    text = render_sbom(empty_inventory, fmt, created=created)

    assert_valid(fmt, text)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"purl": Purl("requests 2.31.0")},
            "package requests 2.31.0: invalid purl 'requests 2.31.0'",
        ),
        (
            {"purl": Purl("pkg:/requests@2.31.0")},
            "package requests 2.31.0: invalid purl 'pkg:/requests@2.31.0'",
        ),
        (
            {"purl": Purl("pkg:npm/requests@2.31.0")},
            "has type 'npm', not the package's ecosystem 'pypi'",
        ),
        ({"introduced_in": 9}, "package requests 2.31.0: introduced_in 9 is not a layer"),
        ({"changed_in": -1}, "package requests 2.31.0: changed_in -1 is not a layer"),
    ],
    ids=["not-a-purl", "no-type", "wrong-type", "introduced-dangling", "changed-dangling"],
)
def test_bad_package_is_a_clear_sbom_error(
    fmt: SbomFormat,
    changes: dict[str, object],
    message: str,
    debian_app: Inventory,
    with_package: Callable[..., Inventory],
) -> None:
    inv = with_package(debian_app, **changes)
    stream = io.StringIO()

    with pytest.raises(SbomError) as info:
        write_sbom(inv, fmt, stream)

    assert message in str(info.value)
    assert stream.getvalue() == ""


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_identical_duplicate_records_are_kept_apart(
    fmt: SbomFormat, debian_app: Inventory, created: datetime
) -> None:
    twin = next(p for p in debian_app.packages if p.name == "lodash")
    inv = dataclasses.replace(debian_app, packages=(*debian_app.packages, twin))

    text = render_sbom(inv, fmt, created=created)

    assert_valid(fmt, text)
    assert text.count('"lodash"') == 3  # the two versions and the twin


def test_every_ecosystem_is_written(
    big_inventory: Callable[[int], Inventory], created: datetime
) -> None:
    inv = big_inventory(30)

    doc = json.loads(render_sbom(inv, SbomFormat.JSON, created=created))

    assert {p["ecosystem"] for p in doc["packages"]} == {"deb", "pypi", "npm"}
    assert {e.value for e in Ecosystem} >= {"deb", "pypi", "npm"}


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_timing_3000_packages(
    fmt: SbomFormat,
    big_inventory: Callable[[int], Inventory],
    created: datetime,
    capsys: pytest.CaptureFixture[str],
) -> None:
    inv = big_inventory(3000)
    render_sbom(big_inventory(3), fmt, created=created)  # imports and caches out of the timing

    start = time.perf_counter()
    text = render_sbom(inv, fmt, created=created)
    elapsed = time.perf_counter() - start

    with capsys.disabled():
        print(f"\n{fmt.value}: 3,000 packages in {elapsed:.2f} s ({len(text) / 1e6:.1f} MB)")
    assert text.count("pkg-02999") >= 1

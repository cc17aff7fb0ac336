"""Python: METADATA and PKG-INFO files copied from this host's site-packages.

Oracle for names and versions: the standard library's own reader,
``importlib.metadata.PathDistribution``.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
from catalog_harness import DATA, check_scenario, scenarios

from patchline.catalog import PythonCataloger


@pytest.mark.parametrize("scenario", scenarios("python"), ids=lambda p: p.name)
def test_scenario(scenario: Path) -> None:
    check_scenario(PythonCataloger(), scenario)


@pytest.mark.parametrize(
    "metadata",
    sorted((DATA / "python/site-packages-licence-styles/root").rglob("*.dist-info/METADATA")),
    ids=lambda p: p.parent.name,
)
def test_name_and_version_match_importlib_metadata(metadata: Path) -> None:
    oracle = importlib.metadata.PathDistribution(metadata.parent).metadata
    (found,) = PythonCataloger().parse(str(metadata), metadata.read_bytes()).packages
    assert (found.name, found.version) == (oracle["Name"], oracle["Version"])

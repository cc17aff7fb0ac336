"""apk: installed databases written in apk-tools' format (no Alpine host to copy one from)."""

from __future__ import annotations

from pathlib import Path

import pytest
from catalog_harness import check_scenario, scenarios

from patchline.catalog import ApkCataloger


@pytest.mark.parametrize("scenario", scenarios("apk"), ids=lambda p: p.name)
def test_scenario(scenario: Path) -> None:
    check_scenario(ApkCataloger(), scenario)


def test_non_utf8_name_is_a_skip_not_a_crash() -> None:
    data = b"P:ok\nV:1-r0\n\nP:caf\xe9\nV:1-r0\n"
    result = ApkCataloger().parse("/lib/apk/db/installed", data)
    assert [p.name for p in result.packages] == ["ok"]
    assert len(result.skipped) == 1
    assert "not UTF-8" in result.skipped[0]

"""npm: package.json files from ``npm install is-number@7.0.0 @types/node@20.11.0`` and
from this host's bundled npm (nested and scoped), plus legacy licence forms written by hand.
Expected names, versions and licences were read back with ``node -p 'require(f)'``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from catalog_harness import check_scenario, scenarios

from patchline.catalog import NpmCataloger


@pytest.mark.parametrize("scenario", scenarios("npm"), ids=lambda p: p.name)
def test_scenario(scenario: Path) -> None:
    check_scenario(NpmCataloger(), scenario)

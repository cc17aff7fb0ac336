"""A small harness so that a cataloger's scenario test is five lines (STYLE.md 10).

A scenario is a directory ``tests/data/<cataloger>/<scenario>/`` holding ``root/``
(files at their absolute paths in an image) and ``expected.json``, which maps
every file under ``root/`` to what parsing it must give::

    {"/var/lib/dpkg/status": {"packages": [{"ecosystem": "deb", "name": ...}],
                              "skipped": ["regex matching the first reason", ...]},
     "/other/file": {"error": "regex matching the CatalogError"}}

Package objects list ``Found`` fields; fields left out take ``Found``'s defaults.
Package order is not compared (it is the file's order, not a contract).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from patchline._model import Ecosystem
from patchline.catalog.interface import Cataloger, CatalogError, Found

DATA = Path(__file__).resolve().parents[2] / "data"


def scenarios(cataloger_dir: str) -> list[Path]:
    """The scenario directories of one cataloger, for ``pytest.mark.parametrize``."""
    found = sorted(p.parent for p in (DATA / cataloger_dir).glob("*/expected.json"))
    assert found, f"no scenarios under {DATA / cataloger_dir}"
    return found


def glob_matches(glob: str, path: str) -> bool:
    """The interface's glob syntax: ``*``/``?`` within a component, ``**/`` any directories."""
    pattern = ""
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            pattern += "(?:[^/]*/)*"
            i += 3
        elif glob[i] == "*":
            pattern += "[^/]*"
            i += 1
        elif glob[i] == "?":
            pattern += "[^/]"
            i += 1
        else:
            pattern += re.escape(glob[i])
            i += 1
    # "**/x" is absolute too: the "/" of the root is one of the directories it spans.
    return re.fullmatch(pattern, path.lstrip("/") if glob.startswith("**/") else path) is not None


def found_from_json(item: dict[str, Any]) -> Found:
    fields = dict(item)
    fields["ecosystem"] = Ecosystem(fields["ecosystem"])
    for key in ("licenses", "owned_paths"):
        if key in fields:
            fields[key] = tuple(fields[key])
    return Found(**fields)


def _order(found: Found) -> tuple[str, str, str]:
    return (found.name, found.arch or "", found.version)


def check_scenario(cataloger: Cataloger, scenario: Path) -> None:
    """Parse every file of the scenario and compare with ``expected.json``."""
    expected: dict[str, dict[str, Any]] = json.loads((scenario / "expected.json").read_text())
    root = scenario / "root"
    files = {"/" + p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}
    assert sorted(expected) == sorted(files), "expected.json must cover exactly the files in root/"
    for image_path, want in expected.items():
        assert any(glob_matches(g, image_path) for g in cataloger.globs), image_path
        data = files[image_path].read_bytes()
        assert len(data) <= cataloger.max_file_size
        if "error" in want:
            with pytest.raises(CatalogError, match=want["error"]):
                cataloger.parse(image_path, data)
            continue
        result = cataloger.parse(image_path, data)
        wanted = sorted((found_from_json(p) for p in want["packages"]), key=_order)
        assert sorted(result.packages, key=_order) == wanted, image_path
        patterns = want.get("skipped", [])
        assert len(result.skipped) == len(patterns), result.skipped
        for pattern, reason in zip(patterns, result.skipped, strict=True):
            assert re.search(pattern, reason), (pattern, reason)

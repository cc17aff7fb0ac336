"""Installed npm packages: ``node_modules/<name>/package.json``, scoped and nested.

Licences: ``license`` as a string (an SPDX expression, kept whole) or as the
deprecated ``{"type": ...}`` object, else the legacy ``licenses`` array of
objects or strings. The file is decoded as UTF-8 (a BOM is dropped) with U+FFFD
replacement; JSON that does not parse, or is not an object, raises
``CatalogError``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from patchline._model import Ecosystem
from patchline.catalog.interface import CatalogError, FileResult, Found

__all__ = ["NpmCataloger"]


@dataclass(frozen=True, slots=True)
class NpmCataloger:
    """Catalogs npm packages installed under any ``node_modules`` directory."""

    name: str = field(default="npm-installed-package-cataloger", init=False)
    version: str = field(default="1", init=False)
    globs: tuple[str, ...] = field(
        default=("**/node_modules/*/package.json", "**/node_modules/@*/*/package.json"),
        init=False,
    )
    max_file_size: int = 8 * 1024 * 1024

    def parse(self, path: str, data: bytes) -> FileResult:
        try:
            manifest = json.loads(data.decode("utf-8-sig", errors="replace"))
        except ValueError as exc:
            raise CatalogError(f"package.json is not valid JSON: {exc}") from exc
        except RecursionError as exc:
            raise CatalogError("package.json is nested too deeply to parse") from exc
        if not isinstance(manifest, dict):
            raise CatalogError(f"package.json holds a {type(manifest).__name__}, not an object")
        name = manifest.get("name")
        version = manifest.get("version")
        if not isinstance(name, str) or not name.strip():
            return FileResult(skipped=("package.json has no name",))
        if not isinstance(version, str) or not version.strip():
            return FileResult(skipped=(f"package {name!r} has no version",))
        return FileResult(
            packages=(
                Found(
                    ecosystem=Ecosystem.NPM,
                    name=name.strip(),
                    version=version.strip(),
                    licenses=_licenses(manifest),
                ),
            )
        )


def _licenses(manifest: dict[str, object]) -> tuple[str, ...]:
    for key in ("license", "licenses"):
        value = manifest.get(key)
        items = value if isinstance(value, list) else [value]
        found = tuple(name for item in items if (name := _licence_name(item)))
        if found:
            return found
    return ()


def _licence_name(item: object) -> str:
    if isinstance(item, dict):
        item = item.get("type")
    return item.strip() if isinstance(item, str) else ""

"""Hostile JSON: about 200 KB of nested brackets where a manifest, an index, a config or an SBOM belongs ends in
one clear error line and exit 2, not a RecursionError traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchline.cli import app
from patchline.errors import ManifestError, SbomError
from patchline.oci._manifest import load_json
from patchline.sbom import load_inventory_json

NESTED = "[" * 100_000 + "]" * 100_000
runner = CliRunner()


def test_a_nested_manifest_is_a_manifest_error() -> None:
    with pytest.raises(ManifestError, match="nested too deeply"):
        load_json(NESTED.encode(), "the manifest")
    with pytest.raises(SbomError, match="nested too deeply"):
        load_inventory_json(NESTED)


@pytest.mark.parametrize("command", ["sbom", "scan"])
def test_a_nested_oci_index_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    monkeypatch.delenv("PATCHLINE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    layout = tmp_path / "layout"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_text(NESTED)
    result = runner.invoke(app, [command, f"oci:{layout}", "--no-cache"])
    assert result.exit_code == 2, result.output
    assert "nested too deeply" in result.stderr and "Traceback" not in result.output
    assert not isinstance(result.exception, RecursionError)


def test_a_nested_sbom_given_to_scan_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATCHLINE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    sbom = tmp_path / "nested.json"
    sbom.write_text(NESTED)
    result = runner.invoke(app, ["scan", "--sbom", str(sbom), "--no-updates"])
    assert result.exit_code == 2, result.output
    assert "nested too deeply" in result.stderr

"""`patchline scan` on an SBOM file with a local OSV feed: formats, --fail-on, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchline.cli import app

SBOM = Path(__file__).resolve().parents[2] / "data" / "sbom" / "debian-app" / "inventory.json"
runner = CliRunner()


@pytest.fixture
def feed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATCHLINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PATCHLINE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "osv"
    root.mkdir()
    (root / "PYSEC-2099-7.json").write_text(json.dumps({
        "id": "PYSEC-2099-7", "aliases": ["CVE-2099-7"], "modified": "2099-01-01T00:00:00Z",
        "summary": "urllib3 leaks headers",
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
        "affected": [{"package": {"ecosystem": "PyPI", "name": "urllib3"},
                      "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.0.0"}, {"fixed": "2.2.2"}]}]}],
    }))
    return root


def scan(*args: str) -> object:
    return runner.invoke(app, ["scan", "--sbom", str(SBOM), "--no-updates", *args])


def test_findings_and_fail_on(feed: Path) -> None:
    result = scan("--osv", str(feed), "--json")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    doc = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert [(f["advisory"], f["package"]["name"], f["fixed_versions"]) for f in doc["findings"]] == [
        ("PYSEC-2099-7", "urllib3", ["2.2.2"])]
    assert doc["findings"][0]["severity"] == "high" and doc["findings"][0]["scores"][0]["score"] == 7.5
    assert scan("--osv", str(feed), "--fail-on", "high").exit_code == 1  # type: ignore[attr-defined]
    assert scan("--osv", str(feed), "--fail-on", "critical").exit_code == 0  # type: ignore[attr-defined]


def test_ignore_rule_moves_the_finding_aside(feed: Path, tmp_path: Path) -> None:
    (tmp_path / "patchline.toml").write_text(
        '[[ignore]]\nid = "CVE-2099-7"\npackage = "urllib3"\nreason = "headers never cross origins here"\n')
    result = scan("--osv", str(feed), "--json", "--fail-on", "low")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    doc = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert doc["findings"] == [] and doc["ignored"][0]["reason"] == "headers never cross origins here"


def test_table_and_sarif(feed: Path) -> None:
    table = scan("--osv", str(feed))
    assert "PYSEC-2099-7" in table.stdout and "1 advisories" in table.stdout  # type: ignore[attr-defined]
    sarif = json.loads(scan("--osv", str(feed), "--format", "sarif").stdout)  # type: ignore[attr-defined]
    assert sarif["runs"][0]["results"][0]["ruleId"] == "PYSEC-2099-7"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan"], "name either an IMAGE or --sbom FILE"),
        (["scan", "--sbom", "/nonexistent.json", "--no-updates"], "cannot read SBOM"),
        (["scan", "--sbom", str(SBOM), "--no-updates", "--osv", "/nonexistent/feed"], "does not exist"),
    ],
)
def test_errors_exit_2(feed: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output

"""The command line on real OCI layouts: formats, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchline.cli import app
from tests.support.ocibuild import file, write_layout

STATUS = """Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9+deb12u4
Source: glibc
Description: GNU C Library

Package: zlib1g
Status: install ok installed
Architecture: amd64
Version: 1:1.2.13.dfsg-1
Source: zlib
Description: compression library
"""


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATCHLINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PATCHLINE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "layout"
    write_layout(root, [
        [file("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n"), file("var/lib/dpkg/status", STATUS)],
        [file("srv/node_modules/broken/package.json", "{")],
    ])
    return root


runner = CliRunner()


def test_table_is_the_default(layout: Path) -> None:
    result = runner.invoke(app, ["sbom", f"oci:{layout}"])
    assert result.exit_code == 0, result.output
    assert "libc6" in result.stdout and "2.36-9+deb12u4" in result.stdout
    assert "2 packages (deb 2)" in result.stdout
    assert "/srv/node_modules/broken/package.json" in result.stdout  # the skip is shown


@pytest.mark.parametrize(("fmt", "key"), [("json", "packages"), ("cyclonedx", "components"), ("spdx", "packages")])
def test_machine_formats_are_pure_json_on_stdout(layout: Path, fmt: str, key: str) -> None:
    result = runner.invoke(app, ["sbom", f"oci:{layout}", "--format", fmt])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    names = {c["name"] for c in doc[key]}
    assert {"libc6", "zlib1g"} <= names


def test_json_flag_and_output_file(layout: Path, tmp_path: Path) -> None:
    out = tmp_path / "inv.json"
    result = runner.invoke(app, ["sbom", f"oci:{layout}", "--json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert {p["name"] for p in json.loads(out.read_text())["packages"]} == {"libc6", "zlib1g"}


def test_strict_turns_skips_into_exit_1(layout: Path) -> None:
    result = runner.invoke(app, ["sbom", f"oci:{layout}", "--json", "--strict"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["packages"]  # the document is still written


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sbom", "oci:/nonexistent/layout"], "not an OCI image layout"),
        (["sbom", "Not A Reference"], "invalid image reference"),
        (["sbom", "oci:{layout}:missing-tag"], "no image named 'missing-tag'"),
        (["sbom", "oci:{layout}", "--catalogers", "dpkg,nope"], "unknown cataloger"),
        (["sbom", "oci:{layout}", "--platform", "linux"], "os/arch"),
    ],
)
def test_errors_are_one_line_and_exit_2(layout: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [a.replace("{layout}", str(layout)) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1

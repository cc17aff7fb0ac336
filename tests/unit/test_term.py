"""Text from images reaches the terminal with its control characters shown, never sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from patchline._term import escape, printable
from patchline.cli import app

HOSTILE = "libevil\x1b]0;pwned\x07\x1b[2J\u202egnp.exe"


def test_printable_shows_every_control_character() -> None:
    shown = printable(HOSTILE)
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert shown == "libevil\\x1b]0;pwned\\x07\\x1b[2J\\u202egnp.exe"
    assert printable("tab\tand\nnewline stay") == "tab\tand\nnewline stay"
    assert escape("[bold]x[/]\x1b") == "\\[bold]x\\[/]\\x1b"


def test_a_hostile_image_name_reaches_the_terminal_escaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from patchline.sbom import load_inventory_json, render_sbom

    monkeypatch.delenv("PATCHLINE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    data = Path(__file__).resolve().parent.parent / "data" / "sbom" / "debian-app" / "inventory.json"
    doc = json.loads(data.read_text())
    doc["image"]["reference"] = HOSTILE
    sbom = tmp_path / "hostile.json"
    sbom.write_text(render_sbom(load_inventory_json(json.dumps(doc)), "json"))
    result = CliRunner().invoke(app, ["scan", "--sbom", str(sbom), "--no-updates"], terminal_width=300)
    assert result.exit_code in (0, 3), result.output
    assert "libevil\\x1b]0;pwned" in result.stdout  # shown, not sent
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout

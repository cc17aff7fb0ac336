"""`--help` of every command and subcommand: it renders, exits 0, and shows the text as written.

The tree is walked from the Typer app itself, so a command added later is covered
without a new line here. Help text is plain text, never Rich markup: an option
that names `[build] jobs` or `os/arch[/variant]` must show the brackets.
"""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from patchline.cli import app

runner = CliRunner()


def _paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    subcommands = getattr(command, "commands", None)  # a group (typer may vendor its own click)
    if subcommands:
        for name, sub in sorted(subcommands.items()):
            out += _paths(sub, (*prefix, name))
    return out


ROOT = typer.main.get_command(app)
PATHS = _paths(ROOT)


def test_the_tree_is_walked() -> None:
    # The walk must reach nested groups, not only the top level.
    names = {" ".join(p) for p in PATHS}
    assert {"sbom", "scan", "run", "report", "demo", "demo down", "events deliver", "discover podman",
            "keys generate", "db upgrade"} <= names


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "patchline")
def test_help_renders(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Usage:" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("path", "text"), [
    (("sbom",), "os/arch[/variant]"),
    (("scan",), "os/arch[/variant]"),
    (("rebuild",), "[build] jobs"),
])
def test_help_keeps_brackets(path: tuple[str, ...], text: str) -> None:
    result = runner.invoke(app, [*path, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert text in " ".join(result.output.split()), result.output


def test_insecure_says_it_applies_to_the_named_registry_host_only() -> None:
    helps = {p: runner.invoke(app, [*p, "--help"], terminal_width=200).output for p in PATHS if p}
    with_insecure = {p: " ".join(h.replace("│", " ").split()) for p, h in helps.items() if "--insecure" in h}
    assert {("scan",), ("discover", "registry")} <= set(with_insecure)
    for path, text in with_insecure.items():
        assert "only; every other host keeps TLS verification" in text, (path, text)

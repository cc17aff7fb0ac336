"""The ``patchline`` Typer app: global options, every command from one list, the one error handler.

Exit codes: 0 success; 1 the command worked and found what ``--strict`` (or a
``--fail-on`` option) makes fatal; 2 an error (one line on stderr, the detail
with ``-v``); 3 ``scan`` could not assess the image.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from patchline import __version__
from patchline._term import escape, printable
from patchline.cli import (
    _build,
    _demo,
    _events,
    _feeds,
    _fleet,
    _keys,
    _pipeline,
    _policy,
    _report,
    _rollout,
    _scan,
    _verify,
)
from patchline.cli._options import state
from patchline.cli._output import stderr
from patchline.errors import Error


def _report_error(exc: Error) -> None:
    stderr.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
    if state.verbose and exc.detail:
        stderr.print(printable(exc.detail), soft_wrap=True, markup=False)
    if state.verbose > 1 and exc.__cause__ is not None:
        stderr.print(printable(f"caused by: {type(exc.__cause__).__name__}: {exc.__cause__}"), markup=False)


class _PatchlineGroup(TyperGroup):
    """The root command. Every command runs inside its ``invoke``, whether from ``main()`` or a test's
    ``CliRunner().invoke(app)``: so commands just raise, and ``Error`` is caught here, once."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Error as exc:
            _report_error(exc)
            raise typer.Exit(2) from exc


app = typer.Typer(rich_markup_mode=None,
    name="patchline",
    help="Keep a fleet of container images patched: inventory, assess, rebuild, roll out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_PatchlineGroup,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"patchline {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More detail; repeat for more.")] = 0,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="patchline.toml to use.", envvar="PATCHLINE_CONFIG")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    state.verbose = verbose
    state.config_path = config


# Every command and command group, in the order `patchline --help` lists them (Typer lists groups last).
COMMANDS: tuple[tuple[str, Callable[..., None] | typer.Typer], ...] = (
    ("sbom", _scan.sbom),
    ("scan", _scan.scan),
    ("refresh", _fleet.refresh),
    ("where", _fleet.where),
    ("fleet", _fleet.fleet),
    ("advisory", _fleet.advisory),
    ("rollout", _rollout.rollout),
    ("rollback", _rollout.rollback),
    ("status", _rollout.status),
    ("plan", _build.plan),
    ("rebuild", _build.rebuild),
    ("run", _pipeline.run_command),
    ("trigger", _pipeline.trigger),
    ("approve", _pipeline.approve),
    ("runs", _pipeline.runs),
    ("report", _report.report),
    ("verify", _verify.verify),
    ("discover", _fleet.discover_app),
    ("db", _fleet.db_app),
    ("keys", _keys.keys_app),
    ("events", _events.events_app),
    ("demo", _demo.demo_app),
    ("policy", _policy.policy_app),
    ("feeds", _feeds.feeds_app),
)

for _name, _command in COMMANDS:
    if isinstance(_command, typer.Typer):
        app.add_typer(_command, name=_name)
    else:
        app.command(_name)(_command)


def main() -> None:
    """The ``patchline`` console script."""
    app()

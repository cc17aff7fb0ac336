"""``patchline rollout``, ``rollback`` and ``status``: services on podman, canary and waves, automatic rollback."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from patchline._term import escape
from patchline.cli._options import DbOption, Format, FormatOption, JsonOption, chosen_format, open_db, state
from patchline.cli._output import dump, emit, say, stderr, warn_undelivered
from patchline.errors import ConfigError

if TYPE_CHECKING:
    from patchline._config import Config
    from patchline.rollout import RolloutResult, ServiceStatus
    from patchline.store import Store

_STATE_STYLE = {"succeeded": "green", "rolled-back": "yellow", "failed": "bold red", "running": "cyan",
                "rolling-back": "yellow"}


def _run(db: str | None, fmt: Format, work: Callable[[Config, Store], list[RolloutResult]]) -> None:
    """Run rollouts, deliver the events they wrote (even when one fails), render, set the exit code."""
    from patchline.events import deliver_configured

    config = state.config()
    with open_db(db) as store:
        try:
            results = work(config, store)
        finally:
            warn_undelivered(deliver_configured(store, config.events))
    _finish(results, fmt)


def _finish(results: list[RolloutResult], fmt: Format) -> None:
    if fmt is Format.JSON:
        emit(None, text=dump("patchline/rollout/v1", {"rollouts": [r.as_dict() for r in results]}))
    else:
        for r in results:
            style = _STATE_STYLE.get(r.state.value, "")
            stderr.print(f"rollout {r.rollout_id} of [bold]{escape(r.service)}[/]: [{style}]{r.state.value}[/]"
                         + (f": {escape(r.reason)}" if r.reason else ""))
    if any(not r.ok for r in results):
        raise typer.Exit(1)


def rollout(
    service: Annotated[str | None, typer.Argument(help="A service of [[services]]; omit with --resume")] = None,
    to: Annotated[str | None, typer.Option("--to", help="sha256:... or repository@sha256:...; default: the "
                                           "service's recipe's current build")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="rolling, canary or all-at-once "
                                                 "(default: the service's)")] = None,
    resume_only: Annotated[bool, typer.Option("--resume", help="Only finish rollouts a stopped patchline left")]
    = False,
    db: DbOption = None,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """Roll a service out to a new digest: canary or waves, each replica health-gated, rolled back on failure.

    An unfinished rollout (patchline was killed) is resumed first. The image must be signed by patchline's key
    (unless [rollout] require_signature = false) and must not be unpromotable. Exits 1 when the rollout rolled
    back or failed.
    """
    from patchline.rollout import resume_service_rollouts, rollout_service

    if strategy is not None and strategy not in ("rolling", "canary", "all-at-once"):
        raise ConfigError(f"unknown strategy {strategy!r}: rolling, canary or all-at-once")
    if service is None and not resume_only:
        raise ConfigError("name a service (or --resume to finish unfinished rollouts)")

    def work(config: Config, store: Store) -> list[RolloutResult]:
        if resume_only:
            return resume_service_rollouts(config, store, progress=say)
        assert service is not None
        return [rollout_service(config, store, service, to=to, strategy=strategy, progress=say)]

    _run(db, chosen_format(output_format, json_output), work)


def rollback(
    service: Annotated[str, typer.Argument(help="A service of [[services]]")],
    db: DbOption = None,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """Roll a service back to the image it ran before its last successful rollout (one replica at a time)."""
    from patchline.rollout import rollback_service

    _run(db, chosen_format(output_format, json_output),
         lambda config, store: [rollback_service(config, store, service, progress=say)])


def _status_table(statuses: list[ServiceStatus], console: Console) -> None:
    if not statuses:
        console.print(escape("no services: add [[services]] to patchline.toml"))
    for s in statuses:
        last = s.last_rollout
        title = (f"{s.name}  {s.healthy}/{s.replicas_wanted} healthy  {s.repository}"
                 + (f"  last rollout {last.id}: {last.state}" if last else ""))
        table = Table(title=escape(title), title_justify="left")
        for col in ("replica", "container", "digest", "running", "restarts", "runtime", "health"):
            table.add_column(col)
        for r in s.replicas:
            digest = (r.replica.image.rpartition("@")[2] or r.replica.image)[:19]
            health = f"[green]{escape(r.probe.detail)}[/]" if r.probe.healthy else f"[red]{escape(r.probe.detail)}[/]"
            table.add_row(str(r.replica.index), escape(r.replica.container), digest,
                          "yes" if r.replica.running else "[red]no[/]", str(r.replica.restarts),
                          "gVisor (runsc)" if r.replica.runtime == "runsc" else "default", health)
        console.print(table)
        if s.unpromotable:
            console.print(f"[dim]unpromotable: {', '.join(d[:19] for d in s.unpromotable)}[/]")


def status(
    db: DbOption = None,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """The services: replicas, the digest each runs, health, restarts, the last rollout."""
    from patchline.rollout import make_target, service_status

    fmt = chosen_format(output_format, json_output)
    config = state.config()
    with open_db(db) as store:
        target = make_target(config, pulls=False)  # status looks and probes, never pulls
        statuses = service_status(config, store, target)
    if fmt is Format.JSON:
        emit(None, text=dump("patchline/status/v1", {"services": [s.as_dict() for s in statuses]}))
    else:
        emit(None, table=lambda console: _status_table(statuses, console))

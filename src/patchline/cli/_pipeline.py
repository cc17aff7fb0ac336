"""``patchline run``, ``trigger``, ``approve`` and ``runs``: the continuous pipeline."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from patchline.cli._options import (
    DbOption,
    Format,
    FormatOption,
    JsonOption,
    chosen_format,
    open_db,
    requested_by,
    state,
)
from patchline.cli._output import dump, emit, render_run, say, stderr

if TYPE_CHECKING:
    from patchline.store import RunRow


def run_document(run: RunRow) -> dict[str, Any]:
    return {"id": run.id, "trigger": run.trigger, "triggered_by": run.triggered_by, "state": run.state,
            "step": run.step, "error": run.error, "inputs": dict(run.inputs),
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "steps": [{"step": s.step, "state": s.state, "attempts": s.attempts, "owner": s.owner,
                       "started_at": s.started_at.isoformat() if s.started_at else None,
                       "finished_at": s.finished_at.isoformat() if s.finished_at else None,
                       "output": dict(s.output)} for s in run.steps]}


def run_command(
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit")] = False,
    interval: Annotated[float | None, typer.Option("--interval", help="Minutes between runs (default: "
                                                   "[pipeline] interval_minutes)")] = None,
    db: DbOption = None,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """Keep the fleet patched: detect, assess, plan, build, roll out, report; durable and resumable.

    A run killed at any point resumes where it stopped on the next start. Without --once it runs every
    interval and whenever `patchline trigger` asks; SIGTERM finishes the current step and exits. Exits 1 when
    the (last) run failed.
    """
    from patchline.pipeline import RunOptions, run_forever, run_once

    fmt = chosen_format(output_format, json_output)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _s, _f: stop.set())
    last: list[RunRow] = []
    config = state.config()
    with open_db(db) as store:
        if once:
            last.append(run_once(config, store, options=RunOptions("once", requested_by(),
                                                                 config.pipeline.lease_seconds),
                                 progress=say, stop=stop))
        else:
            def show(run: RunRow) -> None:
                last[:] = [run]
                if fmt is Format.TABLE:
                    render_run(run, stderr)

            minutes = interval if interval is not None else config.pipeline.interval_minutes
            run_forever(config, store, interval=minutes * 60, stop=stop,
                        options=RunOptions("interval", requested_by(), config.pipeline.lease_seconds),
                        progress=say, on_run=show)
    if not last:
        return
    run = last[-1]
    if fmt is Format.JSON:
        emit(None, text=dump("patchline/run/v1", run_document(run)))
    elif once:
        emit(None, table=lambda console: render_run(run, console))
    if run.state == "failed":
        raise typer.Exit(1)


def trigger(
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the run)")] = "",
    db: DbOption = None,
) -> None:
    """Ask a running `patchline run` for a pass now (the next `patchline run --once` takes it too)."""
    with open_db(db) as store:
        ident = store.add_trigger(requested_by=requested_by(), reason=reason)
    stderr.print(f"trigger {ident} queued")


def approve(
    run_id: Annotated[int, typer.Argument(help="The run waiting for approval")],
    services: Annotated[list[str] | None, typer.Argument(help="Services to approve (default: every one waiting)")]
    = None,
    db: DbOption = None,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """Approve the rollouts a run is waiting for (services with auto_rollout = false), and finish the run."""
    from patchline.pipeline import approve as approve_run

    fmt = chosen_format(output_format, json_output)
    config = state.config()
    with open_db(db) as store:
        run = approve_run(config, store, run_id, services or [], approved_by=requested_by(), progress=say)
    if fmt is Format.JSON:
        emit(None, text=dump("patchline/run/v1", run_document(run)))
    else:
        emit(None, table=lambda console: render_run(run, console))
    if run.state == "failed":
        raise typer.Exit(1)


def runs(
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first")] = 20,
    db: DbOption = None,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """The run history: who or what triggered each run, its inputs, each step's result."""
    fmt = chosen_format(output_format, json_output)
    with open_db(db) as store:
        found = store.runs(limit=limit)
    if fmt is Format.JSON:
        emit(None, text=dump("patchline/runs/v1", {"runs": [run_document(r) for r in found]}))
        return

    def render(console: Console) -> None:
        if not found:
            console.print("no runs yet: `patchline run --once`")
        for run in found:
            render_run(run, console)

    emit(None, table=render)

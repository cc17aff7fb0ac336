"""``patchline run``, ``trigger``, ``approve`` and ``runs``: the continuous pipeline."""

from __future__ import annotations

import getpass
import signal
import socket
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from patchline._cli_fleet import DbOption, Format, FormatOption, JsonOption, _dump, _format, _store
from patchline._owner import owner_dead
from patchline._term import escape
from patchline.cli import _emit, _fail, app, state, stderr
from patchline.errors import Error

if TYPE_CHECKING:
    from patchline.store import RunRow, StepRow

_STATE_STYLE = {"succeeded": "green", "failed": "bold red", "running": "cyan", "awaiting-approval": "yellow"}


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _say(line: str) -> None:
    stderr.print(escape(line), style="dim", soft_wrap=True)


def run_document(run: RunRow) -> dict[str, Any]:
    return {"id": run.id, "trigger": run.trigger, "triggered_by": run.triggered_by, "state": run.state,
            "step": run.step, "error": run.error, "inputs": dict(run.inputs),
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "steps": [{"step": s.step, "state": s.state, "attempts": s.attempts, "owner": s.owner,
                       "started_at": s.started_at.isoformat() if s.started_at else None,
                       "finished_at": s.finished_at.isoformat() if s.finished_at else None,
                       "output": dict(s.output)} for s in run.steps]}


def _run_table(run: RunRow, console: Console) -> None:
    style = _STATE_STYLE.get(run.state, "")
    console.print(f"run {run.id} ({escape(run.trigger)}, by {escape(run.triggered_by)}): [{style}]{run.state}[/]"
                  + (f": {escape(run.error)}" if run.error else ""))
    table = Table(show_edge=False)
    for col in ("step", "state", "seconds", "what happened"):
        table.add_column(col)
    for s in run.steps:
        table.add_row(s.step, s.state, str(s.output.get("seconds", "")), escape(_what(s)))
    console.print(table)


def _what(row: StepRow) -> str:
    """What a step did, or is doing: a step not done has no output to describe yet."""
    step, out = row.step, row.output
    if row.state == "running":
        since = f" since {row.started_at:%H:%M:%S} UTC" if row.started_at else ""
        gone = "; its process is gone: the next start resumes it" if row.owner and owner_dead(row.owner) else ""
        return f"running{since} (attempt {row.attempts}, {row.owner}){gone}"
    if row.state == "pending":
        return ""
    if "error" in out:
        return str(out["error"])
    if step == "detect":
        parts = []
        if "updates" in out:
            parts.append(f"{out['updates']['pending']} pending update(s) in {out['updates']['images']} image(s)")
        if "feeds" in out:
            parts.append(f"{len(out['feeds'])} feed(s)")
        if "workloads" in out and "running" in out["workloads"]:
            parts.append(f"{out['workloads']['running']} workload(s) on podman")
        return "; ".join(parts)
    if step == "assess":
        return (f"{out.get('exposed_items', 0)} exposure(s), {out.get('new_items', 0)} new; dirty: "
                f"{', '.join(out.get('dirty', [])) or 'none'}")
    if step == "plan":
        items = out.get("items", [])
        return ", ".join(f"{i['name']} ({'; '.join(r['code'] for r in i['reasons'])})" for i in items) or "nothing"
    if step == "build":
        return ", ".join(f"{r['name']} {r['status']}" + (f" (attempt {r['attempt']})" if r.get("attempt") else "")
                         for r in out.get("results", [])) or "nothing to build"
    if step == "rollout":
        return ", ".join(f"{n} {s['state']}" for n, s in out.get("services", {}).items()) or "no services"
    if step == "report":
        return f"{out.get('deployed', 0)} patched and running, {out.get('open', 0)} still open"
    return ""


@app.command("run")
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

    fmt = _format(output_format, json_output)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _s, _f: stop.set())
    last: list[RunRow] = []
    try:
        config = state.config()
        with _store(db) as store:
            if once:
                last.append(run_once(config, store, options=RunOptions("once", _who(),
                                                                     config.pipeline.lease_seconds),
                                     progress=_say, stop=stop))
            else:
                def show(run: RunRow) -> None:
                    last[:] = [run]
                    if fmt is Format.TABLE:
                        _run_table(run, stderr)

                minutes = interval if interval is not None else config.pipeline.interval_minutes
                run_forever(config, store, interval=minutes * 60, stop=stop,
                            options=RunOptions("interval", _who(), config.pipeline.lease_seconds),
                            progress=_say, on_run=show)
    except Error as exc:
        _fail(exc)
    if not last:
        return
    run = last[-1]
    if fmt is Format.JSON:
        _emit(None, text=_dump("patchline/run/v1", run_document(run)))
    elif once:
        _emit(None, table=lambda console: _run_table(run, console))
    if run.state == "failed":
        raise typer.Exit(1)


@app.command()
def trigger(
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the run)")] = "",
    db: DbOption = None,
) -> None:
    """Ask a running `patchline run` for a pass now (the next `patchline run --once` takes it too)."""
    try:
        with _store(db) as store:
            ident = store.add_trigger(requested_by=_who(), reason=reason)
    except Error as exc:
        _fail(exc)
    stderr.print(f"trigger {ident} queued")


@app.command()
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

    fmt = _format(output_format, json_output)
    try:
        config = state.config()
        with _store(db) as store:
            run = approve_run(config, store, run_id, services or [], approved_by=_who(), progress=_say)
    except Error as exc:
        _fail(exc)
    if fmt is Format.JSON:
        _emit(None, text=_dump("patchline/run/v1", run_document(run)))
    else:
        _emit(None, table=lambda console: _run_table(run, console))
    if run.state == "failed":
        raise typer.Exit(1)


@app.command()
def runs(
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first")] = 20,
    db: DbOption = None,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """The run history: who or what triggered each run, its inputs, each step's result."""
    fmt = _format(output_format, json_output)
    try:
        with _store(db) as store:
            found = store.runs(limit=limit)
    except Error as exc:
        _fail(exc)
    if fmt is Format.JSON:
        _emit(None, text=_dump("patchline/runs/v1", {"runs": [run_document(r) for r in found]}))
        return

    def render(console: Console) -> None:
        if not found:
            console.print("no runs yet: `patchline run --once`")
        for run in found:
            _run_table(run, console)

    _emit(None, table=render)

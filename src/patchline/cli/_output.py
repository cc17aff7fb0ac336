"""Where the CLI writes: tables and documents on stdout (or ``--output``), messages on stderr, JSON dumping."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from patchline._owner import owner_dead
from patchline._term import escape

if TYPE_CHECKING:
    from patchline.events import DeliveryReport
    from patchline.store import RunRow, StepRow

stderr = Console(stderr=True, highlight=False)


def stdout_console() -> Console:
    # Piped tables are read by grep and awk: don't fold them at 80 columns.
    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=200)


def emit(output: Path | None, *, table: Callable[[Console], None] | None = None, text: str | None = None) -> None:
    """Write a rendered table or a document to ``output``, or to stdout."""
    if table is not None:
        if output is None:
            table(stdout_console())
        else:
            with output.open("w", encoding="utf-8") as fh:
                table(Console(file=fh, width=200))
        return
    assert text is not None
    text = text if text.endswith("\n") else text + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")


def jsonable(value: Any) -> Any:
    """``value`` with dataclasses as objects, datetimes as ISO 8601 UTC (``Z``), tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def dump(schema: str, body: dict[str, Any]) -> str:
    """A JSON document: ``schema`` first, then ``body``."""
    return json.dumps({"schema": schema, **jsonable(body)}, indent=2, sort_keys=False)


def say(line: str) -> None:
    """A progress line on stderr, dimmed."""
    stderr.print(escape(line), style="dim", soft_wrap=True)


def warn_undelivered(report: DeliveryReport | None) -> None:
    """After a best-effort delivery: each failing sink, and that its events wait in the outbox."""
    for sink in report.sinks if report is not None else ():
        if sink.failed:
            stderr.print(f"[yellow]events: {escape(sink.name)}: {escape(sink.error)}; {sink.backlog} event(s) kept "
                         "in the outbox (`patchline events deliver` retries)[/]")


_RUN_STATE_STYLE = {"succeeded": "green", "failed": "bold red", "running": "cyan", "awaiting-approval": "yellow"}


def render_run(run: RunRow, console: Console) -> None:
    """One pipeline run: its state and a row per step saying what the step did."""
    style = _RUN_STATE_STYLE.get(run.state, "")
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

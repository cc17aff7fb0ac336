"""``patchline report``: time to patch per advisory, update and service; what is still exposed and why; runs."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from patchline._term import escape
from patchline.cli._options import DbOption, Format, FormatOption, JsonOption, chosen_format, open_db
from patchline.cli._output import dump, emit

if TYPE_CHECKING:
    from patchline.pipeline import PatchReport, RunSummary

REPORT_SCHEMA = "patchline/report/v1"
_STATE_STYLE = {"succeeded": "green", "failed": "bold red", "running": "cyan", "awaiting-approval": "yellow",
                "deployed": "green", "stuck": "bold red", "rebuilt": "yellow", "open": "red", "done": "green"}
_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def humanize_seconds(seconds: float | None) -> str:
    """``192`` -> ``"3 min 12 s"``: the two largest units; under ten seconds, tenths."""
    if seconds is None:
        return "-"
    if seconds < 0:
        return "-" + humanize_seconds(-seconds)
    if seconds < 10:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    left = round(seconds)
    for index, (unit, size) in enumerate(_UNITS):
        if left >= size or size == 1:
            count, rest = divmod(left, size)
            text = f"{count} {unit}"
            if index + 1 < len(_UNITS):
                small_unit, small_size = _UNITS[index + 1]
                if rest // small_size:
                    text += f" {rest // small_size} {small_unit}"
            return text
    raise AssertionError("unreachable: the last unit is one second")


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def _styled(state: str) -> str:
    style = _STATE_STYLE.get(state)
    return f"[{style}]{escape(state)}[/]" if style else escape(state)


def _steps(run: RunSummary) -> str:
    return ", ".join(f"{s.step} {s.state}" + (f" {humanize_seconds(s.seconds)}" if s.seconds is not None else "")
                     for s in run.steps if s.state != "pending") or "-"


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    return table


def render_report(report: PatchReport, console: Console) -> None:
    if not report.items and not report.runs and not report.cannot_assess:
        console.print("nothing recorded yet: `patchline run --once`")
        return
    if report.items:
        table = _table("time to patch (per advisory and update)", "KIND", "ITEM", "FIRST SEEN", "REBUILT",
                       "DEPLOYED", "TIME TO PATCH", "RECIPES")
        for i in report.items:
            if i.exposed:
                ttp = f"[red]exposed {humanize_seconds(i.age)}[/]"
            elif i.time_to_patch is None:
                ttp = "closed: no longer reported"
            else:
                ttp = humanize_seconds(i.time_to_patch)
            table.add_row(i.kind, escape(i.item), _when(i.first_seen), _when(i.last_rebuilt), _when(i.last_deployed),
                          ttp, escape(", ".join(sorted({e.recipe for e in i.recipes}))))
        console.print(table)
        console.print()
    if report.services:
        table = _table("time to patch (per service)", "SERVICE", "RECIPES", "PATCHED", "OPEN", "MEDIAN", "P90",
                       "WORST")
        for s in report.services:
            t = s.time_to_patch
            table.add_row(escape(s.service), escape(", ".join(s.recipes)), str(s.deployed),
                          f"[red]{s.open}[/]" if s.open else "0", humanize_seconds(t.median), humanize_seconds(t.p90),
                          humanize_seconds(t.worst))
        console.print(table)
    o = report.overall
    console.print(f"\n{report.items_patched} of {report.items_total} item(s) patched everywhere; time to patch "
                  f"median {humanize_seconds(o.median)}, p90 {humanize_seconds(o.p90)}, worst "
                  f"{humanize_seconds(o.worst)}; {report.items_exposed} still exposed\n", soft_wrap=True)
    if report.still_exposed:
        table = _table("still exposed", "KIND", "ITEM", "RECIPE", "STATE", "AGE", "WHY")
        for x in report.still_exposed:
            table.add_row(x.kind, escape(x.item), escape(x.recipe), _styled(x.state), humanize_seconds(x.age),
                          escape(x.why))
        console.print(table)
        console.print()
    if report.cannot_assess:
        table = _table("cannot assess (unknown, not clean)", "IMAGE", "RUNNING", "WHY")
        for c in report.cannot_assess:
            table.add_row(escape(c.image), str(c.workloads or ""), escape(c.why))
        console.print(table)
        console.print()
    if report.runs:
        table = _table("runs (newest first)", "RUN", "TRIGGER", "BY", "STATE", "STARTED", "TOOK", "STEPS",
                       "INPUTS", "ERROR")
        for r in report.runs:
            table.add_row(str(r.id), escape(r.trigger), escape(r.triggered_by), _styled(r.state), _when(r.started_at),
                          humanize_seconds(r.seconds), escape(_steps(r)), escape(", ".join(sorted(r.inputs)) or "-"),
                          escape(r.error))
        console.print(table)


def report(
    runs: Annotated[int, typer.Option("--runs", min=0, help="How many runs of the history to show, newest "
                                      "first")] = 10,
    db: DbOption = None,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """Time to patch per advisory, update and service (median, p90, worst); what is still exposed and why; runs.

    Durations in --json are seconds, timestamps ISO 8601 UTC. p90 is the nearest-rank 90th percentile.
    """
    from patchline.pipeline import patch_report

    fmt = chosen_format(output_format, json_output)
    with open_db(db) as store:
        found = patch_report(store, runs=runs)
    if fmt is Format.JSON:
        emit(None, text=dump(REPORT_SCHEMA, {
            "generated_at": found.generated_at, "items_total": found.items_total,
            "items_patched": found.items_patched, "items_exposed": found.items_exposed, "overall": found.overall,
            "items": found.items, "services": found.services, "still_exposed": found.still_exposed,
            "cannot_assess": found.cannot_assess, "runs": found.runs}))
        return
    emit(None, table=lambda console: render_report(found, console))

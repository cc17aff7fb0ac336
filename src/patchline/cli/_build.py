"""``patchline plan`` and ``patchline rebuild``: the fleet's rebuild plan, and running it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from patchline._term import escape
from patchline.cli._options import DbOption, Format, FormatOption, JsonOption, chosen_format, open_db, state
from patchline.cli._output import dump, emit, say, stderr, warn_undelivered

if TYPE_CHECKING:
    from patchline.build import RebuildPlan, RebuildReport

ForceOption = Annotated[list[str] | None, typer.Option("--force", help="Rebuild this image whatever its state "
                                                                       "(repeatable).")]
OnlyOption = Annotated[list[str] | None, typer.Option("--only", help="Plan only this image and its dependants "
                                                                     "(repeatable).")]

_STATUS_STYLE = {"built": "green", "unchanged": "cyan", "skipped": "cyan", "failed": "bold red",
                 "verify-failed": "bold red", "blocked": "yellow"}


def _plan_tree(plan: RebuildPlan, console: Console) -> None:
    if not plan.items and not plan.cannot_assess:
        console.print(f"Nothing to rebuild: {plan.recipes} image(s), all clean.")
    elif not plan.items:
        console.print(f"Nothing to rebuild; {len(plan.cannot_assess)} of {plan.recipes} image(s) cannot be assessed "
                      "(unknown, not clean).")
    else:
        order = {item.name: n for n, item in enumerate(plan.items, 1)}
        root = Tree(f"[bold]rebuild plan[/]: {len(plan.items)} of {plan.recipes} image(s), "
                    f"{len(plan.waves)} wave(s)")
        nodes: dict[str, Tree] = {}
        for item in plan.items:
            parent = nodes.get(item.after[0]) if item.after else None
            label = (f"[bold]{order[item.name]}. {escape(item.name)}[/] [dim]wave {item.wave} -> "
                     f"{escape(item.recipe.target)}[/]")
            if item.recipe.kind.value == "patch":
                label += " [magenta](patch in place)[/]"
            node = (parent or root).add(label)
            for reason in item.reasons:
                node.add(f"[yellow]{reason.code.value}[/]: {escape(reason.detail)}")
            nodes[item.name] = node
        console.print(root)
    for name, why in plan.skipped:
        console.print(f"[yellow]cannot plan[/] {escape(name)}: {escape(why)}")
    for name, why in plan.cannot_assess:
        console.print(f"[red]cannot assess[/] {escape(name)}: {escape(why)}")


def plan(
    db: DbOption = None,
    force: ForceOption = None,
    only: OnlyOption = None,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """Which images of the fleet must be rebuilt, why, and in which order (nothing is built)."""
    from patchline.build import plan_fleet

    with open_db(db) as store:
        fleet = plan_fleet(state.config(), store, force=force or (), only=only)
    if chosen_format(output_format, json_output) is Format.JSON:
        emit(None, text=dump("patchline/plan/v1", fleet.plan.as_dict()))
        return
    emit(None, table=lambda console: _plan_tree(fleet.plan, console))


def _report_table(report: RebuildReport, console: Console) -> None:
    table = Table(title=f"rebuild {report.run_id} ({report.seconds:.0f} s)", title_justify="left")
    for column in ("image", "status", "digest", "time", "detail"):
        table.add_column(column, overflow="fold")
    for r in report.results:
        style = _STATUS_STYLE.get(r.status.value, "")
        detail = r.error or (", ".join(x.code.value for x in r.reasons))
        if r.verification and r.verification.fixed:
            detail += f"; fixed {len(r.verification.fixed)}"
        table.add_row(escape(r.name), f"[{style}]{r.status.value}[/]", (r.manifest_digest or "")[:19],
                      f"{r.seconds:.0f} s", escape(detail))
    console.print(table)
    if any(r.log for r in report.results):
        console.print(f"[dim]build logs: {escape(str(next(r.log for r in report.results if r.log).parent))}[/]")


def rebuild(
    db: DbOption = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", min=1, help="Builds at once (default: [build] jobs, "
                                                                         "else the number of cores).")] = None,
    force: ForceOption = None,
    only: OnlyOption = None,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """Plan, then build every dirty image (bases first), verify it by rescanning, push it by digest.

    Exits 1 when a build failed, failed verification or was blocked by a failed base, or when an image could
    not be planned (an outside base that cannot be resolved).
    """
    from patchline.build import plan_fleet, rebuild, rebuild_options
    from patchline.events import deliver_configured

    config = state.config()
    with open_db(db) as store:
        fleet = plan_fleet(config, store, force=force or (), only=only)
        fmt = chosen_format(output_format, json_output)
        if fmt is Format.TABLE:
            _plan_tree(fleet.plan, stderr)
        options = rebuild_options(config, jobs=jobs, say=say) if fleet.plan else rebuild_options(
            config, jobs=jobs, sign=False)
        try:
            report = rebuild(fleet.plan, fleet.graph, store, options, hashes=fleet.hashes, progress=say)
        finally:
            warn_undelivered(deliver_configured(store, config.events))
    if fmt is Format.JSON:
        emit(None, text=dump("patchline/rebuild/v1", report.as_dict(plan=fleet.plan)))
    elif report.results:
        emit(None, table=lambda console: _report_table(report, console))
    if not report.ok or fleet.plan.skipped:
        raise typer.Exit(1)

"""``patchline plan`` and ``patchline rebuild``: the fleet's rebuild plan, and running it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from patchline._cli_fleet import DbOption, Format, FormatOption, JsonOption, _dump, _format, _store
from patchline._cli_rollout import deliver_events
from patchline._term import escape
from patchline.cli import _emit, _fail, app, state, stderr
from patchline.errors import Error

if TYPE_CHECKING:
    from patchline.build import BuildResult, PlanItem, RebuildPlan, RebuildReport

ForceOption = Annotated[list[str] | None, typer.Option("--force", help="Rebuild this image whatever its state "
                                                                       "(repeatable).")]
OnlyOption = Annotated[list[str] | None, typer.Option("--only", help="Plan only this image and its dependants "
                                                                     "(repeatable).")]

_STATUS_STYLE = {"built": "green", "unchanged": "cyan", "skipped": "cyan", "failed": "bold red",
                 "verify-failed": "bold red", "blocked": "yellow"}


def _item_dict(item: PlanItem, order: int) -> dict[str, Any]:
    return {"order": order, "name": item.name, "kind": item.recipe.kind.value, "target": item.recipe.target,
            "wave": item.wave, "after": list(item.after), "reasons": [r.as_dict() for r in item.reasons],
            "current": item.current.config_digest if item.current else None,
            "bases": dict(item.base_digests)}


def plan_document(plan: RebuildPlan) -> dict[str, Any]:
    return {"recipes": plan.recipes, "items": [_item_dict(i, n) for n, i in enumerate(plan.items, 1)],
            "waves": [[i.name for i in w] for w in plan.waves], "clean": list(plan.clean),
            "skipped": [{"name": n, "reason": r} for n, r in plan.skipped],
            "cannot_assess": [{"name": n, "reason": r} for n, r in plan.cannot_assess],
            "seconds": round(plan.seconds, 4)}


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


@app.command()
def plan(
    db: DbOption = None,
    force: ForceOption = None,
    only: OnlyOption = None,
    output_format: FormatOption = Format.TABLE,
    json_output: JsonOption = False,
) -> None:
    """Which images of the fleet must be rebuilt, why, and in which order (nothing is built)."""
    from patchline.build import plan_fleet

    try:
        with _store(db) as store:
            fleet = plan_fleet(state.config(), store, force=force or (), only=only)
    except Error as exc:
        _fail(exc)
    if _format(output_format, json_output) is Format.JSON:
        _emit(None, text=_dump("patchline/plan/v1", plan_document(fleet.plan)))
        return
    _emit(None, table=lambda console: _plan_tree(fleet.plan, console))


def _result_dict(r: BuildResult) -> dict[str, Any]:
    return {"name": r.name, "status": r.status.value, "reasons": [x.as_dict() for x in r.reasons],
            "config_digest": r.config_digest, "manifest_digest": r.manifest_digest, "pushed": r.pushed,
            "previous_digest": r.previous_digest, "bases": dict(r.bases), "error": r.error,
            "log": str(r.log) if r.log else None,
            "verification": r.verification.as_dict() if r.verification else None,
            "seconds": round(r.seconds, 2), "started": round(r.started, 2), "finished": round(r.finished, 2),
            "timings": dict(r.timings)}


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


@app.command()
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

    try:
        config = state.config()
        with _store(db) as store:
            fleet = plan_fleet(config, store, force=force or (), only=only)
            fmt = _format(output_format, json_output)
            if fmt is Format.TABLE:
                _plan_tree(fleet.plan, stderr)
            def say(line: str) -> None:
                stderr.print(escape(line), style="dim", soft_wrap=True)

            options = rebuild_options(config, jobs=jobs, say=say) if fleet.plan else rebuild_options(
                config, jobs=jobs, sign=False)
            try:
                report = rebuild(fleet.plan, fleet.graph, store, options, hashes=fleet.hashes, progress=say)
            finally:
                deliver_events(config, store)
    except Error as exc:
        _fail(exc)
    if fmt is Format.JSON:
        _emit(None, text=_dump("patchline/rebuild/v1", {"run_id": report.run_id, "seconds": round(report.seconds, 2),
                                                        "plan": plan_document(fleet.plan),
                                                        "results": [_result_dict(r) for r in report.results]}))
    elif report.results:
        _emit(None, table=lambda console: _report_table(report, console))
    if not report.ok or fleet.plan.skipped:
        raise typer.Exit(1)

"""``patchline policy``: every rule of ``[policy]`` on one image, with its verdict and evidence."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from patchline._term import escape
from patchline.cli._options import DbOption, open_db, state
from patchline.cli._output import dump, emit

if TYPE_CHECKING:
    from patchline.policy import PolicyDecision

policy_app = typer.Typer(help="Policy gates of [policy]: what may be built FROM and rolled out.", no_args_is_help=True,
                         rich_markup_mode=None)


def _render(decision: PolicyDecision, console: Console) -> None:
    if not decision.verdicts:
        console.print("[policy] sets no rule for images (allowed_bases, max_base_age_days, allowed_bases_signed_by, "
                      "max_fixable_severity, denied_packages, denied_licenses, max_pending_update_age_days, "
                      "require_runsc_for_bases, require_attestations)",
                      markup=False)
        return
    table = Table(title=f"policy of {escape(decision.subject)}", title_justify="left", show_edge=False,
                  pad_edge=False)
    for column in ("RULE", "VERDICT", "EVIDENCE", "EXCEPTION"):
        table.add_column(column, overflow="fold")
    for v in decision.verdicts:
        verdict = {"pass": "[green]pass[/]", "excepted": "[yellow]excepted[/]", "fail": "[red]fail[/]"}[v.outcome]
        table.add_row(v.rule, verdict, escape(v.evidence), escape(v.excepted_by or ""))
    console.print(table)
    for line in decision.expired:
        console.print(f"[yellow]expired exception:[/] {escape(line)}")


@policy_app.command("check")
def check(
    image: Annotated[str, typer.Argument(help="The image: repository@sha256:... (as a service runs it).")],
    db: DbOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="The decision as JSON.")] = False,
) -> None:
    """Every rule of [policy] on IMAGE, with its verdict, evidence and any exception; exit 1 if one fails.

    The rollout's rules, and the plan's on the outside bases IMAGE is built FROM when recipes build it
    (their creation dates and cosign signatures are looked up in the registries)."""
    from patchline.rollout import image_policy

    with open_db(db) as store:
        decision = image_policy(state.config(), store, image)
    if json_output:
        emit(None, text=dump("patchline/policy/v1", decision.as_dict()))
    else:
        emit(None, table=lambda console: _render(decision, console))
    if not decision.ok:
        raise typer.Exit(1)

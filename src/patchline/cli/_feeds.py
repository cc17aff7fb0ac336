"""``patchline feeds``: OSV's per-ecosystem archives fetched from the configured mirror."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from patchline._term import escape
from patchline.cli._options import state
from patchline.cli._output import emit, stderr

feeds_app = typer.Typer(help="OSV advisory feeds fetched from the configured mirror: update them, show them.",
                        no_args_is_help=True, rich_markup_mode=None)


def _table(document: dict[str, object], console: Console) -> None:
    feeds = document["feeds"]
    assert isinstance(feeds, dict)
    table = Table(show_edge=False, pad_edge=False)
    for column in ("ECOSYSTEM", "RECORDS", "FETCHED", "CHECKED", "REVISION"):
        table.add_column(column, overflow="fold")
    for ecosystem, feed in feeds.items():
        table.add_row(escape(ecosystem), str(feed["records"]), escape(feed["fetched_at"]), escape(feed["checked_at"]),
                      escape(feed["revision"][:19]))
    console.print(table)
    if not feeds:
        console.print(f"no feed fetched yet into {document['directory']} (patchline feeds update)", markup=False)


@feeds_app.command("update")
def update(
    ecosystem: Annotated[list[str] | None, typer.Option(
        "--ecosystem", help="OSV ecosystem to fetch, as OSV spells it (repeatable); default: [advisories] "
        "ecosystems.")] = None,
    mirror: Annotated[str | None, typer.Option(
        "--mirror", help="Base URL of the archives (BASE/ECOSYSTEM/all.zip); default: [advisories] mirror.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 if any feed could not be updated.")] = False,
) -> None:
    """Fetch the configured ecosystems' OSV archives when they changed (verified, swapped in atomically)."""
    from patchline.advisories import UpdateOutcome, status_document, update_configured_feeds

    directory, updates = update_configured_feeds(
        state.config().advisories, mirror=mirror, ecosystems=ecosystem or (),
        progress=(lambda line: stderr.print(escape(line))) if state.verbose else None)
    document = status_document(directory, updates)
    if json_output:
        emit(None, text=json.dumps(document, indent=2))
    else:
        for u in updates:
            records = f" ({u.revision.records} records)" if u.revision else ""
            line = f"{u.ecosystem}: {u.outcome.value}{records}" + (f": {u.reason}" if u.reason else "")
            stderr.print(escape(line), soft_wrap=True, style="red" if u.outcome is UpdateOutcome.FAILED else None)
    if strict and any(u.outcome is UpdateOutcome.FAILED for u in updates):
        raise typer.Exit(1)


@feeds_app.command("status")
def status(json_output: Annotated[bool, typer.Option("--json", help="Print the feeds as JSON.")] = False) -> None:
    """The fetched feeds: records, when fetched and last checked, revision."""
    from patchline.advisories import feeds_directory, status_document

    document = status_document(feeds_directory(state.config().advisories))
    if json_output:
        emit(None, text=json.dumps(document, indent=2))
    else:
        emit(None, table=lambda console: _table(document, console))

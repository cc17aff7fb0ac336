"""``patchline verify``: the signatures, SBOM and provenance of one pushed image, each with its verdict."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from patchline._term import escape
from patchline.cli._options import DbOption, open_db, state
from patchline.cli._output import dump, emit
from patchline.errors import SignError

if TYPE_CHECKING:
    from patchline.sign import ImageVerification

_STYLE = {"passed": "[green]passed[/]", "failed": "[red]failed[/]", "skipped": "[yellow]skipped[/]"}


def _render(result: ImageVerification, console: Console) -> None:
    table = Table(title=f"attachments of {escape(result.reference)}", title_justify="left", show_edge=False,
                  pad_edge=False)
    for column in ("CHECK", "VERDICT", "EVIDENCE"):
        table.add_column(column, overflow="fold")
    for check in result.checks:
        table.add_row(check.name, _STYLE[check.state], escape(check.evidence))
    console.print(table)
    prov = result.provenance
    if prov is not None:
        console.print(f"built by {escape(prov.builder_id)} in run {escape(prov.invocation_id)} FROM "
                      + (", ".join(f"{escape(ref)} @ {escape(d)}" for ref, d in sorted(prov.bases.items()))
                         or "scratch"))


def verify(
    image: Annotated[str, typer.Argument(help="The image: REPOSITORY@sha256:DIGEST (as `rollout --to` takes it).")],
    key: Annotated[Path | None, typer.Option("--key", help="Verify the cosign signature and the provenance with "
                                                           "this PEM public key instead of patchline's own.")] = None,
    db: DbOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="The verdicts as JSON.")] = False,
) -> None:
    """Check IMAGE's simple signature, cosign signature, SBOM and SLSA provenance; exit 1 if one fails.

    The provenance must be signed by the key, name IMAGE's digest as its subject and the bases the store
    recorded for the build; the SBOM must be the one the provenance names. A check [sign] turns off is skipped.
    """
    from patchline.sign import verifier_options, verify_attachments

    config = state.config()
    options = verifier_options(config)
    digest = image.partition("@")[2]
    if not digest:
        raise SignError(f"{image!r} is not REPOSITORY@sha256:DIGEST: verify an image by its digest")
    with open_db(db) as store:
        build = store.build_of(digest)
    result = verify_attachments(options, image, bases=dict(build.bases) if build is not None else None,
                                cosign_key=key)
    if json_output:
        emit(None, text=dump("patchline/verify/v1", result.as_dict()))
    else:
        emit(None, table=lambda console: _render(result, console))
    if not result.ok:
        raise typer.Exit(1)

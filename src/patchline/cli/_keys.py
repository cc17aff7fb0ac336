"""``patchline keys``: patchline's own signing keys (GPG for simple signing, ECDSA for cosign)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from patchline._term import escape
from patchline.cli._options import state
from patchline.cli._output import dump, emit, stderr

keys_app = typer.Typer(help="patchline's signing keys: generate them, show them.", no_args_is_help=True,
                       rich_markup_mode=None)


KEYS_SCHEMA = "patchline/keys/v1"


def _render(document: Mapping[str, str | None], console: Console) -> None:
    table = Table(show_header=False, show_edge=False, pad_edge=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, key in (("fingerprint", "fingerprint"), ("user ID", "uid"), ("directory", "directory"),
                       ("GnuPG home", "gnupg_home"), ("GPG public key", "gpg_public_key"),
                       ("cosign private key", "cosign_private_key"), ("cosign public key", "cosign_public_key")):
        table.add_row(label, escape(str(document[key] or "")))
    console.print(table)


@keys_app.command("generate")
def generate(
    force: Annotated[bool, typer.Option("--force", help="Replace existing keys (images signed with the old key "
                                                        "are then refused by a policy naming the new one).")] = False,
    name: Annotated[str, typer.Option("--name", help="The GPG key's user name.")] = "patchline",
    email: Annotated[str, typer.Option("--email", help="The GPG key's e-mail address.")] = "patchline@localhost",
    json_output: Annotated[bool, typer.Option("--json", help="Print the keys as JSON.")] = False,
) -> None:
    """Create patchline's signing keys in its own key directory (never the user's keyring)."""
    from patchline.sign import generate_keys, key_uid

    keys = generate_keys(state.config().sign, name=name, email=email, force=force)
    document = keys.as_dict(uid=key_uid(keys))
    if json_output:
        emit(None, text=dump(KEYS_SCHEMA, document))
        return
    stderr.print(f"[green]generated[/] signing keys in {escape(str(keys.directory))}")
    emit(None, table=lambda console: _render(document, console))


@keys_app.command("show")
def show(
    json_output: Annotated[bool, typer.Option("--json", help="Print the keys as JSON.")] = False,
) -> None:
    """Show patchline's signing keys: fingerprint and file paths."""
    from patchline.sign import key_uid, load_keys

    keys = load_keys(state.config().sign)
    document = keys.as_dict(uid=key_uid(keys))
    if json_output:
        emit(None, text=dump(KEYS_SCHEMA, document))
        return
    emit(None, table=lambda console: _render(document, console))

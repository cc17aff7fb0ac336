"""What several commands share: the global options' values, the one ``Format`` enum, common options, the store."""

from __future__ import annotations

import enum
import getpass
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from patchline._config import Config, load_config

if TYPE_CHECKING:
    from patchline.store import Store


class _State:
    """The global options (``-v``, ``--config``), set by the app's callback before any command runs."""

    verbose: int = 0
    config_path: Path | None = None

    def config(self) -> Config:
        return load_config(self.config_path)


state = _State()


class Format(enum.StrEnum):
    """Every output format of the CLI; each command's ``--format`` offers the ones it writes."""

    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"
    CYCLONEDX = "cyclonedx"
    SPDX = "spdx"


FormatOption = Annotated[Literal[Format.TABLE, Format.JSON], typer.Option("--format", "-f", help="Output format.")]
SbomFormatOption = Annotated[Literal[Format.TABLE, Format.JSON, Format.CYCLONEDX, Format.SPDX],
                             typer.Option("--format", "-f", help="Output format.")]
ScanFormatOption = Annotated[Literal[Format.TABLE, Format.JSON, Format.SARIF, Format.CYCLONEDX],
                             typer.Option("--format", "-f", help="Output format.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Same as --format json.")]
DbOption = Annotated[str | None, typer.Option("--db", help="Store: database URL or SQLite path "
                                                        "(default: $PATCHLINE_DB, patchline.toml [store] url, "
                                                        "~/.local/share/patchline/patchline.db).")]
NoUpdatesOption = Annotated[bool, typer.Option("--no-updates", help="Do not compute pending updates.")]
NoCacheOption = Annotated[bool, typer.Option("--no-cache", help="Do not use the layer cache.")]


def chosen_format(chosen: Format, json_output: bool) -> Format:
    """``--json`` wins over ``--format``."""
    return Format.JSON if json_output else chosen


def db_url(db: str | None) -> str | None:
    if db:
        return db
    if os.environ.get("PATCHLINE_DB"):
        return None  # open_store reads it
    return state.config().store.url


@contextmanager
def open_db(db: str | None) -> Iterator[Store]:
    """The store ``--db`` names, else $PATCHLINE_DB, else patchline.toml's."""
    from patchline.store import open_store

    with open_store(db_url(db)) as store:
        yield store


def requested_by() -> str:
    """Who runs this command, as runs and triggers record it: ``user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"

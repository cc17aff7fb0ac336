"""The ``patchline`` command line: parse, call one library function, render.

``app.py`` holds the Typer app, the global options and the one ``except Error``;
``_options.py`` the options several commands share and the one ``Format`` enum;
``_output.py`` tables, messages and JSON; every other module one command group,
registered from the list ``app.COMMANDS``. No command module imports another.
"""

from patchline.cli.app import app, main

__all__ = ["app", "main"]

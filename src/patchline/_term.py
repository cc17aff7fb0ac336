"""Text from images, registries and feeds, made safe for a terminal.

A package name, a file path or an advisory summary comes from data an attacker may
write. Printed as it is, an escape sequence in it could clear the screen, rewrite
earlier lines or set the terminal's title: every table cell and message of the CLI
goes through :func:`escape`, which both escapes Rich markup and shows control
characters as visible escapes (``\\x1b``) instead of sending them.
"""

from __future__ import annotations

import re

from rich.markup import escape as _escape_markup

__all__ = ["escape", "printable"]

# C0 controls but tab and newline, DEL, C1 controls; and the Unicode bidi overrides that reorder what is shown.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``, ``\\u202e``)."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def escape(text: str) -> str:
    """Rich markup escaped and control characters made visible: for any text that did not come from patchline."""
    return _escape_markup(printable(text))

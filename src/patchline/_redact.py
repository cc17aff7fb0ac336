"""Secrets out of messages: what patchline prints, logs or records never carries a password, a webhook's
path, an environment value or a bound database value.

Typical use::

    message = redact_passwords(redact(str(exc), env.values()))
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable

__all__ = ["REDACTED", "redact", "redact_passwords", "redact_url", "secret_strings"]

REDACTED = "[redacted]"
_MIN_SECRET = 4  # a shorter value ("1", "yes", "on") is too common in any text to blank it out
# scheme://user:PASSWORD@: user info ends at the first @ (SQLAlchemy reads a password up to the @ too).
_URL_PASSWORD = re.compile(r"((?:[a-zA-Z][a-zA-Z0-9+.-]*)?://[^\s:/@]*:)[^\s@]+@")
# password=VALUE in a libpq connection string, quoted or not.
_PASSWORD_PARAM = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s,;)]+)", re.IGNORECASE)


def redact(text: str, values: Iterable[str], *, urls: bool = False) -> str:
    """``text`` with each of ``values`` (of at least 4 characters) replaced by ``[redacted]``, longest first;
    with ``urls``, a value that is a URL by its :func:`redact_url` form instead."""
    for value in sorted({v for v in values if len(v) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(value, redact_url(value) if urls and "://" in value else REDACTED)
    return text


def redact_passwords(text: str) -> str:
    """``text`` without the passwords of URLs (``scheme://user:***@host``) and ``password=`` parameters."""
    text = _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)
    return _PASSWORD_PARAM.sub(rf"\1{REDACTED}", text)


def redact_url(url: str) -> str:
    """``scheme://host[:port]/…``: a webhook URL's path and query are often its secret (a chat hook's token),
    and user info is a password. This is what patchline prints and stores."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    tail = "/…" if parts.path.strip("/") or parts.query else "/"
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{tail}"


def secret_strings(value: object) -> list[str]:
    """Every string in ``value`` (a string, or lists, tuples and dicts of them, keys left out)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, bytes):
        return [value.decode(errors="replace")]
    if isinstance(value, dict):
        return [s for v in value.values() for s in secret_strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in secret_strings(v)]
    return []

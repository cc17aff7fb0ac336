"""Installed Python distributions: ``*.dist-info/METADATA`` and ``*.egg-info``.

Core metadata is RFC 822 style headers; only the headers are read. The name and
version are reported as declared (as ``pip list`` shows them); comparing names
(PEP 503 normalisation) is the caller's business.

Licences, first that applies: ``License-Expression`` (PEP 639); a one-line
``License``; the ``License ::`` classifiers (their last component, e.g. ``MIT
License``); the first line of a multi-line ``License`` (which usually holds the
whole licence text). ``UNKNOWN`` (old setuptools' placeholder) counts as absent.

Core metadata is UTF-8 by specification, so the file is decoded as UTF-8 with
U+FFFD replacement and parsed with ``HeaderParser``: ``BytesHeaderParser`` would
decode it as ASCII and mangle every non-ASCII header.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
from dataclasses import dataclass, field

from patchline._model import Ecosystem
from patchline.catalog.interface import FileResult, Found

__all__ = ["PythonCataloger"]

_PARSER = email.parser.HeaderParser(policy=email.policy.compat32)


@dataclass(frozen=True, slots=True)
class PythonCataloger:
    """Catalogs installed Python distributions from their core metadata."""

    name: str = field(default="python-installed-package-cataloger", init=False)
    version: str = field(default="1", init=False)
    globs: tuple[str, ...] = field(
        default=(
            "**/*.dist-info/METADATA",
            "**/*.egg-info/PKG-INFO",
            "**/*.egg-info",  # a file: setuptools' old single-file form
        ),
        init=False,
    )
    max_file_size: int = 8 * 1024 * 1024

    def parse(self, path: str, data: bytes) -> FileResult:
        message = _PARSER.parsestr(data.decode("utf-8", errors="replace"))
        name = _header(message.get("Name"))
        version = _header(message.get("Version"))
        if not name:
            return FileResult(skipped=("no Name header: not core metadata",))
        if not version:
            return FileResult(skipped=(f"distribution {name!r} has no Version header",))
        return FileResult(
            packages=(
                Found(
                    ecosystem=Ecosystem.PYPI,
                    name=name,
                    version=version,
                    licenses=_licenses(message),
                ),
            )
        )


def _header(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _licenses(message: email.message.Message) -> tuple[str, ...]:
    expression = _header(message.get("License-Expression"))
    if expression:
        return (expression,)
    licence = _header(message.get("License"))
    if licence == "UNKNOWN":
        licence = ""
    if licence and "\n" not in licence:
        return (licence,)
    classifiers = tuple(
        parts[-1]
        for value in message.get_all("Classifier") or ()
        if isinstance(value, str)
        and (parts := [part.strip() for part in value.split("::")])[0] == "License"
        and len(parts) > 1
        and parts[1:] != ["OSI Approved"]
    )
    if classifiers:
        return classifiers
    return (licence.splitlines()[0].strip(),) if licence else ()

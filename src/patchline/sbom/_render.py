"""Write an SBOM: the one entry point, over the writers of ``sbom/list.py``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TextIO

from patchline import _clock
from patchline._model import Inventory
from patchline.errors import SbomError
from patchline.sbom.interface import SbomFormat
from patchline.sbom.list import sbom_writer

__all__ = ["render_sbom", "write_sbom"]


def render_sbom(
    inventory: Inventory, fmt: SbomFormat | str, *, created: datetime | None = None
) -> str:
    """Render ``inventory`` as an SBOM document in format ``fmt``.

    ``created`` is the document's timestamp (default: now); it must be
    timezone-aware. Raises :class:`SbomError` for an unknown format or an
    inventory that cannot be written (an invalid purl, a dangling layer index).
    """
    writer = sbom_writer(_as_format(fmt))
    when = _as_utc(created)
    return writer.render(inventory, created=when)


def write_sbom(
    inventory: Inventory,
    fmt: SbomFormat | str,
    stream: TextIO,
    *,
    created: datetime | None = None,
) -> None:
    """Write ``inventory`` as an SBOM document in format ``fmt`` to ``stream``.

    The document is rendered completely before the first byte is written, so a
    failure leaves ``stream`` untouched.
    """
    stream.write(render_sbom(inventory, fmt, created=created))


def _as_format(fmt: SbomFormat | str) -> SbomFormat:
    try:
        return SbomFormat(fmt)
    except ValueError:
        known = ", ".join(f.value for f in SbomFormat)
        raise SbomError(f"unknown SBOM format {fmt!r} (known: {known})") from None


def _as_utc(created: datetime | None) -> datetime:
    if created is None:
        created = _clock.now()
    if created.tzinfo is None or created.utcoffset() is None:
        raise SbomError(f"the SBOM timestamp {created.isoformat()} has no time zone")
    # SPDX and CycloneDX timestamps carry seconds, not microseconds.
    return created.astimezone(UTC).replace(microsecond=0)

"""The one explicit list of SBOM formats (STYLE.md 4): each :class:`SbomFormat`'s writer class.

A writer's module is imported when its format is first written, not here: cyclonedx-python-lib and
spdx-tools take a noticeable part of a second to import, and a run needs at most one of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import MappingProxyType

from patchline.errors import SbomError
from patchline.sbom.interface import SbomFormat, SbomWriter

__all__ = ["SBOM_WRITERS", "sbom_writer"]

# format -> "module:class" of its writer
SBOM_WRITERS: Mapping[SbomFormat, str] = MappingProxyType({
    SbomFormat.JSON: "patchline.sbom.json:InventoryJsonWriter",
    SbomFormat.CYCLONEDX: "patchline.sbom.cyclonedx:CycloneDxWriter",
    SbomFormat.SPDX: "patchline.sbom.spdx:SpdxWriter",
})


def sbom_writer(fmt: SbomFormat) -> SbomWriter:
    """The writer of ``fmt``."""
    module, _, name = SBOM_WRITERS[fmt].partition(":")
    writer: SbomWriter = getattr(importlib.import_module(module), name)()
    if writer.format is not fmt:
        raise SbomError(f"{SBOM_WRITERS[fmt]} writes {writer.format.value}, not {fmt.value}")
    return writer

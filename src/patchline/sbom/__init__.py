"""SBOM documents of an inventory: patchline's own JSON, CycloneDX 1.6 and SPDX 2.3.

::

    from patchline.sbom import SbomFormat, render_sbom
    text = render_sbom(inventory, SbomFormat.CYCLONEDX)
"""

from __future__ import annotations

from patchline.errors import SbomError
from patchline.sbom._render import render_sbom, write_sbom
from patchline.sbom.interface import SbomFormat, SbomWriter
from patchline.sbom.json import load_inventory_json
from patchline.sbom.list import SBOM_WRITERS

__all__ = [
    "SBOM_WRITERS",
    "SbomError",
    "SbomFormat",
    "SbomWriter",
    "load_inventory_json",
    "render_sbom",
    "write_sbom",
]

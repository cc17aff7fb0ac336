"""Render an assessment in a machine-readable format of ``assess/formats/list.py``.

The formats themselves (patchline JSON, SARIF 2.1.0, CycloneDX 1.6) are the modules of
``patchline.assess.formats``; what they share is re-exported here for the callers of old.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from patchline._model import Inventory
from patchline.assess.formats.interface import no_feed_warning, summary
from patchline.assess.formats.json import SCHEMA, assessment_to_dict
from patchline.assess.formats.list import assessment_format
from patchline.assess.formats.sarif import PENDING_RULE
from patchline.assess.model import Assessment, PendingUpdate


def render_assessment(
    assessment: Assessment,
    fmt: str,
    *,
    inventory: Inventory | None = None,
    sbom: Mapping[str, Any] | None = None,
    created: datetime | None = None,
) -> str:
    """The document of ``fmt`` (a name of ``assess/formats/list.py``: ``json``, ``sarif`` or ``cyclonedx``, which
    needs the inventory or a CycloneDX SBOM); raises ``SbomError`` for an unknown format."""
    out = assessment_format(fmt).render(assessment, inventory=inventory, sbom=sbom, created=created)
    return json.dumps(out, indent=2, ensure_ascii=False) + "\n"


__all__ = ["PENDING_RULE", "SCHEMA", "PendingUpdate", "assessment_to_dict", "no_feed_warning", "render_assessment",
           "summary"]

"""The fleet store: images, packages, workloads, advisories and findings in SQLite or PostgreSQL.

Typical use::

    with open_store() as store:                      # $PATCHLINE_DB or ~/.local/share/patchline
        store.record_image(inventory, refs=[("localhost/app", "1.0", None)])
        store.refresh_feed(OsvFeed("/srv/osv/debian"))  # re-assess from stored packages only
        hits = store.where("liblzma5", version_below="5.4.1-1+deb12u2")
"""

from patchline.store._engine import current_revision, default_db_url, head_revision, upgrade
from patchline.store._images import chain_ids, image_scopes
from patchline.store._outbox import add_events
from patchline.store._store import Store, open_store
from patchline.store.model import (
    AdvisoryHit,
    AdvisoryReport,
    BuildRow,
    ExposureRow,
    FixableRow,
    FleetSummary,
    ImageRow,
    IngestResult,
    PatchItemRow,
    PendingRefresh,
    PendingRow,
    RefreshResult,
    ReplicaRow,
    RolloutRow,
    RunRow,
    SinkRow,
    StepRow,
    UnpromotableRow,
    WhereHit,
    WorkloadRow,
    WorkloadSync,
)

__all__ = [
    "AdvisoryHit",
    "AdvisoryReport",
    "BuildRow",
    "ExposureRow",
    "FixableRow",
    "FleetSummary",
    "ImageRow",
    "IngestResult",
    "PatchItemRow",
    "PendingRefresh",
    "PendingRow",
    "RefreshResult",
    "ReplicaRow",
    "RolloutRow",
    "RunRow",
    "SinkRow",
    "StepRow",
    "Store",
    "UnpromotableRow",
    "WhereHit",
    "WorkloadRow",
    "WorkloadSync",
    "add_events",
    "chain_ids",
    "current_revision",
    "default_db_url",
    "head_revision",
    "image_scopes",
    "open_store",
    "upgrade",
]

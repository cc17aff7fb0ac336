"""A lease on each event sink, so that two deliverers never publish to one sink at once.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event_sinks") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=200), nullable=False, server_default=""))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("event_sinks") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("owner")

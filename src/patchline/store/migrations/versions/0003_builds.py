"""Builds: every rebuild and patch in place, its inputs, outcome and verification.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "builds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("recipe", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("target", sa.String(length=600), nullable=False),
        sa.Column("input_hash", sa.String(length=80), nullable=False),
        sa.Column("bases", sa.Text(), nullable=False),
        sa.Column("config_digest", sa.String(length=80), nullable=True),
        sa.Column("manifest_digest", sa.String(length=80), nullable=True),
        sa.Column("previous_config_digest", sa.String(length=80), nullable=True),
        sa.Column("verification", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("log_path", sa.String(length=1000), nullable=False),
        sa.Column("source_date_epoch", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_builds")),
    )
    op.create_index(op.f("ix_builds_recipe_finished_at"), "builds", ["recipe", "finished_at"])
    op.create_index(op.f("ix_builds_run_id"), "builds", ["run_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_builds_run_id"), table_name="builds")
    op.drop_index(op.f("ix_builds_recipe_finished_at"), table_name="builds")
    op.drop_table("builds")

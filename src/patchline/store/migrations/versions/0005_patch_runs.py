"""Patch runs and their steps (with leases), triggers, approvals, and time-to-patch items.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patch_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=40), nullable=False),
        sa.Column("triggered_by", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("step", sa.String(length=24), nullable=False),
        sa.Column("inputs", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patch_runs")),
    )
    op.create_index(op.f("ix_patch_runs_state"), "patch_runs", ["state"])
    op.create_table(
        "run_steps",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=24), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("output", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["patch_runs.id"], name=op.f("fk_run_steps_run_id_patch_runs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "step", name=op.f("pk_run_steps")),
    )
    op.create_table(
        "patch_triggers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patch_triggers")),
    )
    op.create_table(
        "approvals",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("service", sa.String(length=200), nullable=False),
        sa.Column("approved_by", sa.String(length=200), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["patch_runs.id"], name=op.f("fk_approvals_run_id_patch_runs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "service", name=op.f("pk_approvals")),
    )
    op.create_table(
        "patch_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("item", sa.String(length=300), nullable=False),
        sa.Column("recipe", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_seen_run", sa.Integer(), nullable=True),
        sa.Column("rebuilt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("digest", sa.String(length=80), nullable=True),
        sa.Column("deployed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("services", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patch_items")),
    )
    op.create_index(op.f("ix_patch_items_kind_item"), "patch_items", ["kind", "item"])
    op.create_index(op.f("ix_patch_items_recipe_state"), "patch_items", ["recipe", "state"])


def downgrade() -> None:
    op.drop_index(op.f("ix_patch_items_recipe_state"), table_name="patch_items")
    op.drop_index(op.f("ix_patch_items_kind_item"), table_name="patch_items")
    op.drop_table("patch_items")
    op.drop_table("approvals")
    op.drop_table("patch_triggers")
    op.drop_table("run_steps")
    op.drop_index(op.f("ix_patch_runs_state"), table_name="patch_runs")
    op.drop_table("patch_runs")

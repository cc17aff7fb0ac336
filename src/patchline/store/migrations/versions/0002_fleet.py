"""Workloads (what runs where), feeds and advisories, findings per package version, pending updates.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=1000), nullable=False),
        sa.Column("revision", sa.String(length=200), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feeds")),
        sa.UniqueConstraint("kind", "name", name=op.f("uq_feeds_kind_name")),
    )
    op.create_table(
        "advisories",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("advisory_id", sa.String(length=200), nullable=False),
        sa.Column("aliases", sa.Text(), nullable=False),
        sa.Column("modified", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name=op.f("fk_advisories_feed_id_feeds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_advisories")),
        sa.UniqueConstraint("feed_id", "advisory_id", name=op.f("uq_advisories_feed_id_advisory_id")),
    )
    op.create_index(op.f("ix_advisories_advisory_id"), "advisories", ["advisory_id"], unique=False)
    op.create_table(
        "pending_updates",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("name_id", sa.Integer(), nullable=False),
        sa.Column("installed_version_id", sa.Integer(), nullable=False),
        sa.Column("candidate_version_id", sa.Integer(), nullable=False),
        sa.Column("suite", sa.String(length=200), nullable=False),
        sa.Column("source_name", sa.String(length=400), nullable=False),
        sa.Column("cves", sa.Text(), nullable=False),
        sa.Column("source_revision", sa.String(length=200), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["candidate_version_id"], ["versions.id"], name=op.f("fk_pending_updates_candidate_version_id_versions")
        ),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_pending_updates_image_id_images"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["installed_version_id"], ["versions.id"], name=op.f("fk_pending_updates_installed_version_id_versions")
        ),
        sa.ForeignKeyConstraint(
            ["name_id"], ["package_names.id"], name=op.f("fk_pending_updates_name_id_package_names")
        ),
        sa.PrimaryKeyConstraint("image_id", "name_id", name=op.f("pk_pending_updates")),
    )
    op.create_index(op.f("ix_pending_updates_name_id"), "pending_updates", ["name_id"], unique=False)
    op.create_table(
        "workloads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("runtime", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("namespace", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("container_id", sa.String(length=255), nullable=False),
        sa.Column("image_ref", sa.String(length=600), nullable=False),
        sa.Column("image_digest", sa.String(length=80), nullable=True),
        sa.Column("manifest_digest", sa.String(length=80), nullable=True),
        sa.Column("image_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("gone_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_workloads_image_id_images"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workloads")),
        sa.UniqueConstraint("runtime", "host", "container_id", name=op.f("uq_workloads_runtime_host_container_id")),
    )
    op.create_index(op.f("ix_workloads_gone_at"), "workloads", ["gone_at"], unique=False)
    op.create_index(op.f("ix_workloads_image_id"), "workloads", ["image_id"], unique=False)
    op.create_table(
        "advisory_packages",
        sa.Column("advisory_pk", sa.Integer(), nullable=False),
        sa.Column("name_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["advisory_pk"],
            ["advisories.id"],
            name=op.f("fk_advisory_packages_advisory_pk_advisories"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["name_id"], ["package_names.id"], name=op.f("fk_advisory_packages_name_id_package_names")
        ),
        sa.PrimaryKeyConstraint("advisory_pk", "name_id", name=op.f("pk_advisory_packages")),
    )
    op.create_index(op.f("ix_advisory_packages_name_id"), "advisory_packages", ["name_id"], unique=False)
    op.create_table(
        "findings",
        sa.Column("advisory_pk", sa.Integer(), nullable=False),
        sa.Column("match_name_id", sa.Integer(), nullable=False),
        sa.Column("match_version_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("severity", sa.SmallInteger(), nullable=False),
        sa.Column("fixed_versions", sa.Text(), nullable=False),
        sa.Column("feed_revision", sa.String(length=200), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["advisory_pk"], ["advisories.id"], name=op.f("fk_findings_advisory_pk_advisories"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["match_name_id"], ["package_names.id"], name=op.f("fk_findings_match_name_id_package_names")
        ),
        sa.ForeignKeyConstraint(
            ["match_version_id"], ["versions.id"], name=op.f("fk_findings_match_version_id_versions")
        ),
        sa.PrimaryKeyConstraint("advisory_pk", "match_name_id", "match_version_id", "scope", name=op.f("pk_findings")),
    )
    op.create_index(
        op.f("ix_findings_match_name_id_match_version_id"),
        "findings",
        ["match_name_id", "match_version_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("findings")
    op.drop_table("advisory_packages")
    op.drop_table("workloads")
    op.drop_table("pending_updates")
    op.drop_table("advisories")
    op.drop_table("feeds")

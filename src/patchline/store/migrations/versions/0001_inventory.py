"""Images, their layers and packages (interned names and versions), refs, scopes and SBOM documents.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("config_digest", sa.String(length=80), nullable=False),
        sa.Column("os", sa.String(length=32), nullable=False),
        sa.Column("architecture", sa.String(length=32), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=True),
        sa.Column("distro", sa.String(length=64), nullable=True),
        sa.Column("distro_version", sa.String(length=64), nullable=True),
        sa.Column("distro_codename", sa.String(length=64), nullable=True),
        sa.Column("layer_count", sa.SmallInteger(), nullable=False),
        sa.Column("top_chain_id", sa.String(length=80), nullable=True),
        sa.Column("base_image_id", sa.Integer(), nullable=True),
        sa.Column("base_layer_count", sa.SmallInteger(), nullable=True),
        sa.Column("package_count", sa.Integer(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["base_image_id"], ["images.id"], name=op.f("fk_images_base_image_id_images"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
        sa.UniqueConstraint("config_digest", name=op.f("uq_images_config_digest")),
    )
    op.create_index(op.f("ix_images_top_chain_id"), "images", ["top_chain_id"], unique=False)
    op.create_table(
        "layers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("diff_id", sa.String(length=80), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_layers")),
        sa.UniqueConstraint("diff_id", name=op.f("uq_layers_diff_id")),
    )
    op.create_table(
        "package_names",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ecosystem", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_package_names")),
        sa.UniqueConstraint("ecosystem", "name", name=op.f("uq_package_names_ecosystem_name")),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_versions")),
        sa.UniqueConstraint("version", name=op.f("uq_versions_version")),
    )
    op.create_table(
        "image_layers",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("idx", sa.SmallInteger(), nullable=False),
        sa.Column("layer_id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.String(length=80), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_image_layers_image_id_images"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["layer_id"], ["layers.id"], name=op.f("fk_image_layers_layer_id_layers")),
        sa.PrimaryKeyConstraint("image_id", "idx", name=op.f("pk_image_layers")),
    )
    op.create_index(op.f("ix_image_layers_chain_id"), "image_layers", ["chain_id"], unique=False)
    op.create_index(op.f("ix_image_layers_layer_id"), "image_layers", ["layer_id"], unique=False)
    op.create_table(
        "image_packages",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.SmallInteger(), nullable=False),
        sa.Column("name_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("match_name_id", sa.Integer(), nullable=False),
        sa.Column("match_version_id", sa.Integer(), nullable=False),
        sa.Column("introduced_in", sa.SmallInteger(), nullable=False),
        sa.Column("changed_in", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_image_packages_image_id_images"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["match_name_id"], ["package_names.id"], name=op.f("fk_image_packages_match_name_id_package_names")
        ),
        sa.ForeignKeyConstraint(
            ["match_version_id"], ["versions.id"], name=op.f("fk_image_packages_match_version_id_versions")
        ),
        sa.ForeignKeyConstraint(
            ["name_id"], ["package_names.id"], name=op.f("fk_image_packages_name_id_package_names")
        ),
        sa.ForeignKeyConstraint(["version_id"], ["versions.id"], name=op.f("fk_image_packages_version_id_versions")),
        sa.PrimaryKeyConstraint("image_id", "seq", name=op.f("pk_image_packages")),
    )
    op.create_index(
        op.f("ix_image_packages_match_name_id_match_version_id"),
        "image_packages",
        ["match_name_id", "match_version_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_image_packages_name_id_version_id"), "image_packages", ["name_id", "version_id"], unique=False
    )
    op.create_table(
        "image_refs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("repository", sa.String(length=400), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=False),
        sa.Column("manifest_digest", sa.String(length=80), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_image_refs_image_id_images"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_refs")),
        sa.UniqueConstraint("image_id", "repository", "tag", name=op.f("uq_image_refs_image_id_repository_tag")),
    )
    op.create_index(op.f("ix_image_refs_repository_tag"), "image_refs", ["repository", "tag"], unique=False)
    op.create_table(
        "image_scopes",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_image_scopes_image_id_images"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("image_id", "scope", name=op.f("pk_image_scopes")),
    )
    op.create_table(
        "sbom_documents",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=40), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_sbom_documents_image_id_images"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("image_id", "format", name=op.f("pk_sbom_documents")),
    )


def downgrade() -> None:
    op.drop_table("sbom_documents")
    op.drop_table("image_scopes")
    op.drop_table("image_refs")
    op.drop_table("image_packages")
    op.drop_table("image_layers")
    op.drop_table("versions")
    op.drop_table("package_names")
    op.drop_table("layers")
    op.drop_table("images")

"""rendition_version: every version of an item's signed rendition (filing, then each archive time-stamp renewal),
in order with digests, level and the newest time stamp's expiry (issue 18, PAdES B-LT/B-LTA)

Revision ID: 0018
Revises: 0017 (re-chained after 0016/0017 at merge)
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rendition_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("object_key", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("sm3", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("timestamp_expiry", sa.DateTime(timezone=True), nullable=True),
        sa.Column("algorithm", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["archive_item.id"],
                                name=op.f("fk_rendition_version_item_id_archive_item")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rendition_version")),
        sa.UniqueConstraint("item_id", "version", name=op.f("uq_rendition_version_item_id")),
    )
    op.create_index(op.f("ix_rendition_version_item_id"), "rendition_version", ["item_id"])
    op.create_index(op.f("ix_rendition_version_timestamp_expiry"), "rendition_version", ["timestamp_expiry"])


def downgrade() -> None:
    op.drop_index(op.f("ix_rendition_version_timestamp_expiry"), table_name="rendition_version")
    op.drop_index(op.f("ix_rendition_version_item_id"), table_name="rendition_version")
    op.drop_table("rendition_version")

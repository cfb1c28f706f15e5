"""capture: case outcome and trail, document detail, batch scans

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
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
        "orphan_object",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_orphan_object")),
    )
    op.create_table(
        "scan_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("original_key", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("pages_total", sa.Integer(), nullable=False),
        sa.Column("pages_done", sa.Integer(), nullable=False),
        sa.Column("material_type", sa.String(length=40), nullable=False),
        sa.Column("covers", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_batch")),
    )
    with op.batch_alter_table("scan_batch", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scan_batch_status"), ["status"], unique=False)

    op.create_table(
        "scan_part",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("first_page", sa.Integer(), nullable=False),
        sa.Column("last_page", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["scan_batch.id"], name=op.f("fk_scan_part_batch_id_scan_batch")),
        sa.ForeignKeyConstraint(["document_id"], ["document.id"], name=op.f("fk_scan_part_document_id_document")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_part")),
        sa.UniqueConstraint("batch_id", "first_page", name=op.f("uq_scan_part_batch_id")),
    )
    with op.batch_alter_table("scan_part", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scan_part_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_scan_part_status"), ["status"], unique=False)

    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("trail", sa.JSON(), nullable=True))

    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.add_column(sa.Column("detail", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_table("orphan_object")
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_column("detail")

    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_column("trail")
        batch_op.drop_column("outcome")

    with op.batch_alter_table("scan_part", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scan_part_status"))
        batch_op.drop_index(batch_op.f("ix_scan_part_batch_id"))

    op.drop_table("scan_part")
    with op.batch_alter_table("scan_batch", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scan_batch_status"))

    op.drop_table("scan_batch")

"""transfer packages (issue 8)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transfer_package",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_no", sa.String(length=64), nullable=False),
        sa.Column("sender", sa.String(length=200), nullable=False),
        sa.Column("receiver", sa.String(length=200), nullable=False),
        sa.Column("selection", sa.JSON(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("payload_bytes", sa.BigInteger(), nullable=False),
        sa.Column("bag_sha256", sa.String(length=64), nullable=False),
        sa.Column("bag_sm3", sa.String(length=64), nullable=False),
        sa.Column("zip_key", sa.String(length=255), nullable=True),
        sa.Column("zip_size", sa.BigInteger(), nullable=True),
        sa.Column("zip_sha256", sa.String(length=64), nullable=True),
        sa.Column("zip_sm3", sa.String(length=64), nullable=True),
        sa.Column("register", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("check_results", sa.JSON(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfer_package")),
        sa.UniqueConstraint("package_no", name=op.f("uq_transfer_package_package_no")),
    )
    with op.batch_alter_table("transfer_package", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transfer_package_status"), ["status"], unique=False)

    op.create_table(
        "transfer_receipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("package_no", sa.String(length=64), nullable=True),
        sa.Column("sender", sa.String(length=200), nullable=True),
        sa.Column("receiver", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("sm3", sa.String(length=64), nullable=False),
        sa.Column("sender_sha256", sa.String(length=64), nullable=True),
        sa.Column("stored_key", sa.String(length=255), nullable=True),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("payload_bytes", sa.BigInteger(), nullable=False),
        sa.Column("register", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("check_results", sa.JSON(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("received_by", sa.String(length=100), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfer_receipt")),
    )
    with op.batch_alter_table("transfer_receipt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transfer_receipt_package_no"), ["package_no"], unique=False)
        batch_op.create_index(batch_op.f("ix_transfer_receipt_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("transfer_receipt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transfer_receipt_status"))
        batch_op.drop_index(batch_op.f("ix_transfer_receipt_package_no"))
    op.drop_table("transfer_receipt")
    with op.batch_alter_table("transfer_package", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transfer_package_status"))
    op.drop_table("transfer_package")

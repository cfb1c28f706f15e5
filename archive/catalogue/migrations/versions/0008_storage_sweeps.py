"""storage sweeps and alerts (issue 9)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_sweep",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("cursor", sa.String(length=255), nullable=True),
        sa.Column("object_count", sa.BigInteger(), nullable=False),
        sa.Column("byte_count", sa.BigInteger(), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("tally", sa.JSON(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_by", sa.String(length=100), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checkpoint_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["report_id"], ["check_report.id"],
                                name=op.f("fk_storage_sweep_report_id_check_report")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storage_sweep")),
    )
    with op.batch_alter_table("storage_sweep", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_storage_sweep_status"), ["status"], unique=False)

    op.create_table(
        "storage_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("sweep_id", sa.Integer(), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledge_note", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["sweep_id"], ["storage_sweep.id"],
                                name=op.f("fk_storage_alert_sweep_id_storage_sweep")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storage_alert")),
        sa.UniqueConstraint("code", "target", name=op.f("uq_storage_alert_code")),
    )
    with op.batch_alter_table("storage_alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_storage_alert_code"), ["code"], unique=False)
        batch_op.create_index(batch_op.f("ix_storage_alert_last_seen"), ["last_seen"], unique=False)
        batch_op.create_index(batch_op.f("ix_storage_alert_severity"), ["severity"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("storage_alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_storage_alert_severity"))
        batch_op.drop_index(batch_op.f("ix_storage_alert_last_seen"))
        batch_op.drop_index(batch_op.f("ix_storage_alert_code"))
    op.drop_table("storage_alert")
    with op.batch_alter_table("storage_sweep", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_storage_sweep_status"))
    op.drop_table("storage_sweep")

"""four-properties check reports (issue 9)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "check_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=4), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator", sa.String(length=100), nullable=False),
        sa.Column("operator_type", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("context", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["archive_item.id"], name=op.f("fk_check_report_item_id_archive_item")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_report")),
    )
    with op.batch_alter_table("check_report", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_check_report_stage"), ["stage"], unique=False)
        batch_op.create_index(batch_op.f("ix_check_report_subject"), ["subject"], unique=False)
        batch_op.create_index(batch_op.f("ix_check_report_item_id"), ["item_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_check_report_created_at"), ["created_at"], unique=False)

    op.create_table(
        "check_result",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("dimension", sa.String(length=16), nullable=False),
        sa.Column("object", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("blocking", sa.Boolean(), nullable=False),
        sa.Column("basis", sa.String(length=100), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("recorded_by", sa.String(length=100), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["report_id"], ["check_report.id"], name=op.f("fk_check_result_report_id_check_report")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_result")),
    )
    with op.batch_alter_table("check_result", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_check_result_report_id"), ["report_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_check_result_code"), ["code"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("check_result", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_check_result_code"))
        batch_op.drop_index(batch_op.f("ix_check_result_report_id"))
    op.drop_table("check_result")
    with op.batch_alter_table("check_report", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_check_report_created_at"))
        batch_op.drop_index(batch_op.f("ix_check_report_item_id"))
        batch_op.drop_index(batch_op.f("ix_check_report_subject"))
        batch_op.drop_index(batch_op.f("ix_check_report_stage"))
    op.drop_table("check_report")

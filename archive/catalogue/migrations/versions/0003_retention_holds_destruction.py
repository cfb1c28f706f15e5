"""holds, appraisal and destruction (issue 8)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    role = sa.table("role", sa.column("code", sa.String), sa.column("name", sa.String))
    op.bulk_insert(role, [{"code": "archive_head", "name": "档案部门负责人"}])

    op.create_table(
        "hold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("authority", sa.String(length=200), nullable=False),
        sa.Column("document_no", sa.String(length=100), nullable=True),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifted_by", sa.String(length=100), nullable=True),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lift_reason", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hold")),
    )
    with op.batch_alter_table("hold", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hold_status"), ["status"], unique=False)

    op.create_table(
        "hold_item",
        sa.Column("hold_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["hold_id"], ["hold.id"], name=op.f("fk_hold_item_hold_id_hold")),
        sa.ForeignKeyConstraint(["item_id"], ["archive_item.id"], name=op.f("fk_hold_item_item_id_archive_item")),
        sa.PrimaryKeyConstraint("hold_id", "item_id", name=op.f("pk_hold_item")),
    )
    with op.batch_alter_table("hold_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hold_item_item_id"), ["item_id"], unique=False)

    op.create_table(
        "appraisal_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("previous_expiry", sa.Date(), nullable=True),
        sa.Column("retention_code", sa.String(length=3), nullable=True),
        sa.Column("new_expiry", sa.Date(), nullable=True),
        sa.Column("decided_by", sa.String(length=100), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["archive_item.id"],
                                name=op.f("fk_appraisal_decision_item_id_archive_item")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appraisal_decision")),
    )
    with op.batch_alter_table("appraisal_decision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appraisal_decision_item_id"), ["item_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_appraisal_decision_status"), ["status"], unique=False)

    op.create_table(
        "destruction_list",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("page_count", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("pdf_key", sa.String(length=255), nullable=True),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=True),
        sa.Column("rejected_by", sa.String(length=100), nullable=True),
        sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rejection_reason", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destruction_list")),
        sa.UniqueConstraint("number", name=op.f("uq_destruction_list_number")),
    )
    with op.batch_alter_table("destruction_list", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_destruction_list_status"), ["status"], unique=False)

    op.create_table(
        "destruction_approval",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("approver", sa.String(length=100), nullable=False),
        sa.Column("opinion", sa.String(length=500), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["list_id"], ["destruction_list.id"],
                                name=op.f("fk_destruction_approval_list_id_destruction_list")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destruction_approval")),
        sa.UniqueConstraint("list_id", "approver", name=op.f("uq_destruction_approval_list_id")),
    )
    with op.batch_alter_table("destruction_approval", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_destruction_approval_list_id"), ["list_id"], unique=False)

    op.create_table(
        "destruction_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("archival_code", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("pieces", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("retention_code", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("refusal", sa.JSON(), nullable=True),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["decision_id"], ["appraisal_decision.id"],
                                name=op.f("fk_destruction_entry_decision_id_appraisal_decision")),
        sa.ForeignKeyConstraint(["item_id"], ["archive_item.id"],
                                name=op.f("fk_destruction_entry_item_id_archive_item")),
        sa.ForeignKeyConstraint(["list_id"], ["destruction_list.id"],
                                name=op.f("fk_destruction_entry_list_id_destruction_list")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destruction_entry")),
        sa.UniqueConstraint("list_id", "item_id", name=op.f("uq_destruction_entry_list_id")),
    )
    with op.batch_alter_table("destruction_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_destruction_entry_item_id"), ["item_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_destruction_entry_list_id"), ["list_id"], unique=False)


def downgrade() -> None:
    for table in ("destruction_entry", "destruction_approval", "destruction_list", "appraisal_decision",
                  "hold_item", "hold"):
        op.drop_table(table)
    op.execute("DELETE FROM role WHERE code = 'archive_head'")

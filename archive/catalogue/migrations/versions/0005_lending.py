"""lending and access grants (issue 8)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
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
        "lending_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requester", sa.String(length=64), nullable=False),
        sa.Column("department", sa.String(length=100), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("purpose_text", sa.String(length=500), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("days_requested", sa.Integer(), nullable=False),
        sa.Column("authority", sa.String(length=16), nullable=True),
        sa.Column("external_unit", sa.String(length=200), nullable=True),
        sa.Column("legal_basis", sa.String(length=300), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.String(length=500), nullable=True),
        sa.Column("days_granted", sa.Integer(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoke_reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lending_request")),
    )
    with op.batch_alter_table("lending_request", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lending_request_requester"), ["requester"], unique=False)
        batch_op.create_index(batch_op.f("ix_lending_request_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_lending_request_expires_at"), ["expires_at"], unique=False)

    op.create_table(
        "lending_item",
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("archival_code", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["lending_request.id"],
                                name=op.f("fk_lending_item_request_id_lending_request")),
        sa.ForeignKeyConstraint(["item_id"], ["archive_item.id"], name=op.f("fk_lending_item_item_id_archive_item")),
        sa.PrimaryKeyConstraint("request_id", "item_id", name=op.f("pk_lending_item")),
    )
    with op.batch_alter_table("lending_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lending_item_item_id"), ["item_id"], unique=False)

    op.create_table(
        "paper_loan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("borrower", sa.String(length=100), nullable=False),
        sa.Column("borrower_unit", sa.String(length=200), nullable=True),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("lent_by", sa.String(length=64), nullable=False),
        sa.Column("lent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reminders", sa.JSON(), nullable=False),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("returned_to", sa.String(length=64), nullable=True),
        sa.Column("condition_note", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["lending_request.id"],
                                name=op.f("fk_paper_loan_request_id_lending_request")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paper_loan")),
    )
    with op.batch_alter_table("paper_loan", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_paper_loan_due_date"), ["due_date"], unique=False)
        batch_op.create_index(batch_op.f("ix_paper_loan_status"), ["status"], unique=False)

    op.create_table(
        "paper_loan_item",
        sa.Column("loan_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("archival_code", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["loan_id"], ["paper_loan.id"], name=op.f("fk_paper_loan_item_loan_id_paper_loan")),
        sa.ForeignKeyConstraint(["item_id"], ["archive_item.id"],
                                name=op.f("fk_paper_loan_item_item_id_archive_item")),
        sa.PrimaryKeyConstraint("loan_id", "item_id", name=op.f("pk_paper_loan_item")),
    )
    with op.batch_alter_table("paper_loan_item", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_paper_loan_item_item_id"), ["item_id"], unique=False)


def downgrade() -> None:
    op.drop_table("paper_loan_item")
    op.drop_table("paper_loan")
    op.drop_table("lending_item")
    op.drop_table("lending_request")

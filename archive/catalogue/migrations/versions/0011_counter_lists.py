"""the counter's 工作台 lists a clerk's cases of today: index clerk, acceptance and closing times (issue 14)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case") as batch_op:
        batch_op.create_index(batch_op.f("ix_case_accepted_at"), ["accepted_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_closed_at"), ["closed_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_case_clerk"), ["clerk"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("case") as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_clerk"))
        batch_op.drop_index(batch_op.f("ix_case_closed_at"))
        batch_op.drop_index(batch_op.f("ix_case_accepted_at"))

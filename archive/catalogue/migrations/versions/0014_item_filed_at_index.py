"""an index on archive_item.filed_at: the dashboard counts each day's filings (and their 归档及时率) by a range
on it instead of reading the whole catalogue (issue 15)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_archive_item_filed_at"), "archive_item", ["filed_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_archive_item_filed_at"), table_name="archive_item")

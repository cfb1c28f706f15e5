"""scan batches carry the branch of the person who uploaded them, so a clerk sees her branch's stacks only
(issue 14)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batches received before this revision keep NULL: only people who see every branch see them.
    with op.batch_alter_table("scan_batch", schema=None) as batch_op:
        batch_op.add_column(sa.Column("branch", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_scan_batch_branch"), ["branch"], unique=False)


def downgrade() -> None:
    # Not in batch mode: on SQLite that rebuilds the table, which scan_part's foreign key forbids while parts
    # exist; SQLite 3.35+ drops a column in place.
    op.drop_index(op.f("ix_scan_batch_branch"), table_name="scan_batch")
    op.drop_column("scan_batch", "branch")

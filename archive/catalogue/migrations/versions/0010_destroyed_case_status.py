"""destroyed cases say so: one truthful status for a case whose item was destroyed (issue 12)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Destruction before this revision marked only the item; the case kept saying "filed".
    op.execute('UPDATE "case" SET status = \'destroyed\' '
               "WHERE id IN (SELECT case_id FROM archive_item WHERE status = 'destroyed')")


def downgrade() -> None:
    op.execute('UPDATE "case" SET status = \'filed\' '
               "WHERE id IN (SELECT case_id FROM archive_item WHERE status = 'destroyed')")

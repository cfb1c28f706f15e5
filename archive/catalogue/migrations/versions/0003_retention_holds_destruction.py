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


def downgrade() -> None:
    op.execute("DELETE FROM role WHERE code = 'archive_head'")

"""api_rate_bucket: API rate limits shared by every API process (`archive serve --workers N`, several hosts)
instead of one token bucket per process (issue 16)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_rate_bucket",
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_api_rate_bucket")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # no WAL for a hot, disposable row per client: a crash only refills every bucket
        op.execute("ALTER TABLE api_rate_bucket SET UNLOGGED")


def downgrade() -> None:
    op.drop_table("api_rate_bucket")

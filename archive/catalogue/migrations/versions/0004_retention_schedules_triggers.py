"""schedule versions and trigger events (issue 8)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "schedule_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ref", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=40), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_seen_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_version")),
        sa.UniqueConstraint("digest", name=op.f("uq_schedule_version_digest")),
        sa.UniqueConstraint("ref", name=op.f("uq_schedule_version_ref")),
    )
    op.create_table(
        "trigger_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reporter", sa.String(length=100), nullable=False),
        sa.Column("reporter_type", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("key_kind", sa.String(length=24), nullable=False),
        sa.Column("key_value", sa.String(length=64), nullable=False),
        sa.Column("event_date", sa.Date(), nullable=False),
        sa.Column("body_digest", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trigger_event")),
        sa.UniqueConstraint("reporter", "external_id", name=op.f("uq_trigger_event_reporter")),
    )
    with op.batch_alter_table("trigger_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trigger_event_event_type"), ["event_type"], unique=False)
        batch_op.create_index(batch_op.f("ix_trigger_event_key_value"), ["key_value"], unique=False)
        batch_op.create_index(batch_op.f("ix_trigger_event_outcome"), ["outcome"], unique=False)
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_personal_account"), ["personal_account"], unique=False)
    with op.batch_alter_table("archive_item", schema=None) as batch_op:
        batch_op.add_column(sa.Column("current_retention", sa.String(length=3), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("archive_item", schema=None) as batch_op:
        batch_op.drop_column("current_retention")
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_personal_account"))
    with op.batch_alter_table("trigger_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trigger_event_outcome"))
        batch_op.drop_index(batch_op.f("ix_trigger_event_key_value"))
        batch_op.drop_index(batch_op.f("ix_trigger_event_event_type"))
    op.drop_table("trigger_event")
    op.drop_table("schedule_version")

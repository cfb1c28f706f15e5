"""imports: historical archives (存量档案) from vendor deliveries — dry-run reports, import jobs with per-item state,
samples for manual inspection (issue 20)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "import_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("manifest_path", sa.String(length=1000), nullable=False),
        sa.Column("report_path", sa.String(length=1000), nullable=False),
        sa.Column("report_sha256", sa.String(length=64), nullable=False),
        sa.Column("vendor", sa.String(length=100), nullable=False),
        sa.Column("delivery_name", sa.String(length=100), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=100), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_report")),
    )
    op.create_index(op.f("ix_import_report_manifest_sha256"), "import_report", ["manifest_sha256"])
    op.create_table(
        "import_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("manifest_path", sa.String(length=1000), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("vendor", sa.String(length=100), nullable=False),
        sa.Column("delivery_name", sa.String(length=100), nullable=False),
        sa.Column("profile_sha256", sa.String(length=64), nullable=False),
        sa.Column("operator", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["report_id"], ["import_report.id"],
                                name=op.f("fk_import_job_report_id_import_report")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_job")),
        sa.UniqueConstraint("manifest_sha256", name=op.f("uq_import_job_manifest_sha256")),
    )
    op.create_index(op.f("ix_import_job_status"), "import_job", ["status"])
    op.create_table(
        "import_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("archival_code", sa.String(length=64), nullable=True),
        sa.Column("original_code", sa.String(length=64), nullable=True),
        sa.Column("retention_source", sa.String(length=16), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["import_job.id"], name=op.f("fk_import_item_job_id_import_job")),
        sa.ForeignKeyConstraint(["item_id"], ["archive_item.id"], name=op.f("fk_import_item_item_id_archive_item")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_item")),
        sa.UniqueConstraint("job_id", "key", name=op.f("uq_import_item_job_id")),
    )
    op.create_index(op.f("ix_import_item_job_id"), "import_item", ["job_id"])
    op.create_index(op.f("ix_import_item_state"), "import_item", ["state"])
    op.create_table(
        "import_sample",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("import_item_id", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("checked_by", sa.String(length=100), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["import_job.id"], name=op.f("fk_import_sample_job_id_import_job")),
        sa.ForeignKeyConstraint(["import_item_id"], ["import_item.id"],
                                name=op.f("fk_import_sample_import_item_id_import_item")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_sample")),
        sa.UniqueConstraint("job_id", "import_item_id", name=op.f("uq_import_sample_job_id")),
    )
    op.create_index(op.f("ix_import_sample_job_id"), "import_sample", ["job_id"])


def downgrade() -> None:
    op.drop_table("import_sample")
    op.drop_table("import_item")
    op.drop_table("import_job")
    op.drop_table("import_report")

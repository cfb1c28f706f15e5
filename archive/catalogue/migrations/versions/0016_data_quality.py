"""data quality (issue 19): rule runs, findings (问题数据), corrections (著录更正), batch plans, reconciliations

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    role = sa.table("role", sa.column("code", sa.String), sa.column("name", sa.String))
    op.bulk_insert(role, [{"code": "dq_department", "name": "业务部门数据整改员"}])  # corrects assigned findings
    op.create_table("dq_plan",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("title", sa.String(length=200), nullable=False),
    sa.Column("reason", sa.String(length=500), nullable=False),
    sa.Column("changes", sa.JSON(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("backup", sa.JSON(), nullable=True),
    sa.Column("proposed_by", sa.String(length=100), nullable=False),
    sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("approved_by", sa.String(length=100), nullable=True),
    sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("rolled_back_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_dq_plan"))
    )
    with op.batch_alter_table("dq_plan", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dq_plan_status"), ["status"], unique=False)

    op.create_table("dq_reconciliation",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("day", sa.Date(), nullable=False),
    sa.Column("reported", sa.Integer(), nullable=False),
    sa.Column("filed", sa.Integer(), nullable=False),
    sa.Column("counts", sa.JSON(), nullable=False),
    sa.Column("filing_rate", sa.Float(), nullable=True),
    sa.Column("by", sa.String(length=100), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_dq_reconciliation"))
    )
    with op.batch_alter_table("dq_reconciliation", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dq_reconciliation_day"), ["day"], unique=False)

    op.create_table("dq_run",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("rules", sa.JSON(), nullable=False),
    sa.Column("since", sa.DateTime(timezone=True), nullable=True),
    sa.Column("done_rules", sa.JSON(), nullable=False),
    sa.Column("counts", sa.JSON(), nullable=False),
    sa.Column("rule_errors", sa.JSON(), nullable=False),
    sa.Column("started_by", sa.String(length=100), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_dq_run"))
    )
    with op.batch_alter_table("dq_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dq_run_status"), ["status"], unique=False)

    op.create_table("dq_finding",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("fingerprint", sa.String(length=64), nullable=False),
    sa.Column("rule_code", sa.String(length=16), nullable=False),
    sa.Column("rule_version", sa.Integer(), nullable=False),
    sa.Column("dimension", sa.String(length=16), nullable=False),
    sa.Column("severity", sa.String(length=8), nullable=False),
    sa.Column("object_type", sa.String(length=16), nullable=False),
    sa.Column("object_key", sa.String(length=128), nullable=False),
    sa.Column("serial", sa.String(length=64), nullable=True),
    sa.Column("key_values", sa.JSON(), nullable=False),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("branch", sa.String(length=32), nullable=True),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("owner", sa.String(length=100), nullable=True),
    sa.Column("owner_kind", sa.String(length=16), nullable=True),
    sa.Column("due_date", sa.Date(), nullable=True),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("seen_count", sa.Integer(), nullable=False),
    sa.Column("last_run_id", sa.Integer(), nullable=True),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resolved_by", sa.String(length=100), nullable=True),
    sa.Column("waive_reason", sa.String(length=500), nullable=True),
    sa.Column("history", sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(["last_run_id"], ["dq_run.id"], name=op.f("fk_dq_finding_last_run_id_dq_run")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_dq_finding")),
    sa.UniqueConstraint("fingerprint", name=op.f("uq_dq_finding_fingerprint"))
    )
    with op.batch_alter_table("dq_finding", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dq_finding_branch"), ["branch"], unique=False)
        batch_op.create_index(batch_op.f("ix_dq_finding_dimension"), ["dimension"], unique=False)
        batch_op.create_index(batch_op.f("ix_dq_finding_due_date"), ["due_date"], unique=False)
        batch_op.create_index(batch_op.f("ix_dq_finding_first_seen"), ["first_seen"], unique=False)
        batch_op.create_index(batch_op.f("ix_dq_finding_object_key"), ["object_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_dq_finding_owner"), ["owner"], unique=False)
        batch_op.create_index(batch_op.f("ix_dq_finding_resolved_at"), ["resolved_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_dq_finding_rule_code"), ["rule_code"], unique=False)
        batch_op.create_index(batch_op.f("ix_dq_finding_serial"), ["serial"], unique=False)
        batch_op.create_index(batch_op.f("ix_dq_finding_severity"), ["severity"], unique=False)
        batch_op.create_index(batch_op.f("ix_dq_finding_status"), ["status"], unique=False)

    op.create_table("dq_correction",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("finding_id", sa.Integer(), nullable=True),
    sa.Column("plan_id", sa.Integer(), nullable=True),
    sa.Column("serial", sa.String(length=64), nullable=False),
    sa.Column("field", sa.String(length=40), nullable=False),
    sa.Column("before", sa.Text(), nullable=True),
    sa.Column("after", sa.Text(), nullable=True),
    sa.Column("reason", sa.String(length=500), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("by", sa.String(length=100), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["finding_id"], ["dq_finding.id"], name=op.f("fk_dq_correction_finding_id_dq_finding")),
    sa.ForeignKeyConstraint(["plan_id"], ["dq_plan.id"], name=op.f("fk_dq_correction_plan_id_dq_plan")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_dq_correction"))
    )
    with op.batch_alter_table("dq_correction", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dq_correction_finding_id"), ["finding_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dq_correction_plan_id"), ["plan_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dq_correction_serial"), ["serial"], unique=False)



def downgrade() -> None:
    op.execute("DELETE FROM role WHERE code = 'dq_department'")
    with op.batch_alter_table("dq_correction", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dq_correction_serial"))
        batch_op.drop_index(batch_op.f("ix_dq_correction_plan_id"))
        batch_op.drop_index(batch_op.f("ix_dq_correction_finding_id"))

    op.drop_table("dq_correction")
    with op.batch_alter_table("dq_finding", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dq_finding_status"))
        batch_op.drop_index(batch_op.f("ix_dq_finding_severity"))
        batch_op.drop_index(batch_op.f("ix_dq_finding_serial"))
        batch_op.drop_index(batch_op.f("ix_dq_finding_rule_code"))
        batch_op.drop_index(batch_op.f("ix_dq_finding_resolved_at"))
        batch_op.drop_index(batch_op.f("ix_dq_finding_owner"))
        batch_op.drop_index(batch_op.f("ix_dq_finding_object_key"))
        batch_op.drop_index(batch_op.f("ix_dq_finding_first_seen"))
        batch_op.drop_index(batch_op.f("ix_dq_finding_due_date"))
        batch_op.drop_index(batch_op.f("ix_dq_finding_dimension"))
        batch_op.drop_index(batch_op.f("ix_dq_finding_branch"))

    op.drop_table("dq_finding")
    with op.batch_alter_table("dq_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dq_run_status"))

    op.drop_table("dq_run")
    with op.batch_alter_table("dq_reconciliation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dq_reconciliation_day"))

    op.drop_table("dq_reconciliation")
    with op.batch_alter_table("dq_plan", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dq_plan_status"))

    op.drop_table("dq_plan")

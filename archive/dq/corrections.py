"""著录更正: a correction of a case's catalogue metadata closing a finding, with before/after and a trail.

The corrected value is re-checked by the finding's rule before it is kept: a value the rule still rejects is
refused with the rule's message and nothing changes. A filed item's signed rendition is never touched: the
correction is added to the case's 业务行为 (process metadata), which the item's EEP (DA/T 48) carries.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import audit, indexing
from archive.audit import Actor
from archive.catalogue.models import Case, DqCorrection, DqFinding
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.dq import findings, runs
from archive.errors import InvalidInput, NotFound
from archive.identifiers import mask_id_number, mask_mobile

FIELDS = {"applicant_name": "申请人姓名", "applicant_id_number": "证件号码", "applicant_mobile": "手机号码",
          "unit_name": "单位名称", "unit_uscc": "统一社会信用代码", "unit_account": "单位账号",
          "personal_account": "个人账号", "loan_contract_no": "贷款合同号", "outcome": "办结结果"}
MASKS = {"applicant_id_number": mask_id_number, "applicant_mobile": mask_mobile}
OUTCOMES = ("approved", "rejected", "withdrawn")


def correct(ctx: Context, session: Session, actor: Actor, finding_id: int, field: str, value: str | None,
            reason: str) -> DqCorrection:
    """Change ``field`` of the finding's case to ``value``, re-check, keep it only when the rule now passes, and
    submit the finding for review."""
    f = findings.get(session, finding_id)
    findings.expect(f, "open", "assigned", "fixing")
    if field not in FIELDS:
        raise InvalidInput(f"只能更正这些著录项：{'、'.join(f'{k}（{v}）' for k, v in FIELDS.items())}",
                           code="dq_field_not_correctable", detail={"field": "field", "value": field})
    reason = (reason or "").strip()
    if len(reason) < 2:
        raise InvalidInput("请填写更正依据（如核对的证件、业务系统记录）", code="dq_correction_reason_required",
                           detail={"field": "reason"})
    value = clean(field, value)
    case = session.scalar(select(Case).where(Case.serial == f.serial)) if f.serial else None
    if case is None:
        raise NotFound(f"问题数据 {f.id} 没有对应的业务，不能更正著录项", code="dq_correction_no_case",
                       detail={"id": f.id})
    before = getattr(case, field)
    savepoint = session.begin_nested()
    setattr(case, field, value)
    session.flush()
    still = runs.recheck(ctx, session, f)
    if still is not None:
        savepoint.rollback()
        raise InvalidInput(f"更正后仍不符合规则 {f.rule_code}：{still.message}", code="dq_correction_still_failing",
                           detail={"rule": f.rule_code, "field": "value"})
    savepoint.commit()
    now = utcnow()
    row = DqCorrection(finding_id=f.id, serial=case.serial, field=field, before=before, after=value,
                       reason=reason[:500], by=actor.name, at=now)
    session.add(row)
    if case.status != "open":  # the filed record's process metadata (and so its EEP) tells of the correction
        case.trail = [*(case.trail or []), {"action": "著录更正", "person": actor.name, "at": now.isoformat(),
                                            "opinion": f"更正{FIELDS[field]}（问题数据 {f.id}，规则 {f.rule_code}）"}]
    session.flush()
    audit.record(session, actor, "dq.correction", target_type="case", target_id=case.serial,
                 detail={"finding": f.id, "rule": f.rule_code, "field": field, "before": shown(field, before),
                         "after": shown(field, value), "reason": reason[:500], "correction": row.id})
    indexing.enqueue(session, case.serial)
    findings.submit(session, actor, f, f"著录更正：{FIELDS[field]}")
    return row


def verify(ctx: Context, session: Session, actor: Actor, finding_id: int) -> DqFinding:
    """复核: re-run the rule on the object; passing closes the finding, failing sends it back with the result."""
    f = findings.get(session, finding_id)
    findings.expect(f, "submitted")
    return findings.settle_recheck(session, actor, f, runs.recheck(ctx, session, f))


def clean(field: str, value: str | None) -> str | None:
    v = (value or "").strip() or None
    if field in ("applicant_id_number", "unit_uscc") and v:
        v = v.upper()
    if field == "outcome" and v not in OUTCOMES:
        raise InvalidInput(f"办结结果只能是 {'、'.join(OUTCOMES)}", code="dq_correction_value_invalid",
                           detail={"field": "value"})
    limit = getattr(Case.__table__.c[field].type, "length", None) or 200
    if v is not None and len(v) > limit:
        raise InvalidInput(f"更正后的值太长（最多 {limit} 个字符）", code="dq_correction_value_invalid",
                           detail={"field": "value"})
    return v


def shown(field: str, value: Any) -> Any:
    mask = MASKS.get(field)
    return mask(value) if mask and isinstance(value, str) else value


def history(session: Session, serial: str) -> list[DqCorrection]:
    return list(session.scalars(select(DqCorrection).where(DqCorrection.serial == serial)
                                .order_by(DqCorrection.id)))

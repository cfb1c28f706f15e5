"""数据比对: the business system's list of cases closed on a day against the archive's own records.

Reported but not filed (DQ-RC-001), filed but not reported (DQ-RC-002) and a different business type
(DQ-RC-003) become findings; the 归档率 is filed among reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import Case, DqFinding, DqReconciliation
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.dq import findings
from archive.dq.registry import Failure, Rule
from archive.dq.rules.reconciliation import CLOSED_NOT_FILED, FILED_UNKNOWN, TYPE_MISMATCH
from archive.errors import InvalidInput

MAX_CASES = 200_000
EARLIEST = date(1991, 1, 1)  # the first 住房公积金 (Shanghai, 1991)


@dataclass(frozen=True)
class Reported:
    serial: str
    business_type: str


def reconcile(ctx: Context, session: Session, actor: Actor, day: date, reported: list[Reported]) -> DqReconciliation:
    if len(reported) > MAX_CASES:
        raise InvalidInput(f"一次最多比对 {MAX_CASES} 笔业务，请分批报送", code="dq_reconciliation_too_large",
                           detail={"max": MAX_CASES})
    serials = [r.serial for r in reported]
    if len(set(serials)) != len(serials):
        dup = sorted({s for s in serials if serials.count(s) > 1})[:10] if len(serials) < 5000 else []
        raise InvalidInput(f"清单中有重复的业务流水号{('：' + '、'.join(dup)) if dup else ''}",
                           code="dq_reconciliation_duplicates", detail={"serials": dup})
    if day < EARLIEST:  # before any 住房公积金 business (and before the dates the catalogue can compare)
        raise InvalidInput(f"比对日期不能早于 {EARLIEST:%Y年%m月%d日}", code="dq_reconciliation_too_early",
                           detail={"field": "day", "earliest": EARLIEST.isoformat()})
    if day > ctx.today():
        raise InvalidInput("比对日期不能晚于今天", code="dq_reconciliation_future", detail={"field": "day"})
    now = utcnow()
    start = datetime.combine(day, time(), ctx.zone)
    ours = {c.serial: c for c in session.scalars(select(Case).where(
        Case.closed_at >= start, Case.closed_at < start + timedelta(days=1)))}
    by_serial: dict[str, Case] = dict(ours)
    missing = [s for s in serials if s not in by_serial]
    for i in range(0, len(missing), 1000):
        for c in session.scalars(select(Case).where(Case.serial.in_(missing[i:i + 1000]))):
            by_serial[c.serial] = c
    counts = {"closed_not_filed": 0, "filed_unknown": 0, "type_mismatch": 0}
    filed = 0
    for r in reported:
        case = by_serial.get(r.serial)
        if case is None or case.status != "filed":
            counts["closed_not_filed"] += 1
            _observe(session, CLOSED_NOT_FILED, r.serial, case, "业务系统已办结，档案系统" +
                     ("没有该业务" if case is None else "尚未归档"), {"day": day.isoformat()}, now)
        else:
            filed += 1
        if case is not None and case.business_type != r.business_type:
            counts["type_mismatch"] += 1
            _observe(session, TYPE_MISMATCH, r.serial, case, f"业务系统的业务类型为 {r.business_type}，档案系统为 "
                     f"{case.business_type}", {"reported_type": r.business_type}, now)
    known = set(serials)
    for serial, case in ours.items():
        if case.status == "filed" and serial not in known:
            counts["filed_unknown"] += 1
            _observe(session, FILED_UNKNOWN, serial, case, f"已归档，但不在业务系统 {day} 的办结清单中",
                     {"day": day.isoformat()}, now)
    rate = round(filed / len(reported), 4) if reported else None
    row = DqReconciliation(day=day, reported=len(reported), filed=filed, counts=counts, filing_rate=rate,
                           by=actor.name, at=now)
    session.add(row)
    session.flush()
    audit.record(session, actor, "dq.reconcile", target_type="dq_reconciliation", target_id=row.id,
                 detail={"day": day.isoformat(), "reported": len(reported), "filed": filed, **counts})
    return row


def _observe(session: Session, rule: Rule, serial: str, case: Case | None, message: str,
             key_values: dict[str, Any], now: datetime) -> None:
    findings.observe(session, rule, Failure("case", serial, serial, message, case.branch if case else None,
                                            key_values), None, now)


def recheck(session: Session, rule: Rule, finding: DqFinding) -> Failure | None:
    """Re-check a reconciliation finding against the values the business system reported."""
    case = session.scalar(select(Case).where(Case.serial == finding.object_key))
    kv = finding.key_values
    if rule.code == CLOSED_NOT_FILED.code and (case is None or case.status != "filed"):
        return Failure("case", finding.object_key, finding.object_key, finding.message, finding.branch, kv)
    if rule.code == TYPE_MISMATCH.code and (case is None or case.business_type != kv.get("reported_type")):
        return Failure("case", finding.object_key, finding.object_key, finding.message, finding.branch, kv)
    if rule.code == FILED_UNKNOWN.code:  # only the business system can answer: stays until waived or reported
        return Failure("case", finding.object_key, finding.object_key, finding.message, finding.branch, kv)
    return None

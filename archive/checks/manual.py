"""Manual check items (人工检测: 载体外观 …): a person records the result on a stored report.

The check items register themselves when their modules are imported; this module imports all of them, so the
registry is full wherever manual items (or the list of every item) are needed.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from archive import audit
from archive.audit import Actor
from archive.catalogue.models import CheckReport, CheckResult
from archive.catalogue.types import utcnow
from archive.checks import bc, gd, yj
from archive.checks.base import REGISTRY, CheckItem, Outcome
from archive.checks.reports import get_report, summarise
from archive.errors import Conflict, InvalidInput

ITEM_MODULES = (bc, gd, yj)  # importing them registers their check items in REGISTRY
MANUAL_OUTCOMES = (Outcome.PASSED, Outcome.FAILED, Outcome.NOT_APPLICABLE)


def load_items() -> dict[str, CheckItem]:
    """Every check item by code: the registry, full, since this module imports each of ITEM_MODULES."""
    return REGISTRY


def record_manual(session: Session, actor: Actor, report_id: int, code: str, outcome: Outcome, detail: str,
                  target: str | None = None) -> CheckReport:
    """A person records the result of a manual item (载体外观 …) on a report; audited, recorded once."""
    load_items()
    report = get_report(session, report_id)
    item = REGISTRY.get(code)
    if item is None or not item.manual or item.stage.value != report.stage:
        manual = sorted(i.code for i in REGISTRY.values() if i.manual and i.stage.value == report.stage)
        raise InvalidInput(f"{code} 不是本环节需人工检测的项目；可登记的项目：{'、'.join(manual) or '无'}",
                           code="not_a_manual_item", detail={"code": code, "manual_items": manual})
    if outcome not in MANUAL_OUTCOMES:
        raise InvalidInput("人工检测结果只能是 passed（通过）、failed（不通过）或 not_applicable（不适用）",
                           code="invalid_manual_outcome", detail={"outcome": str(outcome)})
    if not detail.strip() or _has_control(detail):
        raise InvalidInput("请填写检测说明（不含控制字符）", code="invalid_manual_detail")
    row = next((r for r in report.results if r.code == code and (target is None or r.target == target)), None)
    if row is not None and row.recorded_by is not None:
        raise Conflict(f"检测项 {code} 已由 {row.recorded_by} 于 {row.recorded_at:%Y-%m-%d %H:%M} 登记，不能重复登记",
                       code="manual_item_recorded", detail={"code": code})
    before = None
    if row is None:
        row = CheckResult(position=len(report.results) + 1, code=code, name=item.name,
                          dimension=item.dimension.value, object=item.object.value, target=target,
                          outcome="", detail="", blocking=item.blocking, basis=item.basis[:100], data=None)
        report.results.append(row)
    else:
        before = row.outcome
    row.outcome, row.detail = outcome.value, detail.strip()
    row.recorded_by, row.recorded_at = actor.name, utcnow()
    summarise(report)
    session.flush()
    audit.record(session, actor, "check.manual", target_type="check_report", target_id=report.id,
                 outcome="success", detail={"code": code, "target": target, "outcome": outcome.value,
                                            "before": before, "report_outcome": report.outcome})
    return report


def _has_control(text_: str) -> bool:
    return any((ord(c) < 32 and c not in "\n\t") or ord(c) == 127 for c in text_)

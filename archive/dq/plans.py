"""批量治理: a batch correction only with an approved plan (two people), a backup of the affected values taken
before anything changes, a kept change record per value (可追溯), and a rollback.

A filed item's rendition is never touched: like a single correction, each change is a catalogue change with its
audit event, and a filed case's 业务行为 records it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import audit, indexing
from archive.audit import Actor
from archive.catalogue.models import Case, DqCorrection, DqPlan
from archive.catalogue.types import utcnow
from archive.dq.corrections import FIELDS, clean, shown
from archive.errors import Conflict, InvalidInput, NotFound

MAX_CHANGES = 10_000
STATUSES = {"proposed": "待审批", "approved": "已批准", "applied": "已执行", "rolled_back": "已回退"}


def propose(session: Session, actor: Actor, title: str, reason: str, changes: list[dict[str, Any]]) -> DqPlan:
    if not title.strip() or len(reason.strip()) < 2:
        raise InvalidInput("请填写治理方案的名称和理由", code="dq_plan_reason_required", detail={"field": "reason"})
    if not changes or len(changes) > MAX_CHANGES:
        raise InvalidInput(f"治理方案应包含 1 至 {MAX_CHANGES} 项修改", code="dq_plan_size",
                           detail={"max": MAX_CHANGES})
    cleaned, seen = [], set()
    for i, c in enumerate(changes):
        field, serial = str(c.get("field", "")), str(c.get("serial", ""))
        if field not in FIELDS:
            raise InvalidInput(f"第 {i + 1} 项：不能批量修改 {field}；可修改：{'、'.join(FIELDS)}",
                               code="dq_field_not_correctable", detail={"field": f"changes.{i}.field"})
        if (serial, field) in seen:
            raise InvalidInput(f"第 {i + 1} 项：业务 {serial} 的 {FIELDS[field]} 重复出现", code="dq_plan_duplicate",
                               detail={"field": f"changes.{i}"})
        seen.add((serial, field))
        cleaned.append({"serial": serial, "field": field, "after": clean(field, c.get("value"))})
    serials = {serial for serial, _ in seen}
    known = set(session.scalars(select(Case.serial).where(Case.serial.in_(serials))))
    if missing := sorted(serials - known):
        raise NotFound(f"业务流水号 {'、'.join(missing[:10])} 不存在", code="case_not_found",
                       detail={"serials": missing[:100]})
    plan = DqPlan(title=title.strip()[:200], reason=reason.strip()[:500], changes=cleaned, status="proposed",
                  proposed_by=actor.name)
    session.add(plan)
    session.flush()
    audit.record(session, actor, "dq.plan.propose", target_type="dq_plan", target_id=plan.id,
                 detail={"title": plan.title, "changes": len(cleaned)})
    return plan


def get(session: Session, plan_id: int) -> DqPlan:
    plan = session.get(DqPlan, plan_id)
    if plan is None:
        raise NotFound(f"治理方案 {plan_id} 不存在", code="dq_plan_not_found", detail={"id": plan_id})
    return plan


def _expect(plan: DqPlan, status: str) -> None:
    if plan.status != status:
        raise Conflict(f"治理方案 {plan.id} 当前为“{STATUSES[plan.status]}”，不能办理此操作",
                       code="dq_plan_wrong_status", detail={"id": plan.id, "status": plan.status})


def approve(session: Session, actor: Actor, plan_id: int) -> DqPlan:
    plan = get(session, plan_id)
    _expect(plan, "proposed")
    if plan.proposed_by == actor.name:
        raise Conflict("治理方案须由编制人以外的人员批准", code="dq_plan_same_person", detail={"id": plan.id})
    plan.status, plan.approved_by, plan.approved_at = "approved", actor.name, utcnow()
    audit.record(session, actor, "dq.plan.approve", target_type="dq_plan", target_id=plan.id)
    return plan


def apply(session: Session, actor: Actor, plan_id: int) -> DqPlan:
    """Back the affected values up into the plan, then change them, one correction record each."""
    plan = get(session, plan_id)
    _expect(plan, "approved")
    cases = {c.serial: c for c in session.scalars(select(Case).where(
        Case.serial.in_({c["serial"] for c in plan.changes})).with_for_update())}
    plan.backup = [{"serial": c["serial"], "field": c["field"], "before": getattr(cases[c["serial"]], c["field"])}
                   for c in plan.changes]
    session.flush()  # the backup is written before the first change
    now = utcnow()
    for change, kept in zip(plan.changes, plan.backup, strict=True):
        case = cases[change["serial"]]
        setattr(case, change["field"], change["after"])
        session.add(DqCorrection(plan_id=plan.id, serial=case.serial, field=change["field"], before=kept["before"],
                                 after=change["after"], reason=plan.reason, by=actor.name, at=now))
        _trail(case, actor, now, f"批量治理：更正{FIELDS[change['field']]}（治理方案 {plan.id}）")
        indexing.enqueue(session, case.serial)
    plan.status, plan.applied_at = "applied", now
    audit.record(session, actor, "dq.plan.apply", target_type="dq_plan", target_id=plan.id,
                 detail={"count": len(plan.changes), "changes": [
                     {"serial": c["serial"], "field": c["field"], "before": shown(c["field"], b["before"]),
                      "after": shown(c["field"], c["after"])}
                     for c, b in zip(plan.changes[:200], plan.backup[:200], strict=True)]})
    return plan


def rollback(session: Session, actor: Actor, plan_id: int) -> DqPlan:
    """Put the backed-up values back, unless a value was changed again since (then nothing is rolled back)."""
    plan = get(session, plan_id)
    _expect(plan, "applied")
    assert plan.backup is not None
    cases = {c.serial: c for c in session.scalars(select(Case).where(
        Case.serial.in_({c["serial"] for c in plan.changes})).with_for_update())}
    moved = [c["serial"] for c in plan.changes if getattr(cases[c["serial"]], c["field"]) != c["after"]]
    if moved:
        raise Conflict(f"业务 {'、'.join(moved[:10])} 在执行方案后又被修改，不能整体回退", code="dq_plan_changed_since",
                       detail={"serials": moved[:100]})
    now = utcnow()
    for kept in plan.backup:
        case = cases[kept["serial"]]
        setattr(case, kept["field"], kept["before"])
        _trail(case, actor, now, f"回退批量治理：恢复{FIELDS[kept['field']]}（治理方案 {plan.id}）")
        indexing.enqueue(session, case.serial)
    for row in session.scalars(select(DqCorrection).where(DqCorrection.plan_id == plan.id)):
        row.status = "rolled_back"
    plan.status, plan.rolled_back_at = "rolled_back", now
    audit.record(session, actor, "dq.plan.rollback", target_type="dq_plan", target_id=plan.id,
                 detail={"count": len(plan.backup)})
    return plan


def _trail(case: Case, actor: Actor, now: Any, note: str) -> None:
    if case.status != "open":
        case.trail = [*(case.trail or []), {"action": "著录更正", "person": actor.name, "at": now.isoformat(),
                                            "opinion": note}]

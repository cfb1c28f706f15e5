"""Appraisal (鉴定): the queue of expired items and the archivist's keep-or-destroy decisions.

An item enters the queue when its expiry date has passed, it is filed, no active hold covers it and it has no
open destroy decision. Items still waiting for their trigger (expiry NULL) and 永久 items never appear. A keep
decision takes effect at once: the new expiry (counted from the same trigger with the new period) replaces the
old and the store's retention is extended; the 档号, which carries the period of filing, stays as it is (it is
the item's permanent identity) and the new period lives in the decision. A destroy decision only proposes: it
waits for a 销毁清册 and its two approvals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from archive import audit
from archive.authorization import require
from archive.catalogue.models import AppraisalDecision, ArchiveItem, Case, Hold, HoldItem
from archive.catalogue.types import utcnow
from archive.classification import RetentionCode
from archive.context import Context
from archive.errors import Conflict, InvalidInput, NotFound
from archive.permissions import Permission, Principal
from archive.retention.holds import chunks, held_item_ids, item_objects
from archive.retention.periods import expiry_date, lock_end
from archive.retention.refusals import actor_of, audited
from storage.base import ObjectNotFound

MAX_DECISIONS = 10_000
OPEN_DESTROY = ("proposed", "listed", "destroyed")  # a destroy decision that keeps the item out of the queue


class QueueFilter(BaseModel):
    category: str | None = None
    business_type: str | None = None
    year: int | None = None
    expired_before: date | None = None  # only items whose expiry date is before this day


class DecisionIn(BaseModel):
    archival_codes: list[str] = Field(min_length=1, max_length=MAX_DECISIONS, description="档号清单")
    decision: Literal["keep", "destroy"] = Field(description="keep 继续保存，destroy 拟销毁")
    reason: str = Field(min_length=1, max_length=500, description="鉴定意见")
    retention_code: str | None = Field(None, description="继续保存时的新保管期限：Y、D30、D10")


@dataclass
class DecisionReport:
    decision: str
    decided: int = 0
    codes: list[str] = field(default_factory=list)
    new_expiry: dict[str, str | None] = field(default_factory=dict)


def queue_query(today: date, f: QueueFilter | None = None,
                branches: frozenset[str] | None = None) -> Select[Any]:
    """Items awaiting appraisal: expired, filed, not held, no open destroy decision."""
    held = exists().where(HoldItem.item_id == ArchiveItem.id, Hold.id == HoldItem.hold_id, Hold.status == "active")
    decided = exists().where(AppraisalDecision.item_id == ArchiveItem.id, AppraisalDecision.decision == "destroy",
                             AppraisalDecision.status.in_(OPEN_DESTROY))
    # status through coalesce: its index (nearly every item is filed) must not be chosen over expiry_date's, which
    # gives the queue's order, so a page or a bounded count stops early instead of sorting a million rows
    stmt = (select(ArchiveItem).where(func.coalesce(ArchiveItem.status, "") == "filed",
                                      ArchiveItem.expiry_date <= today, ~held, ~decided))
    f = f or QueueFilter()
    if f.expired_before is not None:
        stmt = stmt.where(ArchiveItem.expiry_date < f.expired_before)
    if f.category:
        stmt = stmt.where(ArchiveItem.category == f.category)
    if f.year is not None:
        stmt = stmt.where(ArchiveItem.year == f.year)
    if f.business_type or branches is not None:
        stmt = stmt.join(Case, Case.id == ArchiveItem.case_id)
        if f.business_type:
            stmt = stmt.where(Case.business_type == f.business_type)
        if branches is not None:  # coalesce: a branch holds many items; drive from expiry_date, as above
            stmt = stmt.where(func.coalesce(Case.branch, "").in_(sorted(branches)))
    return stmt


def queue(ctx: Context, session: Session, principal: Principal, f: QueueFilter | None = None,
          limit: int = 100, offset: int = 0, count_cap: int | None = None) -> tuple[int, list[ArchiveItem]]:
    """(total, one page ordered by expiry date then 档号); with ``count_cap`` the total stops counting there (a page
    over a million items says "more than …" instead of scanning them all)."""
    require(session, principal, Permission.RETENTION_MANAGE, target_type="appraisal_queue")
    stmt = queue_query(ctx.today(), f, principal.branches)
    ids = stmt.with_only_columns(ArchiveItem.id)
    if count_cap is not None:
        ids = ids.limit(count_cap)
    total = session.scalar(select(func.count()).select_from(ids.subquery())) or 0
    page = list(session.scalars(stmt.order_by(ArchiveItem.expiry_date, ArchiveItem.id).limit(limit).offset(offset)))
    return total, page


def matching_codes(ctx: Context, session: Session, principal: Principal, f: QueueFilter,
                   exclude: list[str] | None = None) -> list[str]:
    """The 档号 of the queue's items ``f`` matches minus ``exclude``, queue order; refused past MAX_DECISIONS."""
    require(session, principal, Permission.RETENTION_MANAGE, target_type="appraisal_queue")
    left_out = {c.strip() for c in exclude or () if c.strip()}
    stmt = (queue_query(ctx.today(), f, principal.branches).with_only_columns(ArchiveItem.archival_code)
            .order_by(ArchiveItem.expiry_date, ArchiveItem.id).limit(MAX_DECISIONS + len(left_out) + 1))
    codes = [c for c in session.scalars(stmt) if c not in left_out]
    if not codes:
        raise InvalidInput("没有符合条件的待鉴定档案；请调整筛选条件", code="appraisal_selection_empty")
    if len(codes) > MAX_DECISIONS:
        raise InvalidInput(f"一次最多鉴定 {MAX_DECISIONS} 件，符合条件的超过此数；"
                           "请缩小筛选范围（如按年度、类别）后分批鉴定", code="appraisal_selection_too_large",
                           detail={"max": MAX_DECISIONS})
    return codes


def title_of(ctx: Context, case: Case) -> str:
    """题名 as the rendition carries it: who, then the business."""
    bt = ctx.schedule.types.get(case.business_type)
    return f"{case.applicant_name or case.unit_name or ''}{bt.name if bt else case.business_type}"


# --- decisions -----------------------------------------------------------------------------------

def decide(ctx: Context, session: Session, principal: Principal, data: DecisionIn,
           progress: Callable[[int], None] | None = None) -> DecisionReport:
    """Record keep or destroy for every listed item, or nothing: any item that cannot be decided refuses all."""
    codes = list(dict.fromkeys(c.strip() for c in data.archival_codes if c.strip()))
    with audited(session, principal, "appraisal.decide", target_type="item",
                 target_id=codes[0] if len(codes) == 1 else None,
                 detail={"decision": data.decision, "items": len(codes), "archival_codes": codes[:100]},
                 permission=Permission.RETENTION_MANAGE):
        new_code = _keep_code(data)
        today = ctx.today()
        items = _items(session, principal, codes)
        _check_decidable(session, items, today)
        report = DecisionReport(decision=data.decision)
        actor = actor_of(principal)
        for n, item in enumerate(items, 1):
            previous = item.expiry_date
            decision = AppraisalDecision(item_id=item.id, decision=data.decision, reason=data.reason.strip(),
                                         previous_expiry=previous, decided_by=principal.name, decided_at=utcnow())
            detail: dict[str, Any] = {"decision": data.decision, "reason": decision.reason,
                                      "previous_expiry": previous.isoformat() if previous else None}
            if new_code is not None:
                new_expiry = _keep(ctx, session, item, new_code, today)
                decision.retention_code, decision.new_expiry, decision.status = new_code.value, new_expiry, "applied"
                item.expiry_date = new_expiry
                item.current_retention = None if new_code.value == item.retention_code else new_code.value
                detail |= {"retention_code": new_code.value,
                           "new_expiry": new_expiry.isoformat() if new_expiry else None}
                report.new_expiry[item.archival_code] = detail["new_expiry"]
            else:
                decision.status = "proposed"
            session.add(decision)
            audit.record(session, actor, "appraisal.decide", target_type="item", target_id=item.archival_code,
                         detail=detail)
            report.decided += 1
            report.codes.append(item.archival_code)
            if progress is not None:
                progress(n)
        return report


def _keep_code(data: DecisionIn) -> RetentionCode | None:
    if data.decision == "destroy":
        if data.retention_code is not None:
            raise InvalidInput("拟销毁时不需要保管期限；继续保存时才给出新的保管期限",
                               code="retention_code_not_allowed", detail={"field": "retention_code"})
        return None
    try:
        return RetentionCode(data.retention_code or "")
    except ValueError:
        raise InvalidInput("继续保存须给出新的保管期限（Y 永久、D30 定期30年、D10 定期10年），"
                           f"收到 {data.retention_code!r}",
                           code="invalid_retention_code", detail={"field": "retention_code"}) from None


def _items(session: Session, principal: Principal, codes: list[str]) -> list[ArchiveItem]:
    if not codes:
        raise InvalidInput("档号清单为空", code="archival_codes_required")
    found: dict[str, ArchiveItem] = {}
    for part in chunks(codes):
        for item, branch in session.execute(select(ArchiveItem, Case.branch).join(Case, Case.id == ArchiveItem.case_id)
                                            .where(ArchiveItem.archival_code.in_(part)).with_for_update()):
            if principal.sees_branch(branch):
                found[item.archival_code] = item
    unknown = [c for c in codes if c not in found]
    if unknown:
        raise NotFound(f"以下档号不存在：{'、'.join(unknown[:10])}（共 {len(unknown)} 个）；请核对后重新提交",
                       code="unknown_archival_code", detail={"unknown": unknown})
    return [found[c] for c in codes]


_REASONS = {
    "item_not_filed": "不是在库档案（已销毁或未归档）",
    "retention_pending": "尚未发生保管期限起算事件（如贷款未结清），不能鉴定",
    "permanent": "保管期限为永久，不需鉴定",
    "not_expired": "保管期限尚未到期",
    "item_on_hold": "处于冻结中",
    "already_decided": "已有待执行的销毁意见",
}


def _check_decidable(session: Session, items: list[ArchiveItem], today: date) -> None:
    problems: list[dict[str, Any]] = []
    held = held_item_ids(session, [i.id for i in items])
    pending: set[int] = set()
    for part in chunks([i.id for i in items]):
        pending.update(session.scalars(select(AppraisalDecision.item_id).where(
            AppraisalDecision.item_id.in_(part), AppraisalDecision.decision == "destroy",
            AppraisalDecision.status.in_(OPEN_DESTROY))))
    for item in items:
        code = None
        if item.status != "filed":
            code = "item_not_filed"
        elif item.expiry_date is None:
            code = "permanent" if item.trigger_date is not None or item.retention_code == "Y" else "retention_pending"
        elif item.expiry_date > today:
            code = "not_expired"
        elif item.id in held:
            code = "item_on_hold"
        elif item.id in pending:
            code = "already_decided"
        if code:
            reason = _REASONS[code]
            if code == "not_expired":
                reason += f"（到期日 {item.expiry_date:%Y-%m-%d}）"
            problems.append({"archival_code": item.archival_code, "code": code, "message": reason})
    if problems:
        codes = {p["code"] for p in problems}
        first = problems[0]
        more = f"等 {len(problems)} 件" if len(problems) > 1 else ""
        raise Conflict(f"档号 {first['archival_code']}{more}不能鉴定：{first['message']}；本次鉴定意见均未记录",
                       code=codes.pop() if len(codes) == 1 else "appraisal_refused", detail={"problems": problems})


def _keep(ctx: Context, session: Session, item: ArchiveItem, code: RetentionCode, today: date) -> date | None:
    """The new expiry of a kept item; the store's retention of its objects is extended to match."""
    rule = ctx.schedule.triggers.get(item.trigger)  # type: ignore[call-overload]  # a filed item always has a trigger
    new_expiry = expiry_date(code, item.trigger_date, rule.counting if rule else "next_year")
    if new_expiry is not None and new_expiry <= today:
        raise InvalidInput(f"档号 {item.archival_code} 按新的保管期限（{code.label}）计算，"
                           f"到期日 {new_expiry:%Y-%m-%d} 已过；请选择更长的保管期限", code="keep_period_too_short",
                           detail={"archival_code": item.archival_code, "new_expiry": new_expiry.isoformat()})
    until = lock_end(new_expiry, code.years, today)  # 永久 kept: counted from the decision
    for key in sorted(item_objects(session, [item.id]).get(item.id, set())):
        try:
            current = ctx.store.stat(key).retain_until
        except ObjectNotFound:
            continue
        if current is None or current < until:
            ctx.store.set_retention(key, until)
    return new_expiry


def decisions_of(session: Session, item_id: int) -> list[AppraisalDecision]:
    return list(session.scalars(select(AppraisalDecision).where(AppraisalDecision.item_id == item_id)
                                .order_by(AppraisalDecision.id)))

"""Holds (冻结): legal or audit holds on items, cases or a query's result.

A hold records the items it matched when it was set (a later filing that would match the same query is not
covered: the authority's order names what existed). While any active hold covers an item, appraisal,
destruction and retention shortening refuse it, and the object store's legal hold is set on the item's
objects (rendition and originals). Lifting clears the store's legal hold only on objects no other active hold
still covers (an original can be shared by two items, since keys are content digests).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime, time
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from archive import audit, saved_searches
from archive.catalogue.models import ArchiveItem, Case, Document, Hold, HoldItem, RenditionVersion
from archive.catalogue.types import utcnow
from archive.context import Context
from archive.errors import Conflict, InvalidInput, NotFound
from archive.permissions import Permission, Principal
from archive.retention.refusals import actor_of, audited
from storage.base import ObjectNotFound

MAX_KEYS = 10_000  # 档号 or 业务流水号 in one request
CHUNK = 1000  # ids per IN (…) clause
FILED_DATES = (date(1900, 1, 1), date(2199, 12, 31))  # 归档日期 bounds a query may give (beyond: overflow)


class HoldQuery(BaseModel):
    """Catalogue filters; the hold covers the filed items they match when it is set."""

    business_type: str | None = Field(None, max_length=16, description="业务类型代码")
    category: str | None = Field(None, max_length=2, description="类别：GJ、TQ、DK、ZJ")
    year: int | None = Field(None, ge=1900, le=2200, description="年度")
    branch: str | None = Field(None, max_length=32, description="办理网点")
    filed_from: date | None = Field(None, description="归档日期起（含）")
    filed_to: date | None = Field(None, description="归档日期止（含）")


class HoldIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="冻结原因")
    authority: str = Field(min_length=1, max_length=200, description="决定机关，如某某人民法院")
    document_no: str | None = Field(None, max_length=100, description="文号，如（2026）京0105民初123号")
    archival_codes: list[str] | None = Field(None, max_length=MAX_KEYS, description="档号清单")
    serials: list[str] | None = Field(None, max_length=MAX_KEYS, description="业务流水号清单")
    query: HoldQuery | None = Field(None, description="按目录查询条件冻结")


# The search page's parameters (archive/saved_searches.py keeps them as pairs) that a hold's catalogue query can take;
# free text, 保管期限, status and the 受理/办结 dates are not catalogue criteria of a hold and are left out.
SAVED_FIELDS = ("category", "business_type", "year", "branch")


def query_of_saved(session: Session, principal: Principal, saved_id: int) -> tuple[HoldQuery, list[str]]:
    """The HoldQuery one of the person's saved searches (保存的检索) maps to, and the parameters left out."""
    saved = saved_searches.get_saved(session, principal, saved_id)  # another person's reads as not existing
    values: dict[str, str] = {}
    skipped: list[str] = []
    for key, value in saved_searches.params_of(saved):
        if key not in SAVED_FIELDS:
            skipped.append(key)
        elif key in values and values[key] != value:
            raise InvalidInput(f"保存的检索“{saved.name}”的 {key} 有多个值；冻结的查询条件每项只能有一个值",
                               code="saved_search_not_holdable", detail={"field": key})
        else:
            values[key] = value
    try:
        return HoldQuery.model_validate(values), skipped
    except ValueError:
        raise InvalidInput(f"保存的检索“{saved.name}”的条件不能用作冻结条件（年度或网点格式不对）",
                           code="saved_search_not_holdable", detail={"saved_search": saved_id}) from None


def chunks(values: list[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


def held_item_ids(session: Session, item_ids: Iterable[int]) -> set[int]:
    """The ids among ``item_ids`` under at least one active hold (used by appraisal, destruction, schedules)."""
    out: set[int] = set()
    for part in chunks(list(dict.fromkeys(item_ids))):
        out.update(session.scalars(
            select(HoldItem.item_id).join(Hold, Hold.id == HoldItem.hold_id)
            .where(Hold.status == "active", HoldItem.item_id.in_(part)).distinct()))
    return out


def item_objects(session: Session, item_ids: Iterable[int]) -> dict[int, set[str]]:
    """The store keys of each item: its rendition and the original of every document of its case, whatever the
    document's status (active, split, replaced, removed: each original is still in the store and is evidence).

    The one rule for what an item's object lock and legal holds cover: filing, re-applied schedules, trigger
    events, appraisal and holds all use it.
    """
    out: dict[int, set[str]] = {}
    for part in chunks(list(dict.fromkeys(item_ids))):
        for item_id, rendition in session.execute(
                select(ArchiveItem.id, ArchiveItem.rendition_key).where(ArchiveItem.id.in_(part))):
            out[item_id] = {rendition} if rendition else set()
        for item_id, key in session.execute(
                select(ArchiveItem.id, Document.original_key).join(Document, Document.case_id == ArchiveItem.case_id)
                .where(ArchiveItem.id.in_(part))):
            out[item_id].add(key)
        for item_id, key in session.execute(  # every earlier version of the rendition (archive.ltv renewals)
                select(RenditionVersion.item_id, RenditionVersion.object_key)
                .where(RenditionVersion.item_id.in_(part))):
            out[item_id].add(key)
    return out


def case_objects(case: Case, rendition_key: str | None) -> set[str]:
    """:func:`item_objects` of an item being filed, from its case as loaded (every document, whatever its status)
    and its one rendition (version 1): what filing locks, with no query. tests/test_filing.py checks that it
    equals item_objects once the item is filed."""
    return {d.original_key for d in case.documents} | ({rendition_key} if rendition_key else set())


def items_sharing(session: Session, keys: Iterable[str]) -> set[int]:
    """Items one of whose objects is among ``keys``."""
    out: set[int] = set()
    for part in chunks(list(dict.fromkeys(keys))):
        out.update(session.scalars(select(ArchiveItem.id).where(ArchiveItem.rendition_key.in_(part))))
        out.update(session.scalars(select(ArchiveItem.id).join(Document, Document.case_id == ArchiveItem.case_id)
                                   .where(Document.original_key.in_(part))))
    return out


# --- setting a hold ------------------------------------------------------------------------------

def set_hold(ctx: Context, session: Session, principal: Principal, data: HoldIn) -> Hold:
    """Record the hold and its items, and set the store's legal hold on their objects."""
    criteria = data.model_dump(mode="json", exclude={"reason", "authority", "document_no"}, exclude_none=True)
    with audited(session, principal, "hold.set", target_type="hold",
                 detail={"authority": data.authority, "document_no": data.document_no, "scope": list(criteria)},
                 permission=Permission.HOLD_MANAGE):
        scope, item_ids = _resolve(ctx, session, principal, data)
        hold = Hold(reason=data.reason.strip(), authority=data.authority.strip(), document_no=data.document_no,
                    scope=scope, criteria=criteria, status="active", item_count=len(item_ids),
                    created_by=principal.name)
        session.add(hold)
        session.flush()
        for part in chunks(item_ids):
            session.execute(insert(HoldItem), [{"hold_id": hold.id, "item_id": i} for i in part])
        missing = _legal_hold(ctx, session, item_ids, True)
        audit.record(session, actor_of(principal), "hold.set", target_type="hold", target_id=hold.id, detail={
            "authority": hold.authority, "document_no": hold.document_no, "reason": hold.reason, "scope": scope,
            "criteria": criteria if scope == "query" else None, "items": len(item_ids),
            "archival_codes": _codes(session, item_ids[:200]), "missing_objects": missing[:50]})
        return hold


def _resolve(ctx: Context, session: Session, principal: Principal, data: HoldIn) -> tuple[str, list[int]]:
    given = [name for name in ("archival_codes", "serials", "query") if getattr(data, name) is not None]
    if len(given) != 1:
        raise InvalidInput("请在档号清单、业务流水号清单、查询条件三者中选择且只选择一种冻结范围",
                           code="hold_scope_required", detail={"given": given})
    if data.archival_codes is not None:
        return "items", _by_keys(session, principal, data.archival_codes, ArchiveItem.archival_code, "档号",
                                 "unknown_archival_code")
    if data.serials is not None:
        return "cases", _by_keys(session, principal, data.serials, Case.serial, "业务流水号", "unknown_serial")
    assert data.query is not None
    return "query", _by_query(ctx, session, principal, data.query)


def _by_keys(session: Session, principal: Principal, keys: list[str], column: Any, label: str,
             code: str) -> list[int]:
    wanted = list(dict.fromkeys(k.strip() for k in keys if k.strip()))
    if not wanted:
        raise InvalidInput(f"{label}清单为空", code="hold_scope_required")
    found: dict[str, tuple[int | None, str | None, str]] = {}
    for part in chunks(wanted):
        rows = session.execute(select(column, ArchiveItem.id, ArchiveItem.status, Case.branch)
                               .select_from(Case).outerjoin(ArchiveItem, ArchiveItem.case_id == Case.id)
                               .where(column.in_(part)))
        for key, item_id, status, branch in rows:
            if principal.sees_branch(branch):
                found[key] = (item_id, status, branch)
    unknown = [k for k in wanted if k not in found]
    if unknown:
        raise NotFound(f"以下{label}不存在：{'、'.join(unknown[:10])}{'等' if len(unknown) > 10 else ''}"
                       f"（共 {len(unknown)} 个）；请核对后重新提交，冻结未设置", code=code,
                       detail={"unknown": unknown})
    not_filed = [k for k in wanted if found[k][0] is None]
    if not_filed:
        raise Conflict(f"以下业务尚未归档，不能冻结：{'、'.join(not_filed[:10])}；归档后再设置冻结",
                       code="case_not_filed", detail={"not_filed": not_filed})
    destroyed = [k for k in wanted if found[k][1] == "destroyed"]
    if destroyed:
        raise Conflict(f"以下档案已经销毁，不能冻结：{'、'.join(destroyed[:10])}", code="item_destroyed",
                       detail={"destroyed": destroyed})
    return [found[k][0] for k in wanted]  # type: ignore[misc]  # every wanted code was found (checked above)


def _by_query(ctx: Context, session: Session, principal: Principal, q: HoldQuery) -> list[int]:
    if not q.model_dump(exclude_none=True):
        raise InvalidInput("查询条件不能为空：请至少给出业务类型、类别、年度、网点或归档日期之一",
                           code="empty_hold_query")
    low, high = FILED_DATES
    for name, value in (("filed_from", q.filed_from), ("filed_to", q.filed_to)):
        if value is not None and not low <= value <= high:
            raise InvalidInput(f"归档日期 {value} 超出范围，须在 {low} 至 {high} 之间；请核对查询条件",
                               code="filed_date_out_of_range", detail={"field": f"query.{name}"})
    if q.business_type is not None and q.business_type not in ctx.schedule.types:
        raise InvalidInput(f"业务类型 {q.business_type} 不存在", code="unknown_business_type",
                           detail={"business_type": q.business_type})
    if q.category is not None and q.category not in ctx.schedule.categories:
        raise InvalidInput(f"类别 {q.category} 不存在；可用类别：{'、'.join(ctx.schedule.categories)}",
                           code="unknown_category", detail={"category": q.category})
    stmt = (select(ArchiveItem.id).join(Case, Case.id == ArchiveItem.case_id)
            .where(ArchiveItem.status == "filed").order_by(ArchiveItem.id))
    if q.business_type:
        stmt = stmt.where(Case.business_type == q.business_type)
    if q.category:
        stmt = stmt.where(ArchiveItem.category == q.category)
    if q.year is not None:
        stmt = stmt.where(ArchiveItem.year == q.year)
    if q.branch:
        stmt = stmt.where(Case.branch == q.branch)
    if q.filed_from:
        stmt = stmt.where(ArchiveItem.filed_at >= datetime.combine(q.filed_from, time(), ctx.zone))
    if q.filed_to:
        stmt = stmt.where(ArchiveItem.filed_at < datetime.combine(date.fromordinal(q.filed_to.toordinal() + 1),
                                                                  time(), ctx.zone))
    if principal.branches is not None:
        stmt = stmt.where(Case.branch.in_(sorted(principal.branches)))
    ids = list(session.scalars(stmt))
    if not ids:
        raise Conflict("查询条件没有匹配任何已归档的档案，冻结未设置；请核对条件", code="hold_matches_nothing",
                       detail=q.model_dump(mode="json", exclude_none=True))
    return ids


def _legal_hold(ctx: Context, session: Session, item_ids: list[int], hold: bool) -> list[str]:
    """Set (or clear) the store's legal hold on the items' objects; returns keys the store does not have."""
    missing: list[str] = []
    keys = sorted({k for ks in item_objects(session, item_ids).values() for k in ks})
    for key in keys:
        try:
            ctx.store.set_legal_hold(key, hold)
        except ObjectNotFound:
            missing.append(key)
    return missing


def _codes(session: Session, item_ids: list[int]) -> list[str]:
    if not item_ids:
        return []
    return list(session.scalars(select(ArchiveItem.archival_code).where(ArchiveItem.id.in_(item_ids))
                                .order_by(ArchiveItem.archival_code)))


# --- lifting -------------------------------------------------------------------------------------

def lift_hold(ctx: Context, session: Session, principal: Principal, hold_id: int, reason: str) -> Hold:
    """Lift an active hold (HOLD_MANAGE, with a reason); the store's legal hold stays where another hold covers."""
    with audited(session, principal, "hold.lift", target_type="hold", target_id=hold_id, detail={"reason": reason},
                 permission=Permission.HOLD_MANAGE):
        if not reason or not reason.strip():
            raise InvalidInput("解除冻结须说明理由", code="reason_required", detail={"field": "reason"})
        hold = session.scalar(select(Hold).where(Hold.id == hold_id).with_for_update())
        if hold is None:
            raise NotFound(f"冻结 {hold_id} 不存在", code="hold_not_found", detail={"hold": hold_id})
        if hold.status != "active":
            raise Conflict(f"冻结 {hold_id} 已于 {hold.lifted_at:%Y-%m-%d} 解除，不能重复解除", code="hold_not_active",
                           detail={"hold": hold_id, "status": hold.status})
        hold.status, hold.lifted_by, hold.lifted_at = "lifted", principal.name, utcnow()
        hold.lift_reason = reason.strip()
        session.flush()
        ours = list(session.scalars(select(HoldItem.item_id).where(HoldItem.hold_id == hold_id)))
        keys = {k for ks in item_objects(session, ours).values() for k in ks}
        still_held = held_item_ids(session, items_sharing(session, keys))
        covered = {k for ks in item_objects(session, still_held).values() for k in ks}
        released = sorted(keys - covered)
        for key in released:
            try:
                ctx.store.set_legal_hold(key, False)
            except ObjectNotFound:
                continue
        audit.record(session, actor_of(principal), "hold.lift", target_type="hold", target_id=hold.id, detail={
            "reason": hold.lift_reason, "items": len(ours), "still_held_items": len(still_held & set(ours)),
            "objects_released": len(released), "objects_kept": len(keys) - len(released)})
        return hold


# --- reading -------------------------------------------------------------------------------------

def get_hold(session: Session, hold_id: int) -> Hold:
    hold = session.get(Hold, hold_id)
    if hold is None:
        raise NotFound(f"冻结 {hold_id} 不存在", code="hold_not_found", detail={"hold": hold_id})
    return hold


def hold_codes(session: Session, hold_id: int, limit: int = 1000, offset: int = 0) -> list[str]:
    return list(session.scalars(
        select(ArchiveItem.archival_code).join(HoldItem, HoldItem.item_id == ArchiveItem.id)
        .where(HoldItem.hold_id == hold_id).order_by(ArchiveItem.archival_code).limit(limit).offset(offset)))


def list_holds(session: Session, status: str | None = None, limit: int = 100, offset: int = 0) -> list[Hold]:
    stmt = select(Hold).order_by(Hold.id.desc()).limit(limit).offset(offset)
    if status:
        stmt = stmt.where(Hold.status == status)
    return list(session.scalars(stmt))

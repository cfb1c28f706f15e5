"""Destruction (销毁): the 销毁清册, its two approvals (four eyes), and execution.

A list is built from proposed destroy decisions. It needs approval by two different people holding
DESTRUCTION_APPROVE; the second approval renders the list (with both approvals) as a PDF, signs it and stores
it with a permanent lock, so the record of what was destroyed outlives what it lists.

Execution goes item by item, each in its own transaction, so an interrupted run resumes where it stopped and
an object already gone counts as deleted. An item is refused, with its reason, while a hold covers it, while
it is lent (open access grant or paper loan), while its loan is not settled, or while any store (primary or
replica) still holds retention or a legal hold on one of its objects, or while its retention no longer is what
was approved (period changed, or expiry now later than today); a refused item stays intact, its entry stays
refused (the list never retries it) and the item goes back to the appraisal queue. A destroyed
item keeps a tombstone: status ``destroyed``, the list entry (档号, 题名, 年度, reason, list number, time),
documents marked destroyed, personal identifiers cleared; it leaves the search index via the outbox.
"""

from __future__ import annotations

import builtins
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from archive import audit, images, indexing, reading
from archive.catalogue.models import (
    AppraisalDecision,
    ArchiveItem,
    Case,
    DestructionApproval,
    DestructionEntry,
    DestructionList,
    Document,
)
from archive.catalogue.types import utcnow
from archive.classification import RetentionCode
from archive.context import Context
from archive.errors import ERRORS, Conflict, InvalidInput, NotFound
from archive.localtime import local_time
from archive.pdfs import cell, cjk_font, grid_table, landscape_pdf, mm, style
from archive.permissions import Permission, Principal
from archive.retention import lending
from archive.retention.appraisal import title_of
from archive.retention.holds import chunks, held_item_ids
from archive.retention.refusals import actor_of, audited
from signing.fixity import digest_bytes
from storage.base import ObjectInfo, ObjectNotFound, content_key

APPROVALS_NEEDED = 2
PDF_LOCK_YEARS = 100  # the list is kept permanently (永久); the lock is extended before it runs out


class ListIn(BaseModel):
    title: str | None = Field(None, max_length=200, description="清册标题；默认“档案销毁清册”")
    archival_codes: list[str] | None = Field(None, max_length=100_000,
                                             description="只列入这些档号；默认列入全部拟销毁的档案")


class ApprovalIn(BaseModel):
    opinion: str | None = Field(None, max_length=500, description="审批意见")


class RejectionIn(BaseModel):
    reason: str = Field(min_length=2, max_length=500, description="驳回理由",
                        examples=["其中两件涉及未结诉讼，需重新鉴定"])


@dataclass
class BuildReport:
    list: DestructionList
    skipped: builtins.list[dict[str, str]] = field(default_factory=builtins.list)  # the field `list` shadows the type


@dataclass
class ExecutionReport:
    number: str
    destroyed: list[str] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)


# --- building ------------------------------------------------------------------------------------

def build_list(ctx: Context, session: Session, principal: Principal, data: ListIn) -> BuildReport:
    """A new list of the proposed destroy decisions (held items are left out and reported)."""
    with audited(session, principal, "destruction.list.create", target_type="destruction_list",
                 detail={"archival_codes": (data.archival_codes or [])[:100]},
                 permission=Permission.RETENTION_MANAGE):
        stmt = (select(AppraisalDecision, ArchiveItem, Case)
                .join(ArchiveItem, ArchiveItem.id == AppraisalDecision.item_id)
                .join(Case, Case.id == ArchiveItem.case_id)
                .where(AppraisalDecision.decision == "destroy", AppraisalDecision.status == "proposed",
                       ArchiveItem.status == "filed"))
        if principal.branches is not None:
            stmt = stmt.where(Case.branch.in_(sorted(principal.branches)))
        rows: list[Any] = []
        if data.archival_codes is not None:
            codes = list(dict.fromkeys(c.strip() for c in data.archival_codes if c.strip()))
            for part in chunks(codes):
                rows.extend(session.execute(stmt.where(ArchiveItem.archival_code.in_(part))).all())
            found = {r[1].archival_code for r in rows}
            missing = [c for c in codes if c not in found]
            if missing:
                raise Conflict(f"以下档号没有待列入清册的销毁意见：{'、'.join(missing[:10])}（共 {len(missing)} 个）；"
                               "请先在鉴定中提出销毁意见", code="no_destroy_decision", detail={"missing": missing})
        else:
            rows = list(session.execute(stmt.order_by(ArchiveItem.archival_code)).all())
        held = held_item_ids(session, [r[1].id for r in rows])
        skipped = [{"archival_code": r[1].archival_code, "code": "item_on_hold", "message": "处于冻结中，未列入"}
                   for r in rows if r[1].id in held]
        rows = sorted((r for r in rows if r[1].id not in held), key=lambda r: r[1].archival_code)
        if not rows:
            raise Conflict("没有可列入销毁清册的档案：请先在鉴定中提出销毁意见（冻结中的档案不能列入）",
                           code="nothing_to_list", detail={"skipped": skipped})
        pages = _pages(session, [r[1].case_id for r in rows])
        kept_as = _kept_as(session, [r[1].id for r in rows])
        dl = DestructionList(number=f"tmp-{utcnow().timestamp()}", title=(data.title or "档案销毁清册").strip(),
                             status="pending", item_count=len(rows), page_count=sum(pages.values()),
                             created_by=principal.name)
        session.add(dl)
        session.flush()
        dl.number = f"XH-{dl.created_at.astimezone(ctx.zone):%Y}-{dl.id:05d}"
        entries = [{"list_id": dl.id, "item_id": item.id, "decision_id": decision.id, "sequence": n,
                    "archival_code": item.archival_code, "title": title_of(ctx, case)[:300], "year": item.year,
                    "pieces": 1, "pages": pages.get(case.id, 0),
                    "retention_code": kept_as.get(item.id, item.effective_retention), "reason": decision.reason,
                    "status": "pending"}
                   for n, (decision, item, case) in enumerate(rows, 1)]
        for part in chunks(entries):
            session.execute(insert(DestructionEntry), part)
        for part in chunks([r[0].id for r in rows]):
            session.execute(update(AppraisalDecision).where(AppraisalDecision.id.in_(part)).values(status="listed"))
        audit.record(session, actor_of(principal), "destruction.list.create", target_type="destruction_list",
                     target_id=dl.number, detail={"items": len(rows), "pages": dl.page_count,
                                                  "skipped": skipped[:100]})
        return BuildReport(dl, skipped)


def _pages(session: Session, case_ids: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for part in chunks(case_ids):
        out.update((case_id, pages) for case_id, pages in session.execute(
            select(Document.case_id, func.sum(Document.page_count))
            .where(Document.case_id.in_(part), Document.is_active).group_by(Document.case_id)))
    return {k: int(v or 0) for k, v in out.items()}


def _kept_as(session: Session, item_ids: list[int]) -> dict[int, str]:
    """The period of the latest keep decision, where an item was kept before (its 档号 shows the original)."""
    out: dict[int, str] = {}
    for part in chunks(item_ids):
        for item_id, code in session.execute(
                select(AppraisalDecision.item_id, AppraisalDecision.retention_code)
                .where(AppraisalDecision.item_id.in_(part), AppraisalDecision.decision == "keep")
                .order_by(AppraisalDecision.id)):
            if code is not None:  # a keep decision always names its new period
                out[item_id] = code
    return out


# --- approving -----------------------------------------------------------------------------------

def get_list(session: Session, list_id: int, lock: bool = False) -> DestructionList:
    stmt = select(DestructionList).where(DestructionList.id == list_id)
    dl = session.scalar(stmt.with_for_update() if lock else stmt)
    if dl is None:
        raise NotFound(f"销毁清册 {list_id} 不存在", code="destruction_list_not_found", detail={"list": list_id})
    return dl


def approvals_of(session: Session, list_id: int) -> list[DestructionApproval]:
    return list(session.scalars(select(DestructionApproval).where(DestructionApproval.list_id == list_id)
                                .order_by(DestructionApproval.id)))


def approve(ctx: Context, session: Session, principal: Principal, list_id: int, data: ApprovalIn) -> DestructionList:
    """One approval; the second (by a different person) approves the list and stores its signed PDF."""
    with audited(session, principal, "destruction.approve", target_type="destruction_list", target_id=list_id,
                 permission=Permission.DESTRUCTION_APPROVE):
        dl = get_list(session, list_id, lock=True)
        if dl.status != "pending":
            raise Conflict(f"销毁清册 {dl.number} 已经批准（状态：{_STATUS[dl.status]}），不需要再审批",
                           code="list_not_pending", detail={"status": dl.status})
        done = approvals_of(session, list_id)
        if any(a.approver == principal.name for a in done):
            raise Conflict(f"您已审批过销毁清册 {dl.number}；销毁须由两名不同的审批人分别批准，同一人不能审批两次",
                           code="duplicate_approver", detail={"approver": principal.name})
        session.add(DestructionApproval(list_id=dl.id, approver=principal.name,
                                        opinion=(data.opinion or "").strip() or None, approved_at=utcnow()))
        session.flush()
        count = len(done) + 1
        detail: dict[str, Any] = {"number": dl.number, "approvals": count}
        if count >= APPROVALS_NEEDED:
            dl.status, dl.approved_at = "approved", utcnow()
            pdf = sign_list_pdf(ctx, render_pdf(ctx, session, dl))
            dl.pdf_key, dl.pdf_sha256 = _store_pdf(ctx, pdf)
            detail |= {"pdf_sha256": dl.pdf_sha256}
        audit.record(session, actor_of(principal), "destruction.approve", target_type="destruction_list",
                     target_id=dl.number, detail=detail)
        return dl


def reject(session: Session, principal: Principal, list_id: int, data: RejectionIn) -> DestructionList:
    """An approver refuses a pending list (驳回): it can no longer be approved or executed, and its items go back
    to the appraisal queue for a new decision."""
    with audited(session, principal, "destruction.reject", target_type="destruction_list", target_id=list_id,
                 permission=Permission.DESTRUCTION_APPROVE):
        dl = get_list(session, list_id, lock=True)
        if dl.status != "pending":
            raise Conflict(f"销毁清册 {dl.number} 当前状态为{_STATUS[dl.status]}，只有待审批的清册可以驳回",
                           code="list_not_pending", detail={"status": dl.status})
        dl.status, dl.rejected_by, dl.rejected_at = "rejected", principal.name, utcnow()
        dl.rejection_reason = data.reason.strip()
        item_ids = select(DestructionEntry.item_id).where(DestructionEntry.list_id == dl.id)
        session.execute(update(AppraisalDecision).where(AppraisalDecision.item_id.in_(item_ids),
                                                        AppraisalDecision.decision == "destroy",
                                                        AppraisalDecision.status == "listed")
                        .values(status="rejected"))
        audit.record(session, actor_of(principal), "destruction.reject", target_type="destruction_list",
                     target_id=dl.number, detail={"number": dl.number, "reason": dl.rejection_reason,
                                                  "items": dl.item_count})
        return dl


def _store_pdf(ctx: Context, pdf: bytes) -> tuple[str, str]:
    d = digest_bytes(pdf)
    key = content_key("manifests", d.sha256)
    now = datetime.now(UTC)
    ctx.store.put(key, io.BytesIO(pdf), size=d.size, sha256=d.sha256, sm3=d.sm3, media_type="application/pdf",
                  retain_until=datetime(now.year + PDF_LOCK_YEARS, 1, 1, tzinfo=UTC), sm3_computed=True)
    return key, d.sha256


def sign_list_pdf(ctx: Context, pdf: bytes) -> bytes:
    from signing.pades import sign_pdf

    return sign_pdf(pdf, ctx.signer, timestamper=ctx.timestamper,
                    tsa_required=ctx.settings.tsa_required, reason="档案销毁清册审批", check_pdfa=False)


_STATUS = {"pending": "待审批", "approved": "已批准", "executed": "已执行", "rejected": "已驳回"}


def render_pdf(ctx: Context, session: Session, dl: DestructionList) -> bytes:
    """The 销毁清册 as a PDF: heading, the lines, totals, and the approvals."""
    from reportlab.lib import colors
    from reportlab.platypus import Spacer

    font = cjk_font(ctx.settings.cjk_font)
    body = style("body", font, 8, 10, wordWrap="CJK")
    head = style("head", font, 16, 22, alignment=1)
    text = style("text", font, 10, 14)
    entries = session.scalars(select(DestructionEntry).where(DestructionEntry.list_id == dl.id)
                              .order_by(DestructionEntry.sequence))
    rows: list[list[Any]] = [["序号", "档号", "题名", "年度", "件数", "页数", "保管期限", "销毁原因"]]
    for e in entries:
        rows.append([str(e.sequence), cell(e.archival_code, body), cell(e.title, body), str(e.year), str(e.pieces),
                     str(e.pages), RetentionCode(e.retention_code).label, cell(e.reason, body)])
    table = grid_table(rows, [12 * mm, 62 * mm, 60 * mm, 14 * mm, 12 * mm, 12 * mm, 20 * mm, 65 * mm],
                       grid=colors.black, header=colors.lightgrey, font=font)
    zone = ctx.zone
    story: list[Any] = [
        cell(dl.title, head),
        cell(f"全宗：{ctx.settings.fonds_name}（{ctx.settings.fonds_code}）　清册编号：{dl.number}　"
             f"编制人：{dl.created_by}　编制时间：{local_time(dl.created_at, zone)}", text),
        Spacer(1, 4 * mm), table, Spacer(1, 4 * mm),
        cell(f"合计：{dl.item_count} 件，{dl.page_count} 页。", text),
    ]
    for n, a in enumerate(approvals_of(session, dl.id), 1):
        story.append(cell(f"审批人{n}：{a.approver}　时间：{local_time(a.approved_at, zone)}"
                          f"　意见：{a.opinion or '同意销毁'}", text))
    return landscape_pdf(story, margin=12 * mm, title=f"{dl.title} {dl.number}", author=ctx.settings.fonds_name)


def list_pdf(ctx: Context, session: Session, list_id: int) -> tuple[DestructionList, bytes]:
    dl = get_list(session, list_id)
    if not dl.pdf_key:
        raise Conflict(f"销毁清册 {dl.number} 尚未经两人批准，还没有签章的清册文件", code="list_not_approved",
                       detail={"status": dl.status})
    with ctx.store.get(dl.pdf_key) as f:
        return dl, f.read()


# --- executing -----------------------------------------------------------------------------------

def execute(ctx: Context, principal: Principal, list_id: int,
            progress: Callable[[int, int], None] | None = None) -> ExecutionReport:
    """Destroy the approved list's items, each in its own transaction; refused items stay intact.

    Runs in transactions of its own (an API caller ends its request transaction first).
    """
    with ctx.catalogue.session() as s, audited(s, principal, "destruction.execute", target_type="destruction_list",
                                               target_id=list_id, permission=Permission.RETENTION_MANAGE):
        dl = get_list(s, list_id)
        check_executable(s, dl)
        number = dl.number
        # only entries not yet decided: a refused one stays refused (its item went back to appraisal)
        entries = [(e.id, e.archival_code) for e in s.scalars(
            select(DestructionEntry).where(DestructionEntry.list_id == list_id, DestructionEntry.status == "pending")
            .order_by(DestructionEntry.sequence))]
    report = ExecutionReport(number)
    today = ctx.today()
    for n, (entry_id, code) in enumerate(entries, 1):
        with ctx.catalogue.session() as s:
            # locked, then re-read: a concurrent run of the same list may have decided it meanwhile
            entry = s.scalar(select(DestructionEntry).where(DestructionEntry.id == entry_id).with_for_update())
            if entry is not None and entry.status == "pending":
                refusal = _blocked(s, entry, today) or _destroy(ctx, s, principal, number, entry_id)
                if refusal is not None:
                    _refuse(s, principal, number, entry, refusal)
                    report.refused.append({"archival_code": code, **refusal})
                else:
                    report.destroyed.append(code)
        if progress is not None:
            progress(n, len(entries))
    with ctx.catalogue.session() as s:
        dl = get_list(s, list_id, lock=True)
        dl.status, dl.executed_at = "executed", utcnow()
        audit.record(s, actor_of(principal), "destruction.execute", target_type="destruction_list",
                     target_id=number, detail={"destroyed": len(report.destroyed), "refused": len(report.refused),
                                               "refusals": report.refused[:100]})
    return report


def check_executable(session: Session, dl: DestructionList) -> None:
    """Refuse execution of a list not approved by two different people (the page checks before starting a job)."""
    approvers = {a.approver for a in approvals_of(session, dl.id)}
    if dl.status not in ("approved", "executed") or len(approvers) < APPROVALS_NEEDED:
        raise Conflict(f"销毁清册 {dl.number} 尚未经两名不同的审批人批准（已批准 {len(approvers)} 人），"
                       "不能执行销毁", code="destruction_not_approved", detail={"approvals": sorted(approvers)})


def _blocked(session: Session, entry: DestructionEntry, today: date) -> dict[str, str] | None:
    """Why the item may not be destroyed now (checked just before, so a hold set meanwhile counts)."""
    item_id = entry.item_id
    if held_item_ids(session, [item_id]):
        return {"code": "item_on_hold", "message": "处于冻结中，不能销毁；须先由有权人员解除冻结"}
    if lending.items_with_open_lending(session, [item_id]):
        return {"code": "open_lending", "message": "有未结束的利用（借阅未归还或查阅授权未到期），不能销毁"}
    item = session.scalar(select(ArchiveItem).where(ArchiveItem.id == item_id).with_for_update())
    assert item is not None
    if item.trigger_date is None and (item.category == "DK" or item.trigger == "LOAN_SETTLED"):
        return {"code": "loan_not_settled", "message": "贷款尚未结清，不能销毁"}
    # the approval was for the period listed: a period lengthened or changed since needs a new appraisal
    if item.effective_retention != entry.retention_code:
        return {"code": "retention_changed",
                "message": f"批准后保管期限已由 {entry.retention_code} 改为 {item.effective_retention}，不能销毁；"
                           "已退回鉴定，请重新鉴定"}
    if item.expiry_date is None or item.expiry_date > today:
        until = f"到期日改为 {item.expiry_date:%Y-%m-%d}" if item.expiry_date else "到期日已不确定"
        return {"code": "retention_changed",
                "message": f"批准后保管期限有变化（{until}），尚未到期，不能销毁；已退回鉴定，到期后请重新鉴定"}
    return None


def _copies(store: Any, key: str) -> list[tuple[str, ObjectInfo]]:
    """Every copy's state: a replicated store answers for each of its stores."""
    stores = list(getattr(store, "copies", ())) or [("store", store)]
    found = []
    for name, s in stores:
        try:
            found.append((name, s.stat(key)))
        except ObjectNotFound:
            continue
    return found


def _destroy(ctx: Context, session: Session, principal: Principal, number: str,
             entry_id: int) -> dict[str, str] | None:
    """Delete one item's objects and leave its tombstone; a refusal (nothing deleted) as {code, message}."""
    entry = session.get(DestructionEntry, entry_id)
    assert entry is not None
    item = session.scalar(select(ArchiveItem).where(ArchiveItem.id == entry.item_id).with_for_update())
    assert item is not None
    if item.status != "filed":
        return {"code": "item_not_filed", "message": f"档案状态为 {item.status}，不能销毁"}
    case = item.case
    docs = list(session.scalars(select(Document).where(Document.case_id == case.id)))
    keys = {d.original_key for d in docs} | ({item.rendition_key} if item.rendition_key else set())
    shared = _shared(session, item.id, keys)
    digests = {d.sha256 for d in docs if d.original_key not in shared}
    targets = sorted(keys - shared)
    for sha in sorted(digests):
        targets.extend(ctx.store.list_keys(f"thumbnails/{sha}/"))
    locked = []
    for key in targets:
        for where, info in _copies(ctx.store, key):
            if info.legal_hold or info.retained():
                until = f"至 {info.retain_until:%Y-%m-%d}" if info.retained() and info.retain_until else "法律保全"
                locked.append({"key": key, "copy": where, "state": until})
    if locked:
        first = locked[0]
        return {"code": "store_locked", "message": f"存储中仍有保管期限或法律保全（{first['copy']}：{first['key']}，"
                                                   f"{first['state']}），本件未销毁、保持原状"}
    try:
        for key in targets:
            try:
                ctx.store.delete(key)
            except ObjectNotFound:
                continue  # gone already: an earlier, interrupted run
    except ERRORS as exc:
        return {"code": exc.code, "message": f"删除存储对象失败：{exc.message}；请修复后重新执行本清册"}
    for sha in digests:
        images.evict(sha)
    for d in docs:
        reading.filed_documents.forget(d.id)  # page reads ask the catalogue again (and get 410)
    now = utcnow()
    item.status = case.status = "destroyed"  # one truthful status: the case record says so too
    for d in docs:
        d.status = "destroyed"
    case.applicant_id_number = case.applicant_mobile = case.personal_account = case.unit_account = None
    entry.status, entry.destroyed_at, entry.refusal = "destroyed", now, None
    session.execute(update(AppraisalDecision).where(AppraisalDecision.id == entry.decision_id)
                    .values(status="destroyed"))
    indexing.enqueue(session, case.serial)
    audit.record(session, actor_of(principal), "item.destroy", target_type="item", target_id=item.archival_code,
                 detail={"list": number, "objects": len(targets), "kept_shared_objects": len(shared)})
    return None


def _shared(session: Session, item_id: int, keys: set[str]) -> set[str]:
    """Keys another item not destroyed still points at (content-addressed originals can be shared)."""
    if not keys:
        return set()
    ks = sorted(keys)
    others = session.scalars(select(Document.original_key).join(ArchiveItem, ArchiveItem.case_id == Document.case_id,
                                                                isouter=True)
                             .where(Document.original_key.in_(ks),
                                    (ArchiveItem.id.is_(None)) | ((ArchiveItem.id != item_id)
                                                                  & (ArchiveItem.status != "destroyed"))))
    renditions = session.scalars(select(ArchiveItem.rendition_key).where(
        ArchiveItem.rendition_key.in_(ks), ArchiveItem.id != item_id, ArchiveItem.status != "destroyed"))
    return set(others) | {key for key in renditions if key is not None}


def _refuse(session: Session, principal: Principal, number: str, entry: DestructionEntry,
            refusal: dict[str, str]) -> None:
    """The entry is refused for good and the item goes back to the appraisal queue for a new decision."""
    if entry.status == "destroyed":  # never overwrite the record of a destruction
        return
    entry.status, entry.refusal = "refused", refusal
    session.execute(update(AppraisalDecision).where(AppraisalDecision.id == entry.decision_id,
                                                    AppraisalDecision.status == "listed")
                    .values(status="rejected"))
    audit.record(session, actor_of(principal), "item.destroy", target_type="item", target_id=entry.archival_code,
                 outcome="refused", detail={"list": number, **refusal})


# --- reading -------------------------------------------------------------------------------------

def list_lists(session: Session, status: str | None = None, limit: int = 100, offset: int = 0) -> list[DestructionList]:
    stmt = select(DestructionList).order_by(DestructionList.id.desc()).limit(limit).offset(offset)
    if status:
        stmt = stmt.where(DestructionList.status == status)
    return list(session.scalars(stmt))


def proposed_count(session: Session, principal: Principal, cap: int = 10_001) -> int:
    """Proposed destroy decisions not yet on a list, of the branches the person sees (counting stops at ``cap``)."""
    stmt = (select(AppraisalDecision.id).join(ArchiveItem, ArchiveItem.id == AppraisalDecision.item_id)
            .where(AppraisalDecision.decision == "destroy", AppraisalDecision.status == "proposed",
                   ArchiveItem.status == "filed"))
    if principal.branches is not None:
        stmt = stmt.join(Case, Case.id == ArchiveItem.case_id).where(Case.branch.in_(sorted(principal.branches)))
    return session.scalar(select(func.count()).select_from(stmt.limit(cap).subquery())) or 0


def entries_of(session: Session, list_id: int, limit: int = 1000, offset: int = 0) -> list[DestructionEntry]:
    return list(session.scalars(select(DestructionEntry).where(DestructionEntry.list_id == list_id)
                                .order_by(DestructionEntry.sequence).limit(limit).offset(offset)))


def check_status(status: str | None) -> None:
    if status is not None and status not in _STATUS:
        raise InvalidInput(f"状态 {status!r} 不存在；可用：{'、'.join(_STATUS)}", code="invalid_status")

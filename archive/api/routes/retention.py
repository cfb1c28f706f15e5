"""Holds, appraisal and destruction (冻结、鉴定、销毁).

Permissions are checked inside the domain functions, not by a dependency, so a refused attempt (no role, bad
input, a hold in the way) is itself recorded in the audit log before the error is returned.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from archive.api.deps import UnitOfWork, caller, context
from archive.api.params import Id, Offset, Year
from archive.authorization import require
from archive.catalogue.models import ArchiveItem, DestructionEntry, DestructionList, Hold
from archive.context import Context
from archive.permissions import Permission, Principal
from archive.retention import appraisal, destruction, holds

router = APIRouter(prefix="/api/v1", tags=["retention"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "未登录"},
    403: {"description": "缺少所需权限（permission_denied）；拒绝的请求记入审计日志"},
}


# --- holds ---------------------------------------------------------------------------------------

class HoldOut(BaseModel):
    id: int
    reason: str
    authority: str
    document_no: str | None
    scope: str
    criteria: dict[str, Any]
    status: str
    item_count: int
    created_by: str
    created_at: datetime
    lifted_by: str | None
    lifted_at: datetime | None
    lift_reason: str | None
    archival_codes: list[str] | None = None


class LiftIn(BaseModel):
    reason: str = Field(max_length=500, description="解除冻结的理由（如解除冻结裁定书文号）")


def hold_out(h: Hold, codes: list[str] | None = None) -> HoldOut:
    return HoldOut(id=h.id, reason=h.reason, authority=h.authority, document_no=h.document_no, scope=h.scope,
                   criteria=h.criteria, status=h.status, item_count=h.item_count, created_by=h.created_by,
                   created_at=h.created_at, lifted_by=h.lifted_by, lifted_at=h.lifted_at, lift_reason=h.lift_reason,
                   archival_codes=codes)


@router.post("/holds", status_code=201, response_model=HoldOut, responses={
    **_ERRORS, 404: {"description": "档号或业务流水号不存在（unknown_archival_code / unknown_serial）"},
    409: {"description": "业务未归档、档案已销毁或查询无结果"}, 422: {"description": "冻结范围缺失或不唯一"}},
    summary="设置冻结（档号、业务流水号或查询条件）")
def create_hold(data: holds.HoldIn, ctx: Context = Depends(context), session: Session = UnitOfWork,
                principal: Principal = Depends(caller)) -> HoldOut:
    h = holds.set_hold(ctx, session, principal, data)
    return hold_out(h, holds.hold_codes(session, h.id))


@router.get("/holds", response_model=list[HoldOut], responses=_ERRORS, summary="冻结列表")
def list_holds(status: str | None = Query(None, description="active 或 lifted"), limit: int = Query(100, ge=1, le=1000),
               offset: Offset = 0, session: Session = UnitOfWork,
               principal: Principal = Depends(caller)) -> list[HoldOut]:
    require(session, principal, Permission.HOLD_MANAGE, target_type="hold")
    return [hold_out(h) for h in holds.list_holds(session, status, limit, offset)]


@router.get("/holds/{hold_id}", response_model=HoldOut, responses=_ERRORS, summary="冻结详情与所冻结的档号")
def get_hold(hold_id: Id, limit: int = Query(1000, ge=1, le=10000), offset: Offset = 0,
             session: Session = UnitOfWork, principal: Principal = Depends(caller)) -> HoldOut:
    require(session, principal, Permission.HOLD_MANAGE, target_type="hold", target_id=hold_id)
    return hold_out(holds.get_hold(session, hold_id), holds.hold_codes(session, hold_id, limit, offset))


@router.post("/holds/{hold_id}/lift", response_model=HoldOut, responses={
    **_ERRORS, 404: {"description": "冻结不存在"}, 409: {"description": "冻结已解除（hold_not_active）"}},
    summary="解除冻结（须说明理由）")
def lift_hold(hold_id: Id, data: LiftIn, ctx: Context = Depends(context), session: Session = UnitOfWork,
              principal: Principal = Depends(caller)) -> HoldOut:
    return hold_out(holds.lift_hold(ctx, session, principal, hold_id, data.reason))


# --- appraisal -----------------------------------------------------------------------------------

class QueueItem(BaseModel):
    archival_code: str
    title: str
    category: str
    business_type: str
    branch: str
    year: int
    retention_code: str
    trigger: str
    trigger_date: date | None
    expiry_date: date | None


class QueuePage(BaseModel):
    total: int
    items: list[QueueItem]


def queue_item(ctx: Context, item: ArchiveItem) -> QueueItem:
    c = item.case
    return QueueItem(archival_code=item.archival_code, title=appraisal.title_of(ctx, c), category=item.category,
                     business_type=c.business_type, branch=c.branch, year=item.year,
                     retention_code=item.retention_code, trigger=item.trigger, trigger_date=item.trigger_date,
                     expiry_date=item.expiry_date)


@router.get("/appraisal/queue", response_model=QueuePage, responses=_ERRORS,
            summary="鉴定队列：保管期限已到期、未冻结、尚无销毁意见的档案")
def appraisal_queue(category: str | None = None, business_type: str | None = None, year: Year = None,
                    expired_before: date | None = None, limit: int = Query(100, ge=1, le=1000),
                    offset: Offset = 0, ctx: Context = Depends(context), session: Session = UnitOfWork,
                    principal: Principal = Depends(caller)) -> QueuePage:
    f = appraisal.QueueFilter(category=category, business_type=business_type, year=year,
                              expired_before=expired_before)
    total, page = appraisal.queue(ctx, session, principal, f, limit, offset)
    return QueuePage(total=total, items=[queue_item(ctx, i) for i in page])


class DecisionOut(BaseModel):
    decision: str
    decided: int
    archival_codes: list[str]
    new_expiry: dict[str, str | None]


@router.post("/appraisal/decisions", status_code=201, response_model=DecisionOut, responses={
    **_ERRORS, 404: {"description": "档号不存在（unknown_archival_code）"},
    409: {"description": "未到期（not_expired）、待触发（retention_pending）、冻结中（item_on_hold）、已有销毁意见"
                         "（already_decided）；任何一件不能鉴定时整批不记录"},
    422: {"description": "继续保存未给出有效保管期限，或新期限到期日已过"}},
    summary="记录鉴定意见（继续保存或拟销毁），可批量")
def decide(data: appraisal.DecisionIn, ctx: Context = Depends(context), session: Session = UnitOfWork,
           principal: Principal = Depends(caller)) -> DecisionOut:
    r = appraisal.decide(ctx, session, principal, data)
    return DecisionOut(decision=r.decision, decided=r.decided, archival_codes=r.codes, new_expiry=r.new_expiry)


# --- destruction ---------------------------------------------------------------------------------

class ApprovalOut(BaseModel):
    approver: str
    opinion: str | None
    approved_at: datetime


class EntryOut(BaseModel):
    sequence: int
    archival_code: str
    title: str
    year: int
    pieces: int
    pages: int
    retention_code: str
    reason: str
    status: str
    refusal: dict[str, Any] | None
    destroyed_at: datetime | None


class ListOut(BaseModel):
    id: int
    number: str
    title: str
    status: str
    item_count: int
    page_count: int
    created_by: str
    created_at: datetime
    approved_at: datetime | None
    executed_at: datetime | None
    pdf_sha256: str | None
    rejected_by: str | None = None
    rejected_at: datetime | None = None
    rejection_reason: str | None = None
    approvals: list[ApprovalOut] = []
    entries: list[EntryOut] | None = None
    skipped: list[dict[str, str]] | None = None


def list_out(session: Session, dl: DestructionList, entries: list[DestructionEntry] | None = None,
             skipped: list[dict[str, str]] | None = None) -> ListOut:
    return ListOut(id=dl.id, number=dl.number, title=dl.title, status=dl.status, item_count=dl.item_count,
                   page_count=dl.page_count, created_by=dl.created_by, created_at=dl.created_at,
                   approved_at=dl.approved_at, executed_at=dl.executed_at, pdf_sha256=dl.pdf_sha256,
                   rejected_by=dl.rejected_by, rejected_at=dl.rejected_at, rejection_reason=dl.rejection_reason,
                   approvals=[ApprovalOut(approver=a.approver, opinion=a.opinion, approved_at=a.approved_at)
                              for a in destruction.approvals_of(session, dl.id)],
                   entries=None if entries is None else [EntryOut(
                       sequence=e.sequence, archival_code=e.archival_code, title=e.title, year=e.year,
                       pieces=e.pieces, pages=e.pages, retention_code=e.retention_code, reason=e.reason,
                       status=e.status, refusal=e.refusal, destroyed_at=e.destroyed_at) for e in entries],
                   skipped=skipped)


@router.post("/destruction-lists", status_code=201, response_model=ListOut, responses={
    **_ERRORS, 409: {"description": "没有可列入的销毁意见（nothing_to_list / no_destroy_decision）"}},
    summary="编制销毁清册（由拟销毁的鉴定意见生成）")
def build_list(data: destruction.ListIn, ctx: Context = Depends(context), session: Session = UnitOfWork,
               principal: Principal = Depends(caller)) -> ListOut:
    r = destruction.build_list(ctx, session, principal, data)
    return list_out(session, r.list, destruction.entries_of(session, r.list.id), r.skipped)


@router.get("/destruction-lists", response_model=list[ListOut], responses=_ERRORS, summary="销毁清册列表")
def list_lists(status: str | None = Query(None, description="pending、approved 或 executed"),
               limit: int = Query(100, ge=1, le=1000), offset: Offset = 0, session: Session = UnitOfWork,
               principal: Principal = Depends(caller)) -> list[ListOut]:
    _reader(session, principal)
    destruction.check_status(status)
    return [list_out(session, dl) for dl in destruction.list_lists(session, status, limit, offset)]


@router.get("/destruction-lists/{list_id}", response_model=ListOut, responses=_ERRORS,
            summary="销毁清册详情（条目、审批与执行结果）")
def get_list(list_id: Id, limit: int = Query(1000, ge=1, le=10000), offset: Offset = 0,
             session: Session = UnitOfWork, principal: Principal = Depends(caller)) -> ListOut:
    _reader(session, principal)
    dl = destruction.get_list(session, list_id)
    return list_out(session, dl, destruction.entries_of(session, list_id, limit, offset))


@router.post("/destruction-lists/{list_id}/approvals", status_code=201, response_model=ListOut, responses={
    **_ERRORS, 409: {"description": "同一人重复审批（duplicate_approver）或清册已批准（list_not_pending）"}},
    summary="审批销毁清册（须两名不同的审批人）")
def approve(list_id: Id, data: destruction.ApprovalIn | None = None, ctx: Context = Depends(context),
            session: Session = UnitOfWork, principal: Principal = Depends(caller)) -> ListOut:
    dl = destruction.approve(ctx, session, principal, list_id, data or destruction.ApprovalIn())
    return list_out(session, dl)


@router.post("/destruction-lists/{list_id}/rejection", response_model=ListOut, responses={
    **_ERRORS, 409: {"description": "清册不是待审批状态（list_not_pending）"}},
    summary="驳回销毁清册：不再审批和执行，其中档案回到鉴定队列重新鉴定")
def reject(list_id: Id, data: destruction.RejectionIn, session: Session = UnitOfWork,
           principal: Principal = Depends(caller)) -> ListOut:
    return list_out(session, destruction.reject(session, principal, list_id, data))


class ExecutionOut(BaseModel):
    number: str
    destroyed: list[str]
    refused: list[dict[str, str]]


@router.post("/destruction-lists/{list_id}/execute", response_model=ExecutionOut, responses={
    **_ERRORS, 409: {"description": "未经两人批准（destruction_not_approved）"}},
    summary="执行销毁：逐件删除原件、版式文件、缓存与副本；冻结、借阅中、贷款未结清或存储仍锁定的逐件拒绝")
def execute(list_id: Id, ctx: Context = Depends(context), session: Session = UnitOfWork,
            principal: Principal = Depends(caller)) -> ExecutionOut:
    session.commit()  # execution commits item by item in transactions of its own
    r = destruction.execute(ctx, principal, list_id)
    return ExecutionOut(number=r.number, destroyed=r.destroyed, refused=r.refused)


@router.get("/destruction-lists/{list_id}/pdf", response_class=Response, responses={
    **_ERRORS, 200: {"content": {"application/pdf": {}}}, 409: {"description": "尚未批准，没有签章清册"}},
    summary="下载已批准的签章销毁清册（PDF）")
def pdf(list_id: Id, ctx: Context = Depends(context), session: Session = UnitOfWork,
        principal: Principal = Depends(caller)) -> Response:
    _reader(session, principal)
    dl, data = destruction.list_pdf(ctx, session, list_id)
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{dl.number}.pdf"', "ETag": f'"{dl.pdf_sha256}"'})


def _reader(session: Session, principal: Principal) -> None:
    """Who may see destruction lists: those who build them and those who approve them."""
    require(session, principal, Permission.DESTRUCTION_APPROVE, Permission.RETENTION_MANAGE,
            target_type="destruction_list")



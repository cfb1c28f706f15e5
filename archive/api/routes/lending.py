"""Lending (利用、借阅): requests, approval, time-limited grants, views under a grant, paper loans.

Every change is audited; a refused change (no role, own request, bad period, destroyed item, loan already
returned …) is answered 4xx with a Chinese message and a stable code and leaves a ``refused`` audit event.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from archive.access import AccessEventOut
from archive.api.deps import UnitOfWork, caller, context
from archive.api.params import Id, Offset
from archive.context import Context
from archive.permissions import Principal
from archive.retention import lending
from archive.retention.lending import LoanIn, LoanOut, RequestIn, RequestOut
from archive.retention.refusals import audited

router = APIRouter(prefix="/api/v1/lending", tags=["lending"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "缺少权限（permission_denied），或审批本人的申请（self_approval）；均记入审计日志"},
    404: {"description": "申请、借阅单或档号不存在（lending_request_not_found / loan_not_found / item_not_found）"},
    409: {"description": "状态不允许（request_not_pending / grant_not_active / item_destroyed / item_already_lent /"
                         " loan_already_returned）"},
    422: {"description": "输入有误（invalid_period / period_too_long / legal_basis_required / reason_required …）"},
}


# --- requests ------------------------------------------------------------------------------------

@router.post("/requests", response_model=RequestOut, status_code=201, responses=_ERRORS,
             summary="提交利用申请：档号、目的、方式、期限（外部来函须登记法律文书文号）")
def create_request(req: RequestIn, ctx: Context = Depends(context), session: Session = UnitOfWork,
                   principal: Principal = Depends(caller)) -> RequestOut:
    with audited(session, principal, "lending.request", target_type="lending_request",
                          detail={"archival_codes": req.archival_codes[:20], "mode": req.mode, "days": req.days}):
        r = lending.create_request(session, principal, req, ctx.settings.lending_max_days)
    return lending.request_out(r)


@router.get("/requests", response_model=list[RequestOut], summary="我的利用申请（最新在前）")
def my_requests(limit: int = Query(100, ge=1, le=500), offset: Offset = 0, session: Session = UnitOfWork,
                principal: Principal = Depends(caller)) -> list[RequestOut]:
    return [lending.request_out(r) for r in lending.my_requests(session, principal, limit, offset)]


@router.get("/requests/pending", response_model=list[RequestOut], responses=_ERRORS,
            summary="待审批的利用申请（不含本人提交的）")
def pending(limit: int = Query(100, ge=1, le=500), offset: Offset = 0, session: Session = UnitOfWork,
            principal: Principal = Depends(caller)) -> list[RequestOut]:
    return [lending.request_out(r) for r in lending.pending_requests(session, principal, limit, offset)]


@router.get("/requests/{request_id}", response_model=RequestOut, responses=_ERRORS,
            summary="利用申请详情（申请人本人、审批人、审计员可见）")
def read_request(request_id: Id, session: Session = UnitOfWork,
                 principal: Principal = Depends(caller)) -> RequestOut:
    return lending.request_out(lending.visible_request(session, principal, request_id))


class ApproveIn(BaseModel):
    days: int | None = Field(None, description="批准天数；不填按申请天数，只能缩短")
    reason: str | None = Field(None, max_length=500, description="审批意见")


class ReasonIn(BaseModel):
    reason: str = Field(max_length=500, description="理由（必填）")


@router.post("/requests/{request_id}/approve", response_model=RequestOut, responses=_ERRORS,
             summary="批准（可缩短期限）；申请人不能审批本人的申请")
def approve(request_id: Id, req: ApproveIn, ctx: Context = Depends(context), session: Session = UnitOfWork,
            principal: Principal = Depends(caller)) -> RequestOut:
    with audited(session, principal, "lending.approve", target_type="lending_request", target_id=request_id,
                          detail={"days": req.days}):
        r = lending.approve(session, principal, request_id, ctx.settings.lending_max_days, req.days, req.reason)
    return lending.request_out(r)


@router.post("/requests/{request_id}/reject", response_model=RequestOut, responses=_ERRORS,
             summary="驳回（须写明理由）")
def reject(request_id: Id, req: ReasonIn, session: Session = UnitOfWork,
           principal: Principal = Depends(caller)) -> RequestOut:
    with audited(session, principal, "lending.reject", target_type="lending_request", target_id=request_id):
        r = lending.reject(session, principal, request_id, req.reason)
    return lending.request_out(r)


@router.post("/requests/{request_id}/revoke", response_model=RequestOut, responses=_ERRORS,
             summary="提前撤销有效的利用授权（须写明理由）")
def revoke(request_id: Id, req: ReasonIn, session: Session = UnitOfWork,
           principal: Principal = Depends(caller)) -> RequestOut:
    with audited(session, principal, "lending.revoke", target_type="lending_request", target_id=request_id):
        r = lending.revoke(session, principal, request_id, req.reason)
    return lending.request_out(r)


@router.get("/requests/{request_id}/views", response_model=list[AccessEventOut], responses=_ERRORS,
            summary="该授权下的每一次查阅（利用登记），供档案管理员、审计员核查")
def views(request_id: Id, session: Session = UnitOfWork,
          principal: Principal = Depends(caller)) -> list[AccessEventOut]:
    return lending.grant_views(session, principal, request_id)


# --- paper loans ---------------------------------------------------------------------------------

@router.post("/loans", response_model=LoanOut, status_code=201, responses=_ERRORS,
             summary="实体档案借出：借阅人、档号、应还日期")
def lend_out(req: LoanIn, ctx: Context = Depends(context), session: Session = UnitOfWork,
             principal: Principal = Depends(caller)) -> LoanOut:
    with audited(session, principal, "lending.loan.out", target_type="paper_loan",
                          detail={"archival_codes": req.archival_codes[:20], "borrower": req.borrower,
                                  "due_date": req.due_date.isoformat()}):
        loan = lending.lend_out(session, principal, req, ctx.today(), ctx.settings.lending_max_days)
    return lending.loan_out(loan, ctx.today())


@router.get("/loans", response_model=list[LoanOut], responses=_ERRORS, summary="借阅单列表（最新在前）")
def loans(status: str | None = Query(None, pattern="^(out|returned)$", description="out 未还、returned 已还"),
          limit: int = Query(100, ge=1, le=500), offset: Offset = 0, ctx: Context = Depends(context),
          session: Session = UnitOfWork, principal: Principal = Depends(caller)) -> list[LoanOut]:
    today = ctx.today()
    return [lending.loan_out(x, today) for x in lending.list_loans(session, principal, status, limit, offset)]


@router.get("/loans/overdue", response_model=list[LoanOut], responses=_ERRORS,
            summary="催还清单：逾期未还的借阅单（逾期最久在前）")
def overdue(ctx: Context = Depends(context), session: Session = UnitOfWork,
            principal: Principal = Depends(caller)) -> list[LoanOut]:
    today = ctx.today()
    return [lending.loan_out(x, today) for x in lending.overdue_loans(session, principal, today)]


@router.get("/loans/{loan_id}", response_model=LoanOut, responses=_ERRORS, summary="借阅单详情")
def read_loan(loan_id: Id, ctx: Context = Depends(context), session: Session = UnitOfWork,
              principal: Principal = Depends(caller)) -> LoanOut:
    lending.list_loans(session, principal, limit=1)  # the same permission as the list
    return lending.loan_out(lending.get_loan(session, loan_id), ctx.today())


class RemindIn(BaseModel):
    note: str | None = Field(None, max_length=500, description="催还方式与说明，如「电话催还」")


class ReturnIn(BaseModel):
    condition_note: str = Field(max_length=500, description="归还时的档案状况（必填），如「完好」")


@router.post("/loans/{loan_id}/remind", response_model=LoanOut, responses=_ERRORS, summary="登记一次催还")
def remind(loan_id: Id, req: RemindIn, ctx: Context = Depends(context), session: Session = UnitOfWork,
           principal: Principal = Depends(caller)) -> LoanOut:
    with audited(session, principal, "lending.loan.remind", target_type="paper_loan", target_id=loan_id):
        loan = lending.remind(session, principal, loan_id, ctx.today(), ctx.zone, req.note)
    return lending.loan_out(loan, ctx.today())


@router.post("/loans/{loan_id}/return", response_model=LoanOut, responses=_ERRORS,
             summary="归还：登记档案状况；已归还的借阅单不能再次归还")
def return_loan(loan_id: Id, req: ReturnIn, ctx: Context = Depends(context), session: Session = UnitOfWork,
                principal: Principal = Depends(caller)) -> LoanOut:
    with audited(session, principal, "lending.loan.return", target_type="paper_loan", target_id=loan_id):
        loan = lending.return_loan(session, principal, loan_id, req.condition_note, ctx.zone)
    return lending.loan_out(loan, ctx.today())

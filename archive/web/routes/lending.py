"""利用 (lending): the request form and my requests, the approvals inbox (审批: never one's own request), the
grants running now (有效授权, revocable), and paper loans (实体借阅) with the overdue ones first and 催还.

Every action is the domain's (archive.retention.lending), wrapped in ``audited`` as the API's routes are, so a
refused attempt leaves the same ``refused`` audit event. A refusal re-renders the page with the Chinese message
and the stable code at the refusal's status; nothing is changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from archive.api.deps import UnitOfWork, context
from archive.api.errors import status_of
from archive.api.params import Id
from archive.context import Context
from archive.errors import ERRORS, SYSTEM_KINDS, AnyError
from archive.permissions import Permission, Principal
from archive.retention import lending
from archive.retention.lending import AUTHORITIES, MODES, PURPOSES, LoanIn, RequestIn
from archive.retention.refusals import audited
from archive.web.deps import require
from archive.web.forms import codes_of, model_of
from archive.web.render import SECURITY_HEADERS, render

router = APIRouter(prefix="/ui/lending", include_in_schema=False)
PER_PAGE = 20
PageNo = Annotated[int, Query(ge=1, le=10_000)]
Asker = Depends(require(Permission.LENDING_REQUEST, Permission.LENDING_APPROVE))
Approver = Depends(require(Permission.LENDING_APPROVE))
STATE_TAGS = {"pending": "info", "active": "ok", "expired": "warn", "rejected": "bad", "revoked": "bad"}
REQUEST_LABELS = {"archival_codes": "档号", "purpose": "利用目的", "purpose_text": "目的说明", "mode": "利用方式",
                  "days": "利用期限", "department": "单位/部门", "authority": "来函单位类别",
                  "external_unit": "来函单位", "legal_basis": "法律文书文号"}
LOAN_LABELS = {"borrower": "借阅人", "borrower_unit": "借阅人单位", "archival_codes": "档号", "due_date": "应还日期",
               "request_id": "实体借出申请编号"}
DONE = {"requested": "利用申请已提交，等待档案管理员审批", "approved": "已批准，授权即时生效",
        "rejected": "已驳回", "revoked": "授权已撤销", "lent": "已登记借出", "reminded": "已登记催还",
        "returned": "已登记归还"}
Text = Annotated[str, Form(max_length=2000)]  # longer than any field: the domain names what is too long


def _attempt(step: Callable[[], Any]) -> AnyError | None:
    """Run a domain step; its refusal (already audited, transaction rolled back) to show, or None."""
    try:
        step()
    except ERRORS as exc:
        if exc.kind in SYSTEM_KINDS:
            raise
        return exc
    return None


def _shown(ctx: Context, show: Callable[[Session], Response]) -> Response:
    """A page after a refusal: the refusal rolled the request's transaction back, so read in a session of its own."""
    with ctx.catalogue.reading() as s:
        return show(s)


def _done(path: str, what: str, **extra: Any) -> Response:
    query = "&".join([f"done={what}", *(f"{k}={v}" for k, v in extra.items())])
    return RedirectResponse(f"{path}?{query}", status_code=303, headers=SECURITY_HEADERS)


def _page_values(page: int, rows: list[Any]) -> dict[str, Any]:
    """One page of a list read with one row more than shown: whether there is a next page, without a count."""
    return {"rows": rows[:PER_PAGE], "page": page, "more": len(rows) > PER_PAGE}


def _common(request: Request, principal: Principal, active: str, error: AnyError | None) -> dict[str, Any]:
    done = request.query_params.get("done", "")
    return {"tab": active, "error": error, "done": DONE.get(done, ""), "state_tags": STATE_TAGS,
            "can_approve": principal.can(Permission.LENDING_APPROVE),
            "can_request": principal.can(Permission.LENDING_REQUEST)}


# --- 我的申请 and the request form -------------------------------------------------------------------

def _mine(request: Request, ctx: Context, db: Session, principal: Principal, page: int = 1,
          error: AnyError | None = None, form: dict[str, Any] | None = None) -> Response:
    rows = lending.my_requests(db, principal, PER_PAGE + 1, (page - 1) * PER_PAGE)
    return render(request, "lending.html", status=status_of(error) if error else 200,
                  **_common(request, principal, "mine", error), **_page_values(page, rows),
                  out=[lending.request_out(r) for r in rows[:PER_PAGE]], purposes=PURPOSES, modes=MODES,
                  authorities=AUTHORITIES, max_days=ctx.settings.lending_max_days, form=form or {})


@router.get("")
def index(request: Request, page: PageNo = 1, ctx: Context = Depends(context), db: Session = UnitOfWork,
          principal: Principal = Asker) -> Response:
    if not principal.can(Permission.LENDING_REQUEST):  # the archive head decides, she does not ask
        return RedirectResponse("/ui/lending/approvals", status_code=303, headers=SECURITY_HEADERS)
    return _mine(request, ctx, db, principal, page)


@router.post("/requests")
def create(request: Request, archival_codes: Text = "", purpose: Text = "", purpose_text: Text = "",
           mode: Text = "", days: Text = "", department: Text = "", authority: Text = "", external_unit: Text = "",
           legal_basis: Text = "", ctx: Context = Depends(context), db: Session = UnitOfWork,
           principal: Principal = Asker) -> Response:
    form = {"archival_codes": archival_codes, "purpose": purpose, "purpose_text": purpose_text, "mode": mode,
            "days": days, "department": department, "authority": authority, "external_unit": external_unit,
            "legal_basis": legal_basis}
    codes = codes_of(archival_codes)

    def step() -> None:
        with audited(db, principal, "lending.request", target_type="lending_request",
                     detail={"archival_codes": codes[:20], "mode": mode, "days": days[:10]}):
            data = model_of(RequestIn, {**form, "archival_codes": codes, "days": days.strip() or None,
                                        "authority": authority or None}, REQUEST_LABELS)
            lending.create_request(db, principal, data, ctx.settings.lending_max_days)

    error = _attempt(step)
    if error:
        return _shown(ctx, lambda s: _mine(request, ctx, s, principal, error=error, form=form))
    return _done("/ui/lending", "requested")


@router.get("/requests/{request_id}")
def request_page(request_id: Id, request: Request, db: Session = UnitOfWork,
                 principal: Principal = Asker) -> Response:
    """One request: its decision, and for an approver or auditor the reads made under it (利用登记)."""
    r = lending.visible_request(db, principal, request_id)
    views = lending.grant_views(db, principal, request_id) if principal.can(Permission.LENDING_APPROVE) else []
    return render(request, "lending_request.html", r=lending.request_out(r), views=views,
                  **_common(request, principal, "", None))


# --- 审批 ---------------------------------------------------------------------------------------------

def _approvals(request: Request, ctx: Context, db: Session, principal: Principal, page: int = 1,
               error: AnyError | None = None) -> Response:
    rows = lending.pending_requests(db, principal, PER_PAGE + 1, (page - 1) * PER_PAGE)
    return render(request, "lending_approvals.html", status=status_of(error) if error else 200,
                  **_common(request, principal, "approvals", error), **_page_values(page, rows),
                  out=[lending.request_out(r) for r in rows[:PER_PAGE]], max_days=ctx.settings.lending_max_days)


@router.get("/approvals")
def approvals(request: Request, page: PageNo = 1, ctx: Context = Depends(context), db: Session = UnitOfWork,
              principal: Principal = Approver) -> Response:
    return _approvals(request, ctx, db, principal, page)


@router.post("/requests/{request_id}/approve")
def approve(request_id: Id, request: Request, days: Text = "", reason: Text = "", ctx: Context = Depends(context),
            db: Session = UnitOfWork, principal: Principal = Approver) -> Response:
    def step() -> None:
        with audited(db, principal, "lending.approve", target_type="lending_request", target_id=request_id,
                     detail={"days": days[:10]}):
            granted = model_of(_Days, {"days": days.strip() or None}, {"days": "批准天数"}).days
            lending.approve(db, principal, request_id, ctx.settings.lending_max_days, granted, reason)

    error = _attempt(step)
    return _shown(ctx, lambda s: _approvals(request, ctx, s, principal, error=error)) if error else _done(
        "/ui/lending/approvals", "approved", id=request_id)


@router.post("/requests/{request_id}/reject")
def reject(request_id: Id, request: Request, reason: Text = "", ctx: Context = Depends(context),
           db: Session = UnitOfWork, principal: Principal = Approver) -> Response:
    def step() -> None:
        with audited(db, principal, "lending.reject", target_type="lending_request", target_id=request_id):
            lending.reject(db, principal, request_id, reason)

    error = _attempt(step)
    return _shown(ctx, lambda s: _approvals(request, ctx, s, principal, error=error)) if error else _done(
        "/ui/lending/approvals", "rejected", id=request_id)


class _Days(BaseModel):
    """批准天数 as typed: empty for the requested days."""

    days: int | None = None


# --- 有效授权 -----------------------------------------------------------------------------------------

def _grants(request: Request, db: Session, principal: Principal, page: int = 1,
            error: AnyError | None = None) -> Response:
    rows = lending.active_grants(db, principal, PER_PAGE + 1, (page - 1) * PER_PAGE)
    return render(request, "lending_grants.html", status=status_of(error) if error else 200,
                  **_common(request, principal, "grants", error), **_page_values(page, rows),
                  out=[lending.request_out(r) for r in rows[:PER_PAGE]])


@router.get("/grants")
def grants(request: Request, page: PageNo = 1, db: Session = UnitOfWork, principal: Principal = Approver) -> Response:
    return _grants(request, db, principal, page)


@router.post("/requests/{request_id}/revoke")
def revoke(request_id: Id, request: Request, reason: Text = "", ctx: Context = Depends(context),
           db: Session = UnitOfWork, principal: Principal = Approver) -> Response:
    def step() -> None:
        with audited(db, principal, "lending.revoke", target_type="lending_request", target_id=request_id):
            lending.revoke(db, principal, request_id, reason)

    error = _attempt(step)
    if error:
        return _shown(ctx, lambda s: _grants(request, s, principal, error=error))
    return _done("/ui/lending/grants", "revoked")


# --- 实体借阅 -----------------------------------------------------------------------------------------

def _loans(request: Request, ctx: Context, db: Session, principal: Principal, page: int = 1, status: str = "out",
           error: AnyError | None = None, form: dict[str, Any] | None = None) -> Response:
    today = ctx.today()
    overdue = lending.overdue_loans(db, principal, today, PER_PAGE) if page == 1 and status == "out" else []
    rows = lending.list_loans(db, principal, status or None, PER_PAGE + 1, (page - 1) * PER_PAGE)
    return render(request, "lending_loans.html", status=status_of(error) if error else 200,
                  **_common(request, principal, "loans", error), **_page_values(page, rows), status_filter=status,
                  overdue=[lending.loan_out(x, today) for x in overdue],
                  out=[lending.loan_out(x, today) for x in rows[:PER_PAGE]], form=form or {}, day=today,
                  full_pii=principal.can(Permission.PII_READ),
                  max_days=ctx.settings.lending_max_days)


@router.get("/loans")
def loans(request: Request, page: PageNo = 1, status: Annotated[str, Query(pattern="^(out|returned|)$")] = "out",
          ctx: Context = Depends(context), db: Session = UnitOfWork, principal: Principal = Approver) -> Response:
    return _loans(request, ctx, db, principal, page, status)


@router.post("/loans")
def lend_out(request: Request, borrower: Text = "", borrower_unit: Text = "", archival_codes: Text = "",
             due_date: Text = "", request_id: Text = "", ctx: Context = Depends(context), db: Session = UnitOfWork,
             principal: Principal = Approver) -> Response:
    form = {"borrower": borrower, "borrower_unit": borrower_unit, "archival_codes": archival_codes,
            "due_date": due_date, "request_id": request_id}
    codes = codes_of(archival_codes)

    def step() -> None:
        with audited(db, principal, "lending.loan.out", target_type="paper_loan",
                     detail={"archival_codes": codes[:20], "borrower": borrower[:100], "due_date": due_date[:10]}):
            data = model_of(LoanIn, {**form, "archival_codes": codes, "due_date": due_date.strip() or None,
                                     "borrower_unit": borrower_unit or None, "request_id": request_id.strip() or None},
                            LOAN_LABELS)
            lending.lend_out(db, principal, data, ctx.today(), ctx.settings.lending_max_days)

    error = _attempt(step)
    if error:
        return _shown(ctx, lambda s: _loans(request, ctx, s, principal, error=error, form=form))
    return _done("/ui/lending/loans", "lent")


@router.post("/loans/{loan_id}/remind")
def remind(loan_id: Id, request: Request, note: Text = "", ctx: Context = Depends(context), db: Session = UnitOfWork,
           principal: Principal = Approver) -> Response:
    def step() -> None:
        with audited(db, principal, "lending.loan.remind", target_type="paper_loan", target_id=loan_id):
            lending.remind(db, principal, loan_id, ctx.today(), ctx.zone, note)

    error = _attempt(step)
    if error:
        return _shown(ctx, lambda s: _loans(request, ctx, s, principal, error=error))
    return _done("/ui/lending/loans", "reminded")


@router.post("/loans/{loan_id}/return")
def return_loan(loan_id: Id, request: Request, condition_note: Text = "", ctx: Context = Depends(context),
                db: Session = UnitOfWork, principal: Principal = Approver) -> Response:
    def step() -> None:
        with audited(db, principal, "lending.loan.return", target_type="paper_loan", target_id=loan_id):
            lending.return_loan(db, principal, loan_id, condition_note, ctx.zone)

    error = _attempt(step)
    if error:
        return _shown(ctx, lambda s: _loans(request, ctx, s, principal, error=error))
    return _done("/ui/lending/loans", "returned")

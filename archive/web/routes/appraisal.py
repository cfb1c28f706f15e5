"""鉴定与销毁: the appraisal queue (selection across pages by its filter) and the 销毁清册 (build, two approvals or
驳回, execution as a background job, the signed PDF).

Every change goes through archive.retention.appraisal / destruction as the API's does; a selection "all matching"
is the queue's filter sent back to the server (minus the 档号 left out), never a list of ids loaded into the page.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import jobs
from archive.api.deps import UnitOfWork, context
from archive.api.errors import status_of
from archive.api.params import Id
from archive.catalogue.models import ArchiveItem, Case, DestructionList
from archive.classification import RetentionCode
from archive.context import Context
from archive.errors import ERRORS, SYSTEM_KINDS, AnyError, InvalidInput
from archive.identifiers import mask_name
from archive.permissions import Permission, Principal
from archive.retention import appraisal, destruction
from archive.web.deps import require
from archive.web.render import SECURITY_HEADERS, render
from archive.web.routes.jobs import STATUS_NAMES as JOB_STATUS

router = APIRouter(prefix="/ui/appraisal", include_in_schema=False)
PER_PAGE = 50
COUNT_CAP = 10_001  # the queue's total is counted up to here: "超过 10,000 件" rather than a full scan
JOB_OVER = 500  # a decision over more items than this runs as a background job
LISTS_PER_PAGE = 30
STATUS = {"pending": "待审批", "approved": "已批准", "executed": "已执行", "rejected": "已驳回"}
STATUS_TAG = {"pending": "info", "approved": "ok", "executed": "ok", "rejected": "bad"}
ENTRY_STATUS = {"pending": "待执行", "destroyed": "已销毁", "refused": "未销毁"}
Manager = Depends(require(Permission.RETENTION_MANAGE))
Reader = Depends(require(Permission.RETENTION_MANAGE, Permission.DESTRUCTION_APPROVE))
Approver = Depends(require(Permission.DESTRUCTION_APPROVE))
Text = Annotated[str, Form(max_length=500)]


def _raise_system(exc: AnyError) -> None:
    if exc.kind in SYSTEM_KINDS:
        raise exc


@contextmanager
def _afresh(ctx: Context, db: Session) -> Iterator[Session]:
    """A session for the page that answers a refusal: the domain's refusal rolled the request's transaction back
    (and committed its audit event), which leaves that session unusable."""
    db.rollback()
    with ctx.catalogue.session() as fresh:
        yield fresh


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


# --- the queue -----------------------------------------------------------------------------------

def queue_filter(ctx: Context, category: str, business_type: str, year: str, expired_before: str) -> \
        appraisal.QueueFilter:
    """The filter as typed in the form (empty fields mean "any"); a bad value is a Chinese 422."""
    category, business_type, year, expired_before = (v.strip() for v in (category, business_type, year,
                                                                          expired_before))
    if category and category not in ctx.schedule.categories:
        raise InvalidInput(f"类别 {category} 不存在；可用类别：{'、'.join(ctx.schedule.categories)}",
                           code="unknown_category", detail={"field": "category"})
    if business_type and business_type not in ctx.schedule.types:
        raise InvalidInput(f"业务类型 {business_type} 不存在", code="unknown_business_type",
                           detail={"field": "business_type"})
    if year and not (year.isdigit() and 1900 <= int(year) <= 2200):
        raise InvalidInput(f"年度 {year} 无效，应为 1900-2200 之间的四位数字", code="invalid_filter_value",
                           detail={"field": "year"})
    try:
        before = date.fromisoformat(expired_before) if expired_before else None
    except ValueError:
        raise InvalidInput(f"日期 {expired_before} 格式不对，应为 YYYY-MM-DD", code="invalid_date",
                           detail={"field": "expired_before"}) from None
    return appraisal.QueueFilter(category=category or None, business_type=business_type or None,
                                 year=int(year) if year else None, expired_before=before)


def _filter_query(f: appraisal.QueueFilter) -> str:
    """The filter as the query string the pager and the forms carry."""
    values = {"category": f.category or "", "business_type": f.business_type or "", "year": f.year or "",
              "expired_before": f.expired_before.isoformat() if f.expired_before else ""}
    return urlencode({k: v for k, v in values.items() if v})


def _masked(principal: Principal, title: str, name: str | None) -> str:
    """题名 begins with the applicant's name: masked unless the person may read personal data."""
    if principal.can(Permission.PII_READ) or not name:
        return title
    return title.replace(name, mask_name(name) or "", 1)


def _decide_key(principal: Principal) -> str:
    return f"appraisal:decide:{principal.name}"


def _queue_page(request: Request, ctx: Context, db: Session, principal: Principal, f: appraisal.QueueFilter | None,
                page: int, status: int = 200, error: AnyError | None = None, raw: dict[str, str] | None = None,
                notice: str = "") -> Response:
    page = min(page, COUNT_CAP // PER_PAGE + 1)  # no deep OFFSET past what the bounded count can show
    total, items = appraisal.queue(ctx, db, principal, f, PER_PAGE, (page - 1) * PER_PAGE, count_cap=COUNT_CAP)
    query = _filter_query(f) if f else ""
    return render(request, "appraisal.html", status=status, items=items, total=total, capped=total >= COUNT_CAP,
                  cap=COUNT_CAP - 1, page=page, pages=max(1, -(-min(total, COUNT_CAP - 1) // PER_PAGE)),
                  query=f"{query}&" if query else "", f=f or appraisal.QueueFilter(), raw=raw or {}, error=error,
                  notice=notice, title_of=lambda item: _masked(principal, appraisal.title_of(ctx, item.case),
                                                               item.case.applicant_name),
                  schedule=ctx.schedule, proposed=destruction.proposed_count(db, principal),
                  job=jobs.latest(db, _decide_key(principal)), job_over=JOB_OVER, status_names=JOB_STATUS)


@router.get("")
def queue(request: Request, category: Annotated[str, Query(max_length=8)] = "",
          business_type: Annotated[str, Query(max_length=16)] = "", year: Annotated[str, Query(max_length=8)] = "",
          expired_before: Annotated[str, Query(max_length=10)] = "",
          page: Annotated[int, Query(ge=1, le=10_000)] = 1, decided: Annotated[int, Query(ge=0, le=100_000)] = 0,
          kept: Annotated[int, Query(ge=0, le=100_000)] = 0, ctx: Context = Depends(context),
          db: Session = UnitOfWork, principal: Principal = Reader) -> Response:
    """The queue for the archivist; an approver without RETENTION_MANAGE goes to the 销毁清册 she approves."""
    if not principal.can(Permission.RETENTION_MANAGE):
        return _redirect("/ui/appraisal/lists")
    raw = {"category": category, "business_type": business_type, "year": year, "expired_before": expired_before}
    try:
        f = queue_filter(ctx, **raw)
    except ERRORS as exc:
        return _queue_page(request, ctx, db, principal, None, 1, status_of(exc), exc, raw)
    notice = (f"已记录 {decided} 件拟销毁的鉴定意见，可编制销毁清册。" if decided else
              f"已记录 {kept} 件继续保存的鉴定意见，到期日已按新的保管期限重算。" if kept else "")
    return _queue_page(request, ctx, db, principal, f, page, raw=raw, notice=notice)


@router.post("/decisions")
def decide(request: Request, scope: Annotated[str, Form(max_length=8)] = "checked",
           code: Annotated[list[str] | None, Form(max_length=PER_PAGE)] = None,
           shown: Annotated[list[str] | None, Form(max_length=PER_PAGE)] = None,
           exclude: Annotated[str, Form(max_length=200_000)] = "",
           category: Annotated[str, Form(max_length=8)] = "", business_type: Annotated[str, Form(max_length=16)] = "",
           year: Annotated[str, Form(max_length=8)] = "", expired_before: Annotated[str, Form(max_length=10)] = "",
           decision: Annotated[str, Form(max_length=8)] = "", retention_code: Annotated[str, Form(max_length=4)] = "",
           reason: Text = "", ctx: Context = Depends(context), db: Session = UnitOfWork,
           principal: Principal = Manager) -> Response:
    """Keep or destroy over the ticked rows, or over everything the filter matches less the rows left out."""
    raw = {"category": category, "business_type": business_type, "year": year, "expired_before": expired_before}
    f: appraisal.QueueFilter | None = None
    try:
        f = queue_filter(ctx, **raw)
        if decision not in ("keep", "destroy"):
            raise InvalidInput("请选择鉴定意见：继续保存或拟销毁", code="invalid_decision",
                               detail={"field": "decision"})
        if not reason.strip():
            raise InvalidInput("请填写鉴定意见（理由）", code="appraisal_reason_required", detail={"field": "reason"})
        if scope == "all":  # 档号 typed are left out, and so are this page's unticked rows if any row is ticked
            unticked = set(shown or ()) - set(code or ()) if code else set()
            left_out = unticked | {c.strip() for c in exclude.split() if c.strip()}
            codes = appraisal.matching_codes(ctx, db, principal, f, sorted(left_out))
        else:
            codes = [c.strip() for c in code or () if c.strip()]
            if not codes:
                raise InvalidInput("请先勾选要鉴定的档案，或选择“全部符合条件的档案”", code="appraisal_selection_empty")
        data = appraisal.DecisionIn(archival_codes=codes, decision=decision,
                                    reason=reason,
                                    retention_code=(retention_code or None) if decision == "keep" else None)
        if len(codes) > JOB_OVER:
            db.commit()  # the job works in sessions of its own
            _start_decision_job(ctx, principal, data)
            return _redirect(f"/ui/appraisal?{_filter_query(f)}")
        report = appraisal.decide(ctx, db, principal, data)  # a refusal rolls back and is audited
    except ERRORS as exc:
        _raise_system(exc)
        with _afresh(ctx, db) as fresh:
            return _queue_page(request, ctx, fresh, principal, f, 1, status_of(exc), exc, raw)
    counted = "decided" if decision == "destroy" else "kept"
    query = _filter_query(f)
    return _redirect(f"/ui/appraisal?{query}{'&' if query else ''}{counted}={report.decided}")


def _start_decision_job(ctx: Context, principal: Principal, data: appraisal.DecisionIn) -> None:
    label = "拟销毁" if data.decision == "destroy" else "继续保存"

    def work(progress: jobs.Progress) -> jobs.Outcome:
        # one transaction, all or nothing: no progress writes meanwhile (on SQLite they would wait for its lock)
        with ctx.catalogue.session() as s:
            report = appraisal.decide(ctx, s, principal, data)
        return jobs.Outcome({"summary": f"已记录 {report.decided} 件{label}的鉴定意见"}, "/ui/appraisal")

    jobs.start(ctx, principal, kind="appraisal.decide", key=_decide_key(principal),
               title=f"鉴定：{len(data.archival_codes)} 件{label}", permission=Permission.RETENTION_MANAGE, work=work)


# --- 销毁清册 ----------------------------------------------------------------------------------------

def _lists_page(request: Request, db: Session, principal: Principal, status_filter: str, page: int,
                status: int = 200, error: AnyError | None = None) -> Response:
    found = destruction.list_lists(db, status_filter or None, LISTS_PER_PAGE + 1, (page - 1) * LISTS_PER_PAGE)
    proposed = destruction.proposed_count(db, principal) if principal.can(Permission.RETENTION_MANAGE) else 0
    return render(request, "destruction_lists.html", status=status, lists=found[:LISTS_PER_PAGE],
                  more=len(found) > LISTS_PER_PAGE, page=page, status_filter=status_filter,
                  list_status=STATUS, status_names=JOB_STATUS,
                  status_tags=STATUS_TAG, proposed=proposed, error=error)


@router.get("/lists")
def lists(request: Request, status: Annotated[str, Query(max_length=10)] = "",
          page: Annotated[int, Query(ge=1, le=10_000)] = 1, db: Session = UnitOfWork,
          principal: Principal = Reader) -> Response:
    destruction.check_status(status or None)
    return _lists_page(request, db, principal, status, page)


@router.post("/lists")
def build(request: Request, title: Annotated[str, Form(max_length=200)] = "",
          codes: Annotated[str, Form(max_length=200_000)] = "", ctx: Context = Depends(context),
          db: Session = UnitOfWork, principal: Principal = Manager) -> Response:
    """A new 销毁清册 of the proposed destroy decisions (all of them, or the 档号 typed)."""
    wanted = [c for c in codes.split() if c]
    try:
        report = destruction.build_list(ctx, db, principal, destruction.ListIn(
            title=title.strip() or None, archival_codes=wanted or None))
    except ERRORS as exc:
        _raise_system(exc)
        with _afresh(ctx, db) as fresh:
            return _lists_page(request, fresh, principal, "", 1, status_of(exc), exc)
    return _redirect(f"/ui/appraisal/lists/{report.list.id}")


def _execute_key(list_id: int) -> str:
    return f"destruction:execute:{list_id}"


def _list_page(request: Request, db: Session, principal: Principal, dl: DestructionList, page: int,
               status: int = 200, error: AnyError | None = None) -> Response:
    entries = destruction.entries_of(db, dl.id, PER_PAGE, (page - 1) * PER_PAGE)
    approvals = destruction.approvals_of(db, dl.id)
    names: dict[int, str | None] = {item_id: name for item_id, name in db.execute(
        select(ArchiveItem.id, Case.applicant_name).join(Case, Case.id == ArchiveItem.case_id)
        .where(ArchiveItem.id.in_([e.item_id for e in entries])))}
    return render(request, "destruction_list.html", status=status, dl=dl, entries=entries, approvals=approvals,
                  page=page, pages=max(1, -(-dl.item_count // PER_PAGE)), list_status=STATUS,
                  status_names=JOB_STATUS,
                  status_tags=STATUS_TAG, entry_status=ENTRY_STATUS, error=error,
                  approved_by_me=any(a.approver == principal.name for a in approvals),
                  job=jobs.latest(db, _execute_key(dl.id)), retention_label=_retention_label,
                  title_of=lambda e: _masked(principal, e.title, names.get(e.item_id)))


def _retention_label(code: str) -> str:
    try:
        return RetentionCode(code).label
    except ValueError:
        return code


@router.get("/lists/{list_id}")
def list_page(list_id: Id, request: Request, page: Annotated[int, Query(ge=1, le=10_000)] = 1,
              db: Session = UnitOfWork, principal: Principal = Reader) -> Response:
    return _list_page(request, db, principal, destruction.get_list(db, list_id), page)


def _act(request: Request, ctx: Context, db: Session, principal: Principal, list_id: int,
         action: Any) -> Response:
    """Run an approval step (a refusal rolls the transaction back and is audited by the domain): back to the
    list, or the list again with the refusal."""
    try:
        action()
    except ERRORS as exc:
        _raise_system(exc)
        if exc.code == "destruction_list_not_found":
            raise
        with _afresh(ctx, db) as fresh:
            return _list_page(request, fresh, principal, destruction.get_list(fresh, list_id), 1, status_of(exc),
                              exc)
    return _redirect(f"/ui/appraisal/lists/{list_id}")


@router.post("/lists/{list_id}/approve")
def approve(list_id: Id, request: Request, opinion: Text = "", ctx: Context = Depends(context),
            db: Session = UnitOfWork, principal: Principal = Approver) -> Response:
    return _act(request, ctx, db, principal, list_id, lambda: destruction.approve(
        ctx, db, principal, list_id, destruction.ApprovalIn(opinion=opinion.strip() or None)))


@router.post("/lists/{list_id}/reject")
def reject(list_id: Id, request: Request, reason: Text = "", ctx: Context = Depends(context),
           db: Session = UnitOfWork, principal: Principal = Approver) -> Response:
    def step() -> None:
        if len(reason.strip()) < 2:
            raise InvalidInput("驳回须写明理由（至少 2 个字），以便重新鉴定", code="rejection_reason_required",
                               detail={"field": "reason"})
        destruction.reject(db, principal, list_id, destruction.RejectionIn(reason=reason.strip()))

    return _act(request, ctx, db, principal, list_id, step)


@router.post("/lists/{list_id}/execute")
def execute(list_id: Id, request: Request, ctx: Context = Depends(context), db: Session = UnitOfWork,
            principal: Principal = Manager) -> Response:
    """Start the execution as a background job (a second click finds the running one)."""
    dl = destruction.get_list(db, list_id)
    try:
        destruction.check_executable(db, dl)
    except ERRORS as exc:
        return _list_page(request, db, principal, dl, 1, status_of(exc), exc)
    number, total = dl.number, dl.item_count
    db.commit()  # execution commits item by item in transactions of its own

    def work(progress: jobs.Progress) -> jobs.Outcome:
        r = destruction.execute(ctx, principal, list_id, progress=progress)
        refused = f"，{len(r.refused)} 件未销毁（原因见清册）" if r.refused else ""
        return jobs.Outcome({"summary": f"已销毁 {len(r.destroyed)} 件{refused}", "destroyed": len(r.destroyed),
                             "refused": len(r.refused)}, f"/ui/appraisal/lists/{list_id}")

    jobs.start(ctx, principal, kind="destruction.execute", key=_execute_key(list_id), title=f"执行销毁清册 {number}",
               permission=Permission.RETENTION_MANAGE, work=work, total=total)
    return _redirect(f"/ui/appraisal/lists/{list_id}")


@router.get("/lists/{list_id}/pdf")
def pdf(list_id: Id, ctx: Context = Depends(context), db: Session = UnitOfWork,
        principal: Principal = Reader) -> Response:
    """The signed 销毁清册, shown in the browser's PDF viewer."""
    dl, data = destruction.list_pdf(ctx, db, list_id)
    return Response(data, media_type="application/pdf", headers={
        **SECURITY_HEADERS, "Content-Disposition": f'inline; filename="{dl.number}.pdf"'})

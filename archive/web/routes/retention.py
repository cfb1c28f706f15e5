"""冻结 (holds), 保管期限 (schedules) and items waiting for their trigger.

Holds are set by 档号 list, 业务流水号 list, catalogue query or one of the person's saved searches, and lifted with
a reason, through archive.retention.holds. The schedule's versions and the reapply dry run (old → new period per
item) come from archive.retention.schedules; the audited apply runs as a background job, checked against the
previewed plan's digest so it applies exactly what was shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from archive import jobs, saved_searches
from archive.api.deps import UnitOfWork, context
from archive.api.errors import status_of
from archive.api.params import Id
from archive.classification import RetentionCode, Trigger
from archive.context import Context
from archive.errors import ERRORS, SYSTEM_KINDS, AnyError, InvalidInput
from archive.permissions import Permission, Principal
from archive.retention import holds, schedules, triggers
from archive.retention.refusals import actor_of
from archive.web.deps import require
from archive.web.render import SECURITY_HEADERS, render
from archive.web.routes.jobs import STATUS_NAMES as JOB_STATUS

router = APIRouter(prefix="/ui", include_in_schema=False)
HOLDS_PER_PAGE = 30
CODES_PER_PAGE = 100
PLAN_SHOWN = 200  # changes listed on the page; the counts cover every item
PENDING_PER_PAGE = 50
REAPPLY_KEY = "schedule:reapply"
HOLD_STATUS = {"active": "冻结中", "lifted": "已解除"}
SCOPES = {"items": "档号", "cases": "业务流水号", "query": "查询条件"}
KINDS = {"lengthen": "延长", "shorten": "缩短", "changed": "起算变化", "unchanged": "不变"}
HoldManager = Depends(require(Permission.HOLD_MANAGE))
Manager = Depends(require(Permission.RETENTION_MANAGE))
Text = Annotated[str, Form(max_length=500)]
Keys = Annotated[str, Form(max_length=400_000)]  # up to 10,000 档号 or 业务流水号, one a line


def _redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


@contextmanager
def _afresh(ctx: Context, db: Session) -> Iterator[Session]:
    """A session for the page answering a refusal (the domain's refusal rolled the request's transaction back)."""
    db.rollback()
    with ctx.catalogue.session() as fresh:
        yield fresh


def _retention_label(code: str | None) -> str:
    try:
        return RetentionCode(code or "").label
    except ValueError:
        return code or ""


# --- 冻结 -------------------------------------------------------------------------------------------

def _holds_page(request: Request, ctx: Context, db: Session, principal: Principal, status_filter: str, page: int,
                status: int = 200, error: AnyError | None = None, form: dict[str, str] | None = None) -> Response:
    found = holds.list_holds(db, status_filter or None, HOLDS_PER_PAGE + 1, (page - 1) * HOLDS_PER_PAGE)
    return render(request, "holds.html", status=status, holds=found[:HOLDS_PER_PAGE], more=len(found) > HOLDS_PER_PAGE,
                  page=page, status_filter=status_filter, hold_status=HOLD_STATUS, scopes=SCOPES, error=error,
                  form=form or {}, schedule=ctx.schedule, saved=saved_searches.list_saved(db, principal))


@router.get("/holds")
def holds_page(request: Request, status: Annotated[str, Query(max_length=10)] = "",
               page: Annotated[int, Query(ge=1, le=10_000)] = 1, ctx: Context = Depends(context),
               db: Session = UnitOfWork, principal: Principal = HoldManager) -> Response:
    if status and status not in HOLD_STATUS:
        raise InvalidInput(f"状态 {status} 不存在；可用：active（冻结中）、lifted（已解除）", code="invalid_status")
    return _holds_page(request, ctx, db, principal, status, page)


def _date(value: str, field: str) -> date | None:
    try:
        return date.fromisoformat(value) if value.strip() else None
    except ValueError:
        raise InvalidInput(f"日期 {value} 格式不对，应为 YYYY-MM-DD", code="invalid_date",
                           detail={"field": field}) from None


def hold_in(db: Session, principal: Principal, form: dict[str, str]) -> holds.HoldIn:
    """The form as the domain's HoldIn: one scope, its keys or query; Chinese refusals for what is missing."""
    reason, authority = form["reason"].strip(), form["authority"].strip()
    if not reason or not authority:
        raise InvalidInput("请填写冻结原因和决定机关", code="hold_reason_required",
                           detail={"field": "reason" if not reason else "authority"})
    base: dict[str, Any] = {"reason": reason, "authority": authority,
                            "document_no": form["document_no"].strip() or None}
    scope, keys = form["scope"], form["keys"].split()
    if scope in ("codes", "serials"):
        if not keys:
            raise InvalidInput("请填写要冻结的档号或业务流水号（每行一个）", code="hold_scope_required",
                               detail={"field": "keys"})
        if len(keys) > holds.MAX_KEYS:
            raise InvalidInput(f"一次最多冻结 {holds.MAX_KEYS} 个档号或业务流水号，请分批设置", code="too_many_values",
                               detail={"field": "keys"})
        return holds.HoldIn(**base, **{"archival_codes" if scope == "codes" else "serials": keys})
    if scope == "saved":
        if not form["saved_search"].isdigit():
            raise InvalidInput("请选择一个保存的检索", code="hold_scope_required", detail={"field": "saved_search"})
        query, _ = holds.query_of_saved(db, principal, int(form["saved_search"]))
        return holds.HoldIn(**base, query=query)
    if scope == "query":
        year = form["year"].strip()
        if year and not (year.isdigit() and 1900 <= int(year) <= 2200):
            raise InvalidInput(f"年度 {year} 无效，应为 1900-2200 之间的四位数字", code="invalid_filter_value",
                               detail={"field": "year"})
        query = holds.HoldQuery(business_type=form["business_type"] or None, category=form["category"] or None,
                                year=int(year) if year else None, branch=form["branch"].strip() or None,
                                filed_from=_date(form["filed_from"], "filed_from"),
                                filed_to=_date(form["filed_to"], "filed_to"))
        return holds.HoldIn(**base, query=query)
    raise InvalidInput("请选择冻结范围：档号、业务流水号、查询条件或保存的检索", code="hold_scope_required",
                       detail={"field": "scope"})


@router.post("/holds")
def set_hold(request: Request, scope: Annotated[str, Form(max_length=8)] = "codes", reason: Text = "",
             authority: Annotated[str, Form(max_length=200)] = "",
             document_no: Annotated[str, Form(max_length=100)] = "",
             keys: Keys = "", business_type: Annotated[str, Form(max_length=16)] = "",
             category: Annotated[str, Form(max_length=2)] = "", year: Annotated[str, Form(max_length=8)] = "",
             branch: Annotated[str, Form(max_length=32)] = "", filed_from: Annotated[str, Form(max_length=10)] = "",
             filed_to: Annotated[str, Form(max_length=10)] = "", saved_search: Annotated[str, Form(max_length=12)] = "",
             ctx: Context = Depends(context), db: Session = UnitOfWork,
             principal: Principal = HoldManager) -> Response:
    form = dict(scope=scope, reason=reason, authority=authority, document_no=document_no, keys=keys,
                business_type=business_type, category=category, year=year, branch=branch, filed_from=filed_from,
                filed_to=filed_to, saved_search=saved_search)
    try:
        hold = holds.set_hold(ctx, db, principal, hold_in(db, principal, form))
    except ERRORS as exc:
        if exc.kind in SYSTEM_KINDS:
            raise
        with _afresh(ctx, db) as fresh:
            return _holds_page(request, ctx, fresh, principal, "", 1, status_of(exc), exc, form)
    return _redirect(f"/ui/holds/{hold.id}")


def _hold_page(request: Request, db: Session, hold_id: int, page: int, status: int = 200,
               error: AnyError | None = None) -> Response:
    hold = holds.get_hold(db, hold_id)
    codes = holds.hold_codes(db, hold_id, CODES_PER_PAGE, (page - 1) * CODES_PER_PAGE)
    return render(request, "hold.html", status=status, hold=hold, codes=codes, page=page,
                  pages=max(1, -(-hold.item_count // CODES_PER_PAGE)), hold_status=HOLD_STATUS, scopes=SCOPES,
                  error=error)


@router.get("/holds/{hold_id}")
def hold_page(hold_id: Id, request: Request, page: Annotated[int, Query(ge=1, le=10_000)] = 1,
              db: Session = UnitOfWork, principal: Principal = HoldManager) -> Response:
    return _hold_page(request, db, hold_id, page)


@router.post("/holds/{hold_id}/lift")
def lift(hold_id: Id, request: Request, reason: Text = "", ctx: Context = Depends(context), db: Session = UnitOfWork,
         principal: Principal = HoldManager) -> Response:
    try:
        holds.lift_hold(ctx, db, principal, hold_id, reason)
    except ERRORS as exc:
        if exc.kind in SYSTEM_KINDS or exc.code == "hold_not_found":
            raise
        with _afresh(ctx, db) as fresh:
            return _hold_page(request, fresh, hold_id, 1, status_of(exc), exc)
    return _redirect(f"/ui/holds/{hold_id}")


# --- 保管期限 ----------------------------------------------------------------------------------------

def _business_types(ctx: Context, wanted: list[str]) -> list[str] | None:
    unknown = [t for t in wanted if t not in ctx.schedule.types]
    if unknown:
        raise InvalidInput(f"业务类型 {'、'.join(unknown[:5])} 不在现行分类方案中", code="unknown_business_type",
                           detail={"field": "business_type"})
    return sorted(set(wanted)) or None


@router.get("/schedules")
def schedules_page(request: Request, ctx: Context = Depends(context), db: Session = UnitOfWork,
                   principal: Principal = Manager) -> Response:
    current = schedules.ensure_version(db, ctx.schedule, actor_of(principal))
    return render(request, "schedules.html", versions=schedules.list_versions(db), current=current,
                  schedule=ctx.schedule, job=jobs.latest(db, REAPPLY_KEY), status_names=JOB_STATUS)


def _plan_page(request: Request, ctx: Context, db: Session, wanted: list[str], status: int = 200,
               error: AnyError | None = None) -> Response:
    plan = schedules.plan(ctx, db, _business_types(ctx, wanted))
    summary = plan.summary(PLAN_SHOWN)
    return render(request, "schedule_reapply.html", status=status, plan=summary, wanted=wanted, kinds=KINDS,
                  refused=schedules.REFUSED, label=_retention_label, error=error, job=jobs.latest(db, REAPPLY_KEY),
                  status_names=JOB_STATUS)


@router.get("/schedules/reapply")
def reapply_preview(request: Request, business_type: Annotated[list[str] | None, Query(max_length=200)] = None,
                    ctx: Context = Depends(context), db: Session = UnitOfWork,
                    principal: Principal = Manager) -> Response:
    """The dry run: each item's old → new period and expiry, nothing changed."""
    return _plan_page(request, ctx, db, [t for t in business_type or () if t])


@router.post("/schedules/reapply")
def reapply(request: Request, reason: Text = "", plan_digest: Annotated[str, Form(max_length=64)] = "",
            business_type: Annotated[list[str] | None, Form(max_length=200)] = None,
            ctx: Context = Depends(context), db: Session = UnitOfWork, principal: Principal = Manager) -> Response:
    """Apply the previewed plan as a background job (one at a time: a second click finds the running one)."""
    wanted = [t for t in business_type or () if t]
    try:
        types = _business_types(ctx, wanted)
        if len(reason.strip()) < 2:
            raise InvalidInput("请说明重新适用分类方案的理由", code="missing_reason", detail={"field": "reason"})
        if len(plan_digest) != 64:
            raise InvalidInput("请先预览变化，再按预览执行", code="invalid_digest", detail={"field": "plan_digest"})
    except ERRORS as exc:
        return _plan_page(request, ctx, db, wanted, status_of(exc), exc)
    db.commit()
    actor = actor_of(principal)

    def work(progress: jobs.Progress) -> jobs.Outcome:
        with ctx.catalogue.session() as s:
            result = schedules.apply(ctx, s, actor, reason, types, plan_digest)
        c = result.counts
        return jobs.Outcome({"summary": f"已重新适用 {c.get('items', 0)} 件：延长 {c.get('lengthen', 0)}、"
                                        f"缩短 {c.get('shorten', 0)}、起算变化 {c.get('changed', 0)}；"
                                        f"未调整 {sum(v for k, v in c.items() if k.startswith('refused_'))} 件",
                             "counts": c}, "/ui/schedules")

    jobs.start(ctx, principal, kind="schedule.reapply", key=REAPPLY_KEY, title="重新适用分类方案",
               permission=Permission.RETENTION_MANAGE, work=work)
    return _redirect("/ui/schedules")


# --- 待起算 ------------------------------------------------------------------------------------------

@router.get("/retention/pending")
def pending(request: Request, trigger: Annotated[str, Query(max_length=20)] = "",
            page: Annotated[int, Query(ge=1, le=10_000)] = 1, ctx: Context = Depends(context),
            db: Session = UnitOfWork, principal: Principal = Manager) -> Response:
    """Items still waiting for their trigger (贷款结清、账户销户 …): counts by trigger and one page."""
    found = triggers.pending(ctx, db, trigger or None, PENDING_PER_PAGE, (page - 1) * PENDING_PER_PAGE,
                             principal.branches, principal.can(Permission.PII_READ))
    names = {t.value: r.name for t, r in ctx.schedule.triggers.items()}
    return render(request, "retention_pending.html", found=found, trigger=trigger, names=names, page=page,
                  pages=max(1, -(-found["filtered_total"] // PENDING_PER_PAGE)), triggers=[t.value for t in Trigger],
                  label=_retention_label)

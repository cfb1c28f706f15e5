"""四性检测 (reports, alerts, storage sweeps): the reports filtered by outcome, stage and item, the alerts inbox
with acknowledgement (确认告警), and the last storage sweep's progress and findings.

Reads go through archive.checks (reports, alerts, sweep) as the API's do; a branch-limited person sees only the
reports of her branches' items (another's is a 404, like one that does not exist).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive.api.deps import UnitOfWork, actor_of, context
from archive.api.params import MAX_ID, Id
from archive.catalogue.models import ArchiveItem, Case, CheckReport, StorageAlert, StorageSweep
from archive.checks import alerts, reports
from archive.checks.sweep import sweep_dict
from archive.context import Context
from archive.errors import InvalidInput, NotFound
from archive.permissions import Permission, Principal
from archive.web.deps import require
from archive.web.render import render

router = APIRouter(prefix="/ui/checks", include_in_schema=False)
PAGE_SIZE = 30
FINDINGS_SHOWN = 100
Reader = Depends(require(Permission.CHECK_READ))
OUTCOME_TAGS = {"passed": "ok", "warning": "warn", "failed": "bad"}
RESULT_TAGS = {"passed": "ok", "failed": "bad", "error": "bad", "manual": "warn"}
SWEEP_STATUS = {"running": "运行中", "paused": "已暂停", "failed": "中断", "done": "完成"}


def _visible(principal: Principal) -> Any:
    """Reports a branch-limited person may see: those on items of her branches (no sweeps, no transfers)."""
    assert principal.branches is not None
    return CheckReport.item_id.in_(select(ArchiveItem.id).join(Case, ArchiveItem.case_id == Case.id)
                                   .where(Case.branch.in_(sorted(principal.branches))))


def _item(db: Session, principal: Principal, code: str) -> ArchiveItem:
    item = db.scalar(select(ArchiveItem).where(ArchiveItem.archival_code == code))
    if item is None or not principal.sees_branch(item.case.branch):
        raise NotFound(f"档号 {code} 不存在", code="item_not_found", detail={"archival_code": code})
    return item


@router.get("")
def report_list(request: Request, outcome: Literal["", "passed", "warning", "failed"] = "",
                stage: Literal["", "gd", "yj", "bc"] = "", item: Annotated[str, Query(max_length=64)] = "",
                before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None, db: Session = UnitOfWork,
                principal: Principal = Reader) -> Response:
    """检测报告, newest first, paged by id (keyset: ``before`` = the last id of the previous page)."""
    code = item.strip()
    q = select(CheckReport).order_by(CheckReport.id.desc()).limit(PAGE_SIZE + 1)
    if principal.branches is not None:
        q = q.where(_visible(principal))
    if stage:
        q = q.where(CheckReport.stage == stage)
    if outcome:
        q = q.where(CheckReport.outcome == outcome)
    if before is not None:
        q = q.where(CheckReport.id < before)
    status, problem, rows = 200, None, []
    try:
        if code:
            q = q.where(CheckReport.item_id == _item(db, principal, code).id)
        rows = list(db.scalars(q))
    except NotFound as exc:  # an unknown 档号: the filter stays on the page, with why nothing is listed
        status, problem = 404, exc
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    keep = urlencode({k: v for k, v in (("outcome", outcome), ("stage", stage), ("item", code)) if v})
    return render(request, "checks_reports.html", status=status, reports=rows, outcome=outcome, stage=stage,
                  item=code, problem=problem, more=more, before=before, keep=keep,
                  next_before=rows[-1].id if more else None, stages=reports.STAGE_NAMES,
                  outcomes=reports.REPORT_OUTCOME_NAMES, tags=OUTCOME_TAGS, tab="reports")


def _report(db: Session, principal: Principal, report_id: int) -> CheckReport:
    """The report, or 404 also when it concerns another branch's item (or none) and the person is branch-limited."""
    report = reports.get_report(db, report_id)
    if principal.branches is not None:
        item = db.get(ArchiveItem, report.item_id) if report.item_id is not None else None
        if item is None or not principal.sees_branch(item.case.branch):
            raise NotFound(f"检测报告 {report_id} 不存在", code="check_report_not_found", detail={"id": report_id})
    return report


@router.get("/reports/{report_id}")
def report_page(report_id: Id, request: Request, db: Session = UnitOfWork, principal: Principal = Reader) -> Response:
    report = _report(db, principal, report_id)
    item = db.get(ArchiveItem, report.item_id) if report.item_id is not None else None
    return render(request, "checks_report.html", report=report, data=reports.report_dict(report), item=item,
                  tags=OUTCOME_TAGS, result_tags=RESULT_TAGS, tab="reports")


@router.get("/reports/{report_id}/pdf")
def report_pdf(report_id: Id, ctx: Context = Depends(context), db: Session = UnitOfWork,
               principal: Principal = Reader) -> Response:
    report = _report(db, principal, report_id)
    pdf = reports.report_pdf(report, fonds_name=ctx.settings.fonds_name, font_path=ctx.settings.cjk_font,
                             zone=ctx.zone)
    name = quote(f"四性检测报告-{report.id}.pdf")
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f"inline; filename*=UTF-8''{name}", "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff"})


@router.get("/alerts")
def alert_list(request: Request, show: Literal["open", "all"] = "open",
               severity: Literal["", "critical", "warning"] = "",
               page: Annotated[int, Query(ge=1, le=10_000)] = 1, db: Session = UnitOfWork,
               principal: Principal = Reader) -> Response:
    """告警: unacknowledged ones first (most recently seen first); 'all' adds the acknowledged."""
    rows = alerts.query(db, include_acknowledged=show == "all", severity=severity or None,
                        limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    last = db.scalar(select(StorageSweep).order_by(StorageSweep.id.desc()).limit(1))
    return render(request, "checks_alerts.html", alerts=rows[:PAGE_SIZE], more=len(rows) > PAGE_SIZE, page=page,
                  show=show, severity=severity, counts=alerts.counts(db), last=last, sweep_status=SWEEP_STATUS,
                  severities=alerts.SEVERITY_NAMES, can_ack=principal.can(Permission.CHECK_RUN), tab="alerts")


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(alert_id: Id, request: Request, note: Annotated[str, Form(max_length=2000)] = "",
                ctx: Context = Depends(context), db: Session = UnitOfWork,
                principal: Principal = Depends(require(Permission.CHECK_RUN))) -> Response:
    """确认告警 (htmx: the alert's row again). A second click is a 409 with who acknowledged it and when."""
    text = note.strip()
    if len(text) > alerts.NOTE_MAX:  # checked here too: the domain's message, before anything is written
        raise InvalidInput(f"处理说明不能超过 {alerts.NOTE_MAX} 字", code="note_too_long",
                           detail={"max": alerts.NOTE_MAX})
    alert = alerts.acknowledge_recorded(ctx, db, actor_of(principal), alert_id, text or None)
    return render(request, "partials/checks_alert.html", alert=alert, severities=alerts.SEVERITY_NAMES,
                  can_ack=True, fresh=True)


@router.get("/sweeps")
def sweep_page(request: Request, sweep: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
               db: Session = UnitOfWork, principal: Principal = Reader) -> Response:
    """The last storage sweep (or ``?sweep=``): progress while it runs (the fragment polls), then its findings."""
    return render(request, "checks_sweep.html", **_sweep_values(db, sweep), tab="sweeps")


@router.get("/sweeps/progress")
def sweep_progress(request: Request, sweep: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                   db: Session = UnitOfWork, principal: Principal = Reader) -> Response:
    return render(request, "partials/checks_sweep.html", **_sweep_values(db, sweep))


def _sweep_values(db: Session, sweep_id: int | None) -> dict[str, Any]:
    if sweep_id is None:
        row = db.scalar(select(StorageSweep).order_by(StorageSweep.id.desc()).limit(1))
    else:
        row = db.get(StorageSweep, sweep_id)
        if row is None:
            raise NotFound(f"存储检测 {sweep_id} 不存在", code="sweep_not_found", detail={"id": sweep_id})
    findings = [] if row is None else list(db.scalars(
        select(StorageAlert).where(StorageAlert.sweep_id == row.id)
        .order_by(StorageAlert.severity, StorageAlert.id).limit(FINDINGS_SHOWN)))
    return dict(sweep=row, info=sweep_dict(row) if row else None, findings=findings, shown=FINDINGS_SHOWN,
                sweep_status=SWEEP_STATUS, severities=alerts.SEVERITY_NAMES)

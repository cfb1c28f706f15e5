"""数据质量 in the console: the findings (问题数据) with filters and paging, a finding's trail with the actions the
person may take (分派、复核、豁免), the figures (问题可见、成果可视), and the department list as XLSX."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from archive.api.deps import UnitOfWork, actor_of, context
from archive.api.errors import status_of
from archive.api.params import MAX_ID, Id
from archive.context import Context
from archive.dq import corrections, findings, reports, service
from archive.dq.registry import DIMENSIONS, SEVERITIES
from archive.dq.rules import REGISTRY
from archive.errors import ERRORS
from archive.permissions import Permission, Principal
from archive.web.deps import require
from archive.web.render import render

router = APIRouter(prefix="/ui/dq", include_in_schema=False)
PAGE_SIZE = 50
Reader = Depends(require(Permission.DQ_READ))
SEVERITY_TAGS = {"block": "bad", "error": "bad", "warn": "warn"}
STATUS_TAGS = {"verified": "ok", "waived": "ok", "submitted": "warn"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("")
def finding_list(request: Request, status: Annotated[str, Query(max_length=16)] = "",
                 rule: Annotated[str, Query(max_length=16)] = "", owner: Annotated[str, Query(max_length=100)] = "",
                 live: bool = True, before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
                 db: Session = UnitOfWork, principal: Principal = Reader) -> Response:
    problem, rows = None, []
    try:
        q = findings.query(status=status or None, rule=rule or None, owner=owner or None, live=live and not status,
                           after_id=before, limit=PAGE_SIZE + 1)
        rows = list(db.scalars(q))
    except ERRORS as exc:
        problem = exc
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    shown = [findings.masked(findings.as_dict(f), principal.can(Permission.PII_READ)) for f in rows]
    keep = urlencode({k: v for k, v in (("status", status), ("rule", rule), ("owner", owner)) if v} |
                     ({} if live else {"live": "false"}))
    return render(request, "dq_findings.html", status=status_of(problem) if problem else 200, findings=shown,
                  problem=problem, more=more, next_before=rows[-1].id if more else None, keep=keep,
                  filters={"status": status, "rule": rule, "owner": owner, "live": live},
                  statuses=findings.STATUSES, rules=REGISTRY, severity_tags=SEVERITY_TAGS, status_tags=STATUS_TAGS,
                  severities=SEVERITIES, dimensions=DIMENSIONS, tab="findings")


@router.get("/findings/{finding_id}")
def finding_page(finding_id: Id, request: Request, db: Session = UnitOfWork, principal: Principal = Reader) -> Response:
    return _page(request, db, principal, finding_id)


def _page(request: Request, db: Session, principal: Principal, finding_id: int, problem: Any = None) -> Response:
    f = findings.get(db, finding_id)
    return render(request, "dq_finding.html", status=status_of(problem) if problem else 200, problem=problem,
                  f=findings.masked(findings.as_dict(f), principal.can(Permission.PII_READ)),
                  rule=REGISTRY.get(f.rule_code), owner_kinds=findings.OWNER_KINDS, fields=corrections.FIELDS,
                  can=principal.can, P=Permission, severities=SEVERITIES, dimensions=DIMENSIONS, tab="findings")


def _act(request: Request, db: Session, principal: Principal, finding_id: int, step: Callable[[], Any]) -> Response:
    """Do ``step``; a refusal shows the finding's page again with the reason (a refused step changes nothing: a
    correction the rule still rejects is undone to its savepoint before the refusal)."""
    try:
        step()
    except ERRORS as exc:
        return _page(request, db, principal, finding_id, exc)
    return RedirectResponse(f"/ui/dq/findings/{finding_id}", status_code=303)


@router.post("/findings/{finding_id}/assign")
def assign(finding_id: Id, request: Request, owner: Annotated[str, Form(max_length=100)] = "",
           owner_kind: Annotated[str, Form(max_length=16)] = "department", ctx: Context = Depends(context),
           db: Session = UnitOfWork, principal: Principal = Depends(require(Permission.DQ_ASSIGN))) -> Response:
    return _act(request, db, principal, finding_id, lambda: findings.assign(
        db, actor_of(principal), finding_id, owner, owner_kind, None, ctx.settings.dq_finding_due_days))


@router.post("/findings/{finding_id}/correct")
def correct(finding_id: Id, request: Request, field: Annotated[str, Form(max_length=40)] = "",
            value: Annotated[str, Form(max_length=500)] = "", reason: Annotated[str, Form(max_length=500)] = "",
            ctx: Context = Depends(context), db: Session = UnitOfWork,
            principal: Principal = Depends(require(Permission.DQ_FIX))) -> Response:
    return _act(request, db, principal, finding_id, lambda: corrections.correct(
        ctx, db, actor_of(principal), finding_id, field, value, reason))


@router.post("/findings/{finding_id}/verify")
def verify(finding_id: Id, request: Request, ctx: Context = Depends(context), db: Session = UnitOfWork,
           principal: Principal = Depends(require(Permission.DQ_VERIFY))) -> Response:
    return _act(request, db, principal, finding_id,
                lambda: corrections.verify(ctx, db, actor_of(principal), finding_id))


@router.post("/findings/{finding_id}/waiver")
def waiver(finding_id: Id, request: Request, reason: Annotated[str, Form(max_length=500)] = "",
           db: Session = UnitOfWork,
           principal: Principal = Depends(require(Permission.DQ_FIX, Permission.DQ_ASSIGN))) -> Response:
    return _act(request, db, principal, finding_id,
                lambda: findings.propose_waiver(db, actor_of(principal), finding_id, reason))


@router.post("/findings/{finding_id}/waive")
def waive(finding_id: Id, request: Request, db: Session = UnitOfWork,
          principal: Principal = Depends(require(Permission.DQ_VERIFY))) -> Response:
    return _act(request, db, principal, finding_id, lambda: findings.waive(db, actor_of(principal), finding_id))


@router.get("/stats")
def stats_page(request: Request, db: Session = UnitOfWork, principal: Principal = Reader) -> Response:
    return render(request, "dq_stats.html", data=reports.stats(db), tab="stats")


@router.get("/findings.xlsx")
def export(owner: Annotated[str, Query(max_length=100)] = "", db: Session = UnitOfWork,
           principal: Principal = Reader) -> Response:
    data = service.export_findings(db, actor_of(principal), owner or None, True)
    name = quote(f"问题数据清单-{owner or '全部'}.xlsx")
    return Response(data, media_type=XLSX, headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}",
                                                    "Cache-Control": "no-store"})

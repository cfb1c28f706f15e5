"""工作台 (the counter's home page) and the barcode gun's landing (扫码跳转)."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import ColumnElement, Exists, and_, exists, func, select, union
from sqlalchemy.orm import Session, selectinload

from archive import authorization
from archive.api.deps import UnitOfWork, context, route_of
from archive.capture import scans
from archive.capture.cases import SERIAL
from archive.catalogue.models import Case, CheckReport
from archive.context import Context
from archive.permissions import Permission, Principal
from archive.web.deps import person, require
from archive.web.render import SECURITY_HEADERS, nav_for, render

router = APIRouter(prefix="/ui", include_in_schema=False)
PAGE_SIZE = 20
VIEWS = {"open": "办理中", "filed": "已归档", "refused": "归档检测未通过", "pending": "未办结（含往日）"}


@router.get("")
def root() -> Response:
    return RedirectResponse("/ui/", status_code=308)


site = APIRouter(include_in_schema=False)


@site.get("/")
def site_root() -> Response:
    """A person who types the server's address lands on the UI (business systems use /api/v1)."""
    return RedirectResponse("/ui/", status_code=307)


def _refused_filing() -> Exists:
    """A filing of the case was refused by its 四性检测 (the case is still open until it files)."""
    return exists().where(CheckReport.subject == Case.serial, CheckReport.stage == "gd", CheckReport.passed.is_(False))


@router.get("/")
def home(request: Request, view: Annotated[str, Query(max_length=16)] = "open",
         scope: Annotated[str, Query(max_length=8)] = "mine", page: Annotated[int, Query(ge=1, le=10_000)] = 1,
         db: Session = UnitOfWork, ctx: Context = Depends(context),
         principal: Principal = Depends(person)) -> Response:
    if not principal.can(Permission.CASE_WRITE) and not request.query_params and (entries := nav_for(principal)):
        # archivists, auditors and administrators have no counter desk: their first page instead (a branch's
        # cases stay one link away: /ui/?scope=branch)
        return RedirectResponse(entries[0][1], status_code=303, headers=SECURITY_HEADERS)
    authorization.require(db, principal, Permission.CASE_READ, target_type="ui", target_id=route_of(request))
    view = view if view in VIEWS else "open"
    scope = scope if scope in ("mine", "branch") else "mine"
    midnight = datetime.combine(ctx.today(), time(0), ctx.zone)
    # accepted or closed today: a union of two index ranges (an OR would let SQLite walk the status index instead)
    today = Case.id.in_(union(select(Case.id).where(Case.accepted_at >= midnight),
                              select(Case.id).where(Case.closed_at >= midnight)))
    where: list[ColumnElement[bool]] = []
    if scope == "mine":
        where.append(Case.clerk == principal.name)
    if principal.branches is not None:
        where.append(Case.branch.in_(principal.branches))
    views = {"open": and_(today, Case.status == "open", ~_refused_filing()),
             "filed": and_(today, Case.status == "filed"),
             "refused": and_(today, Case.status == "open", _refused_filing()),
             "pending": Case.status == "open"}  # every day's: what is still on this desk
    counts = {k: db.scalar(select(func.count()).select_from(Case).where(*where, cond)) or 0
              for k, cond in views.items()}
    rows = db.scalars(select(Case).options(selectinload(Case.item)).where(*where, views[view])
                      .order_by(Case.accepted_at.desc(), Case.id.desc())
                      .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    unassigned = scans.unassigned_pages(db, principal)
    pages = max(1, -(-counts[view] // PAGE_SIZE))
    return render(request, "home.html", cases=rows, counts=counts, views=VIEWS, view=view, scope=scope,
                  page=page, pages=pages, unassigned=unassigned, schedule=ctx.schedule,
                  full_pii=principal.can(Permission.PII_READ))


@router.get("/go")
def go(request: Request, serial: Annotated[str, Query(max_length=200)] = "", db: Session = UnitOfWork,
       principal: Principal = Depends(require(Permission.CASE_READ))) -> Response:
    """The barcode gun lands here: the case if this person may see it, else an offer to open it (受理)."""
    wanted = serial.strip()
    case = db.scalar(select(Case).where(Case.serial == wanted)) if SERIAL.fullmatch(wanted) else None
    if case is not None and principal.sees_branch(case.branch):
        return RedirectResponse(f"/ui/cases/{case.serial}", status_code=303, headers=SECURITY_HEADERS)
    # a case of another branch is answered exactly like one that does not exist: nothing leaks
    return render(request, "not_found_serial.html", status=404, serial=wanted, valid=bool(SERIAL.fullmatch(wanted)),
                  can_open=principal.can(Permission.CASE_WRITE))

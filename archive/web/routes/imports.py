"""存量档案导入 (historical imports): the jobs with their state counts and progress, and the dry-run reports
to read (PDF/XLSX) and approve. Imports themselves run from the CLI or POST /api/v1/imports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from archive.api.deps import UnitOfWork, context
from archive.api.params import Id
from archive.api.routes.transfer import attachment
from archive.audit import Actor
from archive.context import Context
from archive.imports import approval, job
from archive.permissions import Permission, Principal
from archive.web.deps import require
from archive.web.render import SECURITY_HEADERS, render

router = APIRouter(prefix="/ui/imports", include_in_schema=False)
Manager = Depends(require(Permission.IMPORTS_MANAGE))
STATE_NAMES = {"pending": "待处理", "stored": "已存储", "signed": "已签章", "catalogued": "已编目",
               "indexed": "已入索引", "failed": "失败", "excluded": "已排除"}
STATUS_NAMES = {"running": "进行中", "done": "已完成"}
MEDIA = {".pdf": "application/pdf", ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


@router.get("")
def index(request: Request, approved: Annotated[int | None, Query(ge=1)] = None, ctx: Context = Depends(context),
          _: Principal = Manager) -> Response:
    return render(request, "imports.html", jobs=job.recent(ctx), reports=approval.recent_reports(ctx),
                  state_names=STATE_NAMES, status_names=STATUS_NAMES, approved=approved)


@router.get("/reports/{report_id}.{kind}")
def report_file(report_id: Id, kind: str, ctx: Context = Depends(context), _: Principal = Manager) -> Response:
    suffix = ".xlsx" if kind == "xlsx" else ".pdf"
    name, data = approval.report_file(ctx, report_id, suffix)
    return Response(data, media_type=MEDIA[suffix],
                    headers={**SECURITY_HEADERS, "Content-Disposition": attachment(name)})


@router.post("/reports/{report_id}/approve")
def approve(report_id: Id, ctx: Context = Depends(context), db: Session = UnitOfWork,
            principal: Principal = Manager) -> Response:
    approval.approve(ctx, db, Actor.of(principal), report_id)
    return RedirectResponse(f"/ui/imports?approved={report_id}", status_code=303)

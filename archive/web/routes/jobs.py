"""后台任务 (background jobs): a job's progress, polled by the page that started it, and the recent jobs."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from archive import jobs
from archive.api.deps import UnitOfWork
from archive.permissions import Principal
from archive.web.deps import person
from archive.web.render import is_htmx, render

router = APIRouter(prefix="/ui/jobs", include_in_schema=False)
STATUS_NAMES = {"running": "进行中", "done": "已完成", "failed": "出错中止", "interrupted": "已中断"}


@router.get("")
def job_list(request: Request, db: Session = UnitOfWork, principal: Principal = Depends(person)) -> Response:
    return render(request, "jobs.html", jobs=jobs.recent(db, principal), status_names=STATUS_NAMES)


@router.get("/{job_id}")
def job_page(job_id: int, request: Request, db: Session = UnitOfWork,
             principal: Principal = Depends(person)) -> Response:
    """The job's progress: a fragment for the polling page, a page of its own otherwise."""
    job = jobs.get(db, principal, job_id)
    template = "partials/job.html" if is_htmx(request) else "job.html"
    return render(request, template, job=job, status_names=STATUS_NAMES)

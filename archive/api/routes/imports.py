"""Historical imports (存量档案导入): start the import of an approved dry-run report's manifest, watch its progress."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from archive import jobs
from archive.api.deps import UnitOfWork, actor_of, context, require
from archive.api.params import Id
from archive.context import Context
from archive.imports import job
from archive.permissions import Permission, Principal

router = APIRouter(prefix="/api/v1", tags=["imports"])
_manage = require(Permission.IMPORTS_MANAGE)

_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"description": "缺少「办理存量档案导入」权限（permission_denied）"},
    404: {"description": "预检报告或导入任务不存在（import_report_not_found / import_job_not_found）"},
    409: {"description": "预检报告未批准（import_report_not_approved），"
                         "或清单与报告不一致（import_manifest_mismatch）"},
    422: {"description": "清单文件不存在或格式有误（import_manifest_invalid）"},
}


class ImportIn(BaseModel):
    manifest: str = Field(min_length=1, max_length=1000,
                          description="清单文件在服务器上的路径（archive import scan 的输出）")
    report_id: int = Field(ge=1, le=2**31 - 1, description="已批准的预检报告编号")


class ImportOut(BaseModel):
    job: int = Field(description="导入任务编号")
    console_job: int = Field(description="后台任务编号（/api/v1/jobs 同样可看进度）")


@router.post("/imports", response_model=ImportOut, status_code=202, responses=_ERRORS,
             summary="开始（或继续）导入存量档案")
def start_import(body: ImportIn, ctx: Annotated[Context, Depends(context)],
                 principal: Annotated[Principal, Depends(_manage)], session: Session = UnitOfWork) -> ImportOut:
    session.commit()  # planning takes transactions of its own: on SQLite this one would hold the write lock
    actor = actor_of(principal)
    job_id = job.start(ctx, actor, Path(body.manifest), body.report_id)

    def work(progress: jobs.Progress) -> jobs.Outcome:
        def report(p: job.Progress) -> None:
            progress(p.done, p.total)

        return jobs.Outcome(job.run(ctx, actor, job_id, progress=report))

    console_job, _ = jobs.start(ctx, principal, kind="import.run", key=f"import.run:{job_id}",
                                title=f"存量档案导入任务 {job_id}", permission=Permission.IMPORTS_MANAGE, work=work)
    return ImportOut(job=job_id, console_job=console_job)


@router.get("/imports/{job_id}", responses=_ERRORS, summary="导入任务的进度：各状态件数、速率、剩余时间")
def import_status(job_id: Id, ctx: Annotated[Context, Depends(context)],
                  _: Annotated[Principal, Depends(_manage)]) -> dict[str, Any]:
    return job.status(ctx, job_id)

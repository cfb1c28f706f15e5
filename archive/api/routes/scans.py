"""Batch scans: upload a stack, watch it split, assign what could not be matched (待分配)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, Query, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from archive.api.deps import UnitOfWork, context, require
from archive.api.params import Id
from archive.capture import scans
from archive.capture.documents import Received
from archive.catalogue.models import ScanBatch
from archive.context import Context
from archive.permissions import Permission, Principal

router = APIRouter(prefix="/api/v1/scans", tags=["scans"])


class PartOut(BaseModel):
    id: int
    batch_id: int
    first_page: int
    last_page: int
    serial: str | None
    status: str
    reason: str | None
    document_id: int | None


class BatchOut(BaseModel):
    id: int
    filename: str
    status: str
    pages_total: int
    pages_done: int
    covers: list[Any] = Field(description="扫描封面：[页码, 业务流水号]")
    separators: list[Any] = Field([], description="材料分隔页：[页码, 业务流水号, 材料类型]")
    error: dict[str, Any] | None
    created_at: datetime
    finished_at: datetime | None
    parts: list[PartOut]


def batch_out(b: ScanBatch) -> BatchOut:
    return BatchOut(id=b.id, filename=b.filename, status=b.status, pages_total=b.pages_total,
                    pages_done=b.pages_done, covers=[c for c in b.covers or [] if len(c) == 2],
                    separators=[c for c in b.covers or [] if len(c) > 2], error=b.error, created_at=b.created_at,
                    finished_at=b.finished_at,
                    parts=[PartOut.model_validate(p, from_attributes=True) for p in b.parts])


@router.post("", response_model=BatchOut, status_code=202,
             summary="上传批量扫描文件（多页 PDF/TIFF），按扫描封面拆分、按材料分隔页归类")
def upload(file: Annotated[UploadFile, File(description="扫描仪输出的多页 PDF 或 TIFF")],
           background: BackgroundTasks,
           material_type: Annotated[str, Form(description="拆分出的材料的材料类型（有材料分隔页的部分按分隔页）")]
           = "other",
           ctx: Context = Depends(context), session: Session = UnitOfWork,
           principal: Principal = Depends(require(Permission.CASE_WRITE))) -> BatchOut:
    received = Received.read(file.filename or "", file.file, ctx.settings.max_upload_mb * 1024 * 1024)
    batch = scans.receive(ctx, session, principal, received, material_type)
    background.add_task(scans.process, ctx, batch.id)  # runs after the commit and the response
    return batch_out(batch)


@router.get("/unassigned", response_model=list[PartOut], summary="待分配的扫描页（本人可见网点的批次）")
def unassigned(limit: int = Query(100, ge=1, le=1000), session: Session = UnitOfWork,
               principal: Principal = Depends(require(Permission.CASE_WRITE))) -> list[PartOut]:
    _, rows = scans.unassigned(session, principal, limit)
    return [PartOut.model_validate(p, from_attributes=True) for p in rows]


@router.get("/{batch_id}", response_model=BatchOut, summary="批量扫描的进度与拆分结果（其他网点的批次为 404）")
def read(batch_id: Id, session: Session = UnitOfWork,
         principal: Principal = Depends(require(Permission.CASE_WRITE))) -> BatchOut:
    return batch_out(scans.get_batch(session, principal, batch_id))


class AssignIn(BaseModel):
    serial: str = Field(max_length=64, description="业务流水号")
    material_type: str = Field("other", max_length=40)


@router.post("/parts/{part_id}/assign", response_model=PartOut, summary="把待分配的扫描页归入某笔业务")
def assign(part_id: Id, req: AssignIn, ctx: Context = Depends(context),
           session: Session = UnitOfWork,
           principal: Principal = Depends(require(Permission.CASE_WRITE))) -> PartOut:
    return PartOut.model_validate(scans.assign(ctx, session, principal, part_id, req.serial, req.material_type),
                                  from_attributes=True)

"""扫描室: upload a scanned stack, watch it split at its cover and separator sheets, and put what waits for a
clerk (待分配) into its case, page thumbnails in view.

Everything goes through archive.capture.scans as the API does (receive, then process after the response;
assign), so a clerk sees her branch's batches only, and another branch's batch or part is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import images
from archive.api.deps import UnitOfWork, context
from archive.api.errors import status_of
from archive.api.params import MAX_ID, Id, Page
from archive.capture import scans
from archive.capture.cases import get_case
from archive.capture.documents import Received
from archive.catalogue.models import Document, ScanBatch
from archive.context import Context
from archive.errors import ERRORS, SYSTEM_KINDS, AnyError, InvalidInput
from archive.permissions import Permission, Principal
from archive.web.deps import require
from archive.web.render import SECURITY_HEADERS, render

router = APIRouter(prefix="/ui/scans", include_in_schema=False)
BATCHES_PER_PAGE = 20
PARTS_PER_PAGE = 24
THUMB_PAGES = 3  # of each waiting part, the first pages shown
STATUS = {"queued": "排队中", "running": "处理中", "done": "已完成", "failed": "处理失败"}
STATUS_TAG = {"queued": "info", "running": "info", "done": "ok", "failed": "bad"}
REASONS = {
    "before_first_cover": "第一张扫描封面之前的页",
    "unknown_serial": "条码对应的业务不存在",
    "separator_serial_mismatch": "材料分隔页的业务流水号与前面的扫描封面不一致",
    "case_not_open": "条码对应的业务已办结归档，不能再添加材料",
    "material_not_for_business_type": "材料分隔页的材料类型不属于该业务",
}
Writer = Depends(require(Permission.CASE_WRITE))


@dataclass(frozen=True)
class Materials:
    """The material types a serial's case takes, or why there are none to offer."""

    serial: str
    options: list[tuple[str, str, bool]]  # (code, name, required)
    problem: AnyError | None = None


def reason_text(code: str | None) -> str:
    return REASONS.get(code or "", f"系统未能自动归入（{code}）" if code else "")


def materials_for(ctx: Context, db: Session, principal: Principal, serial: str) -> Materials:
    try:
        if not serial:
            raise InvalidInput("请输入或扫描业务流水号", code="serial_missing", detail={"field": "serial"})
        bt = ctx.schedule.business_type(get_case(db, principal, serial).business_type)
    except ERRORS as exc:
        if exc.kind in SYSTEM_KINDS:
            raise
        return Materials(serial, [], exc)
    return Materials(serial, [(m, ctx.schedule.materials[m], m in bt.required) for m in (*bt.required, *bt.optional)])


def _values(ctx: Context) -> dict[str, Any]:
    return dict(status_names=STATUS, status_tags=STATUS_TAG, reason_text=reason_text, materials=ctx.schedule.materials,
                thumb_pages=THUMB_PAGES)


def _index(request: Request, ctx: Context, db: Session, principal: Principal, page: int, status: int = 200,
           error: AnyError | None = None) -> Response:
    total, batches = scans.recent_batches(db, principal, BATCHES_PER_PAGE, (page - 1) * BATCHES_PER_PAGE)
    waiting, _ = scans.unassigned(db, principal, 0)
    return render(request, "scans.html", status=status, batches=batches, page=page, error=error, waiting=waiting,
                  pages=max(1, -(-total // BATCHES_PER_PAGE)), **_values(ctx))


@router.get("")
def index(request: Request, page: Annotated[int, Query(ge=1, le=10_000)] = 1, ctx: Context = Depends(context),
          db: Session = UnitOfWork, principal: Principal = Writer) -> Response:
    return _index(request, ctx, db, principal, page)


@router.post("")
def upload(request: Request, background: BackgroundTasks, file: Annotated[UploadFile | None, File()] = None,
           ctx: Context = Depends(context), db: Session = UnitOfWork, principal: Principal = Writer) -> Response:
    """Store the stack (refused as a whole when damaged or hostile: nothing is kept), then split it after the
    response, exactly as the API's upload does."""
    try:
        if file is None or not file.filename:
            raise InvalidInput("请选择要上传的扫描文件（多页 PDF 或 TIFF）", code="scan_file_missing",
                               detail={"field": "file"})
        received = Received.read(file.filename, file.file, ctx.settings.max_upload_mb * 1024 * 1024)
        with db.begin_nested():
            batch = scans.receive(ctx, db, principal, received)
    except ERRORS as exc:
        if exc.kind in SYSTEM_KINDS:
            raise
        return _index(request, ctx, db, principal, 1, status=status_of(exc), error=exc)
    background.add_task(scans.process, ctx, batch.id)  # runs after the commit and the response
    return RedirectResponse(f"/ui/scans/{batch.id}", status_code=303, headers=SECURITY_HEADERS)


@router.get("/unassigned")
def unassigned(request: Request, page: Annotated[int, Query(ge=1, le=10_000)] = 1, ctx: Context = Depends(context),
               db: Session = UnitOfWork, principal: Principal = Writer) -> Response:
    total, parts = scans.unassigned(db, principal, PARTS_PER_PAGE, (page - 1) * PARTS_PER_PAGE)
    offered = {p.id: materials_for(ctx, db, principal, p.serial) for p in parts if p.serial}
    return render(request, "scans_unassigned.html", parts=parts, offered=offered, total=total, page=page,
                  pages=max(1, -(-total // PARTS_PER_PAGE)), **_values(ctx))


@router.get("/materials")
def materials(request: Request, part: Annotated[int, Query(ge=1, le=MAX_ID)],
              serial: Annotated[str, Query(max_length=64)] = "", ctx: Context = Depends(context),
              db: Session = UnitOfWork, principal: Principal = Writer) -> Response:
    """The material types of the serial's case as a select (htmx, once the barcode gun has typed the serial), or
    why there are none: a serial unknown or of another branch reads the same."""
    found = materials_for(ctx, db, principal, serial.strip())
    return render(request, "partials/scan_materials.html", status=status_of(found.problem) if found.problem else 200,
                  part_id=part, found=found, chosen="")


@router.post("/parts/{part_id}/assign")
def assign(part_id: Id, request: Request, serial: Annotated[str, Form(max_length=64)] = "",
           material_type: Annotated[str, Form(max_length=40)] = "other", ctx: Context = Depends(context),
           db: Session = UnitOfWork, principal: Principal = Writer) -> Response:
    """The part's row again: "已归入 …" or, beside the form, why not (a part of another branch is a 404)."""
    wanted = serial.strip()
    try:
        if not wanted:
            raise InvalidInput("请输入或扫描业务流水号", code="serial_missing", detail={"field": "serial"})
        with db.begin_nested():  # a refused attach leaves nothing behind
            part = scans.assign(ctx, db, principal, part_id, wanted, material_type)
    except ERRORS as exc:
        if exc.kind in SYSTEM_KINDS or exc.code == "scan_part_not_found":
            raise
        row = scans.get_part(db, principal, part_id)
        return render(request, "partials/scan_part.html", status=status_of(exc), part=row, error=exc,
                      found=materials_for(ctx, db, principal, wanted), typed=wanted, chosen=material_type,
                      **_values(ctx))
    return render(request, "partials/scan_part.html", part=part, error=None, found=None, typed=wanted,
                  chosen=material_type, **_values(ctx))


def _batch_values(ctx: Context, db: Session, batch: ScanBatch) -> dict[str, Any]:
    sheets = [(int(c[0]), str(c[1]), str(c[2]) if len(c) > 2 else None) for c in batch.covers or []]
    attached = [p.document_id for p in batch.parts if p.document_id is not None]
    part_materials = dict(db.execute(select(Document.id, Document.material_type).where(Document.id.in_(attached)))
                          .tuples().all()) if attached else {}
    return dict(batch=batch, sheets=sheets, running=batch.status in ("queued", "running"),
                part_materials=part_materials, **_values(ctx))


@router.get("/{batch_id}")
def batch_page(batch_id: Id, request: Request, ctx: Context = Depends(context), db: Session = UnitOfWork,
               principal: Principal = Writer) -> Response:
    return render(request, "scans_batch.html", **_batch_values(ctx, db, scans.get_batch(db, principal, batch_id)))


@router.get("/{batch_id}/progress")
def progress(batch_id: Id, request: Request, ctx: Context = Depends(context), db: Session = UnitOfWork,
             principal: Principal = Writer) -> Response:
    """The batch's progress and results (htmx polls it every second while the batch runs; the fragment of a
    finished batch carries no trigger, so polling stops)."""
    batch = scans.get_batch(db, principal, batch_id)
    return render(request, "partials/scan_batch.html", **_batch_values(ctx, db, batch))


@router.get("/{batch_id}/pages/{page}")
def page_image(batch_id: Id, page: Page, w: Annotated[int, Query(le=images.MAX_WIDTH * 10)] = images.THUMBNAIL_WIDTH,
               ctx: Context = Depends(context), db: Session = UnitOfWork, principal: Principal = Writer) -> Response:
    image = images.stack_page_image(ctx, scans.get_batch(db, principal, batch_id), page, w)
    return Response(image.data, media_type=image.media_type,
                    headers={"ETag": image.etag, "Cache-Control": "private, max-age=3600",
                             "X-Content-Type-Options": "nosniff"})


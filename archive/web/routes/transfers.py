"""移交 (transfer): export a selection as a package in a background job with progress, download it and its 登记表;
receive a package (接收) and read its YJ results (四性检测 of the transfer stage) in plain Chinese.

The export is archive.retention.transfer.export run by archive/jobs.py: one export runs at a time (a second click,
by anyone, answers the running job), and the page shows the newest one, so a reload keeps the progress. Receiving
streams the upload to a temporary file under the data directory and runs transfer.receive, as the API does.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from archive import audit, jobs
from archive.api.deps import UnitOfWork, context
from archive.api.errors import status_of
from archive.api.params import Id
from archive.api.routes.transfer import attachment
from archive.audit import Actor
from archive.catalogue.models import TransferPackage, TransferReceipt
from archive.checks.base import DIMENSION_NAMES, OUTCOME_NAMES
from archive.context import Context
from archive.errors import ERRORS, SYSTEM_KINDS, AnyError, InvalidInput
from archive.permissions import Permission, Principal
from archive.retention import refusals, transfer
from archive.retention.refusals import audited
from archive.retention.register import receipt_pdf, register_pdf
from archive.retention.transfer import Selection
from archive.web.deps import require
from archive.web.forms import codes_of, model_of
from archive.web.render import SECURITY_HEADERS, render

router = APIRouter(prefix="/ui/transfers", include_in_schema=False)
Manager = Depends(require(Permission.TRANSFER_MANAGE))
PER_PAGE = 20
PageNo = Annotated[int, Query(ge=1, le=10_000)]
Text = Annotated[str, Form(max_length=2_000_000)]  # a pasted 档号 list of up to 100,000 codes
EXPORT_KEY = "transfer:export"  # one export at a time: a second click answers the running job
RECEIVE_KEY = "transfer:receive"  # one large receipt at a time
RECEIVE_JOB_BYTES = 64 * 1024 * 1024  # a package this large is verified by a background job
LABELS = {"archival_codes": "档号", "category": "业务类别", "year": "年度", "retention_code": "保管期限",
          "receiver": "接收单位", "": "选择范围"}
DONE = {"started": "已开始生成移交信息包，进度见下方；可离开本页，稍后回来查看",
        "running": "已有移交信息包正在生成，下面是这个任务的进度；它完成后再开始新的移交"}
RECEIVE_DONE = {"started": "信息包已上传，正在后台检测，进度见下方；可离开本页，稍后回来查看",
                "running": "已有信息包正在后台检测，本次上传未处理；请等它完成后再上传"}
STATUS_NAMES = {"running": "进行中", "done": "已完成", "failed": "出错中止", "interrupted": "已中断"}
OUTCOME_TAGS = {"passed": "ok", "failed": "bad", "error": "bad", "not_applicable": "info", "manual": "warn"}


def _shown(ctx: Context, show: Callable[[Session], Response]) -> Response:
    """A page after a refusal: the refusal rolled the request's transaction back, so read in a session of its own."""
    with ctx.catalogue.reading() as s:
        return show(s)


def _results(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the YJ results table needs to speak Chinese."""
    failed = [r for r in rows if r["outcome"] in ("failed", "error")]
    return {"results": rows, "failed_count": len(failed), "error": None,
            "outcome_names": {k.value: v for k, v in OUTCOME_NAMES.items()},
            "dimension_names": {k.value: v for k, v in DIMENSION_NAMES.items()}, "outcome_tags": OUTCOME_TAGS}


# --- 接收 (declared before /{package_id}, whose path would take "receipts") ----------------------------------

def _receipts(request: Request, ctx: Context, db: Session, page: int = 1, error: AnyError | None = None) -> Response:
    rows = list(db.scalars(select(TransferReceipt).order_by(TransferReceipt.id.desc())
                           .limit(PER_PAGE + 1).offset((page - 1) * PER_PAGE)))
    return render(request, "transfer_receipts.html", status=status_of(error) if error else 200, tab="receipts",
                  rows=rows[:PER_PAGE], page=page, more=len(rows) > PER_PAGE, error=error,
                  limit_mb=ctx.settings.transfer_max_package_mb, job=jobs.latest(db, RECEIVE_KEY),
                  done=RECEIVE_DONE.get(request.query_params.get("done", ""), ""), status_names=STATUS_NAMES)


@router.get("/receipts")
def receipts(request: Request, page: PageNo = 1, ctx: Context = Depends(context), db: Session = UnitOfWork,
             _: Principal = Manager) -> Response:
    return _receipts(request, ctx, db, page)


@router.post("/receipts")
def receive(request: Request, file: Annotated[UploadFile | None, File()] = None,
            sender_sha256: Annotated[str, Form(max_length=200)] = "", ctx: Context = Depends(context),
            db: Session = UnitOfWork, principal: Principal = Manager) -> Response:
    """Stream the upload to a temporary file (size limit from settings), verify it, record the 接收 or 退回; a
    large package is verified by a background job (its digests and EEP signatures take minutes)."""
    actor = Actor.of(principal)
    name = (file.filename if file else "") or "upload.zip"
    sender = sender_sha256.strip() or None
    base = ctx.settings.data_dir / "tmp"
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="receive-", dir=base))
    path, handed_over = tmp / "package.zip", False
    try:
        with refusals.answered(db, actor, "transfer.receive", source=name) as refused:
            if file is None or not file.filename:
                raise InvalidInput("请选择要接收的移交信息包（zip 文件）", code="transfer_not_zip",
                                   detail={"field": "file"})
            transfer.save_upload(file.file, path, ctx.settings.transfer_max_package_mb)
            if path.stat().st_size < RECEIVE_JOB_BYTES:
                row = transfer.receive(ctx, db, actor, path, source=name, sender_sha256=sender)
        if not refused and path.stat().st_size >= RECEIVE_JOB_BYTES:
            db.commit()  # the request's transaction ends here: on SQLite it holds the write lock the job needs
            _, handed_over = jobs.start(ctx, principal, kind="transfer.receive", key=RECEIVE_KEY,
                                        title=f"接收移交信息包 {name[-60:]}", permission=Permission.TRANSFER_MANAGE,
                                        work=_receive_work(ctx, principal, tmp, name, sender))
            return RedirectResponse(f"/ui/transfers/receipts?done={'started' if handed_over else 'running'}",
                                    status_code=303, headers=SECURITY_HEADERS)
    finally:
        if not handed_over:  # a job that took the file removes it when done
            shutil.rmtree(tmp, ignore_errors=True)
    if refused:  # answered, not raised: the refusal's audit event commits with this request
        if refused[0].kind in SYSTEM_KINDS:
            raise refused[0]
        return _receipts(request, ctx, db, error=refused[0])
    return RedirectResponse(f"/ui/transfers/receipts/{row.id}", status_code=303, headers=SECURITY_HEADERS)


def _receive_work(ctx: Context, principal: Principal, tmp: Path, name: str, sender: str | None) -> jobs.Work:
    """Receiving a large package as a job's work; a refusal is audited as in the request, then fails the job."""
    actor = Actor.of(principal)

    def work(progress: jobs.Progress) -> jobs.Outcome:
        try:
            with ctx.catalogue.session() as s:
                with refusals.answered(s, actor, "transfer.receive", source=name) as refused:
                    row = transfer.receive(ctx, s, actor, tmp / "package.zip", source=name, sender_sha256=sender)
                if not refused:
                    receipt_id, message = row.id, transfer.receipt_verdict(row)[0]
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if refused:
            raise refused[0]
        return jobs.Outcome({"summary": message, "receipt_id": receipt_id}, f"/ui/transfers/receipts/{receipt_id}")

    return work


@router.get("/receipts/{receipt_id}")
def receipt_page(receipt_id: Id, request: Request, db: Session = UnitOfWork, _: Principal = Manager) -> Response:
    row = transfer.get_receipt(db, receipt_id)
    message = transfer.receipt_verdict(row)[0]
    return render(request, "transfer_receipt.html", tab="receipts", row=row, message=message,
                  **_results(row.check_results))


@router.get("/receipts/{receipt_id}/register.pdf")
def receipt_register(receipt_id: Id, ctx: Context = Depends(context), db: Session = UnitOfWork,
                     _: Principal = Manager) -> Response:
    row = transfer.get_receipt(db, receipt_id)
    return Response(receipt_pdf(ctx, row), media_type="application/pdf", headers={
        **SECURITY_HEADERS, "Content-Disposition": attachment(f"接收登记表-{row.id}.pdf")})


# --- 移交 -----------------------------------------------------------------------------------------------------

def _index(request: Request, ctx: Context, db: Session, page: int = 1, error: AnyError | None = None,
           form: dict[str, str] | None = None) -> Response:
    rows = list(db.scalars(select(TransferPackage).order_by(TransferPackage.id.desc())
                           .limit(PER_PAGE + 1).offset((page - 1) * PER_PAGE)))
    return render(request, "transfers.html", status=status_of(error) if error else 200, tab="export",
                  rows=rows[:PER_PAGE], page=page, more=len(rows) > PER_PAGE, error=error, form=form or {},
                  job=jobs.latest(db, EXPORT_KEY), done=DONE.get(request.query_params.get("done", ""), ""),
                  status_names=STATUS_NAMES,
                  receiver=ctx.settings.transfer_receiver)


@router.get("")
def index(request: Request, page: PageNo = 1, ctx: Context = Depends(context), db: Session = UnitOfWork,
          _: Principal = Manager) -> Response:
    return _index(request, ctx, db, page)


@router.post("/export")
def export(request: Request, archival_codes: Text = "", category: Annotated[str, Form(max_length=20)] = "",
           year: Annotated[str, Form(max_length=20)] = "", retention_code: Annotated[str, Form(max_length=20)] = "",
           receiver: Annotated[str, Form(max_length=200)] = "", ctx: Context = Depends(context),
           db: Session = UnitOfWork, principal: Principal = Manager) -> Response:
    """Check the selection now (an unknown 档号 is answered at once), then export it as a job."""
    form = {"archival_codes": archival_codes, "category": category, "year": year, "retention_code": retention_code,
            "receiver": receiver}
    codes = codes_of(archival_codes)
    data = {"archival_codes": codes or None, "category": category.strip() or None, "year": year.strip() or None,
            "retention_code": retention_code.strip() or None}
    try:
        with audited(db, principal, "transfer.export", target_type="transfer", detail={"selection": form}):
            selection = model_of(Selection, data, LABELS)
            if selection.archival_codes is not None:  # a list is checked here; filters are checked by the job
                transfer.select_items(db, selection, principal.branches)
    except ERRORS as exc:
        if exc.kind in SYSTEM_KINDS:
            raise
        error = exc
        return _shown(ctx, lambda s: _index(request, ctx, s, error=error, form=form))
    db.commit()  # the request's transaction ends here: on SQLite it holds the write lock the job's start needs
    count = len(codes) if codes else None
    title = f"生成移交信息包（{count} 件）" if count else "生成移交信息包（按筛选条件）"
    _, started = jobs.start(ctx, principal, kind="transfer.export", key=EXPORT_KEY, title=title,
                            permission=Permission.TRANSFER_MANAGE, work=_export_work(ctx, principal, selection,
                                                                                     receiver), total=count)
    return RedirectResponse(f"/ui/transfers?done={'started' if started else 'running'}", status_code=303,
                            headers=SECURITY_HEADERS)


def _export_work(ctx: Context, principal: Principal, selection: Selection, receiver: str) -> jobs.Work:
    """The export as a job's work: packed in a read-only session (the progress is written meanwhile), then recorded
    in a short transaction; a refusal is audited as the API's, then fails the job with its Chinese message."""
    actor = Actor.of(principal)

    def work(progress: jobs.Progress) -> jobs.Outcome:
        try:
            with ctx.catalogue.reading() as r:
                packed = transfer.pack(ctx, r, actor, selection, receiver=receiver or None, progress=progress,
                                       branches=principal.branches)
        except ERRORS as exc:
            with ctx.catalogue.session() as s:
                audit.record(s, actor, "transfer.export", target_type="transfer", target_id=None, outcome="refused",
                             detail={"code": exc.code, "message": exc.message, "source": "ui"})
            raise
        with ctx.catalogue.session() as s:
            row = transfer.record_export(s, actor, selection, packed)
            package_id, package_no, status, items = row.id, row.package_no, row.status, row.item_count
        verdict = "通过移交检测，可下载" if status == "released" else "未通过移交检测，未生成可下载的文件"
        return jobs.Outcome({"summary": f"信息包 {package_no}，共 {items} 件，{verdict}", "package_id": package_id},
                            f"/ui/transfers/{package_id}")

    return work


@router.get("/{package_id}")
def package_page(package_id: Id, request: Request, db: Session = UnitOfWork, _: Principal = Manager) -> Response:
    row = transfer.get_package(db, package_id)
    return render(request, "transfer_package.html", tab="export", row=row, **_results(row.check_results))


@router.get("/{package_id}/package.zip")
def download(package_id: Id, ctx: Context = Depends(context), db: Session = UnitOfWork,
             principal: Principal = Manager) -> Response:
    row, chunks = transfer.download(ctx, db, Actor.of(principal), package_id)
    return StreamingResponse(chunks, media_type="application/zip", headers={
        **SECURITY_HEADERS, "Content-Length": str(row.zip_size), "X-Package-SHA256": row.zip_sha256 or "",
        "Content-Disposition": attachment(f"{row.package_no}.zip")})


@router.get("/{package_id}/register.pdf")
def package_register(package_id: Id, ctx: Context = Depends(context), db: Session = UnitOfWork,
                     _: Principal = Manager) -> Response:
    row = transfer.get_package(db, package_id)
    return Response(register_pdf(ctx, row.register, row.check_results), media_type="application/pdf", headers={
        **SECURITY_HEADERS, "Content-Disposition": attachment(f"{row.package_no}-移交登记表.pdf")})
